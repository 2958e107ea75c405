"""Spike alerts: is a category's count of reports in a community over the last 24 hours out of
line with that community's own usual rate for it? Decided from counts alone (docs/statistics.md,
"Spikes").

The rule, for one community and one category:

- ``last_24h``: reports received in the 24 hours up to now.
- ``baseline_per_day``: reports received in the 28 days before those 24 hours, divided by 28.
  The last 24 hours are left out, so a storm does not raise its own bar.
- It is a spike when ``last_24h`` is at least ``MIN_REPORTS`` and more than
  ``baseline_per_day + 3 * sqrt(max(baseline_per_day, 1))``.

Why: reports of one kind arriving independently are close to a Poisson process, whose spread
is the square root of its mean, so three of those above the mean happens by chance on roughly
one day in a few hundred per community and category: rare enough that an alert means something.
The square root is floored at 1 because a category almost never reported (mean near 0) would
otherwise alert on its second report. ``MIN_REPORTS`` keeps a quiet community's two or three
reports from alerting at all, whatever its baseline. 28 days are four whole weeks, so every
weekday weighs the same in the baseline.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

BASELINE_DAYS = 28
MIN_REPORTS = 5
SIGMAS = 3.0
# The smallest daily rate whose spread is used, so a category new to a community (or nearly
# never reported there) needs MIN_REPORTS, not one or two, to alert.
MIN_SPREAD_RATE = 1.0


@dataclass(frozen=True)
class Counts:
    """Reports of one category in one community: in the last 24 hours, and in the 28 days
    before them."""

    community: str
    category: str
    last_24h: int
    baseline_reports: int


@dataclass(frozen=True)
class Spike:
    """A category out of line in a community. ``threshold`` is the count ``last_24h`` had to
    exceed; ``ratio`` is ``last_24h`` over ``baseline_per_day`` (None without a baseline)."""

    community: str
    category: str
    last_24h: int
    baseline_per_day: float
    threshold: float
    ratio: float | None


def baseline_per_day(baseline_reports: int) -> float:
    return baseline_reports / BASELINE_DAYS


def threshold(per_day: float) -> float:
    """The count of the last 24 hours must be above this to be a spike: the Poisson-style
    bar, and never below MIN_REPORTS - 1 (counts are whole, so "above MIN_REPORTS - 1" is "at
    least MIN_REPORTS")."""
    bar = per_day + SIGMAS * math.sqrt(max(per_day, MIN_SPREAD_RATE))
    return max(bar, MIN_REPORTS - 1)


def spike(counts: Counts) -> Spike | None:
    """The spike ``counts`` show, or None when they are within the usual."""
    if counts.last_24h < 0 or counts.baseline_reports < 0:
        raise ValueError("counts are never negative")
    per_day = baseline_per_day(counts.baseline_reports)
    bar = threshold(per_day)
    if counts.last_24h <= bar:
        return None
    return Spike(
        community=counts.community,
        category=counts.category,
        last_24h=counts.last_24h,
        baseline_per_day=round(per_day, 2),
        threshold=round(bar, 2),
        ratio=round(counts.last_24h / per_day, 2) if per_day > 0 else None,
    )


def spikes(all_counts: Iterable[Counts]) -> list[Spike]:
    """The spikes among ``all_counts``, the furthest above its threshold first (then by
    community and category, so the order is stable)."""
    found = [s for s in (spike(c) for c in all_counts) if s is not None]
    return sorted(found, key=lambda s: (s.threshold - s.last_24h, s.community, s.category))
