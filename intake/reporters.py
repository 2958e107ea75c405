"""A reporter's own view under /api/v1/reporters/me: the points balance with its ledger, and
the reports with the status of their cases. The reporter's own key only."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError

from intake.report_timeline import office_ref
from intake.reporter_schemas import (
    LedgerQuery,
    ReporterLedgerOut,
    ReporterReportsOut,
    ReportsQuery,
    encode_cursor,
)
from models.entities import Report, Reporter
from services import rewards
from web.auth import authenticate
from web.db import read_session
from web.errors import ApiError
from web.openapi import ERROR, error, operation

bp = Blueprint("reporters", __name__, url_prefix="/api/v1/reporters")

BAD_QUERY = error("A bad `limit` or `cursor`, named in `fields`.")
NOT_A_REPORTER = error("The key is not a reporter's (an office, supervisor or admin key).")
NUL_IN_QUERY = error("A query parameter holds a NUL character, named in `fields`.")


def _page_query(schema: Schema) -> dict[str, Any]:
    """The query's ``limit`` and ``cursor``; 400 naming the field at fault."""
    try:
        return schema.load(request.args.to_dict())
    except ValidationError as invalid:
        messages = invalid.normalized_messages()
        names = ", ".join(sorted(messages))
        fields = {
            name: [str(m) for m in (v if isinstance(v, list) else [v])]
            for name, v in messages.items()
        }
        raise ApiError(400, "bad_request", f"Invalid query parameters: {names}.", fields) from None


@bp.get("/me")
@operation(
    summary="The reporter's points: the balance and the ledger, newest entry first",
    description=(
        "Points are awarded when a case closes as `fixed`: the first reporter of the problem "
        "gets the full points, reporters merged in later (me too) fewer, one award per "
        "reporter and case, within a daily cap. A case closed as `invalid` or `duplicate` "
        "takes its awards back with reversing entries. The balance is the sum of every "
        "entry. A page ends with `next_cursor`; pass it as `cursor` for the next page."
    ),
    query=LedgerQuery,
    responses={
        200: ReporterLedgerOut,
        400: BAD_QUERY,
        401: ERROR,
        403: NOT_A_REPORTER,
        422: NUL_IN_QUERY,
    },
    security="bearer",
    tags=["reports"],
)
def my_points() -> ResponseReturnValue:
    caller = authenticate("reporter")
    assert caller.reporter_id is not None
    query = _page_query(LedgerQuery())
    session = read_session()
    reporter = session.get(Reporter, caller.reporter_id)
    assert reporter is not None, "a reporter key always has its reporter"
    page = rewards.ledger_page(session, reporter.id, query["limit"], query["before"])
    body = {
        "reporter_id": reporter.id,
        "display_name": reporter.display_name,
        "occupation": reporter.occupation,
        "balance": rewards.balance(session, reporter.id),
        "entries": [
            {
                "id": entry.id,
                "at": entry.at,
                "kind": entry.kind,
                "points": entry.points,
                "reason": entry.reason,
                "case_id": entry.case_id,
                "report_id": entry.report_id,
                "reverses_id": entry.reverses_id,
                "note": entry.note,
            }
            for entry in page.rows
        ],
        "next_cursor": (
            encode_cursor(LedgerQuery.cursor_kind, page.next_before) if page.next_before else None
        ),
    }
    return ReporterLedgerOut().dump(body)


def _report_item(report: Report, points: int) -> dict[str, Any]:
    case = report.case
    office = case.office if case else None
    return {
        "id": report.id,
        "received_at": report.received_at,
        "text": report.text,
        "category": case.category_code if case else report.requested_category,
        "case_id": report.case_id,
        "status": case.status if case else report.state,
        "closure": case.closure if case else None,
        "office": office_ref(office),
        "points": points,
    }


@bp.get("/me/reports")
@operation(
    summary="The reporter's reports, newest first, with the status of their cases",
    description=(
        "Each report with its case's status and closure (or `received` before it is a case), "
        "the office handling it and the net points it earned. A page ends with "
        "`next_cursor`; pass it as `cursor` for the next page."
    ),
    query=ReportsQuery,
    responses={
        200: ReporterReportsOut,
        400: BAD_QUERY,
        401: ERROR,
        403: NOT_A_REPORTER,
        422: NUL_IN_QUERY,
    },
    security="bearer",
    tags=["reports"],
)
def my_reports() -> ResponseReturnValue:
    caller = authenticate("reporter")
    assert caller.reporter_id is not None
    query = _page_query(ReportsQuery())
    session = read_session()
    page = rewards.reports_page(session, caller.reporter_id, query["limit"], query["before"])
    earned = rewards.points_by_report(session, [report.id for report in page.rows])
    body = {
        "reports": [_report_item(report, earned.get(report.id, 0)) for report in page.rows],
        "next_cursor": (
            encode_cursor(ReportsQuery.cursor_kind, page.next_before) if page.next_before else None
        ),
    }
    return ReporterReportsOut().dump(body)
