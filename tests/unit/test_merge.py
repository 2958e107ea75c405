import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from routing.merge import (
    BOXES_PER_CELL,
    EARTH_RADIUS_M,
    OpenCase,
    bounding_box,
    cell_height_deg,
    cell_of,
    cell_width_deg,
    cells_touched,
    distance_m,
    find_match,
)

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
LAT, LON = 31.15, 121.74


def offset(metres_north: float, metres_east: float = 0.0) -> tuple[float, float]:
    return LAT + metres_north / 111_195, LON + metres_east / (111_195 * 0.8562)


def test_distance_is_metres() -> None:
    lat, lon = offset(30)
    assert abs(distance_m(LAT, LON, lat, lon) - 30) < 0.2
    assert distance_m(LAT, LON, LAT, LON) == 0


def test_bounding_box_contains_the_circle() -> None:
    min_lat, max_lat, min_lon, max_lon = bounding_box(LAT, LON, 50)
    for north, east in [(49, 0), (-49, 0), (0, 49), (0, -49)]:
        lat, lon = offset(north, east)
        assert min_lat <= lat <= max_lat and min_lon <= lon <= max_lon


def case(
    case_id: int, north: float, hours_before: float, category: str = "bin_overflow"
) -> OpenCase:
    lat, lon = offset(north)
    return OpenCase(case_id, category, lat, lon, T0 - timedelta(hours=hours_before))


def test_nearest_same_category_within_radius_and_window() -> None:
    candidates = [case(1, 40, 2), case(2, 10, 2), case(3, 5, 2, "noise"), case(4, 3, 30)]
    match = find_match("bin_overflow", LAT, LON, T0, candidates)
    assert match is not None and match.case_id == 2
    assert abs(match.distance_m - 10) < 0.2 and match.apart == timedelta(hours=2)


def test_nothing_close_enough() -> None:
    assert find_match("bin_overflow", LAT, LON, T0, [case(1, 60, 1)]) is None
    assert find_match("bin_overflow", LAT, LON, T0, [case(1, 10, 25)]) is None
    assert find_match("bin_overflow", LAT, LON, T0, [case(1, 10, -25)]) is None


def test_a_report_processed_after_a_later_one_still_joins() -> None:
    # Received an hour before the case's first report, but a worker got to it afterwards.
    match = find_match("bin_overflow", LAT, LON, T0, [case(1, 10, -1)])
    assert match is not None and match.case_id == 1 and match.apart == timedelta(hours=1)


def test_radius_and_window_per_category() -> None:
    far = [case(1, 150, 40)]
    assert find_match("bin_overflow", LAT, LON, T0, far) is None
    wide = find_match("bin_overflow", LAT, LON, T0, far, radius_m=200, window=timedelta(hours=48))
    assert wide is not None and wide.case_id == 1


def test_ties_go_to_the_older_case() -> None:
    assert find_match("bin_overflow", LAT, LON, T0, [case(7, 10, 1), case(3, 10, 5)]).case_id == 3


# ---------------------------------------------------------------- the cells a search locks


def destination(lat: float, lon: float, metres: float, bearing_deg: float) -> tuple[float, float]:
    """The point ``metres`` away along a great circle (the exact inverse of distance_m)."""
    angle = metres / EARTH_RADIUS_M
    phi, bearing = math.radians(lat), math.radians(bearing_deg)
    phi2 = math.asin(
        math.sin(phi) * math.cos(angle) + math.cos(phi) * math.sin(angle) * math.cos(bearing)
    )
    dlambda = math.atan2(
        math.sin(bearing) * math.sin(angle) * math.cos(phi),
        math.cos(angle) - math.sin(phi) * math.sin(phi2),
    )
    return math.degrees(phi2), lon + math.degrees(dlambda)


def in_box(box: tuple[float, float, float, float], lat: float, lon: float) -> bool:
    min_lat, max_lat, min_lon, max_lon = box
    return min_lat <= lat <= max_lat and min_lon <= lon <= max_lon


@pytest.mark.parametrize("lat", [0.0, 31.15, -45.0, 60.0, 80.0, 89.0])
@pytest.mark.parametrize("radius_m", [1.0, 50.0, 1000.0])
def test_the_box_holds_the_whole_circle_at_any_latitude(lat: float, radius_m: float) -> None:
    box = bounding_box(lat, LON, radius_m)
    for bearing in range(0, 360, 3):
        # a hair inside the circle: the box's edges and the points are computed, not exact
        point = destination(lat, LON, radius_m * (1 - 1e-6), bearing)
        assert in_box(box, *point), (bearing, point, box)
    # the old r / (R cos lat) fell short of the circle's east and west ends off the equator
    east = destination(lat, LON, radius_m * (1 - 1e-6), 90.0)
    tangent = math.degrees(
        math.asin(math.sin(radius_m / EARTH_RADIUS_M) / math.cos(math.radians(lat)))
    )
    assert box[3] - LON == pytest.approx(tangent, rel=1e-12) and east[1] <= box[3]


def test_a_box_around_a_pole_spans_every_longitude() -> None:
    assert bounding_box(89.9999, 10.0, 1000)[2:] == (10.0 - 180.0, 10.0 + 180.0)
    assert bounding_box(90.0, 0.0, 50)[2:] == (-180.0, 180.0)


