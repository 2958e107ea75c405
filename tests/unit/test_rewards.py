"""The points rules as pure decisions: who earns what when a case closes as fixed, whom the
rules skip and why, and reversals that cancel exactly their awards."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from routing.rewards import (
    ALREADY_AWARDED,
    DAILY_CAP,
    FIRST_REPORT,
    ME_TOO,
    NO_POINTS,
    SPLIT_PROBLEM,
    CaseFootprint,
    CaseReport,
    PointsPolicy,
    StandingAward,
    decide_awards,
    decide_reversals,
    local_day,
    same_problem,
)

POLICY = PointsPolicy()
# 10:00 in Shanghai on 3 December 2026.
MORNING = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
LAT, LON = 31.154114, 121.737424
# About 0.00045 degrees of latitude is 50 m.
FIFTY_M_NORTH = LAT + 0.00045
TWO_HUNDRED_M_NORTH = LAT + 0.0018


def case(
    case_id: int = 1, category: str | None = "garbage_overflow", **changes: object
) -> CaseFootprint:
    values: dict[str, object] = {"lat": LAT, "lon": LON, "first_received_at": MORNING}
    values.update(changes)
    return CaseFootprint(case_id, category, **values)  # type: ignore[arg-type]


def report(report_id: int, reporter_id: int, minutes: int = 0) -> CaseReport:
    return CaseReport(report_id, reporter_id, MORNING + timedelta(minutes=minutes))


def standing(
    reporter_id: int, on: CaseFootprint, points: int = 10, entry_id: int = 1
) -> StandingAward:
    return StandingAward(entry_id, reporter_id, on, report_id=None, points=points)


def test_the_first_reporter_earns_full_points_and_me_too_reporters_fewer() -> None:
    decision = decide_awards(
        case(), [report(2, 200, minutes=5), report(1, 100), report(3, 300, 9)], [], {}, POLICY
    )
    assert [(a.reporter_id, a.report_id, a.points, a.reason) for a in decision.awards] == [
        (100, 1, 10, FIRST_REPORT),
        (200, 2, 3, ME_TOO),
        (300, 3, 3, ME_TOO),
    ]
    assert decision.skips == () and decision.reversals == ()


def test_several_reports_by_one_reporter_earn_once_on_the_earliest() -> None:
    decision = decide_awards(
        case(), [report(7, 100, 30), report(5, 100, 0), report(6, 200, 10)], [], {}, POLICY
    )
    assert [(a.reporter_id, a.report_id, a.points) for a in decision.awards] == [
        (100, 5, 10),
        (200, 6, 3),
    ]


def test_a_tie_in_time_goes_to_the_lower_report_id() -> None:
    decision = decide_awards(case(), [report(9, 900), report(8, 800)], [], {}, POLICY)
    assert decision.awards[0].reporter_id == 800 and decision.awards[0].reason == FIRST_REPORT


def test_a_standing_award_on_the_same_case_is_never_repeated() -> None:
    this = case()
    decision = decide_awards(
        this, [report(1, 100), report(2, 200, 1)], [standing(100, this)], {}, POLICY
    )
    assert [(s.reporter_id, s.reason) for s in decision.skips] == [(100, ALREADY_AWARDED)]
    assert [(a.reporter_id, a.reason, a.points) for a in decision.awards] == [(200, ME_TOO, 3)]


def test_one_problem_split_into_several_cases_earns_once() -> None:
    earlier = case(case_id=1)
    nearby_same_day = case(
        case_id=2, lat=FIFTY_M_NORTH, first_received_at=MORNING + timedelta(hours=8)
    )
    decision = decide_awards(
        nearby_same_day, [report(5, 100)], [standing(100, earlier)], {}, POLICY
    )
    assert decision.awards == ()
    assert [(s.reporter_id, s.reason) for s in decision.skips] == [(100, SPLIT_PROBLEM)]
    assert "case 1" in decision.skips[0].note


@pytest.mark.parametrize(
    "other",
    [
        case(case_id=2, lat=TWO_HUNDRED_M_NORTH),  # too far
        case(case_id=2, category="street_light"),  # another problem
        case(case_id=2, first_received_at=MORNING + timedelta(days=1)),  # another day
        case(case_id=2, lat=None, lon=None),  # nowhere to compare
        case(case_id=2, category=None),
    ],
)
def test_not_a_split_when_far_another_category_another_day_or_unplaced(
    other: CaseFootprint,
) -> None:
    decision = decide_awards(other, [report(5, 100)], [standing(100, case(case_id=1))], {}, POLICY)
    assert [(a.reporter_id, a.points, a.reason) for a in decision.awards] == [
        (100, 10, FIRST_REPORT)
    ]


def test_the_split_window_counts_local_days_in_the_city_time_zone() -> None:
    # 23:30 and 00:30 in Shanghai: two local days, though one UTC day.
    late = datetime(2026, 12, 3, 15, 30, tzinfo=UTC)
    a = case(case_id=1, first_received_at=late)
    b = case(case_id=2, first_received_at=late + timedelta(hours=1))
    assert not same_problem(a, b, POLICY)
    assert same_problem(a, b, PointsPolicy(split_window_days=2))
    assert not same_problem(a, b, PointsPolicy(timezone="UTC", split_window_days=0))
    assert same_problem(a, b, PointsPolicy(timezone="UTC"))
    assert not same_problem(a, a, POLICY)  # a case is no split of itself


def test_another_reporters_award_does_not_count_as_a_split() -> None:
    decision = decide_awards(
        case(case_id=2), [report(5, 100)], [standing(999, case(case_id=1))], {}, POLICY
    )
    assert decision.awards[0].points == 10


def test_the_daily_cap_trims_an_award_then_skips_it() -> None:
    reports = [report(1, 100), report(2, 200, 1), report(3, 300, 2)]
    decision = decide_awards(case(), reports, [], {100: 25, 200: 30, 300: 29}, POLICY)
    assert [(a.reporter_id, a.points) for a in decision.awards] == [(100, 5), (300, 1)]
    assert "Trimmed from 10 to 5" in decision.awards[0].note
    assert [(s.reporter_id, s.reason) for s in decision.skips] == [(200, DAILY_CAP)]


def test_over_the_cap_already_is_a_skip_not_a_negative_award() -> None:
    decision = decide_awards(case(), [report(1, 100)], [], {100: 45}, POLICY)
    assert decision.awards == () and decision.skips[0].reason == DAILY_CAP


def test_zero_points_policy_awards_nothing() -> None:
    policy = PointsPolicy(first_report=0)
    decision = decide_awards(case(), [report(1, 100), report(2, 200, 1)], [], {}, policy)
    assert [(a.reporter_id, a.points) for a in decision.awards] == [(200, 3)]
    assert [(s.reporter_id, s.reason) for s in decision.skips] == [(100, NO_POINTS)]


def test_no_reports_no_awards() -> None:
    assert decide_awards(case(), [], [], {}, POLICY).awards == ()


def test_reversals_cancel_exactly_each_standing_award_once() -> None:
    on = case()
    awards = [standing(200, on, points=3, entry_id=8), standing(100, on, points=7, entry_id=4)]
    decision = decide_reversals(awards, "closed_invalid")
    assert [(r.reverses_id, r.reporter_id, r.points, r.reason) for r in decision.reversals] == [
        (4, 100, -7, "closed_invalid"),
        (8, 200, -3, "closed_invalid"),
    ]
    assert decide_reversals([], "closed_invalid").reversals == ()


def test_the_decision_explains_itself_as_json_for_the_timeline() -> None:
    decision = decide_awards(case(), [report(1, 100), report(2, 200, 1)], [], {200: 30}, POLICY)
    assert decision.as_detail() == {
        "awarded": [{"reporter_id": 100, "report_id": 1, "points": 10, "reason": FIRST_REPORT}],
        "skipped": [{"reporter_id": 200, "report_id": 2, "reason": DAILY_CAP}],
        "reversed": [],
    }


def test_local_day_is_the_city_day() -> None:
    assert local_day(datetime(2026, 12, 3, 16, 30, tzinfo=UTC), "Asia/Shanghai") == date(
        2026, 12, 4
    )
    assert local_day(datetime(2026, 12, 3, 16, 30), "UTC") == date(2026, 12, 3)


def test_a_bad_policy_is_refused() -> None:
    with pytest.raises(ValueError):
        PointsPolicy(daily_cap=-1)
    with pytest.raises(ValueError):
        PointsPolicy(split_radius_m=-5)
    with pytest.raises(ValueError, match="time zone"):
        PointsPolicy(timezone="Mars/Olympus")
