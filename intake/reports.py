"""The reporters' JSON API under /api/v1: register, file reports, follow them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request, url_for
from flask.typing import ResponseReturnValue
from marshmallow import ValidationError

from intake.rechecks import offers_body
from intake.report_timeline import (
    after_photos,
    office_ref,
    public_coordinate,
    public_event,
    public_timeline,
    reopen_until,
)
from intake.schemas import (
    AnswerIn,
    ConfirmIn,
    ReopenIn,
    ReportAccepted,
    ReporterCreated,
    ReporterIn,
    ReportIn,
    ReportOut,
)
from models import queries
from models.entities import Report
from models.limits import MAX_IDEMPOTENCY_KEY_CHARS
from services import casework
from services.access import may_see
from services.accounts import Caller
from services.accounts import register_reporter as register
from services.filing import IdempotencyConflict, NewReport, file_report
from services.locations import NO_FIX
from services.photos import UploadedPhoto, photo_location
from web.auth import authenticate, caller_for_key
from web.case_state import CaseStateOut, case_state_body
from web.db import read_session, unit_of_work
from web.errors import ApiError, json_object_body
from web.openapi import ERROR, Answer, Header, error, operation
from web.rate_limits import RATE_LIMITED, bearer_token, rate_limited
from web.uploads import read_photos, store_read_photos

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.post("/reporters")
@rate_limited("registrations")
@operation(
    summary="Register as a reporter and get a reporter key (shown once)",
    description="For riders without an app: the reporter page calls this once per phone.",
    body=ReporterIn,
    body_example={"display_name": "王师傅", "occupation": "rider", "platform": "美团"},
    responses={201: ReporterCreated, 400: ERROR, 422: ERROR, 429: RATE_LIMITED},
    tags=["reports"],
)
def register_reporter() -> ResponseReturnValue:
    """Self-registration for riders without an app: the reporter page calls this once and keeps
    the key on the phone."""
    data = ReporterIn().load(json_object_body())
    with unit_of_work() as session:
        reporter, key = register(
            session,
            display_name=data["display_name"],
            occupation=data["occupation"],
            platform=data["platform"],
            label="self-registered",
        )
        created = ReporterCreated().dump(
            {
                "id": reporter.id,
                "display_name": reporter.display_name,
                "occupation": reporter.occupation,
                "platform": reporter.platform,
                "key": key,
            }
        )
    return created, 201


@bp.post("/reports")
@rate_limited("reports", bearer_token)
@operation(
    summary="File a report",
    description=(
        "Where: `lat` and `lon` (WGS-84) together, or an `address` or landmark (such a report "
        f"goes to triage for a person to place). {NO_FIX} It is refused with 422 naming `lat` "
        "(code `validation_failed`). What: some `text`, a `category`, or a photo. "
        "As JSON, or as a form with the same fields (multipart with up to the configured number "
        "of `photos`: JPEG, PNG, WebP or HEIC, sniffed from their bytes). Each photo is "
        "decoded and stored re-encoded (HEIC as JPEG), upright, without EXIF, GPS, XMP, ICC "
        "profile or comments; one that does not decode is refused with 422 naming "
        "`photos.<index>`, one over the configured pixel count (`CITYRELAY_MAX_PHOTO_PIXELS`, "
        "by default 40 megapixels) with 413. A form without `lat` and `lon` whose first photo "
        "carries an EXIF GPS position is placed there (degrees from the EXIF rationals with "
        "their N/S and E/W references, taken as WGS-84). The report is "
        "committed before the answer; classification and routing follow (see `status_url`). "
        '`recheck` offers a one-tap "still fixed?" for each case closed as `fixed` lately '
        "near the report (`POST /api/v1/cases/<id>/recheck`); a retry answers the same."
    ),
    body=ReportIn,
    body_example={"text": "小区门口垃圾桶满了，溢出来了", "lat": 31.154114, "lon": 121.737424},
    body_media_types=(
        "application/json",
        "multipart/form-data",
        "application/x-www-form-urlencoded",
    ),
    files={"photos": "Photos of the problem (repeat the part for each)."},
    headers={
        "Idempotency-Key": Header(
            "Makes a retry safe: the same key with the same body returns the first report "
            "(202 with Idempotent-Replayed: true); with another body it is 422 "
            "`idempotency_key_reused`. 1 to "
            f"{MAX_IDEMPOTENCY_KEY_CHARS} printable characters, else 400.",
            {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_CHARS},
        )
    },
    responses={
        202: Answer(
            ReportAccepted,
            "Committed; classification and routing follow.",
            headers={
                "Location": Header(
                    "The report's status URL.", {"type": "string", "format": "uri"}, True
                ),
                "Idempotent-Replayed": Header(
                    "Present (true) when this is the first report returned for a retry.",
                    {"type": "string", "enum": ["true"]},
                ),
            },
        ),
        400: error("The body is not a JSON object, or a bad Idempotency-Key header."),
        401: ERROR,
        403: error("The key is not a reporter's."),
        413: error("A photo is larger than allowed, in bytes or in pixels."),
        415: error("Neither JSON nor a form."),
        422: error(
            "Invalid fields (no position fix at 0,0 among them), too many, non-image or "
            "undecodable photos, "
            "or an Idempotency-Key reused with another body."
        ),
        429: RATE_LIMITED,
    },
    security="bearer",
    tags=["reports"],
)
def create_report() -> ResponseReturnValue:
    caller = authenticate("reporter")
    assert caller.reporter_id is not None
    fields, files = _report_input()
    photos = read_photos(files)
    data = ReportIn().load(_placed_by_photo(fields, photos))
    idempotency_key = idempotency_key_header()
    new = NewReport(
        reporter_id=caller.reporter_id,
        channel="api",
        text=data["text"],
        lang=data["lang"],
        lat=data["lat"],
        lon=data["lon"],
        address=data["address"],
        category=data["category"],
        photos=photos,
        idempotency_key=idempotency_key,
    )
    try:
        with unit_of_work() as session:
            store_read_photos(session, photos)
            report, replayed = file_report(session, new)
            accepted = _accepted(report, replayed=replayed, recheck=offers_body(session, report))
    except IdempotencyConflict as conflict:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was already used for a different report.",
            {"Idempotency-Key": [f"Used for report {conflict.earlier_id} with another body."]},
        ) from None
    return accepted


@bp.get("/reports/<id:report_id>")
@operation(
    summary="A report and the progress of its case",
    description=(
        "Public (docs/privacy.md): `lat` and `lon` rounded to 3 decimals (about 100 m) and "
        "`address` empty, except for the report's own reporter, staff and supervisors of its "
        "case's office and the admin (`Authorization: Bearer`), who read them exactly. "
        "`timeline` is the case's history as its reporters may see it (no staff "
        "identities, no key ids; the notes written for reporters, the after-photos). `events` is "
        "the full event list with the pipeline's explanations, but names no reporter (they act "
        "as `reporter`), no other report of the case, no points and none of the office's "
        "internal notes. With the key of a "
        "reporter of the case, `allowed_actions` says what that "
        "reporter may do now; any other key, or none, gets the same report with none."
    ),
    responses={200: ReportOut, 404: error("No such report.")},
    tags=["reports"],
)
def get_report(report_id: int) -> ResponseReturnValue:
    report = queries.report_by_id(read_session(), report_id)
    if report is None:
        raise ApiError(404, "not_found", f"No report {report_id}.")
    caller = _caller_if_any()
    view = report_view(report, exact=caller is not None and sees_exactly(report, caller))
    if report.case is not None and caller is not None and caller.role == "reporter":
        view["allowed_actions"] = casework.allowed_actions_for(report.case, caller)
    return ReportOut().dump(view)


def _caller_if_any() -> Caller | None:
    """The key that came with a read, if one did: it only personalises the answer, so a
    missing or unknown key reads the public report."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return caller_for_key(token.strip())


