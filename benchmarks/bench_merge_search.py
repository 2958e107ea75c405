"""The "me too" search at city scale, and what its locks cost when reports pour in.

Target: the search for one report under 2 ms p99 with 100,000 open cases.

1. **Search.** On PostgreSQL and on SQLite, a database of its own (migrated, the demo city)
   gets ``--cases`` open cases spread uniformly over the demo city's extent, of every category,
   first reported over the last ``--spread-hours``, with one report each (COPY on PostgreSQL,
   executemany on SQLite). Then, for ``--points`` random points of random categories received
   now, ``--rounds`` times over the same points (after an uncounted warm-up pass), it times:

   - **before**: what ``services.processing`` did before migration 0020, copied here: the
     category's cases of an open status in the box, opened within the window, joined to their
     reports and grouped by case for the first report's time; without the index 0020 makes;
   - **after**: ``open_cases_nearby`` (one partial index of open cases) with the index;

   each followed by ``routing.merge.find_match``, and each also **with its locks**: on
   PostgreSQL the advisory lock per category (before) or the category's shared lock, the merge
   settings and the cell locks (after, ``_serialize_case_opening``), in a transaction rolled
   back after each report. Every round gives p50 and p99 per report; the table shows their
   median over the rounds with min and max. On PostgreSQL it also takes the server's own
   execution time of each search's query (EXPLAIN ANALYZE), which a loaded machine does not
   inflate the way it inflates round trips (each waits for a core). It records the query plans
   (EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on SQLite) of one search of each kind.

2. **Contention** (PostgreSQL). ``--threads`` threads, a connection each, process reports of one
   category (the storm's: ``waterlogging``) at points at least ``GRID_SPACING_M`` apart (so no
   two merge and no two share a cell), ``--reports-per-thread`` each, through the real
   ``process_report`` in a unit of work each: once with the old lock (one advisory lock per
   category, as before), once with the cell locks, and once with the cell locks and the
   statistics rollup switched off (a diagnostic: the rollup rows of a category and a day are
   the next place where every new case of a category waits; see the README). Also a single
   thread, for the rate without contention. Reports/s, and how long each report took to get
   its me-too locks (p50, p99), median with min and max over the rounds: on a machine whose
   cores are busy anyway the rate shows little of the locks, the time spent waiting for them
   shows all of it.

PostgreSQL at 127.0.0.1:5432 (or a temporary one: benchmarks/harness.py); the databases it makes
are dropped at the end. Results: ``benchmarks/results/<date>-merge-search.json``.

    .venv/bin/python benchmarks/bench_merge_search.py [--cases 100000] [--points 1000]
        [--rounds 3] [--threads 8] [--reports-per-thread 30] [--backends postgresql,sqlite]
"""

from __future__ import annotations

import argparse
import io
import math
import random
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import harness
import psycopg
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

import services.processing as processing
import services.statistics as statistics_service
from models.entities import OPEN_CASE_STATUSES, Case, Category, Report
from models.migrate import upgrade
from models.seed import demo_city, load_demo_city
from models.session import make_engine, make_session_factory, unit_of_work
from routing.classify import default_classifier
from routing.merge import OpenCase, bounding_box, find_match
from services.accounts import register_reporter

TARGET_P99_MS = 2.0
DATABASE = "cityrelay_bench_merge_search"
STORM_CATEGORY = "waterlogging"
# Contention points lie on a grid this wide (metres): far beyond a 50 m radius's 200 m cells.
GRID_SPACING_M = 500.0
# Each contention run shifts its grid by a step of this many metres (up to 3 steps each way), so
# that no report of one run is within a merge radius of another run's cases.
RUN_OFFSET_M = 110.0
METRES_PER_DEGREE = 111_195.0
THRESHOLD = 0.45
INDEX = "ix_cases_open_nearby"


# --------------------------------------------------------------------------- the city


@dataclass(frozen=True)
class Extent:
    min_lat: float
    max_lat: float
    min_lon: float
    max_lon: float

    def draw(self, rng: random.Random) -> tuple[float, float]:
        return rng.uniform(self.min_lat, self.max_lat), rng.uniform(self.min_lon, self.max_lon)


