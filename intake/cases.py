"""What offices do with the cases in their queue."""

from __future__ import annotations

from flask import Blueprint, request
from flask.typing import ResponseReturnValue
from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from intake import db
from intake.auth import bearer_key
from intake.errors import ApiError
from models.entities import Case, CaseEvent
from workers.pipeline import NotTheCaseOffice, reject_and_reroute

bp = Blueprint("cases", __name__, url_prefix="/api/v1/cases")


class RejectIn(Schema):
    class Meta:
        unknown = RAISE

    reason = fields.String(required=True, validate=validate.Length(min=2, max=1000))


@bp.post("/<int:case_id>/reject")
def reject(case_id: int) -> ResponseReturnValue:
    session = db.write_session()
    key = bearer_key(session, "office")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(
            400, "bad_request", "The body must be a JSON object.", {"_body": ["Not a JSON object."]}
        )
    data = RejectIn().load(body)
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