def sees_exactly(report: Report, caller: Caller) -> bool:
    """Whether ``caller`` reads the report's exact point and address (docs/privacy.md): its
    own reporter, staff and supervisors of its case's office, and the admin."""
    if caller.role == "admin":
        return True
    if caller.role == "reporter":
        return report.reporter_id == caller.reporter_id
    return report.case is not None and may_see(caller, report.case.office)


# ---------- the reporter's actions on the case of their report ----------

REPORTER_ACTION_ERRORS = {
    400: error("The body is not a JSON object."),
    401: ERROR,
    403: error(
        "Not a reporter key, or the report is not this reporter's (code `not_your_report`)."
    ),
    404: error("No such report."),
    409: error(
        "Not allowed from the case's status (`illegal_transition`, or a code naming the "
        "condition: `not_fixed`, `already_confirmed`, `reopen_window_passed`), or the report "
        "is not a case yet. `status` and `allowed_actions` say what the case is now and what "
        "the reporter may do."
    ),
    422: error("Invalid or missing fields, named in `fields`."),
    429: RATE_LIMITED,
}


@bp.post("/reports/<id:report_id>/answer")
@rate_limited("reporter_actions", bearer_token)
@operation(
    summary="Answer the office's question; the case goes back to where it was",
    description="The reporter's own key only; the case must be `waiting`.",
    body=AnswerIn,
    body_example={"text": "在小区南门，靠近快递柜"},
    responses={200: CaseStateOut, **REPORTER_ACTION_ERRORS},
    security="bearer",
    tags=["reports"],
)
def answer_question(report_id: int) -> ResponseReturnValue:
    caller = authenticate("reporter")
    data = AnswerIn().load(json_object_body())
    with unit_of_work() as session:
        state = casework.answer(session, report_id, caller, data["text"])
    return case_state_body(state)


