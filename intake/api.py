"""The JSON API under /api/v1: reporters file reports and follow them; anyone lists offices and
categories."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request, url_for
from flask.typing import ResponseReturnValue
from marshmallow import ValidationError
from sqlalchemy import select, text
from sqlalchemy.orm import Session, selectinload

from intake import db
from intake.auth import KEY_PREFIX_CHARS, bearer_key, hash_key, new_key
from intake.errors import ApiError, field_error, json_object_body
from intake.filing import IdempotencyConflict, NewReport, file_report
from intake.photos import read_photos
from intake.schemas import (
    CategoryOut,
    OfficeOut,
    ReportAccepted,
    ReporterCreated,
    ReporterIn,
    ReportIn,
    ReportOut,
)
from models.entities import ApiKey, Case, CaseEvent, Category, Office, Report, Reporter

bp = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_IDEMPOTENCY_KEY_CHARS = 200


@bp.get("/health")
def health() -> ResponseReturnValue:
    db.session().execute(text("SELECT 1"))
    return {"status": "ok"}


@bp.post("/reporters")
def register_reporter() -> ResponseReturnValue:
    """Self-registration for riders without an app: the reporter page calls this once and keeps
    the key on the phone."""
    data = ReporterIn().load(json_object_body())
    session = db.write_session()
    reporter = Reporter(
        display_name=data["display_name"].strip() or "骑手",
        occupation=data["occupation"],
        platform=data["platform"],
    )
    key = new_key()
    session.add(
        ApiKey(
            prefix=key[:KEY_PREFIX_CHARS],
            key_hash=hash_key(key),
            role="reporter",
            reporter=reporter,
            label="self-registered",
        )
    )
    session.commit()
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
def create_report() -> ResponseReturnValue:
    session = db.write_session()
    key = bearer_key(session, "reporter")
    assert key.reporter_id is not None
    fields, files = _report_input()
    data = ReportIn().load(fields)
    _check_category(session, data["category"])
    photos = read_photos(
        files, current_app.config["MAX_PHOTOS"], current_app.config["MAX_PHOTO_BYTES"]
    )
    if not (data["text"].strip() or data["category"] or photos):
        raise field_error("text", "Describe the problem, pick a category or attach a photo.")
    new = NewReport(
        reporter_id=key.reporter_id,
        channel="api",
        text=data["text"],
        lang=data["lang"],
        lat=data["lat"],
        lon=data["lon"],
        address=data["address"],
        category=data["category"],
        photos=photos,
        idempotency_key=idempotency_key_header(),
    )
    try:
        report, replayed = file_report(session, new)
    except IdempotencyConflict as conflict:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was already used for a different report.",
            {"Idempotency-Key": [f"Used for report {conflict.earlier.id} with another body."]},
        ) from None
    return _accepted(report, replayed=replayed)


@bp.get("/reports/<int:report_id>")
def get_report(report_id: int) -> ResponseReturnValue:
    session = db.session()
    report = session.scalar(
        select(Report)
        .where(Report.id == report_id)
        .options(
            selectinload(Report.photos),
            selectinload(Report.case).selectinload(Case.events).selectinload(CaseEvent.office),
            selectinload(Report.case).selectinload(Case.office),
            selectinload(Report.case).selectinload(Case.category),
            selectinload(Report.case).selectinload(Case.reports),
        )
    )
    if report is None:
        raise ApiError(404, "not_found", f"No report {report_id}.")
    return ReportOut().dump(report_view(report))


@bp.get("/offices")
def list_offices() -> ResponseReturnValue:
    session = db.session()
    offices = session.scalars(
        select(Office).options(selectinload(Office.categories)).order_by(Office.id)
    ).all()
    by_id = {office.id: office.code for office in offices}
    rows = [
        {
            "code": office.code,
            "name": office.name,
            "name_en": office.name_en,
            "kind": office.kind,
            "parent": by_id.get(office.parent_id) if office.parent_id else None,
            "jurisdiction": office.jurisdiction,
            "categories": [category.code for category in office.categories],
            "active": office.active,
        }
        for office in offices
    ]
    return OfficeOut(many=True).dump(rows)


@bp.get("/categories")
def list_categories() -> ResponseReturnValue:
    session = db.session()
    categories = session.scalars(select(Category).order_by(Category.position)).all()
    rows = [
        {
            "code": c.code,
            "name_zh": c.name_zh,
            "name_en": c.name_en,
            "group_zh": c.group_zh,
            "standard_codes": c.standard_codes.split(),
            "time_limit": c.time_limit,
            "time_limit_source": c.time_limit_source,
            "urgent": c.urgent,
            "handled_by": c.handled_by,
            "merge_radius_m": c.merge_radius_m,
            "merge_window_hours": c.merge_window_hours,
        }
        for c in categories
    ]
    return CategoryOut(many=True).dump(rows)


def report_view(report: Report) -> dict[str, Any]:
    case = report.case
    view: dict[str, Any] = {
        "id": report.id,
        "status": case.status if case else report.state,
        "channel": report.channel,
        "text": report.text,
        "lang": report.language,
        "lat": report.lat,
        "lon": report.lon,
        "address": report.address,
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
        "office": None,
        "routing": {},
        "due_at": None,
        "reports_in_case": 0,
        "reporters_in_case": 0,
        "events": [],
        "status_url": url_for("api.get_report", report_id=report.id, _external=True),
    }
    if case is None:
        return view
    view.update(
        category=case.category_code,
        category_name=(
            {"zh": case.category.name_zh, "en": case.category.name_en} if case.category else None
        ),
        confidence=case.confidence,
        classified_by=case.classification.get("method"),
        alternatives=case.classification.get("alternatives", []),
        office=_office_ref(case.office),
        routing=case.routing,
        due_at=case.due_at,
        reports_in_case=len(case.reports),
        reporters_in_case=len({r.reporter_id for r in case.reports}),
        events=[
            {
                "at": event.at,
                "action": event.action,
                "from_status": event.from_status,
                "to_status": event.to_status,
                "actor": event.actor,
                "office": _office_ref(event.office),
                "note": event.note,
                "detail": event.detail,
            }
            for event in case.events
        ],
    )
    return view


def _office_ref(office: Office | None) -> dict[str, str] | None:
    if office is None:
        return None
    return {"code": office.code, "name": office.name, "name_en": office.name_en}


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


def _check_category(session: Session, code: str | None) -> None:
    if code is None:
        return
    if session.get(Category, code) is None:
        raise field_error("category", f"Unknown category '{code}'; see /api/v1/categories.")


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


def _accepted(report: Report, *, replayed: bool) -> ResponseReturnValue:
    status_url = url_for("api.get_report", report_id=report.id, _external=True)
    body = ReportAccepted().dump(
        {
            "id": report.id,
            "status": report.case.status if report.case else report.state,
            "status_url": status_url,
        }
    )
    headers = {"Location": status_url}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return body, 202, headers
