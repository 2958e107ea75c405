"""Overdue cases: flagged once and escalated to the office above the one handling them (督办).
Nothing here commits.

A case is overdue when its due time passed while it was in the office's hands: routed,
accepted or in progress. A waiting case's clock is paused (the office asked the reporters
something), and triage, resolved and closed cases are in nobody's hands or out of them.

``escalate_overdue`` (run by beat) claims the late cases not flagged yet and, for each, with
ONE conditional UPDATE on (id, version, overdue_at IS NULL) sets ``overdue_at``, the office it
was escalated to (the handling office's parent; none at the top: the case is still flagged)
and raises the version, like every action on a case (services.casework): when staff act on the
case at the same moment, exactly one of the two changes it. Then one ``escalate`` event and
``case.overdue`` notifications for the handling office and the office above. A second run, or a
second beat, finds nothing more to do.

The flag freezes when the case leaves the office's hands: ``overdue_when_leaving`` decides it
once, as the case is resolved or closed (late if its clock stopped after its due time, even when
the beat had not run yet); a case resolved on time never becomes overdue later. A transfer or a
rejection to another office starts that office's clock afresh: ``NOT_OVERDUE`` undoes the flag and
the escalation on the case (its timeline keeps them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from models.entities import (
    CASE_WAITING,
    Case,
    CaseEvent,
    Office,
    OutboxMessage,
)
from models.queries import CLOCK_RUNNING_STATUSES
from models.session import enqueue_after_commit
from routing.workflow import ASK
from services.notifications import ask_for_relay

ESCALATE_OVERDUE = "cityrelay.escalate_overdue"
ESCALATE = "escalate"
OVERDUE_TOPIC = "case.overdue"
ESCALATION_ACTOR = "system"
# Cases one run flags at most; a full batch asks for another run at once.
ESCALATION_BATCH = 100

# What a transfer or a rejection to another office sets on the case: its clock starts afresh.
NOT_OVERDUE: dict[str, Any] = {
    "overdue_at": None,
    "escalated_at": None,
    "escalated_office_id": None,
}


@dataclass(frozen=True)
class Escalated:
    """One case flagged by a run."""

    case_id: int
    office: str
    # The office told (the handling office's parent); None at the top.
    escalated_to: str | None


def escalate_overdue(
    session: Session, now: datetime, batch: int = ESCALATION_BATCH
) -> list[Escalated]:
    """Flag the cases in the office's hands that are past their due time and not flagged yet,
    and escalate each to the office above; the cases flagged."""
    late = session.scalars(
        select(Case)
        .where(
            Case.status.in_(CLOCK_RUNNING_STATUSES),
            Case.due_at.is_not(None),
            Case.due_at < now,
            Case.overdue_at.is_(None),
        )
        .order_by(Case.due_at, Case.id)
        .limit(batch)
        .options(selectinload(Case.office).selectinload(Office.parent))
        .execution_options(populate_existing=True)
        # PostgreSQL: two beats (or workers) take disjoint cases, and a case a staff action is
        # changing right now is left for the next run. SQLite ignores it: its writers run one
        # at a time (BEGIN IMMEDIATE).
        .with_for_update(skip_locked=True)
    ).all()
    escalated = [flagged for case in late if (flagged := _escalate(session, case, now))]
    if escalated:
        ask_for_relay(session)
    if len(late) == batch:
        enqueue_after_commit(session, ESCALATE_OVERDUE)
    return escalated


def _escalate(session: Session, case: Case, now: datetime) -> Escalated | None:
    office = case.office
    if office is None or case.due_at is None:
        return None
    parent = office.parent
    changed = session.execute(
        update(Case)
        .where(
            Case.id == case.id,
            Case.version == case.version,
            Case.overdue_at.is_(None),
        )
        .values(
            overdue_at=now,
            escalated_office_id=parent.id if parent else None,
            escalated_at=now if parent else None,
            version=case.version + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:
        # Someone acted on the case since it was read: their change stands; the next run
        # looks at the case again.
        return None
    detail = {
        "due_at": case.due_at.isoformat(),
        "office": office.code,
        "parent_office": parent.code if parent else None,
    }
    told = f"; escalated to {parent.code}" if parent else "; no office above to escalate to"
    session.add(
        CaseEvent(
            case_id=case.id,
            at=now,
            actor=ESCALATION_ACTOR,
            action=ESCALATE,
            from_status=case.status,
            to_status=case.status,
            office_id=office.id,
            note=f"Past its due time ({detail['due_at']}) at {office.code}{told}.",
            detail=detail,
        )
    )
    payload = {
        "case_id": case.id,
        "status": case.status,
        "action": ESCALATE,
        "category": case.category_code,
        "office": office.code,
        "escalated_to": parent.code if parent else None,
        "due_at": detail["due_at"],
        "overdue_at": now.isoformat(),
    }
    for code in _recipients(office, parent):
        session.add(
            OutboxMessage(
                topic=OVERDUE_TOPIC, recipient=f"office:{code}", case_id=case.id, payload=payload
            )
        )
    session.flush()
    return Escalated(case.id, office.code, parent.code if parent else None)


def _recipients(office: Office, parent: Office | None) -> Sequence[str]:
    return [office.code] if parent is None else [office.code, parent.code]


def overdue_when_leaving(
    case: Case, from_status: str, now: datetime, events: Sequence[CaseEvent]
) -> datetime | None:
    """What ``overdue_at`` becomes as the case is resolved or closed from ``from_status``:
    its due time when its clock stopped after it (the case was late, flagged by beat or not),
    else None (it stays as it is). A case flagged already, or whose clock was not running
    (triage, resolved), is left as it is."""
    if case.overdue_at is not None or case.due_at is None:
        return None
    if from_status in CLOCK_RUNNING_STATUSES:
        stopped_at: datetime | None = now
    elif from_status == CASE_WAITING:
        # The clock paused when the office asked; closing a waiting case stops it there.
        stopped_at = next((e.at for e in reversed(events) if e.action == ASK), None)
    else:
        stopped_at = None
    if stopped_at is None or stopped_at <= case.due_at:
        return None
    return case.due_at