@bp.post("/reports/<id:report_id>/confirm")
@rate_limited("reporter_actions", bearer_token)
@operation(
    summary="Confirm the fix (核查)",
    description=(
        "The reporter's own key only; the case must be `resolved`, or `closed` as `fixed`. "
        "Once per reporter and resolution. The body (`{note}`) is optional."
    ),
    body=ConfirmIn,
    body_required=False,
    body_example={"note": "已经修好了，谢谢"},
    responses={200: CaseStateOut, **REPORTER_ACTION_ERRORS},
    security="bearer",
    tags=["reports"],
)
def confirm_fix(report_id: int) -> ResponseReturnValue:
    caller = authenticate("reporter")
    raw = json_object_body() if request.get_data(cache=True) else {}
    data = ConfirmIn().load(raw)
    with unit_of_work() as session:
        state = casework.confirm(session, report_id, caller, data["note"])
    return case_state_body(state)


@bp.post("/reports/<id:report_id>/reopen")
@rate_limited("reporter_actions", bearer_token)
@operation(
    summary="Reopen a closed case: it is not done",
    description=(
        f"The reporter's own key only, within {casework.REOPEN_WINDOW.days} days of closing. "
        "The case goes back to its office's queue (`routed`; to `triage` when it never had an "
        "office) without its closure."
    ),
    body=ReopenIn,
    body_example={"reason": "垃圾又堆满了"},
    responses={200: CaseStateOut, **REPORTER_ACTION_ERRORS},
    security="bearer",
    tags=["reports"],
)
def reopen_case(report_id: int) -> ResponseReturnValue:
    caller = authenticate("reporter")
    data = ReopenIn().load(json_object_body())
    with unit_of_work() as session:
        state = casework.reopen(session, report_id, caller, data["reason"])
    return case_state_body(state)


