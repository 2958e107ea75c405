"""What offices do with the cases in their queue, under /api/v1/cases."""

from __future__ import annotations

from flask import Blueprint, url_for
from flask.typing import ResponseReturnValue

from offices.schemas import CaseRouting, RejectIn, SplitAccepted, SplitIn
from services import casework
from web.auth import authenticate
from web.db import unit_of_work
from web.errors import json_object_body
from web.openapi import ERROR, error, operation

bp = Blueprint("cases", __name__, url_prefix="/api/v1/cases")


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
        404: error("No such case."),
        409: error("The case is not in this office's queue, or the report is its only one."),
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
        403: error("Not an office key."),
        404: error("No such case."),
        409: error("The case is not in this office's queue."),
        422: ERROR,
    },
    security="bearer",
    tags=["offices"],
)
def reject(case_id: int) -> ResponseReturnValue:
    caller = authenticate("office")
    assert caller.office_code is not None
    data = RejectIn().load(json_object_body())
    with unit_of_work() as session:
        case = casework.reject_and_reroute(session, case_id, caller.office_code, data["reason"])
        body = {
            "case_id": case.id,
            "status": case.status,
            "office": case.office.code if case.office else None,
            "routing": case.routing,
        }
    return CaseRouting().dump(body)
