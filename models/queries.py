"""Read queries the doors share: a report with everything its views show, the offices and the
taxonomy in display order, an office's queue and a case in full. Reads only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, case, not_, or_, select
from sqlalchemy.orm import Session, selectinload

from models.entities import (
    CASE_ACCEPTED,
    CASE_CLOSED,
    CASE_IN_PROGRESS,
    CASE_RESOLVED,
    CASE_ROUTED,
    Case,
    CaseEvent,
    Category,
    Office,
    Report,
)

# Statuses in which a case is out of the office's hands: its clock has stopped.
CLOCK_STOPPED_STATUSES = (CASE_RESOLVED, CASE_CLOSED)
# Statuses in which a case is in the office's hands with its clock running (waiting pauses it):
# only in these does a case become overdue.
CLOCK_RUNNING_STATUSES = (CASE_ROUTED, CASE_ACCEPTED, CASE_IN_PROGRESS)


def report_with_case() -> Select[tuple[Report]]:
    """Reports with their photos and their case's office, category, reports and history."""
    return select(Report).options(
        selectinload(Report.photos),
        selectinload(Report.case).selectinload(Case.events).selectinload(CaseEvent.office),
        selectinload(Report.case).selectinload(Case.office),
        selectinload(Report.case).selectinload(Case.category),
        selectinload(Report.case).selectinload(Case.reports),
    )


def report_by_id(session: Session, report_id: int) -> Report | None:
    return session.scalar(report_with_case().where(Report.id == report_id))


def offices(session: Session) -> Sequence[Office]:
    return session.scalars(
        select(Office).options(selectinload(Office.categories)).order_by(Office.id)
    ).all()


def categories(session: Session) -> Sequence[Category]:
    return session.scalars(select(Category).order_by(Category.position)).all()


@dataclass(frozen=True)
class QueuePosition:
    """Where a queue page ended: the last case's due time (None: no time limit) and id."""

    due_at: datetime | None
    case_id: int


@dataclass(frozen=True)
class QueueFilter:
    statuses: Sequence[str]
    category: str | None = None
    # True: only overdue cases; False: only cases that are not; None: both.
    overdue: bool | None = None
    assignee: str | None = None


def overdue_condition(now: datetime) -> ColumnElement[bool]:
    """Flagged overdue (kept once the case left the office's hands), or past its due time
    with its clock running and not flagged yet by beat."""
    return or_(
        Case.overdue_at.is_not(None),
        and_(
            Case.status.in_(CLOCK_RUNNING_STATUSES),
            Case.due_at.is_not(None),
            Case.due_at < now,
        ),
    )


def _after(position: QueuePosition) -> ColumnElement[bool]:
    """Cases after ``position`` in the queue's order: due time (none last), then id."""
    if position.due_at is None:
        return and_(Case.due_at.is_(None), Case.id > position.case_id)
    return or_(
        Case.due_at > position.due_at,
        and_(Case.due_at == position.due_at, Case.id > position.case_id),
        Case.due_at.is_(None),
    )


def office_queue(
    session: Session,
    office_code: str,
    where: QueueFilter,
    now: datetime,
    limit: int,
    after: QueuePosition | None = None,
) -> Sequence[Case]:
    """Up to ``limit`` cases of the office, soonest due first (cases without a due time last),
    then by id; with ``after``, those that follow that position."""
    query = (
        select(Case)
        .join(Office, Case.office_id == Office.id)
        .where(Office.code == office_code, Case.status.in_(where.statuses))
        .options(
            selectinload(Case.category),
            selectinload(Case.office),
            selectinload(Case.reports),
            selectinload(Case.escalated_office),
        )
    )
    if where.category is not None:
        query = query.where(Case.category_code == where.category)
    if where.assignee is not None:
        query = query.where(Case.assignee == where.assignee)
    if where.overdue is not None:
        overdue = overdue_condition(now)
        query = query.where(overdue if where.overdue else not_(overdue))
    if after is not None:
        query = query.where(_after(after))
    no_due_time_last = case((Case.due_at.is_(None), 1), else_=0)
    query = query.order_by(no_due_time_last, Case.due_at, Case.id).limit(limit)
    return session.scalars(query).all()


def case_in_full(session: Session, case_id: int) -> Case | None:
    """A case with its reports and their photos, its timeline, category and office (with the
    offices above it, for the access rule)."""
    return session.scalar(
        select(Case)
        .where(Case.id == case_id)
        .options(
            selectinload(Case.reports).selectinload(Report.photos),
            selectinload(Case.events).selectinload(CaseEvent.office),
            selectinload(Case.category),
            selectinload(Case.office).selectinload(Office.parent),
            selectinload(Case.escalated_office),
        )
    )
