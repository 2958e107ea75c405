"""The demo city is what the README promises: a district tiled by 4 streets of 3 communities,
with departments, so that every category reaches an office from every point."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pytest
from shapely import affinity
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from models.seed import demo_city

CITY = demo_city()
OFFICES: dict[str, dict[str, Any]] = {o["code"]: o for o in CITY["offices"]}
TAXONOMY = Path(__file__).resolve().parents[2] / "models" / "seed" / "taxonomy.csv"
# Shared borders are the same vertices, so anything above floating-point dust is a real gap.
DUST = 1e-12
MIN_CLEARANCE_M = 50.0


def taxonomy_codes() -> set[str]:
    with TAXONOMY.open(encoding="utf-8") as handle:
        return {row["code"] for row in csv.DictReader(handle)}


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [o for o in CITY["offices"] if o["kind"] == kind]


def geometry(code: str) -> BaseGeometry:
    return shape(OFFICES[code]["jurisdiction"])


def children(code: str, kind: str) -> list[dict[str, Any]]:
    return [o for o in of_kind(kind) if o["parent"] == code]


def in_metres(geom: BaseGeometry) -> BaseGeometry:
    # Degrees of longitude shrink with latitude; a local plane is exact enough over 10 km.
    lat = math.radians(geom.centroid.y)
    return affinity.scale(geom, 111_320 * math.cos(lat), 110_574, origin=(0, 0))


def test_codes_are_unique_short_uppercase_ascii() -> None:
    codes = [o["code"] for o in CITY["offices"]]
    assert len(codes) == len(set(codes))
    for code in codes:
        assert code.isascii() and code == code.upper() and len(code) <= 12


def test_counts_and_kinds() -> None:
    assert {o["kind"] for o in CITY["offices"]} == {"district", "street", "community", "department"}
    assert len(of_kind("district")) == 1
    assert len(of_kind("street")) == 4
    assert len(of_kind("community")) == 12
    assert 3 <= len(of_kind("department")) <= 4
    for office in CITY["offices"]:
        assert office["name"] and office["name_en"]


def test_parent_links() -> None:
    (district,) = of_kind("district")
    assert district["parent"] is None
    assert {o["code"] for o in children(district["code"], "street")} == {
        s["code"] for s in of_kind("street")
    }
    assert all(d["parent"] == district["code"] for d in of_kind("department"))
    for street in of_kind("street"):
        assert len(children(street["code"], "community")) == 3
    for community in of_kind("community"):
        assert OFFICES[community["parent"]]["kind"] == "street"
    # The seed loader links each office to a parent it has already loaded.
    order = [o["code"] for o in CITY["offices"]]
    for office in CITY["offices"]:
        if office["parent"] is not None:
            assert order.index(office["parent"]) < order.index(office["code"])


def test_polygons_are_valid_and_irregular() -> None:
    for office in CITY["offices"]:
        if office["kind"] == "department":
            assert office["jurisdiction"] is None
            continue
        assert office["jurisdiction"]["type"] in {"Polygon", "MultiPolygon"}
        polygon = geometry(office["code"])
        assert polygon.is_valid and not polygon.is_empty
        west, south, east, north = polygon.bounds
        assert 121.6 < west < east < 121.9 and 31.0 < south < north < 31.3
    for community in of_kind("community"):
        polygon = geometry(community["code"])
        assert 6 <= len(polygon.exterior.coords) - 1 <= 20
        # A rectangle fills its bounding box; a realistic boundary does not.
        assert polygon.area < 0.98 * polygon.envelope.area


def assert_tiles(parts: list[BaseGeometry], whole: BaseGeometry) -> None:
    for i, a in enumerate(parts):
        for b in parts[i + 1 :]:
            assert a.intersection(b).area < DUST
    assert unary_union(parts).symmetric_difference(whole).area < DUST


@pytest.mark.parametrize("street", [s["code"] for s in of_kind("street")])
def test_communities_tile_their_street(street: str) -> None:
    parts = [geometry(c["code"]) for c in children(street, "community")]
    assert_tiles(parts, geometry(street))


def test_streets_tile_the_district() -> None:
    (district,) = of_kind("district")
    assert_tiles([geometry(s["code"]) for s in of_kind("street")], geometry(district["code"]))


def test_sample_points_lie_well_inside_exactly_one_community() -> None:
    points = CITY["sample_points"]
    assert sorted(p["office"] for p in points) == sorted(c["code"] for c in of_kind("community"))
    for sample in points:
        assert sample["label"]
        point = Point(sample["lon"], sample["lat"])
        inside = [c["code"] for c in of_kind("community") if geometry(c["code"]).covers(point)]
        assert inside == [sample["office"]]
        community = geometry(sample["office"])
        clearance = in_metres(community.boundary).distance(in_metres(point))
        assert clearance >= MIN_CLEARANCE_M, sample


def test_every_category_is_handled_somewhere() -> None:
    handled = {code for office in CITY["offices"] for code in office["categories"]}
    assert handled == taxonomy_codes()


@pytest.mark.parametrize("sample", CITY["sample_points"], ids=lambda s: s["office"])
def test_every_category_reaches_an_office_from_every_point(sample: dict[str, Any]) -> None:
    point = Point(sample["lon"], sample["lat"])
    containing = [
        o["code"]
        for o in CITY["offices"]
        if o["jurisdiction"] and geometry(o["code"]).covers(point)
    ]
    # Departments without a polygon serve their parent's whole area.
    reachable = containing + [d["code"] for d in of_kind("department") if d["parent"] in containing]
    handled = {code for office in reachable for code in OFFICES[office]["categories"]}
    assert handled == taxonomy_codes()
