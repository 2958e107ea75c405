from datetime import UTC, datetime, timedelta

from routing.merge import OpenCase, bounding_box, distance_m, find_match

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