def city_extent() -> Extent:
    """The box around every jurisdiction of the demo city."""
    lats: list[float] = []
    lons: list[float] = []

    def walk(coordinates: Any) -> None:
        if isinstance(coordinates[0], int | float):
            lons.append(coordinates[0])
            lats.append(coordinates[1])
            return
        for part in coordinates:
            walk(part)

    for office in demo_city()["offices"]:
        if office.get("jurisdiction"):
            walk(office["jurisdiction"]["coordinates"])
    return Extent(min(lats), max(lats), min(lons), max(lons))


@dataclass(frozen=True)
class Point:
    category: str
    lat: float
    lon: float


@dataclass
class Loaded:
    categories: list[str]
    radius_m: dict[str, float]
    window: dict[str, timedelta]
    now: datetime
    load_s: float


def prepare(url: str) -> tuple[Engine, int]:
    upgrade(url)
    engine = make_engine(url)
    with unit_of_work(make_session_factory(engine, writer=True)) as session:
        load_demo_city(session)
        reporter, _key = register_reporter(session, display_name="基准骑手", occupation="rider")
        session.flush()
        reporter_id = reporter.id
    return engine, reporter_id


def categories_of(engine: Engine) -> tuple[list[str], dict[str, float], dict[str, timedelta]]:
    with make_session_factory(engine)() as session:
        rows = session.execute(
            select(Category.code, Category.merge_radius_m, Category.merge_window_hours).order_by(
                Category.code
            )
        ).all()
    return (
        [r.code for r in rows],
        {r.code: r.merge_radius_m for r in rows},
        {r.code: timedelta(hours=r.merge_window_hours) for r in rows},
    )


def draw_cases(
    args: argparse.Namespace, categories: Sequence[str], now: datetime
) -> Iterator[tuple[int, str, str, float, float, datetime]]:
    """(id, status, category, lat, lon, first received) of each open case."""
    rng = random.Random(f"merge-search-cases-{args.seed}")
    extent = city_extent()
    statuses = list(OPEN_CASE_STATUSES)
    # most open cases sit in an office's queue or its hands; a few wait at triage
    weights = [3, 45, 25, 22, 5]
    for case_id in range(1, args.cases + 1):
        lat, lon = extent.draw(rng)
        first = now - timedelta(hours=rng.uniform(0, args.spread_hours))
        status = rng.choices(statuses, weights)[0]
        yield case_id, status, rng.choice(categories), lat, lon, first


