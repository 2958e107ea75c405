from __future__ import annotations

import csv
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from routing.sla import (
    OFFICE_HOURS,
    CalendarError,
    TimeLimit,
    WorkingCalendar,
    allowance,
    calendar_from_data,
    due_at,
    parse_time_limit,
    same_hours,
    time_left,
    weekly_hours_data,
    working_time_between,
)

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkingCalendar()
TAXONOMY = Path(__file__).resolve().parents[2] / "models" / "seed" / "taxonomy.csv"

# China's 2025 National Day and Mid-Autumn break: Wed 1 to Wed 8 October off, with Sunday
# 28 September and Saturday 11 October worked in exchange (调休).
MONDAY_ONLY = same_hours(OFFICE_HOURS, [0])
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
    assert WorkingCalendar(week=same_hours(((time(9), time(17)),))).hours_per_day == 8


def test_working_days_follow_holidays_and_make_up_days() -> None:
    assert NATIONAL_DAY_2025.is_working_day(date(2025, 9, 30))  # Tuesday
    assert not NATIONAL_DAY_2025.is_working_day(date(2025, 10, 1))  # holiday Wednesday
    assert not NATIONAL_DAY_2025.is_working_day(date(2025, 9, 27))  # ordinary Saturday
    assert NATIONAL_DAY_2025.is_working_day(date(2025, 9, 28))  # make-up Sunday
    assert NATIONAL_DAY_2025.is_working_day(date(2025, 10, 11))  # make-up Saturday


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"timezone": "zone.tab"}, "timezone"),
        ({"timezone": "Asia"}, "timezone"),
        ({"week": same_hours(())}, "weekly_hours"),
        ({"week": MONDAY_ONLY[:6]}, "weekly_hours"),
        ({"week": same_hours(((time(12), time(9)),))}, "weekly_hours.mon.0"),
        ({"week": same_hours(((time(8), time(12)), (time(11), time(17))))}, "weekly_hours.mon.1"),
        ({"week": same_hours(((time(13), time(17)), (time(8), time(12))))}, "weekly_hours.mon.1"),
        (
            {"week": same_hours(((time(8, tzinfo=UTC), time(12)),))},
            "weekly_hours.mon.0",
        ),
        (
            {
                "holidays": frozenset({date(2025, 1, 1)}),
                "extra_workdays": frozenset({date(2025, 1, 1)}),
            },
            "days",
        ),
    ],
)
def test_broken_calendars_are_refused_naming_the_field(changes: dict, field: str) -> None:
    with pytest.raises(CalendarError) as refused:
        WorkingCalendar(**changes)
    assert refused.value.field == field


def test_calendar_without_working_time_ahead_does_not_loop_forever() -> None:
    # Only Mondays are worked, and every Monday for more than ten years is a holiday.
    first = date(2026, 11, 23)
    mondays = frozenset(first + timedelta(weeks=n) for n in range(600))
    never = WorkingCalendar(week=MONDAY_ONLY, holidays=mondays)
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


# --- the seeded calendar: the State Council's 2026 arrangement ------------------------------

SEED_CALENDARS = Path(__file__).resolve().parents[2] / "models" / "seed" / "calendars.json"


def seeded_default() -> WorkingCalendar:
    import json

    data = json.loads(SEED_CALENDARS.read_text(encoding="utf-8"))
    (default,) = [c for c in data["calendars"] if c["name"] == "default"]
    return calendar_from_data(default["timezone"], default["weekly_hours"], default["days"])


CN_2026 = seeded_default()


def test_the_seeded_calendar_holds_the_2026_notice() -> None:
    # 国务院办公厅关于2026年部分节假日安排的通知: 7 holidays, 33 days off, 6 adjusted workdays.
    assert len(CN_2026.holidays) == 33 and all(d.year == 2026 for d in CN_2026.holidays)
    assert CN_2026.extra_workdays == {
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    }
    # every adjusted workday falls on a weekend, and every weekday holiday is a day off
    assert all(d.weekday() >= 5 for d in CN_2026.extra_workdays)
    assert CN_2026.hours_per_day == 7.5 and CN_2026.timezone == "Asia/Shanghai"
    spring_festival = [date(2026, 2, 15) + timedelta(days=n) for n in range(9)]
    assert not any(CN_2026.is_working_day(d) for d in spring_festival)
    assert CN_2026.is_working_day(date(2026, 2, 24))  # back at work on Tuesday


