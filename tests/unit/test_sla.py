from __future__ import annotations

import csv
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from routing.sla import TimeLimit, WorkingCalendar, due_at, parse_time_limit

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkingCalendar()
TAXONOMY = Path(__file__).resolve().parents[2] / "models" / "seed" / "taxonomy.csv"

# China's 2025 National Day and Mid-Autumn break: Wed 1 to Wed 8 October off, with Sunday
# 28 September and Saturday 11 October worked in exchange (调休).
NATIONAL_DAY_2025 = WorkingCalendar(
    holidays=frozenset(date(2025, 10, d) for d in (1, 2, 3, 6, 7, 8)),
    extra_workdays=frozenset({date(2025, 9, 28), date(2025, 10, 11)}),
)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def taxonomy_limits() -> list[str]:
    with TAXONOMY.open(encoding="utf-8") as handle:
        return [row["time_limit"] for row in csv.DictReader(handle)]


# --- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6 hours", TimeLimit(6, "hours")),
        ("1 hour", TimeLimit(1, "hours")),
        ("4 working hours", TimeLimit(4, "working_hours")),
        ("1 working day", TimeLimit(1, "working_days")),
        ("5 working days", TimeLimit(5, "working_days")),
        ("3 urgent working hours", TimeLimit(3, "working_hours")),
        ("1.5 working hours", TimeLimit(1.5, "working_hours")),
        ("  4 Working Hours ", TimeLimit(4, "working_hours")),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_parse(text: str | None, expected: TimeLimit | None) -> None:
    assert parse_time_limit(text) == expected


def test_every_taxonomy_limit_parses() -> None:
    texts = taxonomy_limits()
    assert len(texts) == 19
    for text in texts:
        parsed = parse_time_limit(text)
        assert (parsed is None) == (not text.strip()), text
    assert {parse_time_limit(t) for t in texts if t} == {
        TimeLimit(6, "hours"),
        TimeLimit(4, "working_hours"),
        TimeLimit(1, "working_days"),
        TimeLimit(5, "working_days"),
        TimeLimit(3, "working_hours"),
    }


def test_the_seed_defaults_parse() -> None:
    # Categories without a published limit are seeded with these; the pipeline parses them too.
    from models.seed import DEFAULT_LIMIT, DEFAULT_LIMIT_URGENT

    assert parse_time_limit(DEFAULT_LIMIT) == TimeLimit(3, "working_days")
    assert parse_time_limit(DEFAULT_LIMIT_URGENT) == TimeLimit(1, "working_days")


