"""The spike rule on hand-built counts: a quiet category stays quiet, a storm's waterlogging
stands out, a handful of reports never alerts, and a category new to a community needs
MIN_REPORTS."""

from __future__ import annotations

import math

import pytest

from routing.spikes import (
    BASELINE_DAYS,
    MIN_REPORTS,
    Counts,
    Spike,
    spike,
    spikes,
    threshold,
)


def counts(last_24h: int, baseline_reports: int, category: str = "waterlogging") -> Counts:
    return Counts("PD-CJ-01", category, last_24h, baseline_reports)


def test_a_quiet_category_on_a_normal_day_is_no_spike() -> None:
    # 2 a day for four weeks, 3 today: well within the usual
    assert spike(counts(3, 2 * BASELINE_DAYS)) is None
    # a busy category on a busy-ish day: 20 a day usual, 30 today (bar 20 + 3*sqrt(20) = 33.4)
    assert spike(counts(30, 20 * BASELINE_DAYS)) is None


def test_storm_waterlogging_is_a_spike() -> None:
    # about one report a week before the storm, 40 in the last 24 hours
    found = spike(counts(40, 4))
    assert found == Spike(
        community="PD-CJ-01",
        category="waterlogging",
        last_24h=40,
        baseline_per_day=round(4 / 28, 2),
        threshold=float(MIN_REPORTS - 1),
        ratio=round(40 / (4 / 28), 2),
    )


def test_the_bar_is_three_poisson_spreads_above_the_daily_mean() -> None:
    per_day = 20.0
    bar = per_day + 3 * math.sqrt(per_day)
    assert threshold(per_day) == pytest.approx(bar)
    assert spike(counts(math.floor(bar), int(per_day * BASELINE_DAYS))) is None
    found = spike(counts(math.floor(bar) + 1, int(per_day * BASELINE_DAYS)))
    assert found is not None
    assert found.threshold == round(bar, 2)
    assert found.ratio == round((math.floor(bar) + 1) / per_day, 2)


def test_too_few_reports_never_alert_whatever_the_baseline() -> None:
    # nothing at all for four weeks, then MIN_REPORTS - 1: still too few
    assert spike(counts(MIN_REPORTS - 1, 0)) is None
    # a rare category (one a month) with 4 in a day: 100 times its rate, still too few
    assert spike(counts(4, 1)) is None


def test_a_category_new_to_the_community_needs_min_reports() -> None:
    assert threshold(0.0) == MIN_REPORTS - 1
    found = spike(counts(MIN_REPORTS, 0, category="manhole_cover"))
    assert found is not None
    assert (found.baseline_per_day, found.ratio) == (0.0, None)


def test_spikes_come_furthest_above_their_bar_first() -> None:
    found = spikes(
        [
            counts(6, 0, category="noise"),  # 2 above the bar
            counts(3, 10, category="bin_overflow"),  # none
            counts(40, 4, category="waterlogging"),  # 36 above
            counts(6, 0, category="illegal_ads"),  # 2 above, ties by category
        ]
    )
    assert [s.category for s in found] == ["waterlogging", "illegal_ads", "noise"]


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        spike(counts(-1, 0))