def test_a_limit_crossing_lunch_on_the_seeded_calendar() -> None:
    # Tuesday 24 Nov 2026 11:30 + 1 working hour: 30 min before lunch, 30 min from 13:30
    assert due_at(local(2026, 11, 24, 11, 30), TimeLimit(1, "working_hours"), CN_2026) == local(
        2026, 11, 24, 14, 0
    )


def test_a_limit_crossing_a_weekend_on_the_seeded_calendar() -> None:
    # Friday 27 Nov 2026 17:00 + 1 working hour: 30 min on Friday, 30 min on Monday
    assert due_at(local(2026, 11, 27, 17, 0), TimeLimit(1, "working_hours"), CN_2026) == local(
        2026, 11, 30, 9, 0
    )


def test_national_day_2026_stops_the_clock_and_the_adjusted_saturday_runs_it() -> None:
    # Wednesday 30 Sep 2026 16:30 + 4 working hours: 1 h that day; 1-7 Oct are holidays,
    # Thursday 8 Oct runs the other 3 h.
    assert due_at(local(2026, 9, 30, 16, 30), TimeLimit(4, "working_hours"), CN_2026) == local(
        2026, 10, 8, 11, 30
    )
    # Friday 9 Oct 16:30 + 2 working hours: 1 h on Friday, 1 h on Saturday 10 Oct (调休)
    assert due_at(local(2026, 10, 9, 16, 30), TimeLimit(2, "working_hours"), CN_2026) == local(
        2026, 10, 10, 9, 30
    )
    # the same report on a calendar without the arrangement waits for Monday
    assert due_at(local(2026, 10, 9, 16, 30), TimeLimit(2, "working_hours"), CAL) == local(
        2026, 10, 12, 9, 30
    )


def test_an_adjusted_sunday_is_a_whole_working_day() -> None:
    # Received on Saturday 19 Sep 2026 at noon; Sunday 20 Sep is worked (调休 for National Day)
    assert due_at(local(2026, 9, 19, 12, 0), TimeLimit(1, "working_days"), CN_2026) == local(
        2026, 9, 20, 17, 30
    )


def test_spring_festival_holds_five_working_days_back_a_fortnight() -> None:
    # Friday 13 Feb 2026 10:00 + 5 working days: 13 Feb, adjusted Saturday 14 Feb, then
    # nothing until Tuesday 24 Feb: 6 + 7.5 + 3 × 7.5 h by Thursday night, and the last 1.5 h
    # end on Friday 27 Feb at 10:00, two weeks after the report.
    assert due_at(local(2026, 2, 13, 10, 0), TimeLimit(5, "working_days"), CN_2026) == local(
        2026, 2, 27, 10, 0
    )


def test_the_holiday_is_the_local_date_not_the_utc_one() -> None:
    # 23:30 UTC on Wednesday 30 Sep 2026 is 07:30 on 1 Oct in Shanghai: a holiday there, so
    # the clock starts on Thursday 8 Oct, although 30 Sep is a working day in UTC.
    received = datetime(2026, 9, 30, 23, 30, tzinfo=UTC)
    assert due_at(received, TimeLimit(1, "working_hours"), CN_2026) == local(2026, 10, 8, 9, 30)
    # and 15:30 UTC on 30 Sep is 23:30 local: after hours on a working day
    late = datetime(2026, 9, 30, 15, 30, tzinfo=UTC)
    assert due_at(late, TimeLimit(1, "working_hours"), CN_2026) == local(2026, 10, 8, 9, 30)


def test_a_calendar_reads_its_hours_in_its_own_zone() -> None:
    # The same week and the same instant, in Urumqi (UTC+6) rather than Shanghai (UTC+8):
    # 01:00 UTC is 09:00 in Shanghai (open) but 07:00 in Urumqi (not yet).
    urumqi = WorkingCalendar(timezone="Asia/Urumqi")
    received = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    assert due_at(received, TimeLimit(1, "working_hours"), CAL) == received + timedelta(hours=1)
    assert due_at(received, TimeLimit(1, "working_hours"), urumqi) == datetime(
        2026, 11, 23, 3, 30, tzinfo=UTC
    )


