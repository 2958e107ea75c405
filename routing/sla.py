"""Due times from a category's time limit, on a working-hour calendar. Pure: no I/O.

A case's time limit runs on one of two clocks. The wall clock runs day and night: wall-clock
limits ("6 hours") and every limit of an urgent category, which counts a 24-hour clock (a day is
24 hours). The working clock runs only inside the office's working hours, on its working days:
public holidays stop it, and the adjusted working days that move weekends (调休) start it on a
Saturday or Sunday. The clock pauses while a case waits for its reporter, and an approved
extension adds hours on the case's own clock."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Unit = Literal["hours", "working_hours", "working_days"]
Clock = Literal["wall", "working"]
DayKind = Literal["holiday", "workday"]

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

# The keys of a calendar's weekly hours, Monday first (date.weekday() order).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_KINDS: tuple[DayKind, ...] = get_args(DayKind)

Period = tuple[time, time]
DayHours = tuple[Period, ...]

OFFICE_HOURS: DayHours = ((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30)))


def same_hours(periods: DayHours, weekdays: Iterable[int] = range(5)) -> tuple[DayHours, ...]:
    """A week with ``periods`` on each of ``weekdays`` (0 is Monday) and no hours on the others."""
    chosen = set(weekdays)
    return tuple(periods if day in chosen else () for day in range(7))


MONDAY_TO_FRIDAY = same_hours(OFFICE_HOURS)


class CalendarError(ValueError):
    """A calendar that cannot work, naming the field at fault in the calendar's data shape
    (``timezone``, ``weekly_hours.mon.1``, ``days.3.date``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


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


def _aware(moment: datetime, name: str) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class WorkingCalendar:
    """When an office works: local hours per weekday, the public holidays that stop the clock,
    and the adjusted working days (调休) that run it on a day otherwise off. An adjusted
    working day works the calendar's standard day: the hours of its first weekday that has
    any (Monday's, in every calendar seen so far)."""

    timezone: str = "Asia/Shanghai"
    # Local working periods, in order within the day, for Monday to Sunday.
    week: tuple[DayHours, ...] = MONDAY_TO_FRIDAY
    # Days off that would otherwise be working days (public holidays).
    holidays: frozenset[date] = frozenset()
    # Days worked that would otherwise be off: China moves weekend days to lengthen holidays
    # (调休), so a Saturday can be a working day.
    extra_workdays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        # A bad zone or overlapping periods would otherwise surface only as wrong due times.
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError) as error:
            # Not a zone ("Mars/Olympus_Mons"), not a key ("../x"), or a file of the zone
            # database that holds no zone ("zone.tab").
            raise CalendarError("timezone", f"unknown time zone {self.timezone!r}") from error
        if len(self.week) != 7:
            raise CalendarError("weekly_hours", "a week has seven days, Monday to Sunday")
        for weekday, periods in zip(WEEKDAYS, self.week, strict=True):
            previous_end: time | None = None
            for position, (start, end) in enumerate(periods):
                field = f"weekly_hours.{weekday}.{position}"
                if start.tzinfo is not None or end.tzinfo is not None:
                    raise CalendarError(field, "working periods are local times without a zone")
                if start >= end:
                    raise CalendarError(field, f"{start:%H:%M}-{end:%H:%M} ends before it starts")
                if previous_end is not None and start < previous_end:
                    raise CalendarError(
                        field, f"{start:%H:%M}-{end:%H:%M} overlaps or comes before the last one"
                    )
                previous_end = end
        if not any(self.week):
            raise CalendarError("weekly_hours", "a calendar needs at least one working period")
        both = self.holidays & self.extra_workdays
        if both:
            days = ", ".join(d.isoformat() for d in sorted(both))
            raise CalendarError("days", f"days both a holiday and a working day: {days}")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def standard_day(self) -> DayHours:
        """The hours of an adjusted working day, and the length of "a working day"."""
        return next(periods for periods in self.week if periods)

    @property
    def hours_per_day(self) -> float:
        return sum(_seconds(start, end) for start, end in self.standard_day) / 3600

    def hours_on(self, day: date) -> DayHours:
        if day in self.holidays:
            return ()
        if day in self.extra_workdays:
            return self.standard_day
        return self.week[day.weekday()]

    def is_working_day(self, day: date) -> bool:
        return bool(self.hours_on(day))

    def _periods_from(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """Every working period from the start of local ``day`` on, as UTC (opens, closes)."""
        zone = self.zone
        for _ in range(_MAX_DAYS_SEARCHED):
            for period_start, period_end in self.hours_on(day):
                # Counting in UTC keeps an hour an hour across a daylight-saving change, for
                # calendars in zones that have one.
                yield (
                    datetime.combine(day, period_start, zone).astimezone(UTC),
                    datetime.combine(day, period_end, zone).astimezone(UTC),
                )
            day += timedelta(days=1)

    def add_working_time(self, start: datetime, delta: timedelta) -> datetime:
        """``start`` plus ``delta`` of working time, in UTC. Outside working time the clock
        waits for the next working period."""
        now = _aware(start, "start")
        if delta < timedelta(0):
            raise ValueError("working time cannot be added backwards")
        remaining = delta
        for opens, closes in self._periods_from(start.astimezone(self.zone).date()):
            if closes <= now:
                continue
            now = max(opens, now)
            available = closes - now
            if remaining <= available:
                return now + remaining
            remaining -= available
            now = closes
        raise ValueError(
            f"no working time within {_MAX_DAYS_SEARCHED} days of {start}; check the calendar"
        )

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """How much working time lies between ``start`` and ``end``."""
        begin, finish = _aware(start, "start"), _aware(end, "end")
        if finish < begin:
            raise ValueError("end comes before start")
        total = timedelta(0)
        day = start.astimezone(self.zone).date()
        last_day = end.astimezone(self.zone).date()
        while day <= last_day:
            for period_start, period_end in self.hours_on(day):
                opens = datetime.combine(day, period_start, self.zone).astimezone(UTC)
                closes = datetime.combine(day, period_end, self.zone).astimezone(UTC)
                overlap = min(closes, finish) - max(opens, begin)
                if overlap > timedelta(0):
                    total += overlap
            day += timedelta(days=1)
        return total


def working_time_between(start: datetime, end: datetime, calendar: WorkingCalendar) -> timedelta:
    """How much of the time from ``start`` to ``end`` falls inside ``calendar``'s working hours
    (both aware; ``end`` not before ``start``)."""
    return calendar.working_time_between(start, end)


# ---------------------------------------------------------------- a calendar from its data


def _clock_time(text: Any, field: str) -> time:
    if not isinstance(text, str) or not re.fullmatch(r"\d\d:\d\d", text):
        raise CalendarError(field, f"{text!r} is not a time of day as HH:MM")
    try:
        return time.fromisoformat(text)
    except ValueError as error:
        raise CalendarError(field, f"{text!r} is not a time of day as HH:MM") from error


def calendar_from_data(
    timezone: str,
    weekly_hours: Mapping[str, Sequence[Mapping[str, Any]]],
    days: Sequence[Mapping[str, Any]],
) -> WorkingCalendar:
    """A calendar from the shape it is stored and exchanged in::

        timezone      "Asia/Shanghai"
        weekly_hours  {"mon": [{"start": "08:30", "end": "12:00"}, ...], ..., "sun": []}
        days          [{"date": "2026-10-01", "kind": "holiday" | "workday", "name": "国庆节"}]

    Every weekday is named (``[]`` for a day off) so that a forgotten day is an error, not a
    day silently off. Raises CalendarError naming the field at fault."""
    unknown = sorted(set(weekly_hours) - set(WEEKDAYS))
    if unknown:
        raise CalendarError(f"weekly_hours.{unknown[0]}", "not a weekday (mon, tue, ... sun)")
    week: list[DayHours] = []
    for weekday in WEEKDAYS:
        if weekday not in weekly_hours:
            raise CalendarError(f"weekly_hours.{weekday}", "missing; give [] for a day off")
        week.append(
            tuple(
                (
                    _clock_time(period.get("start"), f"weekly_hours.{weekday}.{i}.start"),
                    _clock_time(period.get("end"), f"weekly_hours.{weekday}.{i}.end"),
                )
                for i, period in enumerate(weekly_hours[weekday])
            )
        )
    holidays: set[date] = set()
    workdays: set[date] = set()
    for position, entry in enumerate(days):
        value = entry.get("date")
        try:
            day = value if isinstance(value, date) else date.fromisoformat(str(value))
        except ValueError as error:
            raise CalendarError(f"days.{position}.date", f"{value!r} is not a date") from error
        if day in holidays or day in workdays:
            raise CalendarError(f"days.{position}.date", f"{day} is listed twice")
        kind = entry.get("kind")
        if kind == "holiday":
            holidays.add(day)
        elif kind == "workday":
            workdays.add(day)
        else:
            raise CalendarError(f"days.{position}.kind", f"{kind!r} is not holiday or workday")
    return WorkingCalendar(
        timezone=timezone,
        week=tuple(week),
        holidays=frozenset(holidays),
        extra_workdays=frozenset(workdays),
    )


def weekly_hours_data(calendar: WorkingCalendar) -> dict[str, list[dict[str, str]]]:
    """The calendar's week in the shape ``calendar_from_data`` reads."""
    return {
        weekday: [{"start": f"{s:%H:%M}", "end": f"{e:%H:%M}"} for s, e in periods]
        for weekday, periods in zip(WEEKDAYS, calendar.week, strict=True)
    }


# ---------------------------------------------------------------- the clocks of a case


@dataclass(frozen=True)
class Allowance:
    """The time a case is given, and the clock it runs on."""

    clock: Clock
    time: timedelta


def allowance(
    limit: TimeLimit | None, calendar: WorkingCalendar, *, urgent: bool = False
) -> Allowance | None:
    """What a limit gives a case: None when there is no limit. Wall-clock hours run day and
    night. An urgent category counts a 24-hour clock: its working hours become hours and its
    working days 24 hours each. Otherwise working hours run on ``calendar``, a working day
    being its standard day's worth of working hours."""
    if limit is None:
        return None
    if limit.unit == "hours":
        return Allowance("wall", timedelta(hours=limit.amount))
    if urgent:
        per_unit = 24 if limit.unit == "working_days" else 1
        return Allowance("wall", timedelta(hours=limit.amount * per_unit))
    per_unit = calendar.hours_per_day if limit.unit == "working_days" else 1
    return Allowance("working", timedelta(hours=limit.amount * per_unit))


def advance(start: datetime, delta: timedelta, clock: Clock, calendar: WorkingCalendar) -> datetime:
    """``start`` plus ``delta`` on ``clock``, in UTC."""
    if clock == "wall":
        return _aware(start, "start") + delta
    return calendar.add_working_time(start, delta)


def elapsed(start: datetime, end: datetime, clock: Clock, calendar: WorkingCalendar) -> timedelta:
    """The time ``clock`` counts from ``start`` to ``end``."""
    if clock == "wall":
        begin, finish = _aware(start, "start"), _aware(end, "end")
        if finish < begin:
            raise ValueError("end comes before start")
        return finish - begin
    return calendar.working_time_between(start, end)


Pause = tuple[datetime, datetime | None]


def _merged_pauses(
    pauses: Iterable[Pause], since: datetime, until: datetime | None
) -> list[tuple[datetime, datetime]]:
    """Pauses as ordered, non-overlapping UTC intervals from ``since`` on. A pause without an
    end lasts until ``until``; without ``until`` it is refused: while the clock is stopped
    there is no due time yet."""
    intervals: list[tuple[datetime, datetime]] = []
    for start, end in pauses:
        begin = _aware(start, "a pause's start")
        if end is None:
            if until is None:
                raise ValueError("a pause without an end: no due time while the clock is paused")
            finish = max(begin, until)
        else:
            finish = _aware(end, "a pause's end")
        if finish < begin:
            raise ValueError(f"a pause ends before it starts: {start} to {end}")
        begin, finish = max(begin, since), min(finish, until) if until else finish
        if finish > begin:
            intervals.append((begin, finish))
    merged: list[tuple[datetime, datetime]] = []
    for begin, finish in sorted(intervals):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], finish))
        else:
            merged.append((begin, finish))
    return merged


