"""What the readiness check and the metrics ask the database: each answer one cheap query,
returned as a plain number (the web layer turns them into gauges)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from models.entities import (
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    REPORT_RECEIVED,
    Case,
    OutboxMessage,
    Report,
)
from models.queries import CLOCK_RUNNING_STATUSES


def database_answers(session: Session) -> None:
    """``SELECT 1``; raises what the driver raises when the database does not answer."""
    session.execute(text("SELECT 1"))


def reports_waiting(session: Session, stale_after: timedelta, now: datetime) -> int:
    """Reports not routed yet that arrived longer than ``stale_after`` ago: what the sweep
    sends again (``processing.requeue_stuck_reports``), whether or not it did already."""
    count = session.scalar(
        select(func.count())
        .select_from(Report)
        .where(Report.state == REPORT_RECEIVED, Report.received_at < now - stale_after)
    )
    return int(count or 0)


def cases_overdue(session: Session, now: datetime) -> int:
    """Cases in the office's hands (routed, accepted, in progress) past their due time."""
    count = session.scalar(
        select(func.count())
        .select_from(Case)
        .where(
            Case.status.in_(CLOCK_RUNNING_STATUSES),
            Case.due_at.is_not(None),
            Case.due_at < now,
        )
    )
    return int(count or 0)


def outbox_backlog(session: Session) -> int:
    """Notifications neither delivered nor dead (nor skipped for want of a subscriber): the
    ones waiting for the relay, or being sent by it now."""
    count = session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.status.in_((OUTBOX_PENDING, OUTBOX_SENDING)))
    )
    return int(count or 0)
