"""Routing cost as the city grows: point → offices (JurisdictionIndex.containing) → office
(OfficeDirectory.route), on synthetic cities of 100, 1,000 and 10,000 communities.

Target (issue): below 1 ms per report at 10,000 jurisdictions, and flat as the city grows.

Each size runs in a fresh Python process so its memory numbers are its own. A synthetic city is
drawn deterministically from the seed:

- N community jurisdictions tile a rectangular region: a grid whose vertices and edge midpoints
  are jittered, so each cell is an irregular octagon sharing its exact border coordinates with
  its neighbours. About 3 % of cells have a square hole: half of these holes hold an enclave
  community (a shared inner border), the other half are left to the street. About 3 % of the
  communities are MultiPolygons of two cells two columns apart (some of their parts have holes).
- streets are blocks of 4 x 5 cells and districts blocks of 5 x 5 streets, so the hierarchy has
  three levels; each district has three departments without a polygon and each street one.
- a few communities are inactive (left out of the index, as services/processing.py does) or handle
  none of the community categories, so routing walks up.

Points are inside the region (uniform), exactly on shared borders (grid vertices, edge midpoints
and hole edges, where 2 to 4 jurisdictions of one kind meet), or outside it. Every report gets a
random category among community, street, department, district and unhandled ones.

For a sample of points the index's answer is checked against a brute-force shapely scan of every
jurisdiction, sorted by the documented tie-break (kind, then area, then code): lists must be
identical.

Each size's build and its routing of every report are repeated ``--rounds`` times (3) in its
process; each figure is the median of the rounds' values, with their min and max. Results go to
benchmarks/results/routing.md and <date>-routing.json (harness.write_result).

    .venv/bin/python benchmarks/bench_routing.py [--sizes 100,1000,10000] [--reports N]
                                                 [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import harness
import numpy as np
import shapely
from shapely.geometry import Point, shape

from routing.geometry import JurisdictionIndex
from routing.rules import OfficeDirectory, OfficeNode

TARGET_MS = 1.0
PERCENTILES = ("median", "p95", "p99", "max")

CELL = 0.004  # degrees, about 400 m at Shanghai's latitude
ORIGIN = (121.30, 30.90)  # lon, lat of the region's south-west corner
STREET_BLOCK = (4, 5)  # cells per street: rows, columns
DISTRICT_BLOCK = (5, 5)  # streets per district: rows, columns
HOLE_SHARE = 0.03
MULTI_SURPLUS = 0.02  # MultiPolygons: this share of cells, plus one per enclave
INACTIVE_SHARE = 0.02
IDLE_SHARE = 0.03  # communities that handle none of the community categories

COMMUNITY_CATEGORIES = frozenset({"bin_overflow", "exposed_garbage", "blocked_passage"})
STREET_CATEGORIES = frozenset({"illegal_parking", "street_vending", "construction"})
DISTRICT_CATEGORIES = frozenset({"other", "noise"})
DISTRICT_DEPARTMENTS = {
    "MUN": frozenset({"manhole_cover", "street_light", "road_damage"}),
    "GRN": frozenset({"green_space", "street_tree"}),
    "TRF": frozenset({"traffic_facility"}),
}
STREET_DEPARTMENT = frozenset({"waterlogging"})
# Routed in the benchmark: one per level, plus one nobody handles (no_office_handles).
BENCH_CATEGORIES = (
    "bin_overflow",
    "exposed_garbage",
    "illegal_parking",
    "manhole_cover",
    "waterlogging",
    "other",
    "rider_need",
)
KIND_RANK = {"community": 0, "street": 1, "district": 2}

Coord = tuple[float, float]
Ring = list[Coord]


@dataclass
class City:
    rows: list[tuple[str, str, dict[str, Any]]]  # (code, kind, GeoJSON) as from_geojson takes
    offices: list[OfficeNode]
    bbox: tuple[float, float, float, float]
    border_points: list[Coord]
    communities: int
    multipolygons: int
    holes: int
    enclaves: int
    streets: int
    districts: int
    departments: int


@dataclass
class SizeResult:
    size: int
    communities: int
    jurisdictions: int
    offices: int
    multipolygons: int
    holes: int
    enclaves: int
    streets: int
    districts: int
    departments: int
    rounds: int
    build_ms: dict[str, Any]  # harness.summarize over the rounds
    tracemalloc_peak_mb: float
    rss_before_mb: float
    rss_after_mb: float
    reports: int
    # per statistic of a round's per-report times (PERCENTILES): summarized over the rounds
    total_us: dict[str, dict[str, Any]] = field(default_factory=dict)
    containing_us: dict[str, dict[str, Any]] = field(default_factory=dict)
    route_us: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, int] = field(default_factory=dict)
    checked_points: int = 0
    check_ms: float = 0.0


# --------------------------------------------------------------------------- synthetic city


def grid_for(n: int) -> tuple[int, int]:
    """(rows, columns) of a grid with a few more cells than ``n``: the surplus is taken up by
    MultiPolygon communities (each turns two cells into one community)."""
    cells = math.ceil(n * (1 + MULTI_SURPLUS))
    cols = math.ceil(math.sqrt(cells))
    return math.ceil(cells / cols), cols


def generate_city(n: int, seed: int) -> City:
    rng = random.Random(f"cityrelay-routing-{seed}-{n}")
    rows, cols = grid_for(n)
    x0, y0 = ORIGIN

    def at(i: float, j: float) -> Coord:
        return (round(x0 + j * CELL, 7), round(y0 + i * CELL, 7))

    def jitter(limit: float, free: bool) -> float:
        return rng.uniform(-limit, limit) if free else 0.0

    # Every vertex is computed once and reused by every ring that passes through it, so
    # neighbours share their borders exactly.
    vertex: dict[tuple[int, int], Coord] = {}
    for i in range(rows + 1):
        for j in range(cols + 1):
            inner_i, inner_j = 0 < i < rows, 0 < j < cols
            # on the region's edge a vertex slides only along the edge; corners stay put
            di = jitter(0.2, inner_i and (inner_j or j in (0, cols)))
            dj = jitter(0.2, inner_j and (inner_i or i in (0, rows)))
            vertex[i, j] = at(i + di, j + dj)
    # midpoints of horizontal edges (i, j)→(i, j+1) and of vertical edges (i, j)→(i+1, j)
    h_mid: dict[tuple[int, int], Coord] = {}
    for i in range(rows + 1):
        for j in range(cols):
            (ax, ay), (bx, by) = vertex[i, j], vertex[i, j + 1]
            t = rng.uniform(0.35, 0.65)
            dy = jitter(0.1, 0 < i < rows) * CELL
            h_mid[i, j] = (round(ax + t * (bx - ax), 7), round(ay + t * (by - ay) + dy, 7))
    v_mid: dict[tuple[int, int], Coord] = {}
    for i in range(rows):
        for j in range(cols + 1):
            (ax, ay), (bx, by) = vertex[i, j], vertex[i + 1, j]
            t = rng.uniform(0.35, 0.65)
            dx = jitter(0.1, 0 < j < cols) * CELL
            v_mid[i, j] = (round(ax + t * (bx - ax) + dx, 7), round(ay + t * (by - ay), 7))

    def block_ring(i0: int, i1: int, j0: int, j1: int) -> Ring:
        """Counter-clockwise outline of cells [i0, i1) x [j0, j1)."""
        ring: Ring = []
        for j in range(j0, j1):  # south, west to east
            ring += [vertex[i0, j], h_mid[i0, j]]
        for i in range(i0, i1):  # east, south to north
            ring += [vertex[i, j1], v_mid[i, j1]]
        for j in range(j1, j0, -1):  # north, east to west
            ring += [vertex[i1, j], h_mid[i1, j - 1]]
        for i in range(i1, i0, -1):  # west, north to south
            ring += [vertex[i, j0], v_mid[i - 1, j0]]
        return [*ring, ring[0]]

    srows, scols = STREET_BLOCK
    drows, dcols = DISTRICT_BLOCK
    street_grid = (math.ceil(rows / srows), math.ceil(cols / scols))
    district_grid = (math.ceil(street_grid[0] / drows), math.ceil(street_grid[1] / dcols))

    def street_of(i: int, j: int) -> tuple[int, int]:
        return i // srows, j // scols

    cells = [(i, j) for i in range(rows) for j in range(cols)]
    hole_count = max(2, round(HOLE_SHARE * len(cells)))
    holed = rng.sample(cells, hole_count)
    enclave_cells = set(holed[: hole_count // 2])
    hole_cells = set(holed)
    # MultiPolygon pairs: (i, j) with (i, j + 2), inside one street, no cell in two pairs.
    # communities = cells + enclaves - pairs must equal n.
    pair_target = len(cells) + len(enclave_cells) - n
    pairs: list[tuple[tuple[int, int], tuple[int, int]]] = []
    taken: set[tuple[int, int]] = set()
    candidates = [
        (i, j) for i, j in cells if j + 2 < cols and street_of(i, j) == street_of(i, j + 2)
    ]
    rng.shuffle(candidates)
    for i, j in candidates:
        if len(pairs) == pair_target:
            break
        if (i, j) in taken or (i, j + 2) in taken:
            continue
        pairs.append(((i, j), (i, j + 2)))
        taken |= {(i, j), (i, j + 2)}
    if len(pairs) != pair_target:
        raise SystemExit(f"cannot draw a city of {n} communities on a {rows}x{cols} grid")

    def cell_polygon(i: int, j: int) -> list[Ring]:
        outer = block_ring(i, i + 1, j, j + 1)
        if (i, j) not in hole_cells:
            return [outer]
        return [outer, list(reversed(hole_ring(i, j)))]

    hole_rings: dict[tuple[int, int], Ring] = {}

    def hole_ring(i: int, j: int) -> Ring:
        if (i, j) not in hole_rings:
            # the jittered cell always contains its central 0.2..0.8 square
            a, b = at(i + 0.35, j + 0.35), at(i + 0.65, j + 0.65)
            hole_rings[i, j] = [a, (b[0], a[1]), b, (a[0], b[1]), a]
        return hole_rings[i, j]

    rows_out: list[tuple[str, str, dict[str, Any]]] = []
    offices: list[OfficeNode] = []
    border_points: list[Coord] = []

    def district_code(si: int, sj: int) -> str:
        return f"D{(si // drows) * district_grid[1] + sj // dcols:03d}"

    def street_code(si: int, sj: int) -> str:
        return f"S{si * street_grid[1] + sj:05d}"

    community_parts: list[tuple[list[tuple[int, int]], str]] = []
    partner = {a: b for a, b in pairs}
    paired_second = {b for _, b in pairs}
    for i, j in cells:
        if (i, j) in paired_second:
            continue
        parts = [(i, j)] if (i, j) not in partner else [(i, j), partner[i, j]]
        community_parts.append((parts, street_code(*street_of(i, j))))
    for i, j in sorted(enclave_cells):
        # its rings are filled in below, once every enclave is known
        community_parts.append(([], street_code(*street_of(i, j))))
    enclave_list = sorted(enclave_cells)

    order = list(range(len(community_parts)))
    rng.shuffle(order)  # codes do not follow the grid, as real codes do not follow geometry
    inactive = set(rng.sample(order, max(1, round(INACTIVE_SHARE * len(order)))))
    idle = set(rng.sample(order, max(1, round(IDLE_SHARE * len(order)))))
    enclave_at = len(community_parts) - len(enclave_list)
    for number, k in enumerate(order):
        parts, street = community_parts[k]
        code = f"C{number:06d}"
        if k >= enclave_at:
            geometry: dict[str, Any] = {
                "type": "Polygon",
                "coordinates": [hole_ring(*enclave_list[k - enclave_at])],
            }
        elif len(parts) == 1:
            geometry = {"type": "Polygon", "coordinates": cell_polygon(*parts[0])}
        else:
            geometry = {"type": "MultiPolygon", "coordinates": [cell_polygon(*p) for p in parts]}
        active = k not in inactive
        if active:
            rows_out.append((code, "community", geometry))
        categories = frozenset() if k in idle else COMMUNITY_CATEGORIES
        offices.append(OfficeNode(code, "community", street, categories, True, active))

    for si in range(street_grid[0]):
        for sj in range(street_grid[1]):
            i0, j0 = si * srows, sj * scols
            i1, j1 = min(i0 + srows, rows), min(j0 + scols, cols)
            code = street_code(si, sj)
            ring = block_ring(i0, i1, j0, j1)
            rows_out.append((code, "street", {"type": "Polygon", "coordinates": [ring]}))
            offices.append(
                OfficeNode(code, "street", district_code(si, sj), STREET_CATEGORIES, True)
            )
            offices.append(
                OfficeNode(f"DEP-{code}-SAN", "department", code, STREET_DEPARTMENT, False)
            )
    for di in range(district_grid[0]):
        for dj in range(district_grid[1]):
            i0, j0 = di * drows * srows, dj * dcols * scols
            i1 = min(i0 + drows * srows, rows)
            j1 = min(j0 + dcols * scols, cols)
            code = f"D{di * district_grid[1] + dj:03d}"
            ring = block_ring(i0, i1, j0, j1)
            rows_out.append((code, "district", {"type": "Polygon", "coordinates": [ring]}))
            offices.append(OfficeNode(code, "district", None, DISTRICT_CATEGORIES, True))
            for suffix, categories in DISTRICT_DEPARTMENTS.items():
                offices.append(
                    OfficeNode(f"DEP-{code}-{suffix}", "department", code, categories, False)
                )

    # Points exactly on shared borders: grid vertices (2 to 4 cells meet), edge midpoints (2
    # cells), and the corners and edges of holes (a donut and its enclave, or the street).
    border_points += list(vertex.values()) + list(h_mid.values()) + list(v_mid.values())
    for ring in hole_rings.values():
        (ax, ay), (bx, by) = ring[0], ring[2]
        border_points += ring[:4]
        border_points += [(round((ax + bx) / 2, 7), ay), (ax, round((ay + by) / 2, 7))]

    return City(
        rows=rows_out,
        offices=offices,
        bbox=(x0, y0, x0 + cols * CELL, y0 + rows * CELL),
        border_points=border_points,
        communities=len(community_parts),
        multipolygons=len(pairs),
        holes=len(hole_cells),
        enclaves=len(enclave_cells),
        streets=street_grid[0] * street_grid[1],
        districts=district_grid[0] * district_grid[1],
        departments=sum(o.kind == "department" for o in offices),
    )


def sample_points(city: City, count: int, rng: random.Random) -> list[tuple[str, Coord]]:
    """(where, point): 70 % inside, 20 % on a shared border, 10 % outside the region."""
    xmin, ymin, xmax, ymax = city.bbox
    points: list[tuple[str, Coord]] = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.7:
            points.append(("inside", (rng.uniform(xmin, xmax), rng.uniform(ymin, ymax))))
        elif roll < 0.9:
            points.append(("border", rng.choice(city.border_points)))
        else:
            side = rng.randrange(4)
            far = rng.uniform(0.001, 0.05)
            along_x, along_y = rng.uniform(xmin, xmax), rng.uniform(ymin, ymax)
            point = [
                (xmin - far, along_y),
                (xmax + far, along_y),
                (along_x, ymin - far),
                (along_x, ymax + far),
            ][side]
            points.append(("outside", point))
    return points


# --------------------------------------------------------------------------- measurements


def rss_mb() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(city: City) -> tuple[JurisdictionIndex, OfficeDirectory]:
    index = JurisdictionIndex.from_geojson(city.rows)
    directory = OfficeDirectory(city.offices)
    return index, directory


def percentiles(samples_ns: Sequence[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] / 1000

    return {
        "median": statistics.median(ordered) / 1000,
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": ordered[-1] / 1000,
    }


class BruteForce:
    """Every jurisdiction checked one by one with shapely, sorted by the documented tie-break:
    most specific kind, then smaller area, then code. Built from the GeoJSON on its own."""

    def __init__(self, rows: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        self.codes = [code for code, _, _ in rows]
        self.geoms = np.array([shape(geo) for _, _, geo in rows], dtype=object)
        areas = shapely.area(self.geoms)
        self.keys = [
            (KIND_RANK[kind], float(area), code)
            for (code, kind, _), area in zip(rows, areas, strict=True)
        ]

    def containing(self, lon: float, lat: float) -> list[str]:
        hits = np.flatnonzero(shapely.covers(self.geoms, Point(lon, lat)))
        return [key[2] for key in sorted(self.keys[h] for h in hits)]


def check(
    index: JurisdictionIndex,
    brute: BruteForce,
    kinds: dict[str, str],
    points: Sequence[tuple[str, Coord]],
) -> int:
    for where, (lon, lat) in points:
        got = index.containing(lon, lat)
        expected = brute.containing(lon, lat)
        assert got == expected, f"{where} point ({lon!r}, {lat!r}): index {got} != {expected}"
        levels = [kinds[code] for code in got]
        if where == "outside":
            assert got == [], f"outside point ({lon!r}, {lat!r}) in {got}"
        elif where == "inside":
            # a random point is (almost surely) on no border: one street, one district, and one
            # community unless it falls in a street-run hole or an inactive community
            assert levels.count("street") == 1 and levels.count("district") == 1, got
            assert levels.count("community") <= 1, got
    return len(points)


def over_rounds(rounds: Sequence[dict[str, float]]) -> dict[str, dict[str, Any]]:
    """Each statistic of the rounds (their medians, their p95s, …) as median, min and max."""
    return {name: harness.summarize([r[name] for r in rounds], 2) for name in PERCENTILES}


def run_size(n: int, reports: int, seed: int, check_points: int, rounds: int) -> SizeResult:
    city = generate_city(n, seed)
    gc.collect()
    rss_before = rss_mb()
    builds_ms: list[float] = []
    rss_after = rss_before
    for round_number in range(rounds):
        started = time.perf_counter()
        index, directory = build(city)
        builds_ms.append((time.perf_counter() - started) * 1000)
        if round_number == 0:  # later rounds replace an index that is still held
            gc.collect()
            rss_after = rss_mb()

    tracemalloc.start()
    again = build(city)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del again
    gc.collect()

    rng = random.Random(f"cityrelay-points-{seed}-{n}")
    points = sample_points(city, reports, rng)
    categories = [rng.choice(BENCH_CATEGORIES) for _ in points]

    for (_, (lon, lat)), category in list(zip(points, categories, strict=True))[:200]:
        directory.route(index.containing(lon, lat), category)  # warm-up

    total_rounds: list[dict[str, float]] = []
    locate_rounds: list[dict[str, float]] = []
    decide_rounds: list[dict[str, float]] = []
    rules: dict[str, int] = {}
    clock = time.perf_counter_ns
    for round_number in range(rounds):
        total: list[int] = []
        locate: list[int] = []
        decide: list[int] = []
        for (_, (lon, lat)), category in zip(points, categories, strict=True):
            t0 = clock()
            containing = index.containing(lon, lat)
            t1 = clock()
            decision = directory.route(containing, category)
            t2 = clock()
            total.append(t2 - t0)
            locate.append(t1 - t0)
            decide.append(t2 - t1)
            if round_number == 0:
                rules[decision.rule] = rules.get(decision.rule, 0) + 1
        total_rounds.append(percentiles(total))
        locate_rounds.append(percentiles(locate))
        decide_rounds.append(percentiles(decide))

    started = time.perf_counter()
    brute = BruteForce(city.rows)
    kinds = {code: kind for code, kind, _ in city.rows}
    sample = points[:check_points]
    # make sure every kind of point is checked, borders above all
    sample += [p for p in points[check_points:] if p[0] == "border"][: check_points // 2]
    checked = check(index, brute, kinds, sample)
    check_ms = (time.perf_counter() - started) * 1000

    return SizeResult(
        size=n,
        communities=city.communities,
        jurisdictions=len(index),
        offices=len(city.offices),
        multipolygons=city.multipolygons,
        holes=city.holes,
        enclaves=city.enclaves,
        streets=city.streets,
        districts=city.districts,
        departments=city.departments,
        rounds=rounds,
        build_ms=harness.summarize(builds_ms, 1),
        tracemalloc_peak_mb=peak / 2**20,
        rss_before_mb=rss_before,
        rss_after_mb=rss_after,
        reports=len(points),
        total_us=over_rounds(total_rounds),
        containing_us=over_rounds(locate_rounds),
        route_us=over_rounds(decide_rounds),
        rules=dict(sorted(rules.items())),
        checked_points=checked,
        check_ms=check_ms,
    )


# --------------------------------------------------------------------------- report


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        model = platform.processor() or "unknown"
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "nproc": str(usable),
        "cpu": model,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "shapely": f"{shapely.__version__} (GEOS {shapely.geos_version_string})",
        "platform": platform.platform(),
    }


def table(results: Sequence[SizeResult]) -> list[str]:
    lines = [
        "| communities | jurisdictions in index | build (ms) | tracemalloc peak (MB) "
        "| RSS after build (MB, +delta) | median (µs) | p95 (µs) | p99 (µs) "
        "| containing median (µs) | route median (µs) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        delta = r.rss_after_mb - r.rss_before_mb
        lines.append(
            f"| {r.size:,} | {r.jurisdictions:,} | {harness.shown(r.build_ms)} "
            f"| {r.tracemalloc_peak_mb:.1f} | {r.rss_after_mb:.0f} (+{delta:.1f}) "
            f"| {harness.shown(r.total_us['median'])} | {harness.shown(r.total_us['p95'])} "
            f"| {harness.shown(r.total_us['p99'])} "
            f"| {harness.shown(r.containing_us['median'])} "
            f"| {harness.shown(r.route_us['median'])} |"
        )
    return lines


def target_met(results: Sequence[SizeResult]) -> bool:
    """The largest city's p99 below the target in every round."""
    largest = max(results, key=lambda r: r.size)
    return bool(largest.total_us["p99"]["max"] / 1000 < TARGET_MS)


