"""What "still fixed?" sends and answers: the offer in a filed report's answer, the reporter's
answer to it, and the counts a case shows."""

from __future__ import annotations

from marshmallow import Schema, fields

from web import numbers
from web.case_state import CaseStateOut


class RecheckOfferOut(Schema):
    case_id = numbers.Integer(required=True)
    category = fields.String(required=True, allow_none=True)
    closed_at = fields.AwareDateTime(
        required=True, metadata={"description": "When the case was closed as fixed."}
    )
    distance_m = numbers.Float(
        required=True, metadata={"description": "From the report to the case, in metres."}
    )
    url = fields.String(
        required=True,
        metadata={"format": "uri", "description": "POST `{still_fixed: true|false}` here."},
    )


class RecheckIn(Schema):
    still_fixed = fields.Boolean(
        required=True,
        metadata={"description": "true: it is still fixed; false: the problem is back."},
    )


class RecheckCountsOut(Schema):
    still_fixed = numbers.Integer(
        required=True, metadata={"description": 'Reporters who said "still fixed".'}
    )
    not_fixed = numbers.Integer(
        required=True, metadata={"description": 'Reporters who said "not fixed".'}
    )


class RecheckAnswerOut(CaseStateOut):
    rechecks = fields.Nested(
        RecheckCountsOut,
        required=True,
        metadata={"description": "The answers about the case's latest closing as fixed."},
    )
    reopened = fields.Boolean(
        required=True,
        metadata={"description": "This answer sent the case back to its office as a rework."},
    )
