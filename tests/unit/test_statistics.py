"""routing.statistics on hand-built event histories: the dates, flags and durations one case's
events give, and every rate from its counts (docs/statistics.md)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from routing import statistics as st
from routing import workflow as wf
from routing.sla import WorkingCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Office hours 08:30-12:00 and 13:30-17:30, Monday to Friday (the default calendar).
CALENDAR = WorkingCalendar()


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in March 2026 in Shanghai; 2 March is a Monday."""
    return datetime(2026, 3, day, hour, minute, tzinfo=SHANGHAI)


def ev(at: datetime, action: str, from_status: str | None, to_status: str) -> st.Event:
    return st.Event(at, action, from_status, to_status)


def stats_of(
    events: list[st.Event], status: str, due: datetime | None, closure: str | None = None
) -> st.CaseStats:
    return st.case_stats(events, status=status, closure=closure, due_at=due, calendar=CALENDAR)


HANDLED = [
    ev(local(2, 9), "received", None, "received"),
    ev(local(2, 9), "classified", "received", "received"),
    ev(local(2, 9), "routed", "received", "routed"),
    ev(local(2, 10), wf.ACCEPT, "routed", "accepted"),
    ev(local(2, 11), wf.ASK, "accepted", "waiting"),
    ev(local(2, 14), wf.ANSWER, "waiting", "accepted"),
    ev(local(2, 14, 30), wf.START, "accepted", "in_progress"),
    ev(local(2, 16), wf.RESOLVE, "in_progress", "resolved"),
    ev(local(3, 9), wf.CONFIRM, "resolved", "resolved"),
    ev(local(3, 9, 30), wf.CLOSE, "resolved", "closed"),
]


def test_a_case_handled_and_closed_on_time() -> None:
    case = stats_of(HANDLED, "closed", local(3, 10), "fixed")
    assert case.reported_at == local(2, 9)
    assert case.reported_day.isoformat() == "2026-03-02"
    assert case.routed_at == local(2, 9) and case.accepted_at == local(2, 10)
    assert case.resolved_at == case.handled_at == local(2, 16)
    assert case.closed_at == local(3, 9, 30) and case.closure == "fixed"
    assert case.handled_on_time is True and case.closed_on_time is True
    assert case.confirmed and not case.reopened and not case.extended
    assert case.rework_count == 0
    assert case.to_accept == st.Durations(1.0, 1.0)
    # 7 h on the wall, 5.5 working hours, less the 3 h (1.5 working hours) waiting for the
    # reporter's answer
    assert case.to_resolve == st.Durations(4.0, 4.0)
    # to Tuesday 09:30: 24.5 h on the wall and 8 working hours, less the wait
    assert case.to_close == st.Durations(21.5, 6.5)


def test_late_handling_and_closing_count_against_the_due_time() -> None:
    case = stats_of(HANDLED, "closed", local(2, 12), "fixed")
    assert case.handled_on_time is False and case.closed_on_time is False
    # exactly at the due time is on time
    on_the_dot = stats_of(HANDLED, "closed", local(3, 9, 30), "fixed")
    assert on_the_dot.closed_on_time is True and on_the_dot.handled_on_time is True


def test_a_case_without_a_time_limit_is_never_late() -> None:
    case = stats_of(HANDLED, "closed", None, "fixed")
    assert case.handled_on_time is True and case.closed_on_time is True


def test_a_case_closed_without_a_resolution_was_handled_by_its_closing() -> None:
    events = [*HANDLED[:3], ev(local(2, 11), wf.CLOSE, "routed", "closed")]
    case = stats_of(events, "closed", local(2, 17), "invalid")
    assert case.resolved_at is None and case.accepted_at is None
    assert case.handled_at == case.closed_at == local(2, 11)
    assert case.to_resolve is None and case.to_accept is None
    assert case.to_close == st.Durations(2.0, 2.0)


def test_rework_extension_and_reopening() -> None:
    events = [
        *HANDLED[:4],
        ev(local(2, 10, 30), wf.EXTEND, "accepted", "accepted"),
        ev(local(2, 10, 40), wf.APPROVE_EXTENSION, "accepted", "accepted"),
        ev(local(2, 11), wf.RESOLVE, "accepted", "resolved"),
        ev(local(2, 11, 30), wf.REWORK, "resolved", "in_progress"),
        ev(local(2, 15), wf.RESOLVE, "in_progress", "resolved"),
        ev(local(2, 16), wf.CLOSE, "resolved", "closed"),
        ev(local(4, 9), wf.REOPEN, "closed", "routed"),
    ]
    case = stats_of(events, "routed", local(3, 17))
    assert case.extended and case.reopened and case.rework_count == 1
    # the first resolution is what the office answered in; the closing was undone
    assert case.resolved_at == local(2, 11)
    assert case.closed_at is None and case.closed_on_time is None and case.closure is None
    assert case.to_close is None


