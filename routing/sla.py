"""Due times from a category's time limit, on a working-hour calendar. Pure: no I/O."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Unit = Literal["hours", "working_hours", "working_days"]

# Only the wordings the taxonomy uses. A bare "2 days" is refused rather than guessed: it could
# mean calendar days or working days, and the difference is most of a week.
_LIMIT = re.compile(
    r"(?P<amount>\d+(?:\.\d+)?)\s+"
    r"(?:(?P<hours>hours?)|(?:urgent\s+)?working\s+(?P<working_hours>hours?)"
    r"|working\s+(?P<working_days>days?))",
    re.IGNORECASE,
)

_NAMES: dict[Unit, tuple[str, str]] = {
    "hours": ("hour", "hours"),
    "working_hours": ("working hour", "working hours"),
    "working_days": ("working day", "working days"),
}

# Far more than any calendar needs; it only stops a calendar without working days from looping.
_MAX_DAYS_SEARCHED = 3700


@dataclass(frozen=True)
class TimeLimit:
    amount: float
    unit: Unit

    def __post_init__(self) -> None:
        if self.unit not in get_args(Unit):
            raise ValueError(f"unknown time limit unit: {self.unit!r}")
        if not math.isfinite(self.amount) or self.amount <= 0:
            raise ValueError(f"a time limit must be a positive amount, not {self.amount!r}")

    def describe(self) -> str:
        one, many = _NAMES[self.unit]
        amount = f"{self.amount:.6f}".rstrip("0").rstrip(".")
        return f"{amount} {one if self.amount == 1 else many}"


def parse_time_limit(text: str | None) -> TimeLimit | None:
    """The taxonomy's wording: "6 hours", "4 working hours", "1 working day", "5 working days",
    "3 urgent working hours". Empty means no limit; anything else is a ValueError, because a
    mistyped limit silently read as none would leave cases without a due time."""
    if text is None or not text.strip():
        return None
    match = _LIMIT.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"unreadable time limit: {text!r}")
    amount = float(match["amount"])
    if amount <= 0:
        raise ValueError(f"unreadable time limit: {text!r} (the amount must be positive)")
    # "Urgent" working hours are a stricter promise in the source tables, but they run on
    # the same clock.
    unit: Unit = next(u for u in get_args(Unit) if match[u])
    return TimeLimit(amount, unit)


def _seconds(start: time, end: time) -> float:
    return (datetime.combine(date.min, end) - datetime.combine(date.min, start)).total_seconds()


@dataclass(frozen=True)
class WorkingCalendar:
    timezone: str = "Asia/Shanghai"
    # Local office hours, in order, within one day.
    periods: tuple[tuple[time, time], ...] = (
        (time(8, 30), time(12, 0)),
        (time(13, 30), time(17, 30)),
    )
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    # Days off that would otherwise be working days (public holidays).
    holidays: frozenset[date] = frozenset()
    # Days worked that would otherwise be off: China moves weekend days to lengthen holidays
    # (调休), so a Saturday can be a working day.
    extra_workdays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        # A bad zone or overlapping periods would otherwise surface only as wrong due times.
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown timezone: {self.timezone!r}") from error
        if not self.periods:
            raise ValueError("a working calendar needs at least one working period")
        previous_end: time | None = None
        for start, end in self.periods:
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError("working periods are local times without a timezone")
            if start >= end:
                raise ValueError(f"working period {start}-{end} ends before it starts")
            if previous_end is not None and start < previous_end:
                raise ValueError(f"working period {start}-{end} overlaps or is out of order")
            previous_end = end
        if not self.weekdays <= set(range(7)):
            raise ValueError("weekdays are numbered 0 (Monday) to 6 (Sunday)")
        both = self.holidays & self.extra_workdays
        if both:
            raise ValueError(f"days both off and worked: {sorted(both)}")

    @property
    def hours_per_day(self) -> float:
        return sum(_seconds(start, end) for start, end in self.periods) / 3600

    def is_working_day(self, d: date) -> bool:
        if d in self.extra_workdays:
            return True
        return d.weekday() in self.weekdays and d not in self.holidays

    def add_working_time(self, start: datetime, delta: timedelta) -> datetime:
        """``start`` plus ``delta`` of working time, in UTC. Outside working time the clock
        waits for the next working period."""
        if start.utcoffset() is None:
            raise ValueError("start must be timezone-aware")
        if delta < timedelta(0):
            raise ValueError("working time cannot be added backwards")
        zone = ZoneInfo(self.timezone)
        # Counting in UTC keeps an hour an hour across a daylight-saving change, for calendars
        # in zones that have one.
        now = start.astimezone(UTC)
        remaining = delta
        day = start.astimezone(zone).date()
        for _ in range(_MAX_DAYS_SEARCHED):
            if self.is_working_day(day):
                for period_start, period_end in self.periods:
                    opens = datetime.combine(day, period_start, zone).astimezone(UTC)
                    closes = datetime.combine(day, period_end, zone).astimezone(UTC)
                    if closes <= now:
                        continue
                    now = max(opens, now)
                    available = closes - now
                    if remaining <= available:
                        return now + remaining
                    remaining -= available
                    now = closes
            day += timedelta(days=1)
        raise ValueError(
            f"no working time within {_MAX_DAYS_SEARCHED} days of {start}; check the calendar"
        )


def due_at(
    received_at: datetime, limit: TimeLimit | None, calendar: WorkingCalendar
) -> datetime | None:
    """When a case received at ``received_at`` is due, in UTC; None when there is no limit.
    Wall-clock "hours" run day and night; working hours and days run on ``calendar``, a
    working day being one day's worth of working hours."""
    if received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    if limit is None:
        return None
    if limit.unit == "hours":
        return received_at.astimezone(UTC) + timedelta(hours=limit.amount)
    hours = limit.amount * (calendar.hours_per_day if limit.unit == "working_days" else 1)
    return calendar.add_working_time(received_at, timedelta(hours=hours))
