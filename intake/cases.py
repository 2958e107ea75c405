"""What offices do with the cases in their queue."""

from __future__ import annotations

from flask import Blueprint, url_for
from flask.typing import ResponseReturnValue
from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from intake import db
from intake.auth import bearer_key
from intake.errors import ApiError, field_error, json_object_body
from intake.filing import enqueue_processing
from models.entities import Case, CaseEvent
from models.session import run_after_commit
from workers.pipeline import NotTheCaseOffice, reject_and_reroute, split_report

bp = Blueprint("cases", __name__, url_prefix="/api/v1/cases")


class RejectIn(Schema):
    class Meta:
        unknown = RAISE

    reason = fields.String(required=True, validate=validate.Length(min=2, max=1000))


class SplitIn(Schema):
    class Meta:
        unknown = RAISE

    report_id = fields.Integer(required=True, strict=True)


@bp.post("/<int:case_id>/split")
def split(case_id: int) -> ResponseReturnValue:
    session = db.write_session()
    key = bearer_key(session, "office")
    data = SplitIn().load(json_object_body())
    case = session.scalar(
        select(Case).where(Case.id == case_id).options(selectinload(Case.reports)).with_for_update()
    )
    if case is None:
        raise ApiError(404, "not_found", f"No case {case_id}.")
    assert key.office is not None
    if case.office_id != key.office_id:
        raise ApiError(409, "not_your_case", f"Case {case_id} is not in {key.office.code}'s queue.")
    report = next((r for r in case.reports if r.id == data["report_id"]), None)
    if report is None:
        raise field_error("report_id", f"Report {data['report_id']} is not part of case {case_id}.")
    if len(case.reports) == 1:
        raise ApiError(409, "only_report", "A case's only report cannot be split out of it.")
    split_report(session, case, report, f"office:{key.office.code}")
    report_id = report.id
    run_after_commit(session, lambda: enqueue_processing(report_id))
    session.commit()
    status_url = url_for("api.get_report", report_id=report_id, _external=True)
    return {"case_id": case_id, "report_id": report_id, "status_url": status_url}, 202


@bp.post("/<int:case_id>/reject")
def reject(case_id: int) -> ResponseReturnValue:
    session = db.write_session()
    key = bearer_key(session, "office")
    data = RejectIn().load(json_object_body())
    case = session.scalar(
        select(Case)
        .where(Case.id == case_id)
        .options(
            selectinload(Case.events).selectinload(CaseEvent.office), selectinload(Case.reports)
        )
        .with_for_update()
    )
    if case is None:
        raise ApiError(404, "not_found", f"No case {case_id}.")
    assert key.office is not None
    try:
        reject_and_reroute(
            session, case, key.office.code, data["reason"], f"office:{key.office.code}"
        )
    except NotTheCaseOffice:
        raise ApiError(
            409, "not_your_case", f"Case {case_id} is not in {key.office.code}'s queue."
        ) from None
    session.commit()
    return {
        "case_id": case.id,
        "status": case.status,
        "office": case.office.code if case.office else None,
        "routing": case.routing,
    }