# --- weekly hours as data -------------------------------------------------------------------


def test_each_weekday_has_hours_of_its_own() -> None:
    # Friday afternoons off; Saturday mornings worked.
    week = list(same_hours(OFFICE_HOURS))
    week[4] = ((time(8, 30), time(12, 0)),)
    week[5] = ((time(9, 0), time(11, 0)),)
    short_friday = WorkingCalendar(week=tuple(week))
    assert short_friday.is_working_day(date(2026, 11, 28))  # Saturday
    # Friday 11:00 + 2 working hours: 1 h on Friday, 1 h on Saturday from 09:00
    assert due_at(local(2026, 11, 27, 11, 0), TimeLimit(2, "working_hours"), short_friday) == local(
        2026, 11, 28, 10, 0
    )
    # Saturday 10:30 + 1 working hour: 30 min on Saturday, 30 min on Monday
    assert due_at(
        local(2026, 11, 28, 10, 30), TimeLimit(1, "working_hours"), short_friday
    ) == local(2026, 11, 30, 9, 0)


def test_an_adjusted_workday_works_the_standard_day() -> None:
    # Monday's hours are the standard day; an adjusted Sunday works them, not Sunday's none.
    week = list(same_hours(((time(9), time(12)),), [0, 1, 2, 3, 4]))
    week[4] = ((time(9), time(10)),)
    calendar = WorkingCalendar(week=tuple(week), extra_workdays=frozenset({date(2026, 11, 29)}))
    assert calendar.standard_day == ((time(9), time(12)),)
    assert calendar.hours_on(date(2026, 11, 29)) == ((time(9), time(12)),)
    assert calendar.hours_on(date(2026, 11, 27)) == ((time(9), time(10)),)
    assert calendar.hours_per_day == 3


def test_calendar_from_data_round_trips() -> None:
    hours = weekly_hours_data(CAL)
    assert hours["mon"] == [
        {"start": "08:30", "end": "12:00"},
        {"start": "13:30", "end": "17:30"},
    ]
    assert hours["sat"] == [] and list(hours) == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    days = [
        {"date": "2025-10-01", "kind": "holiday", "name": "国庆节"},
        {"date": "2025-10-11", "kind": "workday"},
    ]
    built = calendar_from_data("Asia/Shanghai", hours, days)
    assert built.week == CAL.week
    assert built.holidays == {date(2025, 10, 1)}
    assert built.extra_workdays == {date(2025, 10, 11)}


WEEK = weekly_hours_data(CAL)


@pytest.mark.parametrize(
    ("timezone", "weekly_hours", "days", "field"),
    [
        ("Nowhere/City", WEEK, [], "timezone"),
        ("Asia/Shanghai", {k: v for k, v in WEEK.items() if k != "sun"}, [], "weekly_hours.sun"),
        ("Asia/Shanghai", {**WEEK, "holiday": []}, [], "weekly_hours.holiday"),
        (
            "Asia/Shanghai",
            {**WEEK, "tue": [{"start": "8:30", "end": "12:00"}]},
            [],
            "weekly_hours.tue.0.start",
        ),
        (
            "Asia/Shanghai",
            {**WEEK, "wed": [{"start": "08:30", "end": "24:00"}]},
            [],
            "weekly_hours.wed.0.end",
        ),
        (
            "Asia/Shanghai",
            {**WEEK, "thu": [{"start": "08:30"}]},
            [],
            "weekly_hours.thu.0.end",
        ),
        (
            "Asia/Shanghai",
            {
                **WEEK,
                "fri": [{"start": "13:00", "end": "17:00"}, {"start": "08:00", "end": "12:00"}],
            },
            [],
            "weekly_hours.fri.1",
        ),
        ("Asia/Shanghai", {day: [] for day in WEEK}, [], "weekly_hours"),
        ("Asia/Shanghai", WEEK, [{"date": "2026-02-30", "kind": "holiday"}], "days.0.date"),
        ("Asia/Shanghai", WEEK, [{"date": "2026-10-01", "kind": "day off"}], "days.0.kind"),
        (
            "Asia/Shanghai",
            WEEK,
            [{"date": "2026-10-01", "kind": "holiday"}, {"date": "2026-10-01", "kind": "workday"}],
            "days.1.date",
        ),
    ],
)
def test_calendar_data_is_refused_naming_the_field(
    timezone: str, weekly_hours: dict, days: list, field: str
) -> None:
    with pytest.raises(CalendarError) as refused:
        calendar_from_data(timezone, weekly_hours, days)
    assert refused.value.field == field


