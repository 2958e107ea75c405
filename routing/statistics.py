"""What one case's history says for the statistics, and the figures many cases make.

Pure: events in, values out. ``case_stats`` reads one case's events into the dates, flags and
durations the figures count (services keep them in the ``case_stats`` table, in the transaction
that writes the events). ``figures`` is the definition of every figure over such rows, the
reference the SQL aggregation in ``services.statistics`` is tested against. docs/statistics.md
explains each figure: its numerator, its denominator and its time anchor.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from routing import workflow as wf
from routing.sla import WorkingCalendar
from routing.time_grid import on_grid

RECEIVED = "received"
ROUTED_ACTIONS = frozenset({"routed", wf.TRANSFER, wf.REJECT})
# Occupations of the roaming observers, against residents ("citizen").
ROAMING_OCCUPATIONS = ("rider", "courier", "driver")
# An office with fewer closed cases than this in the window is shown, never ranked.
MIN_CLOSED_TO_RANK = 20
TOO_FEW_TO_RANK = "too few to rank"
# Statuses in which a case is in its office's hands, so a passed due time makes it overdue now
# (a waiting case's clock is paused; a resolved one awaits the supervisor).
IN_OFFICE_HANDS = (wf.ROUTED, wf.ACCEPTED, wf.IN_PROGRESS)
OPEN_STATUSES = (wf.TRIAGE, wf.ROUTED, wf.ACCEPTED, wf.IN_PROGRESS, wf.WAITING, wf.RESOLVED)


@dataclass(frozen=True)
class Event:
    at: datetime
    action: str
    from_status: str | None
    to_status: str


@dataclass(frozen=True)
class Durations:
    """Hours from the first report to a step, without the time the case waited for its
    reporter: on the wall clock and on the office's working calendar."""

    hours: float
    working_hours: float


@dataclass(frozen=True)
class CaseStats:
    reported_at: datetime
    # The day of ``reported_at`` in the calendar's time zone: the anchor of every case figure.
    reported_day: date
    status: str
    closure: str | None
    due_at: datetime | None
    routed_at: datetime | None
    accepted_at: datetime | None
    # The first resolution, or the closing of a case closed without one (处置).
    handled_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    handled_on_time: bool | None
    closed_on_time: bool | None
    extended: bool
    confirmed: bool
    reopened: bool
    rework_count: int
    to_accept: Durations | None
    to_resolve: Durations | None
    to_close: Durations | None


def _pauses(events: Sequence[Event]) -> list[tuple[datetime, datetime | None]]:
    """The intervals in which the case waited for its reporter (clock stopped)."""
    pauses: list[tuple[datetime, datetime | None]] = []
    asked_at: datetime | None = None
    for event in events:
        if event.to_status == wf.WAITING and event.from_status != wf.WAITING:
            asked_at = event.at
        elif asked_at is not None and event.from_status == wf.WAITING:
            pauses.append((asked_at, event.at))
            asked_at = None
    if asked_at is not None:
        pauses.append((asked_at, None))
    return pauses


def _net(
    start: datetime,
    end: datetime,
    pauses: Sequence[tuple[datetime, datetime | None]],
    calendar: WorkingCalendar,
) -> Durations:
    if end <= start:
        return Durations(0.0, 0.0)
    wall = end - start
    working = calendar.working_time_between(start, end)
    for pause_start, pause_end in pauses:
        begin = max(pause_start, start)
        finish = min(pause_end or end, end)
        if finish > begin:
            wall -= finish - begin
            working -= calendar.working_time_between(begin, finish)
    return Durations(_hours(wall), _hours(working))


def _hours(delta: timedelta) -> float:
    return round(max(delta, timedelta(0)).total_seconds() / 3600, 4)


def case_stats(
    events: Sequence[Event],
    *,
    status: str,
    closure: str | None,
    due_at: datetime | None,
    calendar: WorkingCalendar,
) -> CaseStats:
    """One case's figures from its events (in the order they happened) and its current
    status, closure and due time (which already holds its pauses and approved extensions).

    A case without a due time (its category has no limit) is never late."""
    if not events:
        raise ValueError("a case has at least the event of its first report")
    reported_at = events[0].at
    routed_at = accepted_at = resolved_at = closed_at = None
    extended = confirmed = reopened = False
    rework_count = 0
    for event in events:
        if routed_at is None and event.to_status == wf.ROUTED and event.action in ROUTED_ACTIONS:
            routed_at = event.at
        if event.action == wf.ACCEPT and accepted_at is None:
            accepted_at = event.at
        elif event.action == wf.RESOLVE and resolved_at is None:
            resolved_at = event.at
        elif event.action == wf.CLOSE:
            closed_at = event.at
        elif event.action == wf.APPROVE_EXTENSION:
            extended = True
        elif event.action == wf.CONFIRM:
            confirmed = True
        elif event.action == wf.REOPEN:
            reopened = True
        elif event.action == wf.REWORK:
            rework_count += 1
    if status != wf.CLOSED:
        closed_at = None
    handled_at = resolved_at or closed_at
    pauses = _pauses(events)

    def on_time(moment: datetime | None) -> bool | None:
        if moment is None:
            return None
        return due_at is None or moment <= due_at

    def took(moment: datetime | None) -> Durations | None:
        return None if moment is None else _net(reported_at, moment, pauses, calendar)

    return CaseStats(
        reported_at=reported_at,
        reported_day=reported_at.astimezone(ZoneInfo(calendar.timezone)).date(),
        status=status,
        closure=closure if status == wf.CLOSED else None,
        due_at=due_at,
        routed_at=routed_at,
        accepted_at=accepted_at,
        handled_at=handled_at,
        resolved_at=resolved_at,
        closed_at=closed_at,
        handled_on_time=on_time(handled_at),
        closed_on_time=on_time(closed_at),
        extended=extended,
        confirmed=confirmed,
        reopened=reopened,
        rework_count=rework_count,
        to_accept=took(accepted_at),
        to_resolve=took(resolved_at),
        to_close=took(closed_at),
    )


