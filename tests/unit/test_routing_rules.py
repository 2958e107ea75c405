from __future__ import annotations

import random

import pytest
from shapely.geometry import Point, shape

from routing.geometry import InvalidJurisdiction, JurisdictionIndex, parse_jurisdiction
from routing.rules import NO_OFFICE_HANDLES, OUTSIDE_JURISDICTION, OfficeDirectory, OfficeNode


def square(x0: float, y0: float, x1: float, y1: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


@pytest.fixture
def index() -> JurisdictionIndex:
    return JurisdictionIndex.from_geojson(
        [
            ("D", "district", square(0, 0, 4, 4)),
            ("S1", "street", square(0, 0, 2, 4)),
            ("S2", "street", square(2, 0, 4, 4)),
            ("C1", "community", square(0, 0, 2, 2)),
            ("C2", "community", square(0, 2, 2, 4)),
            ("C3", "community", square(2, 0, 4, 4)),
        ]
    )


@pytest.fixture
def directory() -> OfficeDirectory:
    def node(
        code: str,
        kind: str,
        parent: str | None,
        cats: set[str],
        poly: bool = True,
        active: bool = True,
    ) -> OfficeNode:
        return OfficeNode(code, kind, parent, frozenset(cats), poly, active)

    return OfficeDirectory(
        [
            node("D", "district", None, {"other"}),
            node("S1", "street", "D", {"illegal_parking"}),
            node("S2", "street", "D", {"illegal_parking"}),
            node("C1", "community", "S1", {"bin_overflow"}),
            node("C2", "community", "S1", {"bin_overflow"}, active=False),
            node("C3", "community", "S2", {"bin_overflow"}),
            node("DEP-B", "department", "D", {"manhole_cover"}, poly=False),
            node("DEP-A", "department", "D", {"manhole_cover"}, poly=False),
        ]
    )


def test_most_specific_first(index: JurisdictionIndex) -> None:
    assert index.containing(1, 1) == ["C1", "S1", "D"]
    assert index.containing(3, 3) == ["C3", "S2", "D"]


def test_point_outside_everything(index: JurisdictionIndex) -> None:
    assert index.containing(5, 5) == []


def test_shared_border_is_deterministic(index: JurisdictionIndex) -> None:
    # (1, 2) lies on the border of C1 and C2, both of equal area: the code decides.
    assert index.containing(1, 2)[:2] == ["C1", "C2"]


def test_routes_to_the_community_that_handles_it(index, directory) -> None:
    decision = directory.route(index.containing(1, 1), "bin_overflow")
    assert decision.office == "C1"
    assert decision.rule == "jurisdiction"


def test_walks_up_to_the_street(index, directory) -> None:
    decision = directory.route(index.containing(1, 1), "illegal_parking")
    assert decision.office == "S1"
    assert decision.rule == "parent"
    assert decision.considered[:2] == ("C1", "S1")


def test_department_serves_the_whole_district(index, directory) -> None:
    decision = directory.route(index.containing(3, 1), "manhole_cover")
    # two departments handle it: the lower code wins, always
    assert decision.office == "DEP-A"
    assert decision.rule == "department"


def test_inactive_office_is_passed_over(index, directory) -> None:
    decision = directory.route(index.containing(1, 3), "bin_overflow")
    assert decision.office is None
    assert decision.rule == NO_OFFICE_HANDLES


def test_outside_goes_to_triage(directory) -> None:
    decision = directory.route([], "bin_overflow")
    assert decision.office is None
    assert decision.rule == OUTSIDE_JURISDICTION


def test_district_catches_other(index, directory) -> None:
    assert directory.route(index.containing(1, 1), "other").office == "D"


def test_parent_cycle_does_not_loop() -> None:
    directory = OfficeDirectory(
        [
            OfficeNode("A", "street", "B", frozenset(), True),
            OfficeNode("B", "street", "A", frozenset(), True),
        ]
    )
    assert directory.route(["A"], "noise").office is None


@pytest.mark.parametrize(
    "geojson",
    [
        {"type": "Point", "coordinates": [0, 0]},
        {"type": "Polygon", "coordinates": []},
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},  # bow-tie
        {"type": "Polygon"},
    ],
)
def test_bad_jurisdictions_are_refused(geojson: dict) -> None:
    with pytest.raises(InvalidJurisdiction):
        parse_jurisdiction(geojson)


def test_multipolygon_with_hole() -> None:
    ring = [[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]]
    hole = [[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]]
    island = [[[10, 10], [11, 10], [11, 11], [10, 11], [10, 10]]]
    index = JurisdictionIndex.from_geojson(
        [("M", "community", {"type": "MultiPolygon", "coordinates": [[ring, hole], island]})]
    )
    assert index.containing(0.5, 0.5) == ["M"]
    assert index.containing(2, 2) == []
    assert index.containing(10.5, 10.5) == ["M"]


