"""What the office console reads besides the queue and the case: the offices a user works
for, and the triage desk's list. Reads only."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from models.entities import CASE_TRIAGE, Case, Category, Office
from services.users import ConsoleUser


def offices_in_charge(session: Session, user: ConsoleUser) -> list[Office]:
    """Staff: their office. A supervisor: their office and every office under it, each after
    its parent. The triage desk: none (it works the cases without an office)."""
    if user.role == "admin":
        return []
    offices = session.scalars(select(Office).order_by(Office.code)).all()
    children: dict[int | None, list[Office]] = {}
    for office in offices:
        children.setdefault(office.parent_id, []).append(office)
    own = next((office for office in offices if office.id == user.office_id), None)
    if own is None:
        return []
    if user.role == "staff":
        return [own]
    found: list[Office] = []
    pending = [own]
    seen: set[int] = set()
    while pending:
        office = pending.pop(0)
        if office.id in seen:
            continue
        seen.add(office.id)
        found.append(office)
        pending.extend(children.get(office.id, []))
    return found


def triage_queue(session: Session, limit: int, after_id: int | None = None) -> Sequence[Case]:
    """Up to ``limit`` cases waiting at the triage desk, oldest first."""
    query = (
        select(Case)
        .where(Case.status == CASE_TRIAGE, Case.office_id.is_(None))
        .options(selectinload(Case.category), selectinload(Case.reports))
        .order_by(Case.id)
        .limit(limit)
    )
    if after_id is not None:
        query = query.where(Case.id > after_id)
    return session.scalars(query).all()


def active_offices(session: Session) -> Sequence[Office]:
    """Every office a case may be transferred to."""
    return session.scalars(select(Office).where(Office.active).order_by(Office.code)).all()


def categories(session: Session) -> Sequence[Category]:
    """Every category, in the taxonomy's order, for the queue's filter."""
    return session.scalars(select(Category).order_by(Category.position, Category.code)).all()
