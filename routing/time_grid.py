"""The grid the statistics count times on: hours to two significant figures, and to a tenth of
an hour below ten hours (0.1, 0.2, … 9.9, 10, 11, … 99, 100, 110, … 990, 1000, 1100, …).

A median or 90th percentile is the grid value of the case at that rank. Rounding keeps the
order of the cases, so that is the exact nearest-rank value rounded to the grid, and it can be
read from counts of cases per grid value, which months of cases add up to without keeping
every case (``stats_office_months``, ``stats_category_months``). A value on the grid is within
5 % of the time it stands for, and within 3 minutes below ten hours.

Pure: numbers in, numbers out. The scalar functions call the vector ones, so both round every
value the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

# Grid positions per measure: far beyond any time a case can take (position 1023 is about
# 10^11 hours), and a power of two so a measure and a position pack into one 16-bit key.
GRID_SIZE = 1024
# The six times, in the order their counts are packed.
MEASURES = (
    "accept_hours",
    "accept_working_hours",
    "resolve_hours",
    "resolve_working_hours",
    "close_hours",
    "close_working_hours",
)
# Where each decade from 10 hours up starts (10, 100, … 10^11).
DECADES = tuple(10.0**k for k in range(1, 12))
_DECADES = np.array(DECADES)
_COUNT = np.dtype([("key", "<u2"), ("count", "<i4")])
# Bytes one stored (key, count) pair takes.
PACKED_SIZE = _COUNT.itemsize
# Positions of one group's counts in a flat array of several groups' (group * STRIDE + key).
STRIDE = len(MEASURES) * GRID_SIZE


def grid_positions(hours: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """The grid position of each value: 0 to 100 for 0.0 to 10.0 hours in tenths, then 90
    positions a decade (10 to 99 times its power of ten)."""
    x = np.maximum(np.asarray(hours, dtype=np.float64), 0.0)
    below_ten = np.floor(x * 10.0 + 0.5).astype(np.int64)
    decade = np.searchsorted(_DECADES, x, side="right")  # k: 10^k <= x < 10^(k+1)
    scale = np.power(10.0, np.maximum(decade - 1, 0))
    mantissa = np.floor(x / scale + 0.5).astype(np.int64)  # 10 to 100
    above = 100 + 90 * (decade - 1) + (mantissa - 10)
    return np.minimum(np.where(decade == 0, below_ten, above), GRID_SIZE - 1)


def grid_value(position: int) -> float:
    """The hours a grid position stands for."""
    if position <= 100:
        return position / 10
    decade, step = divmod(position - 100, 90)
    return float((10 + step) * 10**decade)


def on_grid(hours: float | None) -> float | None:
    """``hours`` rounded to the grid."""
    if hours is None:
        return None
    return grid_value(int(grid_positions([hours])[0]))


def measure_keys(measure: int, hours: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Keys packing a measure (its index in ``MEASURES``) with the grid positions of values."""
    return measure * GRID_SIZE + grid_positions(hours)


def pack(counts: dict[int, int]) -> bytes:
    """Counts by key, as stored: (16-bit key, 32-bit count) pairs in key order, zeros left
    out."""
    kept = sorted((key, count) for key, count in counts.items() if count)
    return np.array(kept, dtype=_COUNT).tobytes()


def unpack(stored: bytes | None) -> dict[int, int]:
    if not stored:
        return {}
    found = np.frombuffer(stored, dtype=_COUNT)
    return dict(zip(found["key"].tolist(), found["count"].tolist(), strict=True))


def unpack_arrays(stored: bytes | None) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    if not stored:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    found = np.frombuffer(stored, dtype=_COUNT)
    return found["key"].astype(np.int64), found["count"].astype(np.int64)


def percentiles(
    counts: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any], npt.NDArray[Any]]:
    """For counts per grid position (the last axis; any leading shape, such as groups ×
    measures): the totals, and the grid values of the nearest-rank median and 90th percentile
    (None where nothing was counted), each in the leading shape."""
    shape = counts.shape[:-1]
    running = np.cumsum(counts.reshape(-1, counts.shape[-1]), axis=-1)
    totals = running[:, -1]
    found = []
    for percent in (50, 90):
        rank = np.maximum((percent * totals + 99) // 100, 1)  # ceil(percent/100 * n)
        position = (running < rank[:, None]).sum(axis=-1)
        values = [
            grid_value(p) if n else None
            for p, n in zip(position.tolist(), totals.tolist(), strict=True)
        ]
        found.append(np.array(values, dtype=object).reshape(shape))
    return totals.reshape(shape), found[0], found[1]
