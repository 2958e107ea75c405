"""What the office queue and the full case view take and answer."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate

from models.entities import CASE_CLOSED, CASE_CLOSURES, CASE_STATUSES
from models.limits import MAX_CATEGORY_CODE_CHARS, MAX_QUEUE_PAGE
from routing.workflow import ACTIONS
from services.case_view import CLOCK_STATES
from web import numbers
from web.queue_cursors import MAX_CURSOR_CHARS, decode_cursor

# By default the queue lists the open cases: every status but closed.
OPEN_STATUSES = tuple(s for s in CASE_STATUSES if s != CASE_CLOSED)
DEFAULT_QUEUE_PAGE = 50
MAX_ASSIGNEE_CHARS = 100


class QueueQuery(Schema):
    class Meta:
        unknown = RAISE

    status = fields.String(
        load_default=None,
        validate=validate.Length(max=200),
        metadata={
            "description": "Comma-separated statuses to list, e.g. `routed,accepted`; by default "
            "every status but closed.",
            "example": "routed,accepted",
        },
    )
    category = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=MAX_CATEGORY_CODE_CHARS),
        metadata={"description": "Only cases of this category code."},
    )
    overdue = fields.Boolean(
        load_default=None,
        metadata={
            "description": "true: only overdue cases (flagged overdue, or past their due time "
            "while routed, accepted or in progress); false: only the others."
        },
    )
    assignee = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=MAX_ASSIGNEE_CHARS),
        metadata={"description": "Only cases taken on by this assignee, e.g. `key:12`."},
    )
    limit = numbers.Integer(
        load_default=DEFAULT_QUEUE_PAGE,
        validate=validate.Range(min=1, max=MAX_QUEUE_PAGE),
        metadata={"description": "At most this many cases."},
    )
    cursor = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=MAX_CURSOR_CHARS),
        metadata={"description": "The `next_cursor` of the previous page: the page after it."},
    )

    @post_load
    def _parse(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if data["status"] is None:
            data["statuses"] = OPEN_STATUSES
        else:
            statuses = [s.strip() for s in data["status"].split(",") if s.strip()]
            unknown = [s for s in statuses if s not in CASE_STATUSES]
            if not statuses or unknown:
                raise ValidationError(
                    f"A comma-separated list of {', '.join(CASE_STATUSES)}.", "status"
                )
            data["statuses"] = tuple(dict.fromkeys(statuses))
        if data["cursor"] is not None:
            try:
                data["after"] = decode_cursor(data["cursor"])
            except ValueError:
                raise ValidationError(
                    "Not a cursor from this queue; use a page's next_cursor.", "cursor"
                ) from None
        else:
            data["after"] = None
        return data


CLOCK_DESCRIPTION = (
    "running; paused while waiting for the reporter's answer; stopped once resolved or closed."
)
OVERDUE_DESCRIPTION = (
    "Flagged overdue, or past its due time while routed, accepted or in progress. A flag stays "
    "once the case is resolved or closed late; a transfer to another office clears it."
)
OVERDUE_AT_DESCRIPTION = (
    "When the case was flagged overdue (its due time, when it was resolved or closed late "
    "before the flag was set); null if it is not flagged."
)
ESCALATED_TO_DESCRIPTION = (
    "The code of the office above the handling office that was told the case is overdue; "
    "null if it was not escalated (not overdue, or no office above)."
)


class QueueCaseOut(Schema):
    id = numbers.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(CASE_STATUSES))
    category = fields.String(required=True, allow_none=True)
    address = fields.String(required=True)
    lat = numbers.Float(required=True, allow_none=True)
    lon = numbers.Float(required=True, allow_none=True)
    assignee = fields.String(required=True, allow_none=True)
    due_at = fields.AwareDateTime(
        required=True, allow_none=True, metadata={"description": "null without a time limit."}
    )
    overdue = fields.Boolean(required=True, metadata={"description": OVERDUE_DESCRIPTION})
    overdue_at = fields.AwareDateTime(
        required=True, allow_none=True, metadata={"description": OVERDUE_AT_DESCRIPTION}
    )
    escalated_to = fields.String(
        required=True, allow_none=True, metadata={"description": ESCALATED_TO_DESCRIPTION}
    )
    clock = fields.String(
        required=True,
        validate=validate.OneOf(CLOCK_STATES),
        metadata={"description": CLOCK_DESCRIPTION},
    )
    reports = numbers.Integer(required=True, metadata={"description": "How many reports merged."})
    opened_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)
    url = fields.Url(required=True, metadata={"description": "The full case."})


class QueuePageOut(Schema):
    office = fields.String(required=True)
    cases = fields.List(fields.Nested(QueueCaseOut), required=True)
    next_cursor = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Pass as `cursor` for the next page; null on the last page."},
    )


class CasePhotoOut(Schema):
    url = fields.Url(required=True)
    content_type = fields.String(required=True)
    size_bytes = numbers.Integer(required=True)


class CaseReportOut(Schema):
    id = numbers.Integer(required=True)
    reporter_id = numbers.Integer(required=True)
    text = fields.String(required=True)
    received_at = fields.AwareDateTime(required=True)
    channel = fields.String(required=True)
    photos = fields.List(fields.Nested(CasePhotoOut), required=True)


class CaseLocationOut(Schema):
    lat = numbers.Float(required=True, allow_none=True)
    lon = numbers.Float(required=True, allow_none=True)
    address = fields.String(required=True)


class CaseTimelineEventOut(Schema):
    at = fields.AwareDateTime(required=True)
    action = fields.String(required=True)
    from_status = fields.String(required=True, allow_none=True)
    to_status = fields.String(required=True)
    actor = fields.String(required=True)
    office = fields.String(required=True, allow_none=True)
    note = fields.String(required=True)


class CaseRechecksOut(Schema):
    still_fixed = numbers.Integer(required=True)
    not_fixed = numbers.Integer(required=True)


class FullCaseOut(Schema):
    id = numbers.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(CASE_STATUSES))
    closure = fields.String(
        required=True,
        allow_none=True,
        validate=validate.OneOf(CASE_CLOSURES),
        metadata={"description": "How the case was closed; null unless it is closed."},
    )
    category = fields.String(required=True, allow_none=True)
    office = fields.String(required=True, allow_none=True)
    assignee = fields.String(required=True, allow_none=True)
    location = fields.Nested(CaseLocationOut, required=True)
    reports = fields.List(
        fields.Nested(CaseReportOut),
        required=True,
        metadata={"description": "Every report merged into the case, oldest first."},
    )
    timeline = fields.List(
        fields.Nested(CaseTimelineEventOut),
        required=True,
        metadata={"description": "Every event of the case, oldest first."},
    )
    opened_at = fields.AwareDateTime(required=True)
    due_at = fields.AwareDateTime(
        required=True, allow_none=True, metadata={"description": "null without a time limit."}
    )
    clock = fields.String(
        required=True,
        validate=validate.OneOf(CLOCK_STATES),
        metadata={"description": CLOCK_DESCRIPTION},
    )
    overdue = fields.Boolean(required=True, metadata={"description": OVERDUE_DESCRIPTION})
    overdue_at = fields.AwareDateTime(
        required=True, allow_none=True, metadata={"description": OVERDUE_AT_DESCRIPTION}
    )
    escalated_to = fields.String(
        required=True, allow_none=True, metadata={"description": ESCALATED_TO_DESCRIPTION}
    )
    allowed_actions = fields.List(
        fields.String(validate=validate.OneOf(ACTIONS)),
        required=True,
        metadata={"description": "What the caller may do to the case now."},
    )
    rechecks = fields.Nested(
        CaseRechecksOut,
        required=True,
        metadata={
            "description": "Reporters' answers to \"still fixed?\" about the case's "
            "latest closing as fixed (zeros when it never was)."
        },
    )
