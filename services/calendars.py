"""Working-hour calendars: the calendar each office's cases count their time on, and the admin
changes to calendars and to which calendar an office keeps. Never commits."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from models.calendars import (
    DEFAULT_CALENDAR,
    CalendarSpec,
    DaySpec,
    calendar_named,
    calendars,
    calendars_stamp,
    office_links,
    replace_calendar,
    spec_of,
)
from models.entities import Office
from models.limits import MAX_CALENDAR_NAME_CHARS
from routing.sla import CalendarError, WorkingCalendar, calendar_from_data
from services.errors import InvalidField, NotFound

# Names appear in URLs: letters, digits, and - _ . inside.
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?")


def working_calendar(spec: CalendarSpec) -> WorkingCalendar:
    return calendar_from_data(spec["timezone"], spec["weekly_hours"], spec["days"])


@dataclass(frozen=True)
class CalendarContext:
    """Every office's working calendar, built once and reused until a calendar or an office's
    choice of calendar changes."""

    stamp: tuple[Any, ...]
    default: WorkingCalendar
    by_office: Mapping[int, WorkingCalendar]
    # The name of the calendar each office counts on, its own or inherited.
    names: Mapping[int, str]

    def for_office(self, office_id: int | None) -> WorkingCalendar:
        if office_id is None:
            return self.default
        return self.by_office.get(office_id, self.default)


_context_lock = threading.Lock()
_cached_context: CalendarContext | None = None


# The context a transaction pinned (``pin_calendar_context``), in its session's info.
_PINNED = "cityrelay_pinned_calendars"


def calendar_context(session: Session) -> CalendarContext:
    pinned: CalendarContext | None = session.info.get(_PINNED)
    if pinned is not None:
        return pinned
    global _cached_context
    stamp = calendars_stamp(session)
    with _context_lock:
        if _cached_context is not None and _cached_context.stamp == stamp:
            return _cached_context
        built = {c.name: working_calendar(spec_of(c)) for c in calendars(session)}
        # A database always has the default calendar (migration 0010 creates it); were it
        # gone, Monday to Friday office hours keep due times coming rather than failing.
        default = built.get(DEFAULT_CALENDAR) or WorkingCalendar()
        links = {link.office_id: link for link in office_links(session)}
        names: dict[int, str] = {}

        def resolve(office_id: int, seen: frozenset[int] = frozenset()) -> str:
            if office_id in names:
                return names[office_id]
            link = links[office_id]
            if link.calendar is not None:
                name = link.calendar
            elif link.parent_id is not None and link.parent_id not in seen:
                name = resolve(link.parent_id, seen | {office_id})
            else:
                name = DEFAULT_CALENDAR
            names[office_id] = name
            return name

        for office_id in links:
            resolve(office_id)
        _cached_context = CalendarContext(
            stamp,
            default,
            {office_id: built.get(name, default) for office_id, name in names.items()},
            names,
        )
        return _cached_context


def pin_calendar_context(session: Session) -> CalendarContext:
    """The calendars as they are now, kept for the rest of this session's transaction, for
    work that changes no calendar and no office: what it computes and the statistics its
    flushes write then count on the same calendars, checked for changes once."""
    context = calendar_context(session)
    session.info[_PINNED] = context
    return context


@event.listens_for(Session, "after_transaction_end")
def _unpin_calendar_context(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the outermost transaction ended
        session.info.pop(_PINNED, None)


def office_calendar(session: Session, office_id: int | None) -> WorkingCalendar:
    """The calendar a case in ``office_id``'s queue counts working time on (the default
    calendar for a case with no office)."""
    return calendar_context(session).for_office(office_id)


# ---------------------------------------------------------------- administration


@dataclass(frozen=True)
class CalendarView:
    spec: CalendarSpec
    updated_at: Any
    # Offices that name this calendar themselves (their children inherit it).
    offices: list[str]


def list_calendars(session: Session) -> list[CalendarView]:
    chosen: dict[str, list[str]] = {}
    for link in office_links(session):
        if link.calendar is not None:
            chosen.setdefault(link.calendar, []).append(link.code)
    return [
        CalendarView(spec_of(c), c.updated_at, sorted(chosen.get(c.name, [])))
        for c in calendars(session)
    ]


def put_calendar(
    session: Session,
    name: str,
    timezone: str,
    weekly_hours: Mapping[str, Sequence[Mapping[str, str]]],
    days: Sequence[Mapping[str, Any]],
) -> tuple[CalendarView, bool]:
    """Create the calendar ``name`` or replace its time zone, weekly hours and exceptional
    days; cases opened from the next one count on it. Refuses a calendar that cannot work
    (InvalidField naming the field) and changes nothing then. Returns the calendar and whether
    it was created."""
    if len(name) > MAX_CALENDAR_NAME_CHARS or not _NAME.fullmatch(name):
        raise InvalidField(
            "name",
            f"A calendar name is 1 to {MAX_CALENDAR_NAME_CHARS} letters, digits, '-', '_' or "
            "'.', starting and ending with a letter or digit.",
        )
    day_specs: list[DaySpec] = [
        {
            "date": d["date"].isoformat() if isinstance(d["date"], date) else str(d["date"]),
            "kind": d["kind"],
            "name": d.get("name", ""),
        }
        for d in days
    ]
    spec: CalendarSpec = {
        "name": name,
        "timezone": timezone,
        "weekly_hours": {day: [dict(p) for p in periods] for day, periods in weekly_hours.items()},
        "days": day_specs,
    }
    try:
        working_calendar(spec)
    except CalendarError as refused:
        raise InvalidField(refused.field, refused.message) from refused
    calendar, created = replace_calendar(session, spec)
    view = next(v for v in list_calendars(session) if v.spec["name"] == calendar.name)
    return view, created


@dataclass(frozen=True)
class OfficeCalendar:
    office: str
    # The calendar the office names itself; None when it inherits.
    calendar: str | None
    # The calendar its cases count on.
    effective: str


def set_office_calendar(
    session: Session, office_code: str, calendar_name: str | None
) -> OfficeCalendar:
    """Make ``office_code`` count on ``calendar_name``; None makes it inherit its parent's
    calendar again (at the top, the default one)."""
    office = session.scalar(select(Office).where(Office.code == office_code))
    if office is None:
        raise NotFound(f"No office {office_code}.")
    if calendar_name is None:
        office.calendar = None
    else:
        calendar = calendar_named(session, calendar_name)
        if calendar is None:
            raise InvalidField("calendar", f"No calendar named {calendar_name!r}.")
        office.calendar = calendar
    session.flush()
    effective = calendar_context(session).names.get(office.id, DEFAULT_CALENDAR)
    return OfficeCalendar(office.code, calendar_name, effective)