@pytest.mark.parametrize(
    "text",
    ["soon", "6", "hours 6", "-1 hours", "0 hours", "2 days", "6 hours please", "6 urgent hours"],
)
def test_unreadable_limits_are_refused_by_name(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_time_limit(text)


def test_describe() -> None:
    assert TimeLimit(1, "working_days").describe() == "1 working day"
    assert TimeLimit(5, "working_days").describe() == "5 working days"
    assert TimeLimit(4, "working_hours").describe() == "4 working hours"
    assert TimeLimit(6, "hours").describe() == "6 hours"
    assert TimeLimit(1.5, "hours").describe() == "1.5 hours"


def test_describe_round_trips() -> None:
    for text in filter(None, taxonomy_limits()):
        limit = parse_time_limit(text)
        assert limit is not None and parse_time_limit(limit.describe()) == limit


@pytest.mark.parametrize(("amount", "unit"), [(0, "hours"), (-2, "working_hours"), (1, "weeks")])
def test_impossible_limits_are_refused(amount: float, unit: str) -> None:
    with pytest.raises(ValueError):
        TimeLimit(amount, unit)  # type: ignore[arg-type]


# --- the calendar ---------------------------------------------------------------------------


def test_calendar_day_length() -> None:
    assert CAL.hours_per_day == 7.5
    assert WorkingCalendar(periods=((time(9), time(17)),)).hours_per_day == 8


def test_working_days_follow_holidays_and_make_up_days() -> None:
    assert NATIONAL_DAY_2025.is_working_day(date(2025, 9, 30))  # Tuesday
    assert not NATIONAL_DAY_2025.is_working_day(date(2025, 10, 1))  # holiday Wednesday
    assert not NATIONAL_DAY_2025.is_working_day(date(2025, 9, 27))  # ordinary Saturday
    assert NATIONAL_DAY_2025.is_working_day(date(2025, 9, 28))  # make-up Sunday
    assert NATIONAL_DAY_2025.is_working_day(date(2025, 10, 11))  # make-up Saturday


@pytest.mark.parametrize(
    "changes",
    [
        {"timezone": "Mars/Olympus_Mons"},
        {"periods": ()},
        {"periods": ((time(12), time(9)),)},
        {"periods": ((time(8), time(12)), (time(11), time(17)))},
        {"periods": ((time(13), time(17)), (time(8), time(12)))},
        {"weekdays": frozenset({7})},
        {
            "holidays": frozenset({date(2025, 1, 1)}),
            "extra_workdays": frozenset({date(2025, 1, 1)}),
        },
    ],
)
def test_broken_calendars_are_refused(changes: dict) -> None:
    with pytest.raises(ValueError):
        WorkingCalendar(**changes)


def test_calendar_without_working_days_does_not_loop_forever() -> None:
    never = WorkingCalendar(weekdays=frozenset())
    with pytest.raises(ValueError, match="no working time"):
        never.add_working_time(local(2026, 11, 23, 9, 0), timedelta(hours=1))


# --- due times ------------------------------------------------------------------------------


def test_wall_clock_hours_cross_midnight() -> None:
    # Friday 22:00 + 6 hours: the clock runs through the night and into Saturday
    assert due_at(local(2026, 11, 20, 22, 0), TimeLimit(6, "hours"), CAL) == local(
        2026, 11, 21, 4, 0
    )


def test_wall_clock_hours_ignore_holidays() -> None:
    assert due_at(local(2025, 9, 30, 22, 0), TimeLimit(6, "hours"), NATIONAL_DAY_2025) == local(
        2025, 10, 1, 4, 0
    )


def test_working_hours_skip_lunch() -> None:
    # Friday 11:00 + 2 working hours: 1 h before lunch, 1 h after 13:30
    assert due_at(local(2026, 11, 20, 11, 0), TimeLimit(2, "working_hours"), CAL) == local(
        2026, 11, 20, 14, 30
    )


def test_received_at_lunch_starts_at_1330() -> None:
    assert due_at(local(2026, 11, 20, 12, 40), TimeLimit(1, "working_hours"), CAL) == local(
        2026, 11, 20, 14, 30
    )


def test_working_hours_cross_the_evening() -> None:
    # Monday 17:00 + 2 working hours: 0.5 h on Monday, 1.5 h from Tuesday 08:30
    assert due_at(local(2026, 11, 23, 17, 0), TimeLimit(2, "working_hours"), CAL) == local(
        2026, 11, 24, 10, 0
    )


def test_received_before_opening_starts_at_0830() -> None:
    assert due_at(local(2026, 11, 24, 6, 15), TimeLimit(4, "working_hours"), CAL) == local(
        2026, 11, 24, 14, 0
    )


def test_working_hours_cross_a_weekend() -> None:
    # Friday 16:30 + 4 working hours: 1 h on Friday, 3 h from Monday 08:30
    assert due_at(local(2026, 11, 20, 16, 30), TimeLimit(4, "working_hours"), CAL) == local(
        2026, 11, 23, 11, 30
    )


def test_received_on_saturday_night_starts_monday_morning() -> None:
    assert due_at(local(2026, 11, 21, 23, 0), TimeLimit(3, "working_hours"), CAL) == local(
        2026, 11, 23, 11, 30
    )


def test_a_working_period_used_up_exactly_ends_at_its_close() -> None:
    assert due_at(local(2026, 11, 23, 8, 30), TimeLimit(3.5, "working_hours"), CAL) == local(
        2026, 11, 23, 12, 0
    )


def test_working_hours_skip_a_holiday_week() -> None:
    # Tuesday 30 Sep 16:30 + 4 working hours: 1 h that day, then 1-8 Oct are holidays or a
    # weekend, so the other 3 h run on Thursday 9 Oct.
    assert due_at(
        local(2025, 9, 30, 16, 30), TimeLimit(4, "working_hours"), NATIONAL_DAY_2025
    ) == local(2025, 10, 9, 11, 30)


def test_make_up_days_are_worked() -> None:
    # Received on Saturday 27 Sep: Sunday 28 Sep is a make-up day, so a whole working day
    # runs on it.
    assert due_at(
        local(2025, 9, 27, 20, 0), TimeLimit(1, "working_days"), NATIONAL_DAY_2025
    ) == local(2025, 9, 28, 17, 30)
    # Friday 10 Oct 16:30 + 2 working hours: 1 h on Friday, 1 h on make-up Saturday 11 Oct.
    assert due_at(
        local(2025, 10, 10, 16, 30), TimeLimit(2, "working_hours"), NATIONAL_DAY_2025
    ) == local(2025, 10, 11, 9, 30)
    # Without the make-up day the same report waits for Monday.
    assert due_at(local(2025, 10, 10, 16, 30), TimeLimit(2, "working_hours"), CAL) == local(
        2025, 10, 13, 9, 30
    )


def test_working_day_is_a_day_of_working_hours() -> None:
    # Monday 09:00 + 1 working day (7.5 h) ends Tuesday 09:00
    assert due_at(local(2026, 11, 23, 9, 0), TimeLimit(1, "working_days"), CAL) == local(
        2026, 11, 24, 9, 0
    )


def test_five_working_days_span_a_weekend() -> None:
    # Wednesday 10:00 + 5 working days ends the next Wednesday 10:00
    assert due_at(local(2026, 11, 25, 10, 0), TimeLimit(5, "working_days"), CAL) == local(
        2026, 12, 2, 10, 0
    )


def test_result_is_utc_aware() -> None:
    for limit in (TimeLimit(6, "hours"), TimeLimit(1, "working_hours")):
        due = due_at(local(2026, 11, 23, 9, 0), limit, CAL)
        assert due is not None and due.tzinfo is UTC


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due_at(datetime(2026, 11, 23, 9, 0), TimeLimit(1, "hours"), CAL)
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.add_working_time(datetime(2026, 11, 23, 9, 0), timedelta(hours=1))


def test_no_limit_no_due_time() -> None:
    assert due_at(local(2026, 11, 23, 9, 0), None, CAL) is None


def test_received_in_utc_counts_in_local_hours() -> None:
    # 00:00 UTC Monday is 08:00 in Shanghai: half an hour before the office opens
    received = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    assert due_at(received, TimeLimit(1, "working_hours"), CAL) == local(2026, 11, 23, 9, 30)


def test_calendar_in_a_daylight_saving_zone() -> None:
    # Europe/Berlin moves its clocks back on Sunday 26 Oct 2025: a 25-hour day. Working time
    # still counts real hours, and Monday 08:30 in Berlin is 07:30 UTC.
    berlin = WorkingCalendar(timezone="Europe/Berlin")
    received = datetime(2025, 10, 24, 17, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    due = due_at(received, TimeLimit(1, "working_hours"), berlin)
    assert due == datetime(2025, 10, 27, 8, 0, tzinfo=UTC)