def _with_extension(given: Allowance, extension_hours: float) -> Allowance:
    if not math.isfinite(extension_hours) or extension_hours < 0:
        raise ValueError(f"an extension is a number of hours, not {extension_hours!r}")
    return Allowance(given.clock, given.time + timedelta(hours=extension_hours))


def due_at(
    received_at: datetime,
    limit: TimeLimit | None,
    calendar: WorkingCalendar,
    *,
    urgent: bool = False,
    pauses: Iterable[Pause] = (),
    extension_hours: float = 0.0,
) -> datetime | None:
    """When a case received at ``received_at`` is due, in UTC; None when there is no limit.

    ``pauses`` are the (start, end) intervals in which the clock stood still (the case was
    waiting for its reporter); each must have ended. ``extension_hours`` are the approved
    extensions, added on the case's own clock: working hours for a working-hour limit, hours
    for a wall-clock or urgent one. A case already due when a pause starts stays due then."""
    received = _aware(received_at, "received_at")
    given = allowance(limit, calendar, urgent=urgent)
    if given is None:
        return None
    given = _with_extension(given, extension_hours)
    remaining, cursor = given.time, received
    for pause_start, pause_end in _merged_pauses(pauses, received, None):
        if pause_start > cursor:
            due = advance(cursor, remaining, given.clock, calendar)
            if due <= pause_start:
                return due
            remaining -= elapsed(cursor, pause_start, given.clock, calendar)
        cursor = max(cursor, pause_end)
    return advance(cursor, remaining, given.clock, calendar)


def time_left(
    received_at: datetime,
    limit: TimeLimit | None,
    calendar: WorkingCalendar,
    at: datetime,
    *,
    urgent: bool = False,
    pauses: Iterable[Pause] = (),
    extension_hours: float = 0.0,
) -> timedelta | None:
    """How much of its allowance a case has left at ``at``, on its own clock; negative when it
    is overdue, None when there is no limit. A pause still running (end None) counts as
    lasting until ``at``, so this is what a waiting case will have when its clock restarts."""
    received = _aware(received_at, "received_at")
    moment = _aware(at, "at")
    given = allowance(limit, calendar, urgent=urgent)
    if given is None:
        return None
    given = _with_extension(given, extension_hours)
    if moment <= received:
        return given.time
    used = elapsed(received, moment, given.clock, calendar)
    for pause_start, pause_end in _merged_pauses(pauses, received, moment):
        used -= elapsed(pause_start, pause_end, given.clock, calendar)
    return given.time - used
