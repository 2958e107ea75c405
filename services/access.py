"""Who may see an office's work: its staff, and supervisors of it or of an office above it.
Reads only; the queue and the full case view ask here, and so may the console."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.entities import Office
from services.accounts import Caller
from services.errors import NotFound


def office_and_parents(office: Office) -> set[int]:
    """The ids of ``office`` and of every office above it (``Office.parent``)."""
    seen: set[int] = set()
    current: Office | None = office
    # The set also stops a parent loop in bad data from walking forever.
    while current is not None and current.id not in seen:
        seen.add(current.id)
        current = current.parent
    return seen


def may_see(caller: Caller, office: Office | None) -> bool:
    """Staff of ``office`` see it; supervisors see it and every office under theirs. A case
    with no office (triage) is nobody's here."""
    if office is None or caller.office_id is None:
        return False
    if caller.role == "office":
        return caller.office_id == office.id
    if caller.role == "supervisor":
        return caller.office_id in office_and_parents(office)
    return False


def can_see_office(session: Session, caller: Caller, office_code: str) -> bool:
    """Whether ``caller`` may see the work of the office ``office_code``; NotFound when there
    is no such office."""
    office = session.scalar(select(Office).where(Office.code == office_code))
    if office is None:
        raise NotFound(f"No office with code '{office_code}'.")
    return may_see(caller, office)