def load_postgresql(args: argparse.Namespace, url: str, engine: Engine, reporter_id: int) -> Loaded:
    categories, radius, window = categories_of(engine)
    now = datetime.now(UTC)
    started = time.perf_counter()
    cases, reports = io.StringIO(), io.StringIO()
    for case_id, status, category, lat, lon, first in draw_cases(args, categories, now):
        opened = first + timedelta(seconds=3)
        cases.write(
            f"{case_id}\t{status}\t{category}\t{{}}\t{{}}\t{lat:.7f}\t{lon:.7f}\t"
            f"{opened.isoformat()}\t{first.isoformat()}\t{opened.isoformat()}\n"
        )
        reports.write(
            f"{case_id}\t{reporter_id}\tapi\t积水\tzh\t{lat:.7f}\t{lon:.7f}\t\tx\tprocessed\t"
            f"{first.isoformat()}\t{opened.isoformat()}\t{case_id}\n"
        )
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        # consistent by construction; foreign-key triggers would only slow COPY down
        conn.execute("SET session_replication_role = replica")
        for target, buffer in (
            (
                "cases (id, status, category_code, classification, routing, lat, lon, "
                "opened_at, first_received_at, updated_at)",
                cases,
            ),
            (
                "reports (id, reporter_id, channel, text, language, lat, lon, address, "
                "fingerprint, state, received_at, processed_at, case_id)",
                reports,
            ),
        ):
            with conn.cursor() as cursor, cursor.copy(f"COPY {target} FROM STDIN") as copy:
                copy.write(buffer.getvalue())
        for table in ("cases", "reports"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        conn.commit()
    with psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as c:
        c.execute("VACUUM ANALYZE cases")
        c.execute("VACUUM ANALYZE reports")
    return Loaded(categories, radius, window, now, time.perf_counter() - started)


def sqlite_time(moment: datetime) -> str:
    """As SQLAlchemy stores a UTC datetime in SQLite."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def load_sqlite(args: argparse.Namespace, path: Path, engine: Engine, reporter_id: int) -> Loaded:
    categories, radius, window = categories_of(engine)
    now = datetime.now(UTC)
    started = time.perf_counter()
    cases: list[tuple[Any, ...]] = []
    reports: list[tuple[Any, ...]] = []
    for case_id, status, category, lat, lon, first in draw_cases(args, categories, now):
        opened = sqlite_time(first + timedelta(seconds=3))
        cases.append(
            (case_id, status, category, "{}", "{}", lat, lon, opened, sqlite_time(first), opened)
        )
        reports.append(
            (case_id, reporter_id, "api", "积水", "zh", lat, lon, "", "x", "processed",
             sqlite_time(first), opened, case_id)
        )  # fmt: skip
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO cases (id, status, category_code, classification, routing, lat, lon, "
            "opened_at, first_received_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            cases,
        )
        conn.executemany(
            "INSERT INTO reports (id, reporter_id, channel, text, language, lat, lon, address, "
            "fingerprint, state, received_at, processed_at, case_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            reports,
        )
        conn.execute("ANALYZE")
    return Loaded(categories, radius, window, now, time.perf_counter() - started)


# --------------------------------------------------------------------------- the searches


def old_open_cases(
    session: Session, category: str, lat: float, lon: float, received_at: datetime,
    radius_m: float, window: timedelta,
) -> list[OpenCase]:  # fmt: skip
    """The search as services.processing ran it before migration 0020 (its query, verbatim)."""
    min_lat, max_lat, min_lon, max_lon = bounding_box(lat, lon, radius_m)
    first_received_at = func.min(Report.received_at).label("first_received_at")
    rows = session.execute(
        select(Case.id, Case.category_code, Case.lat, Case.lon, first_received_at)
        .join(Report, Report.case_id == Case.id)
        .where(
            Case.category_code == category,
            Case.status.in_(OPEN_CASE_STATUSES),
            Case.lat.between(min_lat, max_lat),
            Case.lon.between(min_lon, max_lon),
            Case.opened_at >= received_at - window,
        )
        .group_by(Case.id, Case.category_code, Case.lat, Case.lon)
    ).all()
    return [OpenCase(r.id, r.category_code, r.lat, r.lon, r.first_received_at) for r in rows]


def old_category_lock(session: Session, category: str) -> None:
    """The lock before: one advisory lock per category, the whole city in one line."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(func.pg_advisory_xact_lock(processing.merge_settings_lock_key(category)))
        )


def search_before(session: Session, loaded: Loaded, point: Point, locks: bool) -> Any:
    if locks:
        old_category_lock(session, point.category)
        # the old code read the category (radius, window) after its lock
        session.get(Category, point.category)
    radius, window = loaded.radius_m[point.category], loaded.window[point.category]
    found = old_open_cases(
        session, point.category, point.lat, point.lon, loaded.now, radius, window
    )
    return find_match(point.category, point.lat, point.lon, loaded.now, found, radius, window)


def search_after(session: Session, loaded: Loaded, point: Point, locks: bool) -> Any:
    if locks:
        search = processing._serialize_case_opening(session, point.category, point.lat, point.lon)
        assert search is not None
    else:
        radius = loaded.radius_m[point.category]
        search = processing.MeTooSearch(
            point.category,
            radius,
            loaded.window[point.category],
            bounding_box(point.lat, point.lon, radius),
        )
    found = processing.open_cases_nearby(session, search, loaded.now)
    return find_match(
        point.category, point.lat, point.lon, loaded.now, found, search.radius_m, search.window
    )


Search = Callable[[Session, Loaded, Point, bool], Any]


def time_round(
    factory: sessionmaker[Session], loaded: Loaded, points: Sequence[Point], search: Search,
    locks: bool,
) -> list[float]:  # fmt: skip
    """Milliseconds per report. With locks, each report in a transaction of its own that is
    rolled back afterwards (releasing them), begun before the clock starts (a worker's
    transaction has begun long before its search); without, one read transaction for the
    round."""
    timings: list[float] = []
    session = factory()
    try:
        for point in points:
            if locks:
                session.execute(select(1))
            started = time.perf_counter()
            search(session, loaded, point, locks)
            timings.append((time.perf_counter() - started) * 1000)
            if locks:
                session.rollback()
    finally:
        session.rollback()
        session.close()
    return timings


