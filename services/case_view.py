"""What an office sees of its cases: the queue's pages and one case in full, with its clock
state and overdue flag. Who may see them is services.access's to say, asked first. Reads only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from models import queries
from models.entities import CASE_WAITING, Case
from services import casework
from services.accounts import Caller

CLOCK_RUNNING = "running"
# The office asked the reporter something: the time limit does not count meanwhile.
CLOCK_PAUSED = "paused"
CLOCK_STOPPED = "stopped"
CLOCK_STATES = (CLOCK_RUNNING, CLOCK_PAUSED, CLOCK_STOPPED)


def clock_state(status: str) -> str:
    if status in queries.CLOCK_STOPPED_STATUSES:
        return CLOCK_STOPPED
    if status == CASE_WAITING:
        return CLOCK_PAUSED
    return CLOCK_RUNNING


def is_overdue(case: Case, now: datetime) -> bool:
    """Flagged overdue (services.escalation; frozen once the case left the office's hands), or
    past its due time with its clock running and not flagged yet (the same rule as the queue's
    ``overdue`` filter, models.queries.overdue_condition)."""
    if case.overdue_at is not None:
        return True
    return (
        case.status in queries.CLOCK_RUNNING_STATUSES
        and case.due_at is not None
        and case.due_at < now
    )


@dataclass(frozen=True)
class QueuePage:
    cases: Sequence[Case]
    # Where the next page starts; None on the last page.
    next_position: queries.QueuePosition | None


def office_queue(
    session: Session,
    office_code: str,
    where: queries.QueueFilter,
    now: datetime,
    limit: int,
    after: queries.QueuePosition | None = None,
) -> QueuePage:
    """One page of the office's queue."""
    # One more than asked shows whether another page follows.
    rows = queries.office_queue(session, office_code, where, now, limit + 1, after)
    cases = rows[:limit]
    next_position = None
    if len(rows) > limit:
        last = cases[-1]
        next_position = queries.QueuePosition(last.due_at, last.id)
    return QueuePage(cases, next_position)


def case_in_full(session: Session, case_id: int) -> Case:
    """The case with everything it holds; NotFound for an unknown case."""
    case = queries.case_in_full(session, case_id)
    if case is None:
        raise casework.not_found(case_id)
    return case


def allowed_actions(case: Case, caller: Caller, now: datetime) -> list[str]:
    """What ``caller`` may do to ``case`` (loaded by ``case_in_full``) now."""
    return casework.allowed_actions_for(case, caller, now)