def test_a_cell_is_at_least_one_search_box_wide_and_high() -> None:
    for lat in (0.0, 31.15, 60.0, -75.0):
        for radius_m in (1.0, 50.0, 1000.0):
            min_lat, max_lat, min_lon, max_lon = bounding_box(lat, LON, radius_m)
            row, _column = cell_of(lat, LON, radius_m)
            assert cell_height_deg(radius_m) >= BOXES_PER_CELL * (max_lat - min_lat) * (1 - 1e-9)
            assert cell_width_deg(row, radius_m) >= BOXES_PER_CELL * (max_lon - min_lon)
    # in the demo city a 50 m category's cells are about 200 m each way
    row, _column = cell_of(LAT, LON, 50)
    assert cell_height_deg(50) * 111_195 == pytest.approx(200, rel=0.01)
    assert cell_width_deg(row, 50) * 111_195 * math.cos(math.radians(LAT)) == pytest.approx(
        200, rel=0.01
    )
    # rows that reach a pole are one cell
    assert cell_width_deg(cell_of(89.9999, 0.0, 50)[0], 50) == 360.0


def test_a_box_touches_its_own_cell_and_at_most_four() -> None:
    rng = random.Random(12)
    for _ in range(20_000):
        radius_m = rng.choice((1.0, 50.0, 200.0, 1000.0))
        lat, lon = rng.uniform(-85, 85), rng.uniform(-180, 180)
        cells = cells_touched(bounding_box(lat, lon, radius_m), radius_m)
        assert cell_of(lat, lon, radius_m) in cells
        assert 1 <= len(cells) <= 4 and len(set(cells)) == len(cells)


def borders_near(lat: float, lon: float, radius_m: float) -> tuple[float, float]:
    """The row border just north of the point and the column border just east of it."""
    height = cell_height_deg(radius_m)
    row, column = cell_of(lat, lon, radius_m)
    return (row + 1) * height, (column + 1) * cell_width_deg(row, radius_m) - 180.0


@pytest.mark.parametrize("radius_m", [1.0, 50.0, 1000.0])
@pytest.mark.parametrize("lat", [31.15, -33.9, 0.0, 71.0])
def test_reports_within_the_radius_share_a_cell_even_across_a_border(
    lat: float, radius_m: float
) -> None:
    """Two reports of one problem within the radius of each other always take one same lock:
    each one's point is in the other's box, so each locks the other's cell (see
    routing.merge.cells_touched). Drawn densely around the borders, and exactly on them."""
    rng = random.Random(f"{lat}-{radius_m}")
    north, east = borders_near(lat, LON, radius_m)
    # pairs straddling a row border, a column border, and a corner, at up to the radius apart
    centres = [(north, LON), (lat, east), (north, east)]
    for centre_lat, centre_lon in centres:
        for _ in range(400):
            half = rng.uniform(0, radius_m / 2) * (1 - 1e-9)
            bearing = rng.uniform(0, 360)
            a = destination(centre_lat, centre_lon, half, bearing)
            b = destination(centre_lat, centre_lon, half, bearing + 180)
            assert distance_m(*a, *b) <= radius_m
            a_cells = set(cells_touched(bounding_box(*a, radius_m), radius_m))
            b_cells = set(cells_touched(bounding_box(*b, radius_m), radius_m))
            assert cell_of(*b, radius_m) in a_cells and cell_of(*a, radius_m) in b_cells
        # and two points a hair apart on either side of the border, as the grid draws it
        for pair in (
            border_pair((lat, LON), (north + 1e-9, LON), radius_m),
            border_pair((lat, LON), (lat, east + 1e-9), radius_m),
        ):
            here, there = pair
            assert cell_of(*here, radius_m) != cell_of(*there, radius_m)
            assert set(cells_touched(bounding_box(*here, radius_m), radius_m)) & set(
                cells_touched(bounding_box(*there, radius_m), radius_m)
            )


def border_pair(
    inside: tuple[float, float], outside: tuple[float, float], radius_m: float
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Two neighbouring floats on the segment from ``inside`` to ``outside`` (which differ in one
    coordinate) that lie in different cells: a border exactly as the grid computes it."""
    axis = 0 if inside[0] != outside[0] else 1
    low, high = inside[axis], outside[axis]
    start = cell_of(*inside, radius_m)

    def at(value: float) -> tuple[float, float]:
        return (value, inside[1]) if axis == 0 else (inside[0], value)

    while math.nextafter(low, high) != high:
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if cell_of(*at(middle), radius_m) == start:
            low = middle
        else:
            high = middle
    return at(low), at(high)


def test_reports_far_apart_share_no_cell() -> None:
    # 1 km apart at a 50 m radius: separate lines, so a storm does not queue the city
    far_lat, far_lon = destination(LAT, LON, 1000, 45)
    near = set(cells_touched(bounding_box(LAT, LON, 50), 50))
    assert near.isdisjoint(cells_touched(bounding_box(far_lat, far_lon, 50), 50))


def test_cells_at_the_antimeridian_and_at_the_edges_of_the_radius_range() -> None:
    for lon in (179.99999, -179.99999, 180.0, -180.0):
        for radius_m in (1.0, 1000.0):
            cells = cells_touched(bounding_box(10.0, lon, radius_m), radius_m)
            assert cell_of(10.0, lon, radius_m) in cells and len(cells) <= 4
