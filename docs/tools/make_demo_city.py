"""Writes models/seed/demo_city.json: one district, 4 streets of 3 communities each.

Real jurisdiction lines follow rivers, creeks and roads and meet at T-junctions rather than at
the crossroads of a grid, so the demo city is drawn the same way: a hand-placed map of junctions
("nodes") joined by boundary lines ("edges"), each edge drawn once with the wobble of its kind
(a river meanders, a road barely bends) and shared verbatim by the two polygons on either side.
Every community is a ring of edges; streets and the district are unions of communities. Because
neighbours share the very same rounded coordinates, the communities tile their streets and the
streets tile the district exactly.

Deterministic and offline: each edge's wobble is seeded by its own name, so moving one node only
redraws the edges that touch it. Run it again and the file is byte-for-byte the same:

    .venv/bin/python docs/tools/make_demo_city.py
"""

from __future__ import annotations

import json
import math
import random
from itertools import pairwise
from pathlib import Path
from typing import Any

from shapely import affinity
from shapely.geometry import Point, Polygon, mapping
from shapely.geometry.polygon import orient
from shapely.ops import polylabel, unary_union

OUT = Path(__file__).resolve().parents[2] / "models" / "seed" / "demo_city.json"

Coord = tuple[float, float]

# The district sits in the Pudong outskirts: the outline follows a river in the north, a creek
# in the east and roads in the south and west; a canal crosses it from west to east.
NODES: dict[str, Coord] = {
    # outline, anticlockwise from the south-west corner
    "SW": (121.7050, 31.1215),
    "S2": (121.7205, 31.1210),
    "S1": (121.7480, 31.1195),
    "SE": (121.7930, 31.1180),
    "D4": (121.7960, 31.1330),
    "E1": (121.7955, 31.1470),
    "H3": (121.7985, 31.1690),
    "NE": (121.7970, 31.1880),
    "N1": (121.7620, 31.1905),
    "A3": (121.7310, 31.1935),
    "NW": (121.7020, 31.1920),
    "A1": (121.7015, 31.1765),
    "W1": (121.7035, 31.1630),
    # on the canal, west to east
    "B1": (121.7200, 31.1605),
    "A4": (121.7270, 31.1598),
    "C1": (121.7510, 31.1555),
    "C2": (121.7570, 31.1548),
    "D1": (121.7750, 31.1515),
    "H4": (121.7840, 31.1490),
    # inside
    "A2": (121.7290, 31.1770),
    "B2": (121.7225, 31.1390),
    "B3": (121.7495, 31.1405),
    "D2": (121.7720, 31.1345),
    "D3": (121.7490, 31.1310),
    "H1": (121.7620, 31.1745),
    "H2": (121.7805, 31.1715),
}

# Kinds of boundary line: extra vertices per km, the fewest per straight stretch, and how far
# (metres) they may stray from the straight line: small enough that no edge can cross another,
# sparse enough that a community keeps to at most 20 vertices.
STYLES: dict[str, tuple[float, int, float]] = {
    "river": (0.9, 1, 260.0),
    "creek": (0.8, 1, 160.0),
    "road": (0.4, 0, 30.0),
    "lane": (0.6, 1, 80.0),
}

# (from, to, style, fixed waypoints in between). Each is drawn once and reused both ways.
EDGES: list[tuple[str, str, str, tuple[Coord, ...]]] = [
    # north river, west to east
    ("NW", "A3", "river", ()),
    ("A3", "N1", "river", ()),
    ("N1", "NE", "river", ()),
    # east creek, north to south
    ("NE", "H3", "creek", ()),
    ("H3", "E1", "creek", ()),
    ("E1", "D4", "creek", ()),
    ("D4", "SE", "creek", ()),
    # south and west boundary roads
    ("SE", "S1", "road", ()),
    ("S1", "S2", "road", ()),
    ("S2", "SW", "road", ()),
    ("SW", "W1", "road", ()),
    ("W1", "A1", "road", ()),
    ("A1", "NW", "road", ()),
    # the canal, west to east
    ("W1", "B1", "river", ()),
    ("B1", "A4", "river", ()),
    ("A4", "C1", "river", ()),
    ("C1", "C2", "river", ()),
    ("C2", "D1", "river", ()),
    ("D1", "H4", "river", ()),
    ("H4", "E1", "river", ()),
    # the north-south road north of the canal, with a dog-leg at a former village
    ("C2", "H1", "road", ((121.7572, 31.1680), (121.7618, 31.1700))),
    ("H1", "N1", "road", ()),
    # the north-south road south of the canal
    ("C1", "B3", "road", ()),
    ("B3", "D3", "road", ()),
    ("D3", "S1", "road", ()),
    # local roads and lanes splitting streets into communities
    ("A1", "A2", "lane", ()),
    ("A2", "A3", "lane", ()),
    ("A2", "A4", "lane", ()),
    ("B1", "B2", "lane", ()),
    ("B2", "S2", "road", ()),
    ("B2", "B3", "lane", ()),
    ("D1", "D2", "lane", ()),
    ("D2", "D3", "lane", ()),
    ("D2", "D4", "road", ()),
    ("H1", "H2", "lane", ()),
    ("H2", "H3", "road", ()),
    ("H2", "H4", "lane", ()),
]