# --- working time between two moments ---------------------------------------------------------


def test_working_time_between_skips_lunch_nights_weekends_and_holidays() -> None:
    between = working_time_between
    # a morning
    assert between(local(2026, 11, 23, 9, 0), local(2026, 11, 23, 11, 0), CAL) == timedelta(hours=2)
    # across lunch: 11:00-12:00 and 13:30-14:00
    assert between(local(2026, 11, 23, 11, 0), local(2026, 11, 23, 14, 0), CAL) == timedelta(
        hours=1.5
    )
    # Friday 17:00 to Monday 09:00: 30 min + 30 min
    assert between(local(2026, 11, 27, 17, 0), local(2026, 11, 30, 9, 0), CAL) == timedelta(hours=1)
    # a whole week, Monday 00:00 to Monday 00:00: five days of 7.5 h
    assert between(local(2026, 11, 23), local(2026, 11, 30), CAL) == timedelta(hours=37.5)
    # National Day 2026: 1 to 7 Oct count nothing; 10 Oct (adjusted Saturday) counts 7.5 h
    assert between(local(2026, 10, 1), local(2026, 10, 8), CN_2026) == timedelta(0)
    assert between(local(2026, 10, 10), local(2026, 10, 11), CN_2026) == timedelta(hours=7.5)
    # the same moment, or a span outside hours, is nothing
    assert between(local(2026, 11, 23, 20), local(2026, 11, 23, 20), CAL) == timedelta(0)
    assert between(local(2026, 11, 23, 12), local(2026, 11, 23, 13, 30), CAL) == timedelta(0)


def test_working_time_between_agrees_with_adding_working_time() -> None:
    start = local(2026, 9, 18, 15, 10)
    for hours in (0.5, 1, 3.5, 7.5, 12, 40, 80):
        due = CN_2026.add_working_time(start, timedelta(hours=hours))
        assert working_time_between(start, due, CN_2026) == timedelta(hours=hours), hours


def test_working_time_between_refuses_a_backwards_span_and_naive_times() -> None:
    with pytest.raises(ValueError, match="before"):
        working_time_between(local(2026, 11, 24), local(2026, 11, 23), CAL)
    with pytest.raises(ValueError, match="timezone-aware"):
        working_time_between(datetime(2026, 11, 23), local(2026, 11, 24), CAL)


# --- urgent categories count a 24-hour clock --------------------------------------------------


def test_urgent_working_hours_run_day_and_night() -> None:
    # Friday 17:00 + 4 working hours: an urgent case is due at 21:00 the same evening; a
    # normal one runs 30 min on Friday and 3.5 h on Monday.
    limit = TimeLimit(4, "working_hours")
    received = local(2026, 11, 27, 17, 0)
    assert due_at(received, limit, CN_2026, urgent=True) == local(2026, 11, 27, 21, 0)
    assert due_at(received, limit, CN_2026) == local(2026, 11, 30, 12, 0)


def test_an_urgent_working_day_is_24_hours_even_over_a_holiday() -> None:
    received = local(2026, 9, 30, 16, 0)
    assert due_at(received, TimeLimit(1, "working_days"), CN_2026, urgent=True) == local(
        2026, 10, 1, 16, 0
    )
    assert due_at(received, TimeLimit(1, "working_days"), CN_2026) == local(2026, 10, 8, 16, 0)


def test_wall_clock_hours_are_the_same_urgent_or_not() -> None:
    received = local(2026, 10, 2, 22, 0)
    for urgent in (False, True):
        assert due_at(received, TimeLimit(6, "hours"), CN_2026, urgent=urgent) == local(
            2026, 10, 3, 4, 0
        )