def test_a_wait_still_going_on_is_left_out_up_to_the_step() -> None:
    events = [*HANDLED[:5], ev(local(2, 15), wf.CLOSE, "waiting", "closed")]
    case = stats_of(events, "closed", local(3, 17), "no_further_action")
    # from 09:00 to 15:00 less the wait from 11:00
    assert case.to_close == st.Durations(2.0, 2.0)


def test_the_reported_day_is_the_local_day() -> None:
    late_evening = datetime(2026, 3, 1, 23, 30, tzinfo=SHANGHAI)  # 15:30 UTC on 1 March
    case = stats_of([ev(late_evening, "received", None, "received")], "triage", None)
    assert case.reported_day.isoformat() == "2026-03-01"
    early = datetime(2026, 3, 2, 0, 30, tzinfo=SHANGHAI)  # still 1 March in UTC
    case = stats_of([ev(early, "received", None, "received")], "triage", None)
    assert case.reported_day.isoformat() == "2026-03-02"


def test_a_case_has_events() -> None:
    with pytest.raises(ValueError):
        stats_of([], "routed", None)


def test_the_rates_of_a_city_bulletin() -> None:
    # 天门, December: 972 cases due to close, 911 closed (93.72 %), 737 on time (75.82 %)
    counts = st.Counts(cases=1000, open_not_yet_due=28, closed=911, closed_on_time=737)
    rates = st.rates(counts)
    assert rates["closure_rate"] == 93.72
    assert rates["on_time_closure_rate"] == 75.82


def test_every_rate_has_its_own_denominator() -> None:
    counts = st.Counts(
        cases=40,
        closed=20,
        closed_fixed=16,
        closed_on_time=15,
        open_not_yet_due=10,  # due to close: 30
        handled=25,
        handled_on_time=20,
        unhandled_not_yet_due=8,  # due to handle: 32
        unhandled_overdue=7,
        extended=4,
        reworked_cases=3,
        confirmed=4,
        by_occupation={"rider": 10, "courier": 6, "driver": 4, "citizen": 20},
    )
    assert st.rates(counts) == {
        "closure_rate": 66.67,
        "on_time_closure_rate": 50.0,
        "on_time_handling_rate": 62.5,
        "overdue_open_rate": 21.88,
        "extension_rate": 12.5,
        "rework_rate": 10.0,
        "confirmation_rate": 25.0,
        "fixed_share_of_closed": 80.0,
        "roaming_share": 50.0,
    }


def test_no_denominator_no_rate() -> None:
    assert set(st.rates(st.Counts()).values()) == {None}
    assert st.rate(0, 0) is None and st.rate(0, 5) == 0.0


@pytest.mark.parametrize(
    ("values", "median", "p90"),
    [
        ([], None, None),
        ([7.0], 7.0, 7.0),
        ([1.0, 2.0, 3.0], 2.0, 3.0),
        ([float(v) for v in range(1, 11)], 5.0, 9.0),
        ([float(v) for v in range(1, 12)], 6.0, 10.0),
        ([1.0, 1.0, 1.0, 100.0], 1.0, 100.0),
    ],
)
def test_nearest_rank_percentiles(
    values: list[float], median: float | None, p90: float | None
) -> None:
    assert st.nearest_rank(values, 50) == median
    assert st.nearest_rank(values, 90) == p90


def test_counting_cases_as_of_now() -> None:
    now = local(10, 12)
    closed = stats_of(HANDLED, "closed", local(3, 10), "fixed")
    open_due_later = stats_of(HANDLED[:4], "accepted", local(11, 9))
    open_overdue = stats_of(HANDLED[:3], "routed", local(9, 9))
    no_limit_open = stats_of(HANDLED[:3], "routed", None)
    counts = st.count(
        [
            (closed, "rider"),
            (open_due_later, "courier"),
            (open_overdue, "citizen"),
            (no_limit_open, "citizen"),
        ],
        now,
    )
    assert counts.cases == 4 and counts.closed == 1 and counts.closed_on_time == 1
    assert counts.open_not_yet_due == 2  # due later, and no limit at all
    assert counts.unhandled_overdue == 1 and counts.unhandled_not_yet_due == 2
    assert counts.accepted == 2 and counts.routed == 4
    assert counts.by_occupation == {"rider": 1, "courier": 1, "citizen": 2}
    rates = st.rates(counts)
    assert rates["closure_rate"] == 50.0  # 1 of the 2 due
    assert rates["roaming_share"] == 50.0
    times = st.times([closed, open_due_later, open_overdue])
    assert times["to_accept"]["count"] == 2 and times["to_close"]["count"] == 1
    assert times["to_close"]["median_working_hours"] == 6.5
    assert st.rankable(st.MIN_CLOSED_TO_RANK) and not st.rankable(st.MIN_CLOSED_TO_RANK - 1)