# ------------------------------------------------------------------------------------ figures


def rate(numerator: int, denominator: int) -> float | None:
    """A share in per cent with two decimals (93.72), or None when nothing is counted."""
    if denominator <= 0:
        return None
    return round(100.0 * numerator / denominator, 2)


def nearest_rank(sorted_values: Sequence[float], percent: int) -> float | None:
    """The nearest-rank percentile: the smallest value with at least ``percent`` % of the
    values at or below it; an observed value, never an interpolation."""
    if not sorted_values:
        return None
    rank = (percent * len(sorted_values) + 99) // 100  # ceil(percent/100 * n)
    return sorted_values[max(rank, 1) - 1]


@dataclass(frozen=True)
class Counts:
    """What is counted over the cases reported in a window, as of ``now``."""

    cases: int = 0
    routed: int = 0
    accepted: int = 0
    resolved: int = 0
    closed: int = 0
    closed_fixed: int = 0
    closed_on_time: int = 0
    reopened: int = 0
    rework: int = 0
    reworked_cases: int = 0
    open_not_yet_due: int = 0
    handled: int = 0
    handled_on_time: int = 0
    unhandled_not_yet_due: int = 0
    unhandled_overdue: int = 0
    extended: int = 0
    confirmed: int = 0
    by_occupation: dict[str, int] = field(default_factory=dict)


def rates(counts: Counts) -> dict[str, float | None]:
    """Every rate from its counts (docs/statistics.md gives the reasons)."""
    due_to_close = counts.cases - counts.open_not_yet_due
    due_to_handle = counts.cases - counts.unhandled_not_yet_due
    roaming = sum(counts.by_occupation.get(o, 0) for o in ROAMING_OCCUPATIONS)
    return {
        "closure_rate": rate(counts.closed, due_to_close),
        "on_time_closure_rate": rate(counts.closed_on_time, due_to_close),
        "on_time_handling_rate": rate(counts.handled_on_time, due_to_handle),
        "overdue_open_rate": rate(counts.unhandled_overdue, due_to_handle),
        "extension_rate": rate(counts.extended, due_to_handle),
        "rework_rate": rate(counts.reworked_cases, due_to_close),
        "confirmation_rate": rate(counts.confirmed, counts.closed_fixed),
        "fixed_share_of_closed": rate(counts.closed_fixed, counts.closed),
        "roaming_share": rate(roaming, counts.cases),
    }


def count(rows: Iterable[tuple[CaseStats, str]], now: datetime) -> Counts:
    """The counts over ``(case, first reporter's occupation)`` rows, as of ``now``."""
    tally: Counter[str] = Counter()
    occupations: Counter[str] = Counter()
    for case, occupation in rows:
        tally["cases"] += 1
        occupations[occupation] += 1
        closed = case.status == wf.CLOSED
        tally["routed"] += case.routed_at is not None
        tally["accepted"] += case.accepted_at is not None
        tally["resolved"] += case.resolved_at is not None
        tally["closed"] += closed
        tally["closed_fixed"] += closed and case.closure == wf.FIXED
        tally["closed_on_time"] += bool(case.closed_on_time)
        tally["reopened"] += case.reopened
        tally["rework"] += case.rework_count
        tally["reworked_cases"] += case.rework_count > 0
        not_due = case.due_at is None or case.due_at > now
        tally["open_not_yet_due"] += not closed and not_due
        tally["handled"] += case.handled_at is not None
        tally["handled_on_time"] += bool(case.handled_on_time)
        tally["unhandled_not_yet_due"] += case.handled_at is None and not_due
        tally["unhandled_overdue"] += case.handled_at is None and not not_due
        tally["extended"] += case.extended
        tally["confirmed"] += case.confirmed
    return Counts(**tally, by_occupation=dict(occupations))


STEPS = ("to_accept", "to_resolve", "to_close")


def times(cases: Iterable[CaseStats]) -> dict[str, dict[str, float | int | None]]:
    """Median and p90 of the hours to accept, resolve and close, on both clocks, rounded to
    the grid of ``routing.time_grid``."""
    listed = list(cases)
    answer: dict[str, dict[str, float | int | None]] = {}
    for step in STEPS:
        taken = [d for d in (getattr(c, step) for c in listed) if d is not None]
        wall = sorted(d.hours for d in taken)
        working = sorted(d.working_hours for d in taken)
        answer[step] = {
            "count": len(taken),
            "median_hours": on_grid(nearest_rank(wall, 50)),
            "p90_hours": on_grid(nearest_rank(wall, 90)),
            "median_working_hours": on_grid(nearest_rank(working, 50)),
            "p90_working_hours": on_grid(nearest_rank(working, 90)),
        }
    return answer


def rankable(closed: int) -> bool:
    return closed >= MIN_CLOSED_TO_RANK
