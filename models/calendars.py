"""Working-hour calendars as data: each calendar's weekly hours and exceptional days (public
holidays, adjusted working days), and which calendar each office keeps. Offices without one
inherit their parent's, and at the top the calendar named ``default``. Read and written here as
plain values (services.calendars builds routing.sla calendars from them); nothing here commits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any, TypedDict

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from models.base import utcnow
from models.entities import Calendar, CalendarDay, Office

# The calendar of every office that names none, itself or above it.
DEFAULT_CALENDAR = "default"


class DaySpec(TypedDict):
    date: str
    kind: str
    name: str


class CalendarSpec(TypedDict):
    name: str
    timezone: str
    weekly_hours: dict[str, list[dict[str, str]]]
    days: list[DaySpec]


@dataclass(frozen=True)
class OfficeCalendarLink:
    """An office, its parent and the calendar it names itself (None: inherited)."""

    office_id: int
    code: str
    parent_id: int | None
    calendar: str | None


def spec_of(calendar: Calendar) -> CalendarSpec:
    return {
        "name": calendar.name,
        "timezone": calendar.timezone,
        "weekly_hours": calendar.weekly_hours,
        "days": [
            {"date": day.day.isoformat(), "kind": day.kind, "name": day.name}
            for day in calendar.days
        ],
    }


def calendars(session: Session) -> list[Calendar]:
    """Every calendar with its days, by name."""
    return list(
        session.scalars(
            select(Calendar).options(selectinload(Calendar.days)).order_by(Calendar.name)
        )
    )


def calendar_named(session: Session, name: str) -> Calendar | None:
    return session.scalar(
        select(Calendar).options(selectinload(Calendar.days)).where(Calendar.name == name)
    )


def office_links(session: Session) -> list[OfficeCalendarLink]:
    rows = session.execute(
        select(Office.id, Office.code, Office.parent_id, Calendar.name)
        .outerjoin(Calendar, Calendar.id == Office.calendar_id)
        .order_by(Office.id)
    ).all()
    return [OfficeCalendarLink(*row) for row in rows]


def calendars_stamp(session: Session) -> tuple[Any, ...]:
    """Changes whenever a calendar, its days or an office's choice of calendar change: every
    change of calendar days touches the calendar's ``updated_at``, and a change of an office's
    calendar its own."""
    # One round trip: every report processed asks.
    found = session.execute(
        select(
            select(func.count(Calendar.id)).scalar_subquery(),
            select(func.max(Calendar.updated_at)).scalar_subquery(),
            select(func.count(Office.id)).scalar_subquery(),
            select(func.max(Office.updated_at)).scalar_subquery(),
        )
    ).one()
    return (found[0], str(found[1]), found[2], str(found[3]))


def replace_calendar(session: Session, spec: CalendarSpec) -> tuple[Calendar, bool]:
    """Create the calendar named in ``spec`` or replace its hours and days with the spec's,
    which the caller has checked. Returns the calendar and whether it is new."""
    calendar = calendar_named(session, spec["name"])
    created = calendar is None
    if calendar is None:
        calendar = Calendar(name=spec["name"])
        session.add(calendar)
    calendar.timezone = spec["timezone"]
    calendar.weekly_hours = spec["weekly_hours"]
    # Replacing only the days would leave the calendar row as it was; the stamp must move.
    calendar.updated_at = utcnow()
    calendar.days.clear()
    # The old days' rows go before the new ones come, so a date kept keeps its unique slot.
    session.flush()
    calendar.days.extend(
        CalendarDay(day=date.fromisoformat(day["date"]), kind=day["kind"], name=day["name"])
        for day in sorted(spec["days"], key=lambda d: d["date"])
    )
    session.flush()
    return calendar, created


def seed_calendars() -> list[CalendarSpec]:
    """The calendars a new database starts with (``models/seed/calendars.json``). Migration
    0010 loads the same file, so a migrated database and a freshly seeded one start alike."""
    path = resources.files("models.seed").joinpath("calendars.json")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return [
        {
            "name": item["name"],
            "timezone": item["timezone"],
            "weekly_hours": item["weekly_hours"],
            "days": [
                {"date": d["date"], "kind": d["kind"], "name": d.get("name", "")}
                for d in item["days"]
            ],
        }
        for item in data["calendars"]
    ]


def load_seed_calendars(session: Session) -> int:
    """Create each seed calendar the database does not have yet; a calendar that exists is
    what admins made of it and stays. Returns how many were created."""
    existing = set(session.scalars(select(Calendar.name)))
    created = 0
    for spec in seed_calendars():
        if spec["name"] not in existing:
            replace_calendar(session, spec)
            created += 1
    return created
