from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from routing.sla import TimeLimit, WorkingCalendar, due_at, parse_time_limit

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkingCalendar()
TAXONOMY = Path(__file__).resolve().parents[2] / "models" / "seed" / "taxonomy.csv"


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6 hours", TimeLimit(6, "hours")),
        ("4 working hours", TimeLimit(4, "working_hours")),
        ("1 working day", TimeLimit(1, "working_days")),
        ("5 working days", TimeLimit(5, "working_days")),
        ("3 urgent working hours", TimeLimit(3, "working_hours")),
        ("2 days", TimeLimit(48, "hours")),
        ("", None),
        (None, None),
    ],
)
def test_parse(text: str | None, expected: TimeLimit | None) -> None:
    assert parse_time_limit(text) == expected


def test_every_taxonomy_limit_parses() -> None:
    with TAXONOMY.open(encoding="utf-8") as handle:
        limits = [row["time_limit"] for row in csv.DictReader(handle)]
    parsed = [parse_time_limit(text) for text in limits if text]
    assert len(parsed) == 6 and all(parsed)


@pytest.mark.parametrize("text", ["soon", "6", "hours 6", "-1 hours"])
def test_unreadable_limits_are_named(text: str) -> None:
    with pytest.raises(ValueError, match="unreadable"):
        parse_time_limit(text)


def test_describe() -> None:
    assert TimeLimit(1, "working_days").describe() == "1 working day"
    assert TimeLimit(4, "working_hours").describe() == "4 working hours"


def test_calendar_day_length() -> None:
    assert CAL.hours_per_day == 7.5


def test_wall_clock_hours_cross_midnight() -> None:
    assert due_at(local(2026, 11, 20, 22, 0), TimeLimit(6, "hours"), CAL) == local(
        2026, 11, 21, 4, 0
    )


def test_working_hours_skip_lunch() -> None:
    # Friday 11:00 + 2 working hours: 1 h before lunch, 1 h after 13:30
    assert due_at(local(2026, 11, 20, 11, 0), TimeLimit(2, "working_hours"), CAL) == local(
        2026, 11, 20, 14, 30
    )


def test_working_hours_cross_the_evening_and_weekend() -> None:
    # Friday 16:30 + 4 working hours: 1 h on Friday, 3 h from Monday 08:30
    assert due_at(local(2026, 11, 20, 16, 30), TimeLimit(4, "working_hours"), CAL) == local(
        2026, 11, 23, 11, 30
    )


def test_saturday_night_starts_monday_morning() -> None:
    assert due_at(local(2026, 11, 21, 23, 0), TimeLimit(1, "working_hours"), CAL) == local(
        2026, 11, 23, 9, 30
    )


def test_working_day_is_a_day_of_working_hours() -> None:
    # Monday 09:00 + 7.5 working hours ends Tuesday 09:00
    assert due_at(local(2026, 11, 23, 9, 0), TimeLimit(1, "working_days"), CAL) == local(
        2026, 11, 24, 9, 0
    )


def test_holidays_and_make_up_days() -> None:
    calendar = WorkingCalendar(
        holidays=frozenset({date(2026, 10, 1), date(2026, 10, 2)}),
        extra_workdays=frozenset({date(2026, 10, 10)}),
    )
    # Wednesday 30 Sep 17:00 + 1 working hour: 0.5 h that day; 1-2 Oct are holidays and
    # 3-4 Oct a weekend, so the other 0.5 h falls on Monday 5 Oct.
    assert due_at(local(2026, 9, 30, 17, 0), TimeLimit(1, "working_hours"), calendar) == local(
        2026, 10, 5, 9, 0
    )
    assert calendar.is_working_day(date(2026, 10, 10))
    assert not calendar.is_working_day(date(2026, 10, 1))


def test_result_is_utc_and_naive_input_is_refused() -> None:
    due = due_at(local(2026, 11, 23, 9, 0), TimeLimit(1, "working_hours"), CAL)
    assert due is not None and due.tzinfo == UTC
    with pytest.raises(ValueError):
        due_at(datetime(2026, 11, 23, 9, 0), TimeLimit(1, "hours"), CAL)


def test_no_limit_no_due_time() -> None:
    assert due_at(local(2026, 11, 23, 9, 0), None, CAL) is None


def test_received_in_utc_counts_in_local_hours() -> None:
    # 01:00 UTC is 09:00 in Shanghai
    received = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    assert due_at(received, TimeLimit(1, "working_hours"), CAL) == received + timedelta(hours=1)