def report_view(report: Report, *, exact: bool = False) -> dict[str, Any]:
    """The report as ``GET /api/v1/reports/<id>`` shows it: to the public (``exact`` False)
    with its point rounded to about 100 m and without the address the reporter typed, and in
    either case naming no reporter (docs/privacy.md)."""
    case = report.case
    view: dict[str, Any] = {
        "id": report.id,
        "status": case.status if case else report.state,
        "channel": report.channel,
        "text": report.text,
        "lang": report.language,
        "lat": report.lat if exact else public_coordinate(report.lat),
        "lon": report.lon if exact else public_coordinate(report.lon),
        "address": report.address if exact else "",
        "received_at": report.received_at,
        "photos": [
            {
                "url": url_for("media.photo", name=p.filename, _external=True),
                "content_type": p.content_type,
                "size_bytes": p.size_bytes,
            }
            for p in report.photos
        ],
        "case_id": case.id if case else None,
        "category": None,
        "category_name": None,
        "confidence": None,
        "classified_by": None,
        "alternatives": [],
        "classifier_model": None,
        "office": None,
        "routing": {},
        "due_at": None,
        "reports_in_case": 0,
        "reporters_in_case": 0,
        "events": [],
        "status_url": url_for("api.get_report", report_id=report.id, _external=True),
        "closure": None,
        "timeline": [],
        "after_photos": [],
        "allowed_actions": [],
        "reopen_until": None,
    }
    if case is None:
        return view
    timeline = public_timeline(case)
    view.update(
        category=case.category_code,
        category_name=(
            {"zh": case.category.name_zh, "en": case.category.name_en} if case.category else None
        ),
        confidence=case.confidence,
        classified_by=case.classification.get("method"),
        alternatives=case.classification.get("alternatives", []),
        classifier_model=case.classifier_model,
        office=office_ref(case.office),
        routing=case.routing,
        due_at=case.due_at,
        reports_in_case=len(case.reports),
        reporters_in_case=len({r.reporter_id for r in case.reports}),
        events=[public_event(event) for event in case.events],
        closure=case.closure,
        timeline=timeline,
        after_photos=after_photos(timeline),
        reopen_until=reopen_until(case, casework.REOPEN_WINDOW),
    )
    return view


def _report_input() -> tuple[dict[str, Any], list[Any]]:
    if request.mimetype == "application/json":
        return json_object_body(), []
    if request.mimetype in {"multipart/form-data", "application/x-www-form-urlencoded"}:
        fields: dict[str, Any] = {k: v for k, v in request.form.items() if k != "photos"}
        unexpected = [name for name in request.files if name != "photos"]
        if unexpected:
            raise ValidationError(
                {name: ["Unknown file field; send photos as 'photos'."] for name in unexpected}
            )
        return fields, request.files.getlist("photos")
    raise ApiError(
        415,
        "unsupported_media_type",
        "Send application/json or multipart/form-data.",
        {"Content-Type": [f"'{request.mimetype or 'none'}' is not accepted."]},
    )


def _placed_by_photo(fields: dict[str, Any], photos: list[UploadedPhoto]) -> dict[str, Any]:
    """A report without coordinates (neither ``lat`` nor ``lon``, or both empty) placed where
    its first photo was taken, when that photo's EXIF has a GPS position."""
    if not all(fields.get(name) in (None, "") for name in ("lat", "lon")):
        return fields
    location = photo_location(photos)
    if location is None:
        return fields
    return {**fields, "lat": location[0], "lon": location[1]}


def idempotency_key_header() -> str | None:
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    value = raw.strip()
    if not value or len(value) > MAX_IDEMPOTENCY_KEY_CHARS or not value.isprintable():
        raise ApiError(
            400,
            "bad_request",
            "Invalid Idempotency-Key header.",
            {"Idempotency-Key": [f"1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable characters."]},
        )
    return value


def _accepted(
    report: Report, *, replayed: bool, recheck: list[dict[str, Any]]
) -> ResponseReturnValue:
    status_url = url_for("api.get_report", report_id=report.id, _external=True)
    body = ReportAccepted().dump(
        {
            "id": report.id,
            "status": report.case.status if report.case else report.state,
            "status_url": status_url,
            "recheck": recheck,
        }
    )
    headers = {"Location": status_url}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return body, 202, headers