def test_area_override_wins_inside_its_area(index: JurisdictionIndex) -> None:
    base = [
        OfficeNode("D", "district", None, frozenset({"other"}), True),
        OfficeNode("S1", "street", "D", frozenset(), True),
        OfficeNode("C1", "community", "S1", frozenset({"bin_overflow"}), True),
        OfficeNode("C3", "community", "D", frozenset({"bin_overflow"}), True),
        OfficeNode("DEP", "department", "D", frozenset(), False),
    ]
    directory = OfficeDirectory(base, {("S1", "bin_overflow"): "DEP"})
    # C1 handles it itself: the most specific level decides before the street's override
    assert directory.route(index.containing(1, 1), "bin_overflow").office == "C1"
    directory = OfficeDirectory(base, {("C1", "bin_overflow"): "DEP"})
    decision = directory.route(index.containing(1, 1), "bin_overflow")
    assert decision.office == "DEP" and decision.rule == "override"
    # outside the area the override does nothing
    assert directory.route(index.containing(3, 3), "bin_overflow").office == "C3"


def test_rejecting_offices_are_never_chosen_again(index, directory) -> None:
    containing = index.containing(1, 1)
    first = directory.route(containing, "illegal_parking")
    assert first.office == "S1"
    second = directory.route(containing, "illegal_parking", exclude=frozenset({"S1"}))
    assert second.office is None and second.rule == NO_OFFICE_HANDLES
    department = directory.route(containing, "manhole_cover", exclude=frozenset({"DEP-A"}))
    assert department.office == "DEP-B"


def brute_force(rows: list[tuple[str, str, dict]], lon: float, lat: float) -> list[str]:
    # The documented order, computed without the index: kind, then area, then code.
    rank = {"community": 0, "street": 1, "district": 2}
    hits = [
        (rank[kind], shape(geo).area, code)
        for code, kind, geo in rows
        if shape(geo).covers(Point(lon, lat))
    ]
    return [code for _, _, code in sorted(hits)]


def jittered_city(seed: int) -> tuple[list[tuple[str, str, dict]], list[tuple[float, float]]]:
    """A 6 x 6 grid of irregular communities sharing exact borders (one MultiPolygon with a
    hole, one enclave in that hole), two streets, one district; and the grid's vertices."""
    rng = random.Random(seed)
    n = 6
    vertex = {
        (i, j): (
            j + (rng.uniform(-0.3, 0.3) if 0 < j < n else 0.0),
            i + (rng.uniform(-0.3, 0.3) if 0 < i < n else 0.0),
        )
        for i in range(n + 1)
        for j in range(n + 1)
    }

    def ring(i0: int, i1: int, j0: int, j1: int) -> list[tuple[float, float]]:
        outline = [vertex[i0, j] for j in range(j0, j1)] + [vertex[i, j1] for i in range(i0, i1)]
        outline += [vertex[i1, j] for j in range(j1, j0, -1)]
        outline += [vertex[i, j0] for i in range(i1, i0, -1)]
        return [*outline, outline[0]]

    hole = [(2.4, 2.4), (2.6, 2.4), (2.6, 2.6), (2.4, 2.6), (2.4, 2.4)]
    rows: list[tuple[str, str, dict]] = [
        ("D", "district", {"type": "Polygon", "coordinates": [ring(0, n, 0, n)]}),
        ("S1", "street", {"type": "Polygon", "coordinates": [ring(0, n, 0, 3)]}),
        ("S2", "street", {"type": "Polygon", "coordinates": [ring(0, n, 3, n)]}),
        ("E", "community", {"type": "Polygon", "coordinates": [hole]}),
    ]
    multi = [[ring(2, 3, 0, 1)], [ring(2, 3, 2, 3), hole[::-1]]]  # (2, 0) and (2, 2), a hole
    rows.append(("M", "community", {"type": "MultiPolygon", "coordinates": multi}))
    for i in range(n):
        for j in range(n):
            if (i, j) not in {(2, 0), (2, 2)}:
                geo = {"type": "Polygon", "coordinates": [ring(i, i + 1, j, j + 1)]}
                rows.append((f"C{i}{j}", "community", geo))
    return rows, list(vertex.values()) + hole


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_index_agrees_with_brute_force(seed: int) -> None:
    rows, vertices = jittered_city(seed)
    index = JurisdictionIndex.from_geojson(rows)
    rng = random.Random(seed)
    points = [(rng.uniform(-0.5, 6.5), rng.uniform(-0.5, 6.5)) for _ in range(300)]
    # on shared borders: vertices (2 to 4 communities), midpoints of the hole's edges
    points += [*vertices, (2.5, 2.4), (2.4, 2.5)]
    for lon, lat in points:
        assert index.containing(lon, lat) == brute_force(rows, lon, lat), (lon, lat)


def test_enclave_in_a_multipolygon_hole() -> None:
    rows, _ = jittered_city(1)
    index = JurisdictionIndex.from_geojson(rows)
    assert index.containing(2.5, 2.5) == ["E", "S1", "D"]
    # on the hole's edge both communities cover the point: the smaller enclave comes first
    assert index.containing(2.5, 2.4) == ["E", "M", "S1", "D"]
    assert index.containing(2.5, 2.35) == ["M", "S1", "D"]  # between the hole and the cell edge


def test_shared_border_smaller_area_before_lower_code() -> None:
    index = JurisdictionIndex.from_geojson(
        [("A", "community", square(0, 0, 2, 2)), ("B", "community", square(2, 0, 3, 2))]
    )
    # B is smaller than A: on their border area decides before the code
    assert index.containing(2, 1) == ["B", "A"]
    assert index.containing(2, 0) == ["B", "A"]