def verdict(results: Sequence[SizeResult]) -> str:
    largest = max(results, key=lambda r: r.size)
    p99 = largest.total_us["p99"]
    met = "met" if target_met(results) else "NOT met"
    return (
        f"Target below {TARGET_MS:g} ms per report at {largest.size:,} communities, in every "
        f"round: **{met}** (p99 {harness.shown(p99, ' µs')}, median "
        f"{harness.shown(largest.total_us['median'], ' µs')})."
    )


def write_markdown(path: Path, results: Sequence[SizeResult], args: argparse.Namespace) -> None:
    info = machine()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    lines = [
        "# Routing benchmark",
        "",
        "Written by `benchmarks/bench_routing.py"
        f" --sizes {','.join(str(r.size) for r in results)} --reports {args.reports}"
        f" --seed {args.seed} --rounds {args.rounds}`" + f"{harness.SMOKE_NOTE}.",
        "",
        f"- date: {now}",
        f"- machine: {info['nproc']} CPUs usable (nproc), {info['cpu']}",
        f"- Python: {info['python']}; shapely {info['shapely']}",
        f"- platform: {info['platform']}",
        "",
        "Per report: one `JurisdictionIndex.containing(lon, lat)` plus one "
        "`OfficeDirectory.route(containing, category)`, timed together with "
        "`time.perf_counter_ns`, one process per size, garbage collector on. Each size's build "
        "and its routing of every report are repeated in rounds: each cell is the median of the "
        "rounds' values (min–max).",
        "",
        *table(results),
        "",
        verdict(results),
        "",
        "## The cities",
        "",
        "| communities | grid cells | MultiPolygons | holes (with enclave) | streets | districts "
        "| departments (no polygon) | offices | reports | rules taken |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        rules = ", ".join(f"{k} {v}" for k, v in r.rules.items())
        rows, cols = grid_for(r.size)
        lines.append(
            f"| {r.communities:,} | {rows * cols:,} | {r.multipolygons} "
            f"| {r.holes} ({r.enclaves}) | {r.streets} | {r.districts} | {r.departments} "
            f"| {r.offices:,} | {r.reports:,} | {rules} |"
        )
    lines += [
        "",
        "## Correctness",
        "",
        "For each size the index's answer for a sample of the points (inside, on shared borders "
        "and outside) was compared with a brute-force shapely `covers` scan of every "
        "jurisdiction sorted by kind, then area, then code: the lists were identical.",
        "",
    ]
    lines += [
        f"- {r.size:,}: {r.checked_points} points checked in {r.check_ms:,.0f} ms" for r in results
    ]
    lines += [
        "",
        "## Reading the numbers",
        "",
        "- build: `JurisdictionIndex.from_geojson` (parse and validate every GeoJSON polygon, "
        "build the STR-tree) plus `OfficeDirectory`, from GeoJSON dicts already in memory, as "
        "`services/processing.py` does when the offices change.",
        "- tracemalloc peak: Python allocations during a second build. GEOS allocates the "
        "geometries in C, which tracemalloc does not see; the RSS delta (VmRSS after the first "
        "build minus before it) includes them.",
        "- median, p95 and p99 over all reports of the size in one round, then the median "
        "(min–max) of the rounds; `containing` and `route` medians are the two halves. On a "
        "shared or busy machine p95 and p99 move from run to run (tens of µs); the medians "
        "hardly do.",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default=harness.smoke_scaled("100,1000,10000", "100"),
        help="communities per city",
    )
    parser.add_argument(
        "--reports",
        type=int,
        default=harness.smoke_scaled(5000, 200),
        help="reports routed per size and round",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--check",
        type=int,
        default=harness.smoke_scaled(400, 50),
        help="points checked by brute force",
    )
    parser.add_argument("--rounds", type=int, default=3, help="builds and routings per size")
    parser.add_argument("--output", type=Path, default=harness.results_dir() / "routing.md")
    parser.add_argument("--one-size", type=int, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    if args.one_size is not None:
        result = run_size(args.one_size, args.reports, args.seed, args.check, args.rounds)
        print(json.dumps(asdict(result)))
        return 0

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    results: list[SizeResult] = []
    for n in sizes:
        print(f"routing benchmark: {n:,} communities …", file=sys.stderr, flush=True)
        child = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                f"--one-size={n}",
                f"--reports={args.reports}",
                f"--seed={args.seed}",
                f"--check={args.check}",
                f"--rounds={args.rounds}",
            ],
            capture_output=True,
            text=True,
        )
        if child.returncode != 0:
            sys.stderr.write(child.stderr)
            return child.returncode
        results.append(SizeResult(**json.loads(child.stdout.strip().splitlines()[-1])))

    print("\n".join(table(results)))
    print(verdict(results))
    write_markdown(args.output, results, args)
    print(f"written to {args.output}")
    harness.write_result(
        "routing",
        {
            "parameters": {
                "sizes": sizes,
                "reports": args.reports,
                "seed": args.seed,
                "check": args.check,
                "rounds": args.rounds,
            },
            "geos": shapely.geos_version_string,
            "target_ms": TARGET_MS,
            "target_met": target_met(results),
            "by_size": [asdict(r) for r in results],
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
