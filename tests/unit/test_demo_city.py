"""The demo city is what the README promises: a district tiled by 4 streets of 3 communities."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from shapely.geometry import Point, shape
from shapely.ops import unary_union

from models.seed import demo_city

CITY = demo_city()
OFFICES = {o["code"]: o for o in CITY["offices"]}
TAXONOMY = Path(__file__).resolve().parents[2] / "models" / "seed" / "taxonomy.csv"
DUST = 1e-12


def of_kind(kind: str) -> list[dict]:
    return [o for o in CITY["offices"] if o["kind"] == kind]


def geometry(code: str):
    return shape(OFFICES[code]["jurisdiction"])


def test_counts_codes_and_parents() -> None:
    assert len(OFFICES) == len(CITY["offices"])
    assert len(of_kind("district")) == 1
    assert len(of_kind("street")) == 4
    assert len(of_kind("community")) == 12
    assert 3 <= len(of_kind("department")) <= 4
    order = [o["code"] for o in CITY["offices"]]
    for office in CITY["offices"]:
        if office["parent"] is not None:
            assert order.index(office["parent"]) < order.index(office["code"])
    for community in of_kind("community"):
        assert OFFICES[community["parent"]]["kind"] == "street"
    for street in of_kind("street"):
        assert OFFICES[street["parent"]]["kind"] == "district"
        assert len([c for c in of_kind("community") if c["parent"] == street["code"]]) == 3


def test_polygons_are_valid_and_irregular() -> None:
    for office in CITY["offices"]:
        if office["kind"] == "department":
            assert office["jurisdiction"] is None
            continue
        polygon = geometry(office["code"])
        assert polygon.is_valid and not polygon.is_empty
    for community in of_kind("community"):
        vertices = len(geometry(community["code"]).exterior.coords) - 1
        assert 6 <= vertices <= 20


@pytest.mark.parametrize("street", [s["code"] for s in of_kind("street")])
def test_communities_tile_their_street(street: str) -> None:
    parts = [geometry(c["code"]) for c in of_kind("community") if c["parent"] == street]
    for i, a in enumerate(parts):
        for b in parts[i + 1 :]:
            assert a.intersection(b).area < DUST
    assert unary_union(parts).symmetric_difference(geometry(street)).area < DUST


def test_streets_tile_the_district() -> None:
    streets = [geometry(s["code"]) for s in of_kind("street")]
    for i, a in enumerate(streets):
        for b in streets[i + 1 :]:
            assert a.intersection(b).area < DUST
    district = geometry(of_kind("district")[0]["code"])
    assert unary_union(streets).symmetric_difference(district).area < DUST


def test_sample_points_lie_well_inside_one_community() -> None:
    points = CITY["sample_points"]
    assert sorted(p["office"] for p in points) == sorted(c["code"] for c in of_kind("community"))
    for sample in points:
        point = Point(sample["lon"], sample["lat"])
        inside = [c["code"] for c in of_kind("community") if geometry(c["code"]).covers(point)]
        assert inside == [sample["office"]]
        # about 50 m: 0.0005 degrees of latitude
        assert geometry(sample["office"]).exterior.distance(point) > 0.0005


def test_every_category_is_handled_somewhere() -> None:
    with TAXONOMY.open(encoding="utf-8") as handle:
        codes = {row["code"] for row in csv.DictReader(handle)}
    handled = {code for office in CITY["offices"] for code in office["categories"]}
    assert handled == codes