DISTRICT = ("PD", "浦东示范区", "Pudong Demonstration District")

# street code, names, then its communities as anticlockwise rings of nodes with
# (Chinese name, English name, sample point label)
STREETS: list[tuple[str, str, str, list[tuple[list[str], str, str, str]]]] = [
    (
        "PD-CJ",
        "春江街道",
        "Chunjiang Subdistrict",
        [
            (["W1", "B1", "A4", "A2", "A1"], "春江一村居委会", "Chunjiang No.1", "春江一村菜市场"),
            (
                ["A1", "A2", "A3", "NW"],
                "春江花苑居委会",
                "Chunjiang Garden",
                "春江花苑东门快递驿站",
            ),
            (
                ["A4", "C1", "C2", "H1", "N1", "A3", "A2"],
                "江枫居委会",
                "Jiangfeng",
                "江枫路骑手驿站",
            ),
        ],
    ),
    (
        "PD-HG",
        "海港街道",
        "Haigang Subdistrict",
        [
            (
                ["SW", "S2", "B2", "B1", "W1"],
                "海港新城居委会",
                "Haigang New Town",
                "海港新城社区卫生服务站",
            ),
            (
                ["B2", "B3", "C1", "A4", "B1"],
                "临港家园居委会",
                "Lingang Home",
                "临港家园党群服务站",
            ),
            (["S2", "S1", "D3", "B3", "B2"], "港湾居委会", "Gangwan", "港湾小学南门"),
        ],
    ),
    (
        "PD-HX",
        "合欣街道",
        "Hexin Subdistrict",
        [
            (["C2", "D1", "H4", "H2", "H1"], "合欣苑居委会", "Hexin Court", "合欣苑骑手之家"),
            (["H4", "E1", "H3", "H2"], "合庆社区居委会", "Heqing", "合庆换电站"),
            (["H1", "H2", "H3", "NE", "N1"], "欣悦居委会", "Xinyue", "欣悦广场公交站"),
        ],
    ),
    (
        "PD-DT",
        "东滩街道",
        "Dongtan Subdistrict",
        [
            (
                ["D3", "D2", "D1", "C2", "C1", "B3"],
                "东滩居委会",
                "Dongtan",
                "东滩地铁站2号口",
            ),
            (["D2", "D4", "E1", "H4", "D1"], "滨海苑居委会", "Binhai Court", "滨海苑便民服务中心"),
            (["S1", "SE", "D4", "D2", "D3"], "望海居委会", "Wanghai", "望海公园北门"),
        ],
    ),
]

COMMUNITY_CATEGORIES = [
    "bin_overflow",
    "exposed_garbage",
    "green_space",
    "illegal_ads",
    "noise",
    "safety_hazard",
    "access_restriction",
    "blocked_passage",
    "other",
]
STREET_CATEGORIES = ["illegal_parking", "street_vending", "construction", "other"]
DEPARTMENTS = [
    (
        "PD-SZ",
        "区市政设施管理所",
        "District Municipal Facilities Office",
        ["manhole_cover", "street_light", "road_damage", "waterlogging"],
    ),
    ("PD-JT", "区交通设施管理所", "District Traffic Facilities Office", ["traffic_facility"]),
    ("PD-LH", "区绿化管理所", "District Landscaping Office", ["street_tree"]),
    ("PD-QS", "新就业群体服务中心", "New Employment Groups Service Centre", ["rider_need"]),
]

# The README's curl example promises this point lies in PD-HG-02.
README_POINT = ("PD-HG-02", 121.737424, 31.154114)

LAT0 = 31.155
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(LAT0))
MIN_SAMPLE_CLEARANCE_M = 150.0


def metres(geometry: Any) -> Any:
    """Degrees to a local plane in metres; plenty accurate over 10 km."""
    return affinity.scale(geometry, M_PER_DEG_LON, M_PER_DEG_LAT, origin=(0, 0))


def degrees(geometry: Any) -> Any:
    return affinity.scale(geometry, 1 / M_PER_DEG_LON, 1 / M_PER_DEG_LAT, origin=(0, 0))


