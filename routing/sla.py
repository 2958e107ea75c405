"""Due times from a category's time limit, on a working-hour calendar. Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Unit = Literal["hours", "working_hours", "working_days"]

_LIMIT = re.compile(
    r"^\s*(?P<amount>\d+(?:\.\d+)?)\s+(?P<urgent>urgent\s+)?(?P<working>working\s+)?"
    r"(?P<unit>hours?|days?)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class TimeLimit:
    amount: float
    unit: Unit

    def describe(self) -> str:
        amount = f"{self.amount:g}"
        word = {"hours": "hour", "working_hours": "working hour", "working_days": "working day"}
        return f"{amount} {word[self.unit]}{'' if self.amount == 1 else 's'}"


def parse_time_limit(text: str | None) -> TimeLimit | None:
    """The taxonomy's wording: "6 hours", "4 working hours", "1 working day",
    "3 urgent working hours" (urgent working hours count as working hours)."""
    if text is None or not text.strip():
        return None
    match = _LIMIT.match(text)
    if match is None:
        raise ValueError(f"unreadable time limit: {text!r}")
    amount = float(match["amount"])
    is_day = match["unit"].lower().startswith("day")
    working = bool(match["working"])
    if is_day and not working:
        # A bare "2 days" is wall-clock time.
        return TimeLimit(amount * 24, "hours")
    if is_day:
        return TimeLimit(amount, "working_days")
    return TimeLimit(amount, "working_hours" if working else "hours")


@dataclass(frozen=True)
class WorkingCalendar:
    timezone: str = "Asia/Shanghai"
    periods: tuple[tuple[time, time], ...] = (
        (time(8, 30), time(12, 0)),
        (time(13, 30), time(17, 30)),
    )
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    holidays: frozenset[date] = frozenset()
    # Weekend days worked in place of a holiday (调休).
    extra_workdays: frozenset[date] = frozenset()

    @property
    def hours_per_day(self) -> float:
        return (
            sum(
                (
                    datetime.combine(date.min, end) - datetime.combine(date.min, start)
                ).total_seconds()
                for start, end in self.periods
            )
            / 3600
        )

    def is_working_day(self, day: date) -> bool:
        if day in self.extra_workdays:
            return True
        return day.weekday() in self.weekdays and day not in self.holidays

    def add_working_time(self, start: datetime, delta: timedelta) -> datetime:
        """``start`` plus ``delta`` of working time; outside working time the clock waits for
        the next working period."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        zone = ZoneInfo(self.timezone)
        local = start.astimezone(zone)
        remaining = delta
        day = local.date()
        # A generous bound: even a year of holidays ends.
        for _ in range(3700):
            if self.is_working_day(day):
                for period_start, period_end in self.periods:
                    opens = datetime.combine(day, period_start, zone)
                    closes = datetime.combine(day, period_end, zone)
                    if closes <= local:
                        continue
                    begin = max(opens, local)
                    available = closes - begin
                    if remaining <= available:
                        return (begin + remaining).astimezone(UTC)
                    remaining -= available
            day += timedelta(days=1)
            local = datetime.combine(day, time.min, zone)
        raise ValueError("no working time found within ten years; check the calendar")


def due_at(
    received_at: datetime, limit: TimeLimit | None, calendar: WorkingCalendar
) -> datetime | None:
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    if limit is None:
        return None
    if limit.unit == "hours":
        return (received_at + timedelta(hours=limit.amount)).astimezone(UTC)
    hours = limit.amount * (calendar.hours_per_day if limit.unit == "working_days" else 1)
    return calendar.add_working_time(received_at, timedelta(hours=hours))
