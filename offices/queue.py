"""What an office sees: its queue under /api/v1/offices/<code>/queue and a case in full under
/api/v1/cases/<id>. Staff of the office and supervisors of it or of an office above it; the
admin reads any case in full too. A case outside the key's scope answers 404 like a missing
one; an office's queue is 403 (offices are public, their cases are not: docs/privacy.md)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request, url_for
from flask.typing import ResponseReturnValue

from models.base import utcnow
from models.entities import Case
from models.queries import QueueFilter
from offices.queue_schemas import FullCaseOut, QueuePageOut, QueueQuery
from services import case_view, casework
from services.access import can_see_office, may_see
from services.rechecks import recheck_counts
from web.auth import authenticate
from web.db import read_session
from web.errors import ApiError
from web.openapi import ERROR, error, operation
from web.queue_cursors import encode_cursor

queue_bp = Blueprint("office_queue", __name__, url_prefix="/api/v1/offices")
case_bp = Blueprint("case_view", __name__, url_prefix="/api/v1/cases")

# Keys that may read an office's work; which office decides services.access.
READERS = ("office", "supervisor")
# Keys that may read a case in full: which case decides services.access (the admin: any).
CASE_READERS = (*READERS, "admin")
NOT_YOURS = error("Not staff of this office nor a supervisor of it or of an office above it.")


def _not_yours(what: str) -> ApiError:
    return ApiError(403, "forbidden", f"This key may not see {what}.")


def _escalated_to(case: Case) -> str | None:
    return case.escalated_office.code if case.escalated_office else None


def _queue_item(case: Case, now: Any) -> dict[str, Any]:
    return {
        "id": case.id,
        "status": case.status,
        "category": case.category_code,
        "address": case.address,
        "lat": case.lat,
        "lon": case.lon,
        "assignee": case.assignee,
        "due_at": case.due_at,
        "overdue": case_view.is_overdue(case, now),
        "overdue_at": case.overdue_at,
        "escalated_to": _escalated_to(case),
        "clock": case_view.clock_state(case.status),
        "reports": len(case.reports),
        "opened_at": case.opened_at,
        "updated_at": case.updated_at,
        "url": url_for("case_view.get_case", case_id=case.id, _external=True),
    }


@queue_bp.get("/<code>/queue")
@operation(
    summary="An office's queue: its cases, soonest due first",
    description=(
        "By default the open cases (every status but closed). Sorted by due time (cases "
        "without one last), then by id. A page ends with `next_cursor`; pass it as `cursor` "
        "for the next page. Staff of the office and supervisors of it or of an office above "
        "it may read it."
    ),
    query=QueueQuery,
    responses={
        200: QueuePageOut,
        401: ERROR,
        403: NOT_YOURS,
        404: error("No such office."),
        422: error("Invalid query parameters, named."),
    },
    security="bearer",
    tags=["offices"],
)
def office_queue(code: str) -> ResponseReturnValue:
    caller = authenticate(*READERS)
    query = QueueQuery().load(request.args.to_dict())
    where = QueueFilter(
        statuses=query["statuses"],
        category=query["category"],
        overdue=query["overdue"],
        assignee=query["assignee"],
    )
    now = utcnow()
    session = read_session()
    if not can_see_office(session, caller, code):
        raise _not_yours(f"the queue of office '{code}'")
    page = case_view.office_queue(session, code, where, now, query["limit"], query["after"])
    body = {
        "office": code,
        "cases": [_queue_item(case, now) for case in page.cases],
        "next_cursor": encode_cursor(page.next_position) if page.next_position else None,
    }
    return QueuePageOut().dump(body)


@case_bp.get("/<id:case_id>")
@operation(
    summary="A case in full: its reports and photos, location, timeline, due time and clock",
    description=(
        "Every merged report with its photos, the timeline of every event, the due time, the "
        "clock (`running`, `paused` while waiting for the reporter, `stopped` once resolved "
        "or closed), whether it is overdue, and the actions the caller may take now. Staff "
        "of the case's office, supervisors of it or of an office above it, and the admin."
    ),
    responses={
        200: FullCaseOut,
        401: ERROR,
        403: error("Not an office, supervisor or admin key."),
        404: error(
            "No such case, or a case outside this key's office (and the offices under a "
            "supervisor's): the same answer."
        ),
    },
    security="bearer",
    tags=["offices"],
)
def get_case(case_id: int) -> ResponseReturnValue:
    caller = authenticate(*CASE_READERS)
    now = utcnow()
    case = case_view.case_in_full(read_session(), case_id)
    if caller.role != "admin" and not may_see(caller, case.office):
        raise casework.not_found(case_id)
    body = {
        "id": case.id,
        "status": case.status,
        "closure": case.closure,
        "category": case.category_code,
        "office": case.office.code if case.office else None,
        "assignee": case.assignee,
        "location": {"lat": case.lat, "lon": case.lon, "address": case.address},
        "reports": [
            {
                "id": report.id,
                "reporter_id": report.reporter_id,
                "text": report.text,
                "received_at": report.received_at,
                "channel": report.channel,
                "photos": [
                    {
                        "url": url_for("media.photo", name=photo.filename, _external=True),
                        "content_type": photo.content_type,
                        "size_bytes": photo.size_bytes,
                    }
                    for photo in report.photos
                ],
            }
            for report in case.reports
        ],
        "timeline": [
            {
                "at": event.at,
                "action": event.action,
                "from_status": event.from_status,
                "to_status": event.to_status,
                "actor": event.actor,
                "office": event.office.code if event.office else None,
                "note": event.note,
            }
            for event in case.events
        ],
        "opened_at": case.opened_at,
        "due_at": case.due_at,
        "clock": case_view.clock_state(case.status),
        "overdue": case_view.is_overdue(case, now),
        "overdue_at": case.overdue_at,
        "escalated_to": _escalated_to(case),
        "allowed_actions": case_view.allowed_actions(case, caller, now),
        "rechecks": _rechecks(case.id),
    }
    return FullCaseOut().dump(body)


def _rechecks(case_id: int) -> dict[str, int]:
    counts = recheck_counts(read_session(), case_id)
    return {"still_fixed": counts.still_fixed, "not_fixed": counts.not_fixed}
