"""What offices do with the cases in their queue, under /api/v1/cases: the actions of a case's
life (accept, start, ask, resolve, transfer, extend, approve-extension, deny-extension, close,
rework; routing.workflow says who may do which, from where), reject and split.

Staff keys (role ``office``) act on their own office's cases, supervisor keys on their office's
and every office's under it, the admin key on triage cases; an office or supervisor key acting
on a case outside its scope gets 404 ``not_found``, word for word what a missing case gets
(docs/privacy.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, request, url_for
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError

from offices.schemas import (
    AskIn,
    CaseRouting,
    CloseIn,
    ExtendIn,
    NoteIn,
    RejectIn,
    ResolveIn,
    ReworkIn,
    SplitAccepted,
    SplitIn,
    TransferIn,
)
from routing import workflow as wf
from services import casework
from services.accounts import Caller
from services.casework import CaseState
from web.auth import authenticate
from web.case_state import CaseStateOut, case_state_body
from web.db import unit_of_work
from web.errors import ApiError, json_object_body
from web.openapi import ERROR, Answer, error, operation
from web.points import points_policy
from web.uploads import read_photos, store_read_photos

bp = Blueprint("cases", __name__, url_prefix="/api/v1/cases")

OFFICE_SIDE_ROLES = ("office", "supervisor", "admin")


@bp.post("/<id:case_id>/split")
@operation(
    summary="Take a wrongly merged report out of its case; it is processed alone",
    description="The report is classified and routed on its own and never merged back.",
    body=SplitIn,
    body_example={"report_id": 2},
    responses={
        202: SplitAccepted,
        400: ERROR,
        401: ERROR,
        403: error("Not an office key."),
        404: error("No such case, or not in this office's queue (the same answer)."),
        409: error("The report is the case's only one."),
        422: error("Invalid fields, or the report is not part of this case."),
    },
    security="bearer",
    tags=["offices"],
)
def split(case_id: int) -> ResponseReturnValue:
    caller = authenticate("office")
    assert caller.office_code is not None
    data = SplitIn().load(json_object_body())
    with unit_of_work() as session:
        casework.split_report(session, case_id, data["report_id"], caller.office_code)
    report_id = data["report_id"]
    status_url = url_for("api.get_report", report_id=report_id, _external=True)
    body = {"case_id": case_id, "report_id": report_id, "status_url": status_url}
    return SplitAccepted().dump(body), 202


@bp.post("/<id:case_id>/reject")
@operation(
    summary="An office says a case is not its own; it is routed again without it",
    description=(
        "The case is routed again, never to this office nor to any office that rejected it "
        "before; when no other office handles it there, it goes to triage."
    ),
    body=RejectIn,
    body_example={"reason": "不在本社区辖区，应由镇里处理"},
    responses={
        200: CaseRouting,
        400: ERROR,
        401: ERROR,
        403: error("Not an office or supervisor key."),
        404: error(
            "No such case, or not in this office's queue nor under this supervisor's office "
            "(the same answer)."
        ),
        409: error(
            "The case is no longer routed (`status` and `allowed_actions` say what it is now)."
        ),
        422: ERROR,
    },
    security="bearer",
    tags=["offices"],
)
def reject(case_id: int) -> ResponseReturnValue:
    caller = authenticate("office", "supervisor")
    data = RejectIn().load(json_object_body())
    with unit_of_work() as session:
        case = casework.reject_and_reroute(session, case_id, caller, data["reason"])
        body = {
            "case_id": case.id,
            "status": case.status,
            "office": case.office.code if case.office else None,
            "routing": case.routing,
        }
    return CaseRouting().dump(body)


# ---------- the actions of a case's life ----------

# What each action does with the caller's validated body.
ActionCall = Callable[[Any, int, Caller, dict[str, Any]], CaseState]

ACTION_ERRORS: Mapping[int, Answer] = {
    400: error("The body is not a JSON object."),
    401: ERROR,
    403: error(
        "A reporter's key; or a role that may never do this action (`role_not_allowed`, with "
        "`status` and `allowed_actions`)."
    ),
    404: error(
        "No such case, or a case outside this key's office (and the offices under a "
        "supervisor's): the same answer, so no key learns which ids exist elsewhere."
    ),
    409: error(
        "Not allowed from the case's status (`illegal_transition`, or a code naming the "
        "condition, such as `closure_not_allowed`), or another action changed the case first "
        "(`case_changed`). `status` and `allowed_actions` say what the case is now and what "
        "this key may do."
    ),
    422: error("Invalid or missing fields, named in `fields`."),
}


def _optional_json_object() -> dict[str, Any]:
    """No body at all is an empty object; any body must be a JSON object."""
    if not request.get_data(cache=True):
        return {}
    return json_object_body()


def _action_view(
    action: str,
    *,
    summary: str,
    description: str,
    body: type[Schema],
    example: dict[str, Any],
    call: ActionCall,
    body_required: bool = True,
) -> None:
    def view(case_id: int) -> ResponseReturnValue:
        caller = authenticate(*OFFICE_SIDE_ROLES)
        raw = json_object_body() if body_required else _optional_json_object()
        data = body().load(raw)
        with unit_of_work() as session:
            state = call(session, case_id, caller, data)
        return case_state_body(state)

    view.__name__ = action.replace("-", "_")
    described = operation(
        summary=summary,
        description=description,
        body=body,
        body_required=body_required,
        body_example=example,
        responses={200: CaseStateOut, **ACTION_ERRORS},
        security="bearer",
        tags=["offices"],
    )(view)
    bp.add_url_rule(
        f"/<id:case_id>/{action}", endpoint=view.__name__, view_func=described, methods=["POST"]
    )


_action_view(
    wf.ACCEPT,
    summary="Accept a routed case (受理); the key becomes its assignee",
    description="Staff of the case's office, or a supervisor above it. From `routed`.",
    body=NoteIn,
    example={"note": "已受理"},
    call=lambda s, case_id, caller, d: casework.accept(s, case_id, caller, d["note"]),
    body_required=False,
)
_action_view(
    wf.START,
    summary="Start work on an accepted case",
    description="Staff or a supervisor. From `accepted` to `in_progress`.",
    body=NoteIn,
    example={"note": "已派人处理"},
    call=lambda s, case_id, caller, d: casework.start(s, case_id, caller, d["note"]),
    body_required=False,
)
_action_view(
    wf.ASK,
    summary="Ask the reporters for information; the case waits for their answer",
    description=(
        "Staff or a supervisor. From `accepted` or `in_progress` to `waiting`; a reporter's "
        "answer (`POST /api/v1/reports/<id>/answer`) brings it back."
    ),
    body=AskIn,
    example={"question": "请问具体是哪个门口？"},
    call=lambda s, case_id, caller, d: casework.ask(s, case_id, caller, d["question"]),
)
_action_view(
    wf.TRANSFER,
    summary="Hand the case to another office; it is routed there",
    description=(
        "Staff or a supervisor, from `routed`, `accepted` or `in_progress`; the admin, from "
        "`triage` (placing a case nobody could route). The case is `routed` at that office, "
        "without an assignee. An unknown office, or the one that has the case, is 422 naming "
        "`office`."
    ),
    body=TransferIn,
    example={"office": "PD-HG-01", "reason": "在隔壁社区辖区"},
    call=lambda s, case_id, caller, d: casework.transfer(
        s, case_id, caller, d["office"], d["reason"]
    ),
)
_action_view(
    wf.EXTEND,
    summary="Ask a supervisor for more time",
    description=(
        "Staff or a supervisor, in `accepted` or `in_progress`, when no extension is waiting "
        "for an answer already (else 409 `extension_pending`). The status stays; the due time "
        "moves only when a supervisor approves."
    ),
    body=ExtendIn,
    example={"hours": 24, "reason": "需要等物业配合"},
    call=lambda s, case_id, caller, d: casework.extend(s, case_id, caller, d["hours"], d["reason"]),
)
_action_view(
    wf.APPROVE_EXTENSION,
    summary="Grant the pending extension: the due time moves by its hours",
    description=(
        "A supervisor, in `accepted`, `in_progress` or `waiting`, with an extension pending "
        "(else 409 `no_extension_pending`)."
    ),
    body=NoteIn,
    example={"note": "同意延期"},
    call=lambda s, case_id, caller, d: casework.approve_extension(s, case_id, caller, d["note"]),
    body_required=False,
)
_action_view(
    wf.DENY_EXTENSION,
    summary="Refuse the pending extension",
    description="A supervisor, with an extension pending (else 409 `no_extension_pending`).",
    body=NoteIn,
    example={"note": "请按期完成"},
    call=lambda s, case_id, caller, d: casework.deny_extension(s, case_id, caller, d["note"]),
    body_required=False,
)
_action_view(
    wf.CLOSE,
    summary="Close the case (结案) with a closure",
    description=(
        "A supervisor, from any status but `triage` and `closed`; the admin closes triage "
        "cases. `fixed` only from `resolved` (else 409 `closure_not_allowed`)."
    ),
    body=CloseIn,
    example={"closure": "fixed", "note": "核查属实，已修复"},
    call=lambda s, case_id, caller, d: casework.close(
        s, case_id, caller, d["closure"], d["note"], points_policy=points_policy()
    ),
)
_action_view(
    wf.REWORK,
    summary="Send a resolved case back to work",
    description="A supervisor, from `resolved` to `in_progress`; each rework is an event.",
    body=ReworkIn,
    example={"note": "现场仍有垃圾，请返工"},
    call=lambda s, case_id, caller, d: casework.rework(s, case_id, caller, d["note"]),
)


@bp.post("/<id:case_id>/resolve")
@operation(
    summary="The office says the work is done",
    description=(
        "Staff or a supervisor, from `accepted` or `in_progress` to `resolved`. As JSON "
        "`{note}`, or as multipart with a `note` part and after-photos as `photos` parts "
        "(JPEG, PNG, WebP or HEIC, as many as a report may have); the photos are named in the "
        "`resolve` event's detail."
    ),
    body=ResolveIn,
    body_example={"note": "垃圾已清运"},
    body_media_types=("application/json", "multipart/form-data"),
    files={"photos": "After-photos of the work done (repeat the part for each)."},
    responses={
        200: CaseStateOut,
        **ACTION_ERRORS,
        413: error("A photo is larger than allowed."),
        415: error("Neither JSON nor multipart."),
    },
    security="bearer",
    tags=["offices"],
)
def resolve(case_id: int) -> ResponseReturnValue:
    caller = authenticate(*OFFICE_SIDE_ROLES)
    if request.mimetype == "application/json":
        raw, files = json_object_body(), []
    elif request.mimetype == "multipart/form-data":
        raw = {name: value for name, value in request.form.items() if name != "photos"}
        unexpected = [name for name in request.files if name != "photos"]
        if unexpected:
            raise ValidationError(
                {
                    name: ["Unknown file field; send after-photos as 'photos'."]
                    for name in unexpected
                }
            )
        files = request.files.getlist("photos")
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send application/json or multipart/form-data.",
            {"Content-Type": [f"'{request.mimetype or 'none'}' is not accepted."]},
        )
    data = ResolveIn().load(raw)
    photos = read_photos(files)
    with unit_of_work() as session:
        store_read_photos(session, photos)
        state = casework.resolve(session, case_id, caller, data["note"], photos)
    return case_state_body(state)
