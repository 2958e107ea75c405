"""Is a new report the same problem as an open case ("me too")? Pure: no database, no I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

EARTH_RADIUS_M = 6_371_008.8
DEFAULT_RADIUS_M = 50.0
DEFAULT_WINDOW = timedelta(hours=24)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine); exact enough at tens of metres anywhere."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) around a point: a cheap prefilter for a query."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlon = math.degrees(radius_m / (EARTH_RADIUS_M * max(math.cos(math.radians(lat)), 1e-6)))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


@dataclass(frozen=True)
class OpenCase:
    id: int
    category: str
    lat: float
    lon: float
    # When the case's first report was received (not when a worker got to it), so a backlog
    # of unprocessed reports cannot push two reports of one problem out of each other's window.
    first_received_at: datetime


@dataclass(frozen=True)
class MergeMatch:
    case_id: int
    distance_m: float
    # How far apart in time this report and the case's first report were received.
    apart: timedelta


def find_match(
    category: str,
    lat: float,
    lon: float,
    received_at: datetime,
    candidates: Iterable[OpenCase],
    radius_m: float = DEFAULT_RADIUS_M,
    window: timedelta = DEFAULT_WINDOW,
) -> MergeMatch | None:
    """The nearest open case of the same category within ``radius_m`` whose first report was
    received at most ``window`` before or after this one; ties go to the older case, then the
    lower id.

    Either order counts: workers do not process reports strictly in the order they arrived (a
    retry, a busy queue), so a report may reach the pipeline after a case opened from one that
    was received later."""
    best: tuple[float, datetime, int] | None = None
    for case in candidates:
        if case.category != category:
            continue
        if abs(received_at - case.first_received_at) > window:
            continue
        distance = distance_m(lat, lon, case.lat, case.lon)
        if distance > radius_m:
            continue
        key = (distance, case.first_received_at, case.id)
        if best is None or key < best:
            best = key
    if best is None:
        return None
    return MergeMatch(best[2], best[0], abs(received_at - best[1]))