def draw_edge(a: str, b: str, style: str, waypoints: tuple[Coord, ...]) -> list[Coord]:
    per_km, fewest, stray_m = STYLES[style]
    rng = random.Random(f"demo-city:{a}-{b}")
    anchors = [NODES[a], *waypoints, NODES[b]]
    line: list[Coord] = [anchors[0]]
    for (x0, y0), (x1, y1) in pairwise(anchors):
        dx_m, dy_m = (x1 - x0) * M_PER_DEG_LON, (y1 - y0) * M_PER_DEG_LAT
        length_m = math.hypot(dx_m, dy_m)
        extra = max(fewest, round(length_m / 1000 * per_km))
        # unit normal in metres, so the wobble is the same on both axes
        nx, ny = -dy_m / length_m, dx_m / length_m
        for k in range(1, extra + 1):
            t = (k + rng.uniform(-0.25, 0.25)) / (extra + 1)
            # A wobble never exceeds a sixth of the edge, so short edges stay nearly straight.
            off = rng.uniform(-1, 1) * min(stray_m, length_m / 6)
            line.append(
                (
                    x0 + (x1 - x0) * t + nx * off / M_PER_DEG_LON,
                    y0 + (y1 - y0) * t + ny * off / M_PER_DEG_LAT,
                )
            )
        line.append((x1, y1))
    # Rounded once here, so both neighbours get bit-identical vertices.
    return [(round(x, 6), round(y, 6)) for x, y in line]


def build() -> dict[str, Any]:
    edges: dict[tuple[str, str], list[Coord]] = {}
    for a, b, style, waypoints in EDGES:
        line = draw_edge(a, b, style, waypoints)
        edges[a, b] = line
        edges[b, a] = line[::-1]

    def ring(nodes: list[str]) -> Polygon:
        coords: list[Coord] = []
        for a, b in zip(nodes, [*nodes[1:], nodes[0]], strict=True):
            coords.extend(edges[a, b][:-1])
        polygon = Polygon(coords)
        if not polygon.is_valid or not polygon.exterior.is_ccw:
            raise SystemExit(f"ring {nodes} is invalid or clockwise")
        if not 6 <= len(coords) <= 20:
            raise SystemExit(f"ring {nodes} has {len(coords)} vertices")
        return polygon

    district_code, district_name, district_en = DISTRICT
    offices: list[dict[str, Any]] = []
    sample_points: list[dict[str, Any]] = []
    street_rows: list[dict[str, Any]] = []
    street_shapes = []
    for code, name, name_en, communities in STREETS:
        cells = []
        community_rows = []
        for number, (nodes, cname, cname_en, label) in enumerate(communities, start=1):
            cell = ring(nodes)
            cells.append(cell)
            community_code = f"{code}-{number:02d}"
            community_rows.append(
                {
                    "code": community_code,
                    "name": cname,
                    "name_en": f"{cname_en} Residents' Committee",
                    "kind": "community",
                    "parent": code,
                    "jurisdiction": mapping(cell),
                    "categories": COMMUNITY_CATEGORIES,
                }
            )
            # The pole of inaccessibility, found in metres: as far from every border as it gets.
            spot = degrees(polylabel(metres(cell), tolerance=1.0))
            spot = Point(round(spot.x, 6), round(spot.y, 6))
            clearance = metres(cell.exterior).distance(metres(spot))
            if clearance < MIN_SAMPLE_CLEARANCE_M:
                raise SystemExit(f"{community_code}: sample point only {clearance:.0f} m inside")
            sample_points.append(
                {"office": community_code, "lon": spot.x, "lat": spot.y, "label": label}
            )
        street = unary_union(cells)
        if street.geom_type != "Polygon" or street.interiors:
            raise SystemExit(f"{code}: its communities do not make one solid polygon")
        street_shapes.append(street)
        street_rows.append(
            {
                "code": code,
                "name": name,
                "name_en": name_en,
                "kind": "street",
                "parent": district_code,
                "jurisdiction": mapping(orient(street)),
                "categories": STREET_CATEGORIES,
            }
        )
        street_rows.extend(community_rows)
    district = unary_union(street_shapes)
    if district.geom_type != "Polygon" or district.interiors:
        raise SystemExit("the streets do not make one solid district")

    readme_office, lon, lat = README_POINT
    holder = next(r for r in street_rows if r["code"] == readme_office)
    if not Polygon(holder["jurisdiction"]["coordinates"][0]).contains(Point(lon, lat)):
        raise SystemExit(f"the README's example point left {readme_office}")

    # Parents come before their children: the seed loader relies on it.
    offices.append(
        {
            "code": district_code,
            "name": district_name,
            "name_en": district_en,
            "kind": "district",
            "parent": None,
            "jurisdiction": mapping(orient(district)),
            "categories": ["other"],
        }
    )
    offices.extend(street_rows)
    for code, name, name_en, categories in DEPARTMENTS:
        offices.append(
            {
                "code": code,
                "name": name,
                "name_en": name_en,
                "kind": "department",
                "parent": district_code,
                "jurisdiction": None,
                "categories": categories,
            }
        )
    return {"city": "上海市浦东新区 (demo)", "offices": offices, "sample_points": sample_points}


def _plain(value: Any) -> Any:
    """shapely's mapping() gives tuples; JSON wants lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


if __name__ == "__main__":
    OUT.write_text(
        json.dumps(_plain(build()), ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    print(f"wrote {OUT}")