def test_allowance_names_the_clock() -> None:
    assert allowance(None, CAL) is None
    assert allowance(TimeLimit(6, "hours"), CAL).clock == "wall"  # type: ignore[union-attr]
    normal = allowance(TimeLimit(2, "working_days"), CAL)
    urgent = allowance(TimeLimit(2, "working_days"), CAL, urgent=True)
    assert normal is not None and (normal.clock, normal.time) == ("working", timedelta(hours=15))
    assert urgent is not None and (urgent.clock, urgent.time) == ("wall", timedelta(hours=48))


# --- the clock pauses while a case waits ------------------------------------------------------


def test_a_pause_in_working_hours_moves_the_due_time_by_the_working_time_paused() -> None:
    limit = TimeLimit(4, "working_hours")
    received = local(2026, 11, 23, 9, 0)  # Monday, due 14:30 without a pause
    assert due_at(received, limit, CAL) == local(2026, 11, 23, 14, 30)
    # waiting 10:00-11:00: one working hour paused, due 15:30
    pause = (local(2026, 11, 23, 10, 0), local(2026, 11, 23, 11, 0))
    assert due_at(received, limit, CAL, pauses=[pause]) == local(2026, 11, 23, 15, 30)
    # waiting from 11:00 to Tuesday 09:00: 2 h were used before it, the other 2 h run from
    # Tuesday 09:00, however much working time the pause held (1 + 4 + 0.5 h)
    long = (local(2026, 11, 23, 11, 0), local(2026, 11, 24, 9, 0))
    assert due_at(received, limit, CAL, pauses=[long]) == local(2026, 11, 24, 11, 0)


def test_a_pause_outside_working_hours_changes_nothing_on_the_working_clock() -> None:
    limit = TimeLimit(4, "working_hours")
    received = local(2026, 11, 27, 16, 0)  # Friday: 1.5 h Friday, 2.5 h Monday -> 11:00
    weekend = (local(2026, 11, 28, 10, 0), local(2026, 11, 29, 18, 0))
    assert due_at(received, limit, CAL, pauses=[weekend]) == local(2026, 11, 30, 11, 0)
    # but the same pause stops an urgent (wall) clock for 32 hours
    urgent = due_at(received, limit, CAL, urgent=True, pauses=[weekend])
    assert urgent == local(2026, 11, 27, 20, 0)  # due before the pause started: unchanged
    late = local(2026, 11, 28, 8, 0)
    assert due_at(late, limit, CAL, urgent=True, pauses=[weekend]) == local(2026, 11, 29, 20, 0)


def test_several_pauses_overlapping_or_unordered_count_once() -> None:
    limit = TimeLimit(2, "working_hours")
    received = local(2026, 11, 23, 9, 0)  # due 11:00 without pauses
    pauses = [
        (local(2026, 11, 23, 10, 30), local(2026, 11, 23, 11, 0)),
        (local(2026, 11, 23, 9, 30), local(2026, 11, 23, 10, 0)),
        (local(2026, 11, 23, 9, 45), local(2026, 11, 23, 10, 15)),
    ]
    # 9:30-10:15 and 10:30-11:00 paused: 75 min, so due 12:00 + 15 min after lunch
    assert due_at(received, limit, CAL, pauses=pauses) == local(2026, 11, 23, 13, 45)


def test_a_pause_after_the_due_time_leaves_it_overdue() -> None:
    received = local(2026, 11, 23, 9, 0)
    after = (local(2026, 11, 23, 15, 0), local(2026, 11, 25, 9, 0))
    assert due_at(received, TimeLimit(4, "working_hours"), CAL, pauses=[after]) == local(
        2026, 11, 23, 14, 30
    )


def test_a_pause_before_the_case_was_received_counts_only_from_receipt() -> None:
    received = local(2026, 11, 23, 9, 0)
    earlier = (local(2026, 11, 22, 9, 0), local(2026, 11, 23, 10, 0))
    assert due_at(received, TimeLimit(1, "working_hours"), CAL, pauses=[earlier]) == local(
        2026, 11, 23, 11, 0
    )


def test_a_running_pause_has_no_due_time_yet_but_has_time_left() -> None:
    received = local(2026, 11, 23, 9, 0)
    limit = TimeLimit(4, "working_hours")
    waiting = [(local(2026, 11, 23, 10, 0), None)]
    with pytest.raises(ValueError, match="paused"):
        due_at(received, limit, CAL, pauses=waiting)
    # an hour used before the pause, three left however long it lasts
    for at in (local(2026, 11, 23, 10, 30), local(2026, 11, 25, 16, 0)):
        assert time_left(received, limit, CAL, at, pauses=waiting) == timedelta(hours=3)


