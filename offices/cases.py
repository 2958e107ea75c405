"""What offices do with the cases in their queue, under /api/v1/cases."""

from __future__ import annotations

from flask import Blueprint, url_for
from flask.typing import ResponseReturnValue
from marshmallow import RAISE, Schema, fields, validate

from models.limits import MAX_NOTE_CHARS
from services import casework
from web.auth import authenticate
from web.db import unit_of_work
from web.errors import json_object_body

bp = Blueprint("cases", __name__, url_prefix="/api/v1/cases")


class RejectIn(Schema):
    class Meta:
        unknown = RAISE

    reason = fields.String(required=True, validate=validate.Length(min=2, max=MAX_NOTE_CHARS))


class SplitIn(Schema):
    class Meta:
        unknown = RAISE

    report_id = fields.Integer(required=True, strict=True)


class CaseRouting(Schema):
    case_id = fields.Integer()
    status = fields.String()
    office = fields.String(allow_none=True)
    routing = fields.Dict()


class SplitAccepted(Schema):
    case_id = fields.Integer()
    report_id = fields.Integer()
    status_url = fields.String()


@bp.post("/<int:case_id>/split")
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


@bp.post("/<int:case_id>/reject")
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