@contextmanager
def captured_sql(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def grab(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", grab)


def query_plan(engine: Engine, loaded: Loaded, point: Point, search: Search) -> str:
    """The plan of the search's SELECT on cases, run for real (EXPLAIN ANALYZE on PostgreSQL)."""
    factory = make_session_factory(engine)
    with captured_sql(engine) as statements, factory() as session:
        search(session, loaded, point, False)
    statement, parameters = next((s, p) for s, p in statements if "FROM cases" in s)
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            rows = connection.exec_driver_sql(
                f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters
            ).scalars()
            return "\n".join(rows)
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
        return "\n".join(str(row[-1]) for row in rows)


def server_times(
    engine: Engine, loaded: Loaded, points: Sequence[Point], search: Search
) -> list[float]:
    """Milliseconds PostgreSQL itself spends on each search's query (EXPLAIN ANALYZE's
    execution time): the database's share, without the round trips, which on a loaded machine
    wait for a core as long as the query runs."""
    times: list[float] = []
    factory = make_session_factory(engine)
    with captured_sql(engine) as statements, factory() as session:
        connection = session.connection()
        for point in points:
            statements.clear()
            search(session, loaded, point, False)
            statement, parameters = next((s, p) for s, p in statements if "FROM cases" in s)
            [plan] = connection.exec_driver_sql(
                f"EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) {statement}", parameters
            ).scalar_one()
            times.append(float(plan["Execution Time"]))
    return times


def set_index(engine: Engine, present: bool) -> None:
    [index] = [ix for ix in Case.__table__.indexes if ix.name == INDEX]
    with engine.begin() as connection:
        if present:
            index.create(connection, checkfirst=True)
        else:
            index.drop(connection, checkfirst=True)
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.exec_driver_sql(
            "ANALYZE cases" if engine.dialect.name == "postgresql" else "ANALYZE"
        )


def ms(values: Sequence[float], fraction: float) -> float:
    return harness.percentile(values, fraction)


def measure_searches(args: argparse.Namespace, engine: Engine, loaded: Loaded) -> dict[str, Any]:
    rng = random.Random(f"merge-search-points-{args.seed}")
    extent = city_extent()
    points = [Point(rng.choice(loaded.categories), *extent.draw(rng)) for _ in range(args.points)]
    factory = make_session_factory(engine)
    variants: dict[str, Any] = {}
    plans: dict[str, str] = {}
    matches: dict[str, int] = {}
    for label, search, with_index in (
        ("before", search_before, False),
        ("after", search_after, True),
    ):
        set_index(engine, with_index)
        plans[label] = query_plan(engine, loaded, points[0], search)
        with factory() as session:
            matches[label] = sum(search(session, loaded, p, False) is not None for p in points)
        if engine.dialect.name == "postgresql":
            executed = server_times(engine, loaded, points, search)
            variants[f"{label}, query in the server"] = {
                "p50_ms": harness.summarize([ms(executed, 0.50)], 3),
                "p99_ms": harness.summarize([ms(executed, 0.99)], 3),
                "mean_ms": harness.summarize([statistics.fmean(executed)], 3),
            }
        for locks in (False, True):
            if locks and engine.dialect.name != "postgresql":
                continue  # SQLite takes no lock
            name = f"{label}{' with locks' if locks else ''}"
            time_round(
                make_session_factory(engine, writer=locks), loaded, points[:100], search, locks
            )
            p50s, p99s, means = [], [], []
            for _ in range(args.rounds):
                timings = time_round(
                    make_session_factory(engine, writer=locks), loaded, points, search, locks
                )
                p50s.append(ms(timings, 0.50))
                p99s.append(ms(timings, 0.99))
                means.append(statistics.fmean(timings))
            variants[name] = {
                "p50_ms": harness.summarize(p50s, 3),
                "p99_ms": harness.summarize(p99s, 3),
                "mean_ms": harness.summarize(means, 3),
            }
            print(
                f"  {name:<20} p50 {harness.shown(variants[name]['p50_ms'], ' ms'):<28} "
                f"p99 {harness.shown(variants[name]['p99_ms'], ' ms')}"
            )
    if matches["before"] != matches["after"]:
        raise SystemExit(f"the searches disagree: {matches}")
    return {"variants": variants, "plans": plans, "reports_that_found_a_case": matches["after"]}


# --------------------------------------------------------------------------- contention


def grid_points(extent: Extent, offset_m: tuple[float, float]) -> list[tuple[float, float]]:
    mid_lat = (extent.min_lat + extent.max_lat) / 2
    dlat = GRID_SPACING_M / METRES_PER_DEGREE
    dlon = GRID_SPACING_M / (METRES_PER_DEGREE * math.cos(math.radians(mid_lat)))
    north, east = (
        offset_m[0] / METRES_PER_DEGREE,
        offset_m[1] / (METRES_PER_DEGREE * math.cos(math.radians(mid_lat))),
    )
    points = []
    lat = extent.min_lat + north
    while lat <= extent.max_lat:
        lon = extent.min_lon + east
        while lon <= extent.max_lon:
            points.append((lat, lon))
            lon += dlon
        lat += dlat
    return points


def run_contention(
    engine: Engine, reporter_id: int, threads: int, per_thread: int, offset_m: tuple[float, float]
) -> float:
    """Reports/s for ``threads`` workers, each processing ``per_thread`` reports of the storm
    category at points of its own (no two within a merge radius or a cell of each other)."""
    points = grid_points(city_extent(), offset_m)
    needed = threads * per_thread
    if len(points) < needed:
        raise SystemExit(f"{needed} reports need {needed} grid points; the city has {len(points)}")
    writer = make_session_factory(engine, writer=True)
    with unit_of_work(writer) as session:
        reports = [
            Report(
                reporter_id=reporter_id,
                text="路面积水",
                lat=lat,
                lon=lon,
                requested_category=STORM_CATEGORY,
                fingerprint="x",
            )
            for lat, lon in points[:needed]
        ]
        session.add_all(reports)
        session.flush()
        ids = [r.id for r in reports]
    classifier = default_classifier()
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def worker(mine: list[int]) -> None:
        try:
            barrier.wait()
            for report_id in mine:
                with unit_of_work(writer) as session:
                    case = processing.process_report(
                        session, report_id, classifier=classifier, threshold=THRESHOLD
                    )
                    assert case is not None
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=worker, args=(ids[i::threads],)) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    with make_session_factory(engine)() as session:
        opened = session.scalar(
            select(func.count(func.distinct(Report.case_id))).where(Report.id.in_(ids))
        )
    if opened != needed:
        raise SystemExit(f"{needed} far-apart reports opened {opened} cases")
    return needed / elapsed


def old_serialize(session: Session, category_code: str, lat: float, lon: float) -> Any:
    """The locking before: one advisory lock per category; the search itself as now."""
    old_category_lock(session, category_code)
    settings = session.execute(
        select(Category.merge_radius_m, Category.merge_window_hours).where(
            Category.code == category_code
        )
    ).one()
    return processing.MeTooSearch(
        category_code,
        settings.merge_radius_m,
        timedelta(hours=settings.merge_window_hours),
        bounding_box(lat, lon, settings.merge_radius_m),
    )


@contextmanager
def locking(kind: str, lock_waits: list[float]) -> Iterator[None]:
    """process_report with the locks of ``kind``; appends to ``lock_waits`` how long each report
    took to get its me-too locks (milliseconds; the settings' read included)."""
    original_serialize = processing._serialize_case_opening
    original_refresh = statistics_service.refresh
    serialize = old_serialize if kind == "category" else original_serialize

    def timed(session: Session, category_code: str, lat: float, lon: float) -> Any:
        started = time.perf_counter()
        try:
            return serialize(session, category_code, lat, lon)
        finally:
            lock_waits.append((time.perf_counter() - started) * 1000)

    processing._serialize_case_opening = timed  # type: ignore[assignment]
    if kind == "cells, no rollup":
        statistics_service.refresh = lambda *_args, **_kwargs: 0  # type: ignore[assignment]
    try:
        yield
    finally:
        processing._serialize_case_opening = original_serialize
        statistics_service.refresh = original_refresh


def measure_contention(
    args: argparse.Namespace, engine: Engine, reporter_id: int
) -> dict[str, Any]:
    # every run has points of its own, shifted by more than a merge radius from the others'
    offsets = iter((RUN_OFFSET_M * (i // 4), RUN_OFFSET_M * (i % 4)) for i in range(16))
    figures: dict[str, Any] = {}
    kinds = ("category", "cells", "cells, no rollup")
    for threads in sorted({1, args.threads}):
        for kind in kinds:
            rates: list[float] = []
            waits_p50: list[float] = []
            waits_p99: list[float] = []
            for _ in range(args.rounds if threads > 1 else 1):
                lock_waits: list[float] = []
                with locking(kind, lock_waits):
                    rates.append(
                        run_contention(
                            engine, reporter_id, threads, args.reports_per_thread, next(offsets)
                        )
                    )
                waits_p50.append(ms(lock_waits, 0.50))
                waits_p99.append(ms(lock_waits, 0.99))
            name = f"{threads} thread{'s' if threads > 1 else ''}, {kind} locks"
            figures[name] = {
                "reports_per_s": harness.summarize(rates, 1),
                "lock_wait_p50_ms": harness.summarize(waits_p50, 2),
                "lock_wait_p99_ms": harness.summarize(waits_p99, 2),
            }
            print(
                f"  {name:<36} {harness.shown(figures[name]['reports_per_s'], ' reports/s'):<30}"
                f" getting the locks: p50 {harness.shown(figures[name]['lock_wait_p50_ms'], ' ms')}"
                f", p99 {harness.shown(figures[name]['lock_wait_p99_ms'], ' ms')}"
            )
    return figures


# --------------------------------------------------------------------------- main


def table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| backend | search | p50 ms (min–max) | p99 ms (min–max) |",
        "|---|---|---|---|",
    ]
    for backend, found in results.items():
        for name, figures in found["search"]["variants"].items():
            lines.append(
                f"| {backend} | {name} | {harness.shown(figures['p50_ms'])} | "
                f"{harness.shown(figures['p99_ms'])} |"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=harness.smoke_scaled(100_000, 2_000))
    parser.add_argument("--points", type=int, default=harness.smoke_scaled(1_000, 50))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spread-hours", type=float, default=72.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--reports-per-thread", type=int, default=harness.smoke_scaled(30, 3))
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--no-contention", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", default=DATABASE, help="PostgreSQL database to make")
    parser.add_argument("--redis-db", type=int, default=0, help="only its version is read")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    results: dict[str, Any] = {}
    servers: dict[str, str] = {"sqlite": sqlite3.sqlite_version}
    with harness.stack(args.redis_db) as stack:
        if "postgresql" in backends:
            servers |= stack.versions()
            url = stack.fresh_database(args.database).replace(
                "postgresql://", "postgresql+psycopg://"
            )
            engine, reporter_id = prepare(url)
            loaded = load_postgresql(args, url, engine, reporter_id)
            print(f"PostgreSQL: {args.cases:,} open cases loaded in {loaded.load_s:.1f} s")
            found: dict[str, Any] = {"load_s": round(loaded.load_s, 1)}
            found["search"] = measure_searches(args, engine, loaded)
            engine.dispose()
            if not args.no_contention:
                url = stack.fresh_database(f"{args.database}_contention").replace(
                    "postgresql://", "postgresql+psycopg://"
                )
                engine, reporter_id = prepare(url)
                print(f"PostgreSQL contention: {args.threads} threads, one category")
                found["contention"] = measure_contention(args, engine, reporter_id)
                engine.dispose()
            results["postgresql"] = found
        if "sqlite" in backends:
            with tempfile.TemporaryDirectory(prefix="cityrelay-merge-search-") as folder:
                path = Path(folder) / "bench.db"
                url = f"sqlite:///{path}"
                engine, reporter_id = prepare(url)
                loaded = load_sqlite(args, path, engine, reporter_id)
                print(f"SQLite: {args.cases:,} open cases loaded in {loaded.load_s:.1f} s")
                found = {"load_s": round(loaded.load_s, 1)}
                found["search"] = measure_searches(args, engine, loaded)
                engine.dispose()
            results["sqlite"] = found

    print()
    print("\n".join(table(results)))
    harness.write_result(
        "merge-search",
        {
            "target_p99_ms": TARGET_P99_MS,
            "parameters": {
                "cases": args.cases,
                "points": args.points,
                "rounds": args.rounds,
                "spread_hours": args.spread_hours,
                "threads": args.threads,
                "reports_per_thread": args.reports_per_thread,
                "seed": args.seed,
            },
            "results": results,
        },
        servers=servers,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