def test_broken_pauses_are_refused() -> None:
    received = local(2026, 11, 23, 9, 0)
    backwards = (local(2026, 11, 23, 11, 0), local(2026, 11, 23, 10, 0))
    with pytest.raises(ValueError, match="ends before"):
        due_at(received, TimeLimit(4, "working_hours"), CAL, pauses=[backwards])
    naive = (datetime(2026, 11, 23, 10, 0), local(2026, 11, 23, 11, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        due_at(received, TimeLimit(4, "working_hours"), CAL, pauses=[naive])


# --- an approved extension adds time on the case's own clock ----------------------------------


def test_an_extension_adds_working_hours_to_a_working_hour_limit() -> None:
    received = local(2026, 11, 27, 16, 0)  # Friday; 4 working hours end Monday 11:00
    limit = TimeLimit(4, "working_hours")
    assert due_at(received, limit, CAL, extension_hours=2) == local(2026, 11, 30, 14, 30)
    # working days: 1 day (7.5 h) + 7.5 h extension is two working days
    assert due_at(received, TimeLimit(1, "working_days"), CAL, extension_hours=7.5) == local(
        2026, 12, 1, 16, 0
    )


def test_an_extension_adds_wall_hours_to_an_urgent_or_wall_clock_limit() -> None:
    received = local(2026, 11, 27, 16, 0)
    assert due_at(
        received, TimeLimit(4, "working_hours"), CAL, urgent=True, extension_hours=24
    ) == local(2026, 11, 28, 20, 0)
    assert due_at(received, TimeLimit(6, "hours"), CAL, extension_hours=2) == local(
        2026, 11, 28, 0, 0
    )


def test_an_extension_and_a_pause_together() -> None:
    received = local(2026, 11, 23, 9, 0)
    pause = (local(2026, 11, 23, 10, 0), local(2026, 11, 23, 11, 0))
    # 4 h + 1 h extension, 1 h paused: 6 working hours from 09:00 end 16:30
    assert due_at(
        received, TimeLimit(4, "working_hours"), CAL, pauses=[pause], extension_hours=1
    ) == local(2026, 11, 23, 16, 30)


@pytest.mark.parametrize("hours", [-1.0, float("nan"), float("inf")])
def test_impossible_extensions_are_refused(hours: float) -> None:
    with pytest.raises(ValueError, match="extension"):
        due_at(local(2026, 11, 23, 9), TimeLimit(1, "working_hours"), CAL, extension_hours=hours)


# --- time left ------------------------------------------------------------------------------


def test_time_left_counts_down_on_the_case_clock_and_goes_negative_when_overdue() -> None:
    received = local(2026, 11, 27, 16, 0)  # Friday; 4 working hours, due Monday 11:00
    limit = TimeLimit(4, "working_hours")
    assert time_left(received, limit, CAL, received) == timedelta(hours=4)
    # the weekend costs nothing
    assert time_left(received, limit, CAL, local(2026, 11, 29, 12, 0)) == timedelta(hours=2.5)
    assert time_left(received, limit, CAL, local(2026, 11, 30, 11, 0)) == timedelta(0)
    assert time_left(received, limit, CAL, local(2026, 11, 30, 14, 0)) == timedelta(hours=-1.5)
    # an urgent case spends the weekend
    urgent = time_left(received, limit, CAL, local(2026, 11, 27, 22, 0), urgent=True)
    assert urgent == timedelta(hours=-2)
    assert time_left(received, None, CAL, local(2026, 11, 30)) is None


def test_time_left_and_due_at_agree() -> None:
    received = local(2026, 9, 29, 15, 0)
    limit = TimeLimit(1, "working_days")
    pauses = [(local(2026, 9, 30, 9, 0), local(2026, 10, 9, 9, 0))]
    due = due_at(received, limit, CN_2026, pauses=pauses, extension_hours=2)
    assert due is not None
    assert time_left(received, limit, CN_2026, due, pauses=pauses, extension_hours=2) == (
        timedelta(0)
    )
