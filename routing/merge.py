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


Box = tuple[float, float, float, float]


def bounding_box(lat: float, lon: float, radius_m: float) -> Box:
    """(min_lat, max_lat, min_lon, max_lon) around a point: a cheap prefilter for a query, which
    holds every point within ``radius_m`` of it (``distance_m``).

    Latitude: no point of the circle is further north or south than the radius itself. Longitude:
    the circle reaches furthest east and west where a great circle through the pole touches it,
    asin(sin(r/R) / cos(lat)) away, a hair more than r / (R cos(lat)) off the equator; a circle
    around a pole spans every longitude."""
    angle = radius_m / EARTH_RADIUS_M
    dlat = math.degrees(angle)
    cos_lat = math.cos(math.radians(lat))
    if cos_lat <= math.sin(angle):
        dlon = 180.0
    else:
        dlon = math.degrees(math.asin(math.sin(angle) / cos_lat))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


# ------------------------------------------------------------------ the cells a search locks

# How many search boxes fit across a cell, each way. At least 1 keeps any box within 2 x 2 cells;
# 2 puts a box inside a single cell half the time along each axis (2.25 cells on average), while
# a cell stays small enough (200 m across for a 50 m radius) that reports of a storm all over the
# city seldom share one.
BOXES_PER_CELL = 2.0

Cell = tuple[int, int]


def cell_height_deg(radius_m: float) -> float:
    """The height of a cell in degrees of latitude, for a category of merge radius ``radius_m``."""
    return BOXES_PER_CELL * 2 * math.degrees(radius_m / EARTH_RADIUS_M)


def cell_width_deg(row: int, radius_m: float) -> float:
    """The width of the cells of one row (band of latitude) in degrees of longitude.

    A degree of longitude shrinks towards the poles, so a box's width in degrees grows with its
    latitude. The row's cells are sized for the widest box that can touch the row: one centred
    on the row's edge nearer the pole plus one more row (a box is never taller than a row, so
    its centre is never further out than that). Every box touching the row is then at most
    1 / BOXES_PER_CELL of a cell wide. Rows that reach a pole are a single cell."""
    height = cell_height_deg(radius_m)
    poleward = max(abs(row * height), abs((row + 1) * height)) + height
    if poleward >= 90.0:
        return 360.0
    _, _, min_lon, max_lon = bounding_box(poleward, 0.0, radius_m)
    return min(BOXES_PER_CELL * (max_lon - min_lon), 360.0)


def cell_of(lat: float, lon: float, radius_m: float) -> Cell:
    """The cell (row, column) a point lies in, on the grid of merge radius ``radius_m``."""
    row = math.floor(lat / cell_height_deg(radius_m))
    return row, math.floor((lon + 180.0) / cell_width_deg(row, radius_m))


def cells_touched(box: Box, radius_m: float) -> list[Cell]:
    """Every cell a search box touches, in (row, column) order: the locks a worker takes before
    searching the box and, finding nothing, opening a case at the box's centre.

    At most 4 away from the poles: a box is at most half a cell high and half a cell wide
    (``cell_width_deg``), so it crosses at most one border each way.

    Why two searches that could see each other's new case always share a cell: a case opens at
    its report's point, and search A can return case B only if B's point lies in A's box (the
    query's own condition on lat and lon). Then A locks ``cell_of(B)``, because the row and the
    column of a point are non-decreasing functions of its latitude and longitude (a division by
    a positive constant, a rounded sum and a floor each keep the order, in floating point too),
    so the point's row lies between the rows of the box's edges and, in that row, whose width
    depends only on the row, its column between the columns of the edges. B locks
    ``cell_of(B)`` as well, since every point lies in its own box. So A and B queue on that
    cell's lock, whichever of the two would find the other's case; two reports within the merge
    radius of each other are inside each other's boxes (``bounding_box``), so they always
    queue. Searches that share no cell cannot see each other's cases, and run side by side.
    All workers must draw the same grid, so the radius must be the same for them
    (services.processing holds it still while they run)."""
    min_lat, max_lat, min_lon, max_lon = box
    height = cell_height_deg(radius_m)
    cells: list[Cell] = []
    for row in range(math.floor(min_lat / height), math.floor(max_lat / height) + 1):
        width = cell_width_deg(row, radius_m)
        first = math.floor((min_lon + 180.0) / width)
        last = math.floor((max_lon + 180.0) / width)
        cells.extend((row, column) for column in range(first, last + 1))
    return cells


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
