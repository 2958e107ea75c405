"""A case as an action leaves it: the answer of every case action, whichever door it came
through (offices act under /api/v1/cases, reporters under /api/v1/reports)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from models.entities import CASE_CLOSURES, CASE_STATUSES
from routing.workflow import ACTIONS
from services.casework import CaseState
from web import numbers


class CaseStateOut(Schema):
    case_id = numbers.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(CASE_STATUSES))
    closure = fields.String(
        required=True,
        allow_none=True,
        validate=validate.OneOf(CASE_CLOSURES),
        metadata={"description": "How the case was closed; null unless it is closed."},
    )
    office = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Code of the office that has the case; null in triage."},
    )
    allowed_actions = fields.List(
        fields.String(validate=validate.OneOf(ACTIONS)),
        required=True,
        metadata={"description": "What the caller may do to the case now."},
    )
    due_at = fields.AwareDateTime(
        required=True, allow_none=True, metadata={"description": "null without a time limit."}
    )


def case_state_body(state: CaseState) -> dict[str, Any]:
    return CaseStateOut().dump(
        {
            "case_id": state.case_id,
            "status": state.status,
            "closure": state.closure,
            "office": state.office,
            "allowed_actions": state.allowed_actions,
            "due_at": state.due_at,
        }
    )
