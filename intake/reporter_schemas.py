"""What a reporter's own view takes and answers: the points ledger and the reports."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate

from intake.schemas import REPORT_STATUSES, OfficeRef
from models.entities import CASE_CLOSURES, POINTS_KINDS
from models.limits import MAX_QUEUE_PAGE, OCCUPATIONS
from web import numbers
from web.urls import MAX_ROW_ID

DEFAULT_PAGE = 50
MAX_CURSOR_CHARS = 100


def encode_cursor(kind: str, below_id: int) -> str:
    """An opaque cursor: the page after it holds the rows with ids below ``below_id``."""
    return base64.urlsafe_b64encode(f"{kind}:{below_id}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> int:
    """The id a ``kind`` cursor stands for; ValueError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValueError("not a cursor") from None
    prefix, _, number = raw.partition(":")
    if prefix != kind or not number.isdigit() or not 1 <= int(number) <= MAX_ROW_ID:
        raise ValueError("not a cursor")
    return int(number)


class _PageQuery(Schema):
    """``limit`` and ``cursor``; ``before`` is the id the page starts below."""

    class Meta:
        unknown = RAISE

    cursor_kind = ""

    limit = numbers.Integer(
        load_default=DEFAULT_PAGE,
        strict=False,
        validate=validate.Range(min=1, max=MAX_QUEUE_PAGE),
        metadata={"description": f"At most this many rows (1 to {MAX_QUEUE_PAGE})."},
    )
    cursor = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=MAX_CURSOR_CHARS),
        metadata={"description": "The `next_cursor` of the previous page: the page after it."},
    )

    @post_load
    def _parse(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["before"] = None
        if data["cursor"] is not None:
            try:
                data["before"] = decode_cursor(self.cursor_kind, data["cursor"])
            except ValueError:
                raise ValidationError(
                    "Not a cursor of this list; use a page's next_cursor.", "cursor"
                ) from None
        return data


class LedgerQuery(_PageQuery):
    cursor_kind = "points"


class ReportsQuery(_PageQuery):
    cursor_kind = "reports"


class PointsEntryOut(Schema):
    id = numbers.Integer(required=True)
    at = fields.AwareDateTime(required=True)
    kind = fields.String(
        required=True,
        validate=validate.OneOf(POINTS_KINDS),
        metadata={"description": "award, or reversal (cancels the award named by reverses_id)."},
    )
    points = numbers.Integer(
        required=True, metadata={"description": "Signed: a reversal takes its award back."}
    )
    reason = fields.String(
        required=True,
        metadata={
            "description": "first_report, me_too; closed_invalid, closed_duplicate for reversals."
        },
    )
    case_id = numbers.Integer(required=True, allow_none=True)
    report_id = numbers.Integer(required=True, allow_none=True)
    reverses_id = numbers.Integer(required=True, allow_none=True)
    note = fields.String(required=True)


class ReporterLedgerOut(Schema):
    reporter_id = numbers.Integer(required=True)
    display_name = fields.String(required=True)
    occupation = fields.String(required=True, validate=validate.OneOf(OCCUPATIONS))
    balance = numbers.Integer(
        required=True, metadata={"description": "The sum of every entry of the ledger."}
    )
    entries = fields.List(
        fields.Nested(PointsEntryOut), required=True, metadata={"description": "Newest first."}
    )
    next_cursor = fields.String(
        required=True, allow_none=True, metadata={"description": "null on the last page."}
    )


class ReporterReportOut(Schema):
    id = numbers.Integer(required=True)
    received_at = fields.AwareDateTime(required=True)
    text = fields.String(required=True)
    category = fields.String(required=True, allow_none=True)
    case_id = numbers.Integer(required=True, allow_none=True)
    status = fields.String(
        required=True,
        validate=validate.OneOf(REPORT_STATUSES),
        metadata={"description": "The case's status, or received before the report is a case."},
    )
    closure = fields.String(required=True, allow_none=True, validate=validate.OneOf(CASE_CLOSURES))
    office = fields.Nested(OfficeRef, required=True, allow_none=True)
    points = numbers.Integer(
        required=True,
        metadata={"description": "Net points this report earned (awards less their reversals)."},
    )


class ReporterReportsOut(Schema):
    reports = fields.List(
        fields.Nested(ReporterReportOut),
        required=True,
        metadata={"description": "Newest first."},
    )
    next_cursor = fields.String(
        required=True, allow_none=True, metadata={"description": "null on the last page."}
    )
