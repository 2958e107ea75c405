"""The grid the statistics count times on (routing.time_grid)."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from routing import statistics as st
from routing import time_grid as tg


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        (0.0, 0.0),
        (0.04, 0.0),
        (0.05, 0.1),
        (6.5, 6.5),
        (9.94, 9.9),
        (9.96, 10.0),
        (10.4, 10.0),
        (10.5, 11.0),
        (26.5, 27.0),
        (99.4, 99.0),
        (99.5, 100.0),
        (123.0, 120.0),
        (1234.5, 1200.0),
        (-3.0, 0.0),
        (None, None),
    ],
)
def test_two_significant_figures_and_tenths_below_ten_hours(
    hours: float | None, expected: float | None
) -> None:
    assert tg.on_grid(hours) == expected


def test_the_grid_keeps_the_order_of_times_and_stays_within_five_per_cent() -> None:
    rng = random.Random(3)
    values = sorted(10 ** rng.uniform(-2, 4.5) for _ in range(20_000))
    positions = tg.grid_positions(values)
    assert (np.diff(positions) >= 0).all()
    for hours in values:
        rounded = tg.on_grid(hours)
        assert rounded is not None
        if hours >= 10:
            assert abs(rounded - hours) <= 0.05 * hours
        else:
            assert abs(rounded - hours) <= 0.05 + 1e-9


def test_each_position_stands_for_one_value_that_maps_back_to_it() -> None:
    values = [tg.grid_value(p) for p in range(tg.GRID_SIZE)]
    assert all(a < b for a, b in itertools.pairwise(values))
    assert tg.grid_positions(values[:700]).tolist() == list(range(700))


def test_packed_counts_unpack_to_the_same_counts() -> None:
    counts = {0: 3, 5: 1, tg.GRID_SIZE * 5 + 1023: 70_000, 17: 0}
    packed = tg.pack(counts)
    assert len(packed) == 3 * tg.PACKED_SIZE  # zeros left out
    assert tg.unpack(packed) == {0: 3, 5: 1, tg.GRID_SIZE * 5 + 1023: 70_000}
    assert tg.unpack(None) == {}


def test_percentiles_from_counts_equal_the_rounded_nearest_rank_of_the_times() -> None:
    rng = random.Random(11)
    for size in (1, 2, 3, 10, 101, 1000):
        hours = [rng.expovariate(1 / 30) for _ in range(size)]
        counts = np.bincount(tg.grid_positions(hours), minlength=tg.GRID_SIZE)
        totals, medians, p90s = tg.percentiles(counts.reshape(1, tg.GRID_SIZE))
        ordered = sorted(hours)
        assert totals[0] == size
        assert medians[0] == tg.on_grid(st.nearest_rank(ordered, 50))
        assert p90s[0] == tg.on_grid(st.nearest_rank(ordered, 90))
    totals, medians, p90s = tg.percentiles(np.zeros((1, tg.GRID_SIZE), dtype=np.int64))
    assert totals[0] == 0 and medians[0] is None and p90s[0] is None
