"""Writes models/seed/demo_city.json: one district, 4 streets of 3 communities each.

The communities are cells of a 4 x 3 lattice whose corners and edge points are jittered once
and shared by both neighbours, so the polygons look irregular yet tile their street and the
district exactly. Deterministic: run it again and the file is the same.

    .venv/bin/python docs/tools/make_demo_city.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from shapely.geometry import Polygon, mapping
from shapely.ops import unary_union

OUT = Path(__file__).resolve().parents[2] / "models" / "seed" / "demo_city.json"
WEST, EAST, SOUTH, NORTH = 121.700, 121.800, 31.120, 31.190
COLUMNS, ROWS = 4, 3
EDGE_POINTS = 2  # extra vertices per cell edge

STREETS = [
    ("PD-CJ", "春江街道", "Chunjiang Subdistrict"),
    ("PD-HG", "海港街道", "Haigang Subdistrict"),
    ("PD-HX", "合欣街道", "Hexin Subdistrict"),
    ("PD-DT", "东滩街道", "Dongtan Subdistrict"),
]
COMMUNITIES = [
    [
        ("春江一村居委会", "Chunjiang No.1"),
        ("春江花苑居委会", "Chunjiang Garden"),
        ("江枫居委会", "Jiangfeng"),
    ],
    [
        ("海港新城居委会", "Haigang New Town"),
        ("临港家园居委会", "Lingang Home"),
        ("港湾居委会", "Gangwan"),
    ],
    [("合欣苑居委会", "Hexin Court"), ("合庆社区居委会", "Heqing"), ("欣悦居委会", "Xinyue")],
    [("东滩居委会", "Dongtan"), ("滨海苑居委会", "Binhai Court"), ("望海居委会", "Wanghai")],
]
LANDMARKS = [
    "春江骑手驿站",
    "社区卫生服务站",
    "菜市场北门",
    "快递驿站",
    "幼儿园门口",
    "地铁站2号口",
    "合庆骑手之家",
    "便民服务中心",
    "公交枢纽站",
    "东滩公园南门",
    "滨海广场",
    "望海小学",
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


def build() -> dict:
    rng = random.Random(20261123)
    dx, dy = (EAST - WEST) / COLUMNS, (NORTH - SOUTH) / ROWS

    corners = {}
    for i in range(COLUMNS + 1):
        for j in range(ROWS + 1):
            x, y = WEST + i * dx, SOUTH + j * dy
            jx = 0 if i in (0, COLUMNS) else rng.uniform(-0.18, 0.18) * dx
            jy = 0 if j in (0, ROWS) else rng.uniform(-0.18, 0.18) * dy
            # the outer ring wobbles along itself only, so it stays a simple polygon
            if i in (0, COLUMNS) and 0 < j < ROWS:
                jy = rng.uniform(-0.18, 0.18) * dy
            if j in (0, ROWS) and 0 < i < COLUMNS:
                jx = rng.uniform(-0.18, 0.18) * dx
            corners[i, j] = (x + jx, y + jy)

    edges: dict[tuple, list[tuple[float, float]]] = {}

    def edge(a: tuple[int, int], b: tuple[int, int]) -> list[tuple[float, float]]:
        key = (min(a, b), max(a, b))
        if key not in edges:
            (x0, y0), (x1, y1) = corners[key[0]], corners[key[1]]
            horizontal = key[0][1] == key[1][1]
            points = [corners[key[0]]]
            for k in range(1, EDGE_POINTS + 1):
                t = k / (EDGE_POINTS + 1)
                px, py = x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
                wobble = rng.uniform(-0.07, 0.07)
                if horizontal:
                    py += wobble * dy
                else:
                    px += wobble * dx
                points.append((px, py))
            points.append(corners[key[1]])
            edges[key] = points
        points = edges[key]
        return points if key[0] == a else list(reversed(points))

    offices = []
    district_code = "PD"
    cells: dict[tuple[int, int], Polygon] = {}
    for i in range(COLUMNS):
        for j in range(ROWS):
            ring: list[tuple[float, float]] = []
            for a, b in [
                ((i, j), (i + 1, j)),
                ((i + 1, j), (i + 1, j + 1)),
                ((i + 1, j + 1), (i, j + 1)),
                ((i, j + 1), (i, j)),
            ]:
                ring.extend(edge(a, b)[:-1])
            ring.append(ring[0])
            cells[i, j] = Polygon([(round(x, 6), round(y, 6)) for x, y in ring])

    streets = {i: unary_union([cells[i, j] for j in range(ROWS)]) for i in range(COLUMNS)}
    district = unary_union(list(streets.values()))
    offices.append(
        {
            "code": district_code,
            "name": "浦东示范区",
            "name_en": "Pudong Demonstration District",
            "kind": "district",
            "parent": None,
            "jurisdiction": mapping(district),
            "categories": ["other"],
        }
    )
    sample_points = []
    for i, (code, name, name_en) in enumerate(STREETS):
        offices.append(
            {
                "code": code,
                "name": name,
                "name_en": name_en,
                "kind": "street",
                "parent": district_code,
                "jurisdiction": mapping(streets[i]),
                "categories": STREET_CATEGORIES,
            }
        )
        for j in range(ROWS):
            community_code = f"{code}-{j + 1:02d}"
            cname, cname_en = COMMUNITIES[i][j]
            cell = cells[i, j]
            offices.append(
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
            point = cell.representative_point()
            sample_points.append(
                {
                    "office": community_code,
                    "lon": round(point.x, 6),
                    "lat": round(point.y, 6),
                    "label": LANDMARKS[i * ROWS + j],
                }
            )
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


def _plain(value):
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
