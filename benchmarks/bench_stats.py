"""Statistics at city scale: ``services.statistics.figures``, ``backlog`` and ``leaderboard``
(what ``GET /api/v1/stats`` answers) over 1,000,000 cases on PostgreSQL.

Target: every query below 200 ms p95.

The script makes a PostgreSQL database of its own (``cityrelay_bench_stats``, dropped first
if it is there and dropped at the end unless ``--keep``), migrates it, seeds the demo city
and adds a larger one under its district: ``--streets`` street offices of
``--communities-per-street`` communities each. It then draws ``--cases`` cases reported over
the two years up to now, each with a history as the pipeline and the offices write it:

- received, classified, routed (a few go through triage and are transferred), accept, start,
  sometimes ask and answer (the clock stops), sometimes extend and approve-extension, resolve,
  sometimes rework and resolve again, close (mostly ``fixed``; some cases are closed
  ``invalid``, ``duplicate`` or ``not_responsible`` without a resolution), sometimes confirm,
  now and then reopen and go round again;
- 1 to 3 reports per case (the later ones "merged"), from ``--reporters`` reporters whose
  occupations are rider, courier, driver and citizen about 35/20/10/35, through api, open311
  and web;
- resolution times scattered around the category's time limit, so some cases are late; most
  cases of the last two weeks still open, and a few older ones stuck open (overdue now);
- points as ``services.rewards`` writes them when a case closes as fixed: the first-report
  points to its first reporter, the me-too points once to each other reporter;
- cases in time order (ids grow with the report time, rows lie in the table by time), as a
  city's rows do.

Each case's due time comes from ``routing.sla.due_at`` and its ``case_stats`` row from
``routing.statistics.case_stats`` on the default ``WorkingCalendar()``, as the after-flush
listener would write it. Everything is loaded with COPY (foreign-key triggers off while
loading: the rows are consistent by construction), then the indexes of ``PROPOSED_INDEXES``
are made (any not yet in a migration; ``--without-proposed-indexes`` leaves them out), then
VACUUM ANALYZE.

It times, ``--runs`` times after ``--warmup`` uncounted runs, ``figures()`` + ``backlog()`` +
``leaderboard()`` (what ``dashboards/stats.py`` computes for the endpoint) for the whole city
and for one community (the busiest) over the last month and the last year, and grouped by
office and by month over the year and by day over the month; then ``GET /api/v1/stats``
through the Flask test client for each. One more run of each
records every SQL statement's time, and the slowest statements get EXPLAIN (ANALYZE,
BUFFERS). Results go to ``benchmarks/results/stats.md``.

    .venv/bin/python benchmarks/bench_stats.py [--cases 1000000] [--runs 20] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import harness
import psycopg
from sqlalchemy import Engine, event, func, select

from models.entities import POINTS_AWARD, CaseStat, Category, Office
from models.migrate import upgrade
from models.seed import load_demo_city
from models.session import make_engine, make_session_factory, unit_of_work
from routing import statistics as st
from routing import workflow as wf
from routing.rewards import PointsPolicy
from routing.sla import WorkingCalendar, due_at, parse_time_limit
from services import statistics as stats_service
from services.accounts import issue_key

DATABASE = "cityrelay_bench_stats"
REDIS_DB = 9  # the index of harness.stack's Redis (GET /api/v1/stats counts its rate limit)
TARGET_MS = 200.0
TIME_ZONE = "Asia/Shanghai"
ZONE = ZoneInfo(TIME_ZONE)
DAYS = 730

# Indexes a further run of this benchmark proposes, made here after loading (unless
# --without-proposed-indexes) until a migration makes them. The first run's seven are in
# migration 0015 (models/migrations/versions/0015_statistics_indexes.py).
PROPOSED_INDEXES: tuple[str, ...] = ()

OCCUPATION_WEIGHTS = {"rider": 35, "courier": 20, "driver": 10, "citizen": 35}
CHANNEL_WEIGHTS = {"api": 60, "open311": 25, "web": 15}
REPORTS_PER_CASE = {1: 80, 2: 15, 3: 5}
# Local hour of the first report: few at night, most in the day and the evening.
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 4, 7, 9, 10, 10, 9, 8, 9, 10, 10, 9, 9, 8, 7, 6, 4, 3, 2]
# Shares of a case's path.
TRIAGE_SHARE = 0.03
CLOSED_UNRESOLVED_SHARE = 0.06  # invalid, duplicate or not_responsible, without a resolution
ASK_SHARE = 0.10
EXTEND_SHARE = 0.08
REWORK_SHARE = 0.06
CONFIRM_SHARE = 0.12
REOPEN_SHARE = 0.01
STUCK_OPEN_SHARE = 0.003  # older cases still open now
RECENT_DAYS = 21  # cases younger than this are often still open
RECENT_OPEN_SHARE = 0.95  # at age 0, falling (quadratically) to none at RECENT_DAYS
EXTENSION_HOURS = 24.0
NO_LIMIT_HOURS = 48.0  # what resolution times scatter around for a category without a limit

SYSTEM = "system"
SUPERVISOR = "key:2"
STAFF = "key:3"
ADMIN = "key:1"


# --------------------------------------------------------------------------- the city


@dataclass(frozen=True)
class CategoryInfo:
    code: str
    limit: Any  # routing.sla.TimeLimit | None
    urgent: bool


@dataclass
class City:
    offices: list[int]  # ids cases are drawn from
    office_weights: list[float]
    communities: dict[int, str]  # id -> code
    categories: list[CategoryInfo]
    office_count: int
    added_offices: int


def server_url(args: argparse.Namespace, database: str) -> str:
    return f"postgresql+psycopg://{args.user}@{args.host}:{args.port}/{database}"


def plain_url(args: argparse.Namespace, database: str) -> str:
    return f"postgresql://{args.user}@{args.host}:{args.port}/{database}"


def recreate_database(args: argparse.Namespace, *, drop_only: bool = False) -> None:
    with psycopg.connect(plain_url(args, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{args.database}"')


def seed_city(engine: Engine, args: argparse.Namespace) -> tuple[City, str]:
    """The demo city plus ``--streets`` streets of ``--communities-per-street`` communities
    under its district; answers the city and an admin key."""
    rng = random.Random(f"cityrelay-stats-offices-{args.seed}")
    with unit_of_work(make_session_factory(engine, writer=True)) as session:
        load_demo_city(session)
        district = session.scalar(
            select(Office).where(Office.kind == "district", Office.parent_id.is_(None))
        )
        assert district is not None, "the demo city has a district"
        added = 0
        for s in range(1, args.streets + 1):
            street = Office(
                code=f"{district.code}-S{s:02d}",
                name=f"街道{s:02d}",
                name_en=f"Street {s:02d}",
                kind="street",
                parent=district,
                active=True,
            )
            session.add(street)
            added += 1
            for c in range(1, args.communities_per_street + 1):
                session.add(
                    Office(
                        code=f"{street.code}-{c:02d}",
                        name=f"街道{s:02d}社区{c:02d}",
                        name_en=f"Street {s:02d} community {c:02d}",
                        kind="community",
                        parent=street,
                        active=True,
                    )
                )
                added += 1
        session.flush()
        _row, admin_key = issue_key(session, "admin", label="statistics benchmark")
        rows = session.execute(select(Office.id, Office.code, Office.kind)).all()
        categories = [
            CategoryInfo(c.code, parse_time_limit(c.time_limit), bool(c.urgent))
            for c in session.scalars(select(Category).order_by(Category.code))
        ]
    offices: list[int] = []
    weights: list[float] = []
    communities: dict[int, str] = {}
    # Communities take most cases, streets and departments the rest; some communities are
    # busier than others (a lognormal spread of volume).
    share = {"community": 0.70, "street": 0.18, "department": 0.10, "district": 0.02}
    by_kind: dict[str, list[int]] = defaultdict(list)
    for office_id, code, kind in rows:
        by_kind[kind].append(office_id)
        if kind == "community":
            communities[office_id] = code
    for kind, ids in by_kind.items():
        spread = [rng.lognormvariate(0, 0.5) for _ in ids]
        total = sum(spread)
        for office_id, weight in zip(ids, spread, strict=True):
            offices.append(office_id)
            weights.append(share.get(kind, 0.0) * weight / total)
    city = City(
        offices=offices,
        office_weights=list(_cumulative(weights)),
        communities=communities,
        categories=categories,
        office_count=len(rows),
        added_offices=added,
    )
    return city, admin_key


def _cumulative(weights: Sequence[float]) -> Iterator[float]:
    total = 0.0
    for weight in weights:
        total += weight
        yield total


# --------------------------------------------------------------------------- the cases

Event = tuple[datetime, str, str, str | None, str, int | None, int | None]
# (at, actor, action, from_status, to_status, office_id, report_id)


@dataclass
class Generated:
    cases: int = 0
    reports: int = 0
    reporters: int = 0
    events: int = 0
    stats: int = 0
    points: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    closures: Counter[str] = field(default_factory=Counter)
    occupations: Counter[str] = field(default_factory=Counter)
    open_overdue: int = 0
    generate_s: float = 0.0
    copy_s: float = 0.0
    vacuum_s: float = 0.0
    index_s: float = 0.0
    months_s: float = 0.0
    month_rows: int = 0
    table_mb: dict[str, float] = field(default_factory=dict)


def _hours(rng: random.Random, mean_hours: float) -> timedelta:
    return timedelta(hours=rng.expovariate(1 / mean_hours))


class CaseMaker:
    """Draws one case's reports and history, deterministically from the seed."""

    def __init__(self, city: City, reporters: Sequence[str], now: datetime, seed: int) -> None:
        self.rng = random.Random(f"cityrelay-stats-cases-{seed}")
        self.city = city
        self.reporters = reporters  # occupation by reporter id - 1
        self.now = now
        self.calendar = WorkingCalendar()
        self.today = now.astimezone(ZONE).date()
        self.hours = list(_cumulative(HOUR_WEIGHTS))
        self.channels = list(CHANNEL_WEIGHTS)
        self.channel_weights = list(_cumulative(CHANNEL_WEIGHTS.values()))
        self.report_counts = list(REPORTS_PER_CASE)
        self.report_count_weights = list(_cumulative(REPORTS_PER_CASE.values()))
        self.base_due: dict[tuple[str, datetime], datetime | None] = {}

    def reported_at(self) -> datetime:
        rng = self.rng
        day = self.today - timedelta(days=rng.randrange(DAYS))
        hour = rng.choices(range(24), cum_weights=self.hours)[0]
        local = datetime(day.year, day.month, day.day, hour, tzinfo=ZONE) + timedelta(
            seconds=rng.randrange(3600)
        )
        moment = local.astimezone(UTC)
        # the pipeline's first steps (up to 40 s after the report) are always in the past
        if moment >= self.now - timedelta(seconds=60):
            moment = self.now - timedelta(seconds=rng.randrange(60, 7200))
        return moment

    def due(
        self,
        category: CategoryInfo,
        reported: datetime,
        pauses: Sequence[tuple[datetime, datetime]] = (),
        extension_hours: float = 0.0,
    ) -> datetime | None:
        return due_at(
            reported,
            category.limit,
            self.calendar,
            urgent=category.urgent,
            pauses=pauses,
            extension_hours=extension_hours,
        )

    def history(
        self,
        reported: datetime,
        office_id: int,
        category: CategoryInfo,
        report_ids: Sequence[int],
        reporter_id: int,
    ) -> tuple[list[Event], list[datetime], str, str | None, datetime | None]:
        """The case's events up to now, its reports' arrival times, status, closure and due
        time."""
        rng = self.rng
        first_report = report_ids[0]
        events: list[Event] = [
            (reported, f"reporter:{reporter_id}", "received", None, "received", None, first_report)
        ]
        t = reported + timedelta(seconds=rng.randrange(2, 40))
        events.append((t, SYSTEM, "classified", "received", "received", None, first_report))
        if rng.random() < TRIAGE_SHARE:
            events.append((t, SYSTEM, "triaged", "received", wf.TRIAGE, None, first_report))
            t += _hours(rng, 3)
            events.append((t, ADMIN, wf.TRANSFER, wf.TRIAGE, wf.ROUTED, office_id, None))
        else:
            events.append((t, SYSTEM, "routed", "received", wf.ROUTED, office_id, first_report))
        base_due = self.due(category, reported)
        allowed = (base_due - reported) if base_due else timedelta(hours=NO_LIMIT_HOURS)
        pauses: list[tuple[datetime, datetime]] = []
        extension = 0.0
        roll = rng.random()
        if roll < CLOSED_UNRESOLVED_SHARE:
            if rng.random() < 0.5:
                t += _hours(rng, 2)
                events.append((t, STAFF, wf.ACCEPT, wf.ROUTED, wf.ACCEPTED, office_id, None))
            t += _hours(rng, 24)
            closure = rng.choices((wf.INVALID, wf.DUPLICATE, wf.NOT_RESPONSIBLE), (3, 2, 1))[0]
            events.append((t, SUPERVISOR, wf.CLOSE, events[-1][4], wf.CLOSED, office_id, None))
            last_closure = closure
        else:
            last_closure, t = self._worked(events, t, reported, allowed, office_id, pauses)
            if any(e[2] == wf.APPROVE_EXTENSION for e in events):
                extension = EXTENSION_HOURS
        # later reports of the same problem join while the case is open
        first_close = next((e[0] for e in events if e[2] == wf.CLOSE), t)
        arrivals = [reported]
        span = max((first_close - reported).total_seconds(), 60.0)
        for report_id in report_ids[1:]:
            arrival = reported + timedelta(seconds=min(rng.expovariate(1 / 10800), 0.9 * span))
            arrivals.append(arrival)
            events.append((arrival, SYSTEM, "merged", None, "", office_id, report_id))
        events.sort(key=lambda e: e[0])
        # merged events keep the status they arrive in
        status: str | None = None
        for i, e in enumerate(events):
            if e[2] == "merged":
                events[i] = (e[0], e[1], e[2], status, status or "received", e[5], e[6])
            status = events[i][4]
        # the present: open cases of the last weeks, a few stuck older ones, nothing ahead
        age_days = (self.now - reported).total_seconds() / 86400
        open_share = (
            RECENT_OPEN_SHARE * (1 - (age_days / RECENT_DAYS) ** 2)
            if age_days < RECENT_DAYS
            else STUCK_OPEN_SHARE
        )
        if rng.random() < open_share:
            last_open = next(i for i, e in enumerate(events) if e[2] == wf.CLOSE)
            # an open case has got at least as far as routed (or triage)
            routed = next(i for i, e in enumerate(events) if e[4] in (wf.ROUTED, wf.TRIAGE))
            cut = rng.randrange(routed + 1, last_open + 1)
            events = events[:cut]
        events = [e for e in events if e[0] <= self.now]
        status = events[-1][4]
        closure = last_closure if status == wf.CLOSED else None
        ended = [(a, b) for a, b in pauses if b <= self.now and any(e[0] == b for e in events)]
        approved = extension and any(e[2] == wf.APPROVE_EXTENSION for e in events)
        due = (
            self.due(category, reported, ended, EXTENSION_HOURS if approved else 0.0)
            if (ended or approved)
            else base_due
        )
        if status == wf.TRIAGE:
            due = None  # the pipeline gives a due time only with an office
        return events, arrivals, status, closure, due

    def _worked(
        self,
        events: list[Event],
        t: datetime,
        reported: datetime,
        allowed: timedelta,
        office_id: int,
        pauses: list[tuple[datetime, datetime]],
    ) -> tuple[str, datetime]:
        """Accept, start, maybe ask, maybe extend, resolve, maybe rework, close; maybe
        confirm, maybe reopen and go round once more. Answers the closure and the time."""
        rng = self.rng
        t += _hours(rng, 1.5)
        events.append((t, STAFF, wf.ACCEPT, wf.ROUTED, wf.ACCEPTED, office_id, None))
        t += _hours(rng, 1)
        events.append((t, STAFF, wf.START, wf.ACCEPTED, wf.IN_PROGRESS, office_id, None))
        # most resolutions come before the due time, about a quarter after it
        target = reported + allowed * rng.lognormvariate(math.log(0.6), 0.8)
        if rng.random() < ASK_SHARE:
            t += _hours(rng, 1)
            asked = t
            events.append((t, STAFF, wf.ASK, wf.IN_PROGRESS, wf.WAITING, office_id, None))
            t += _hours(rng, 8)
            events.append((t, "reporter:1", wf.ANSWER, wf.WAITING, wf.IN_PROGRESS, None, None))
            pauses.append((asked, t))
            target += t - asked
        if rng.random() < EXTEND_SHARE:
            t += _hours(rng, 2)
            events.append((t, STAFF, wf.EXTEND, wf.IN_PROGRESS, wf.IN_PROGRESS, office_id, None))
            t += _hours(rng, 2)
            events.append(
                (
                    t,
                    SUPERVISOR,
                    wf.APPROVE_EXTENSION,
                    wf.IN_PROGRESS,
                    wf.IN_PROGRESS,
                    office_id,
                    None,
                )
            )
            target += timedelta(hours=EXTENSION_HOURS)
        t = max(target, t + timedelta(minutes=rng.randrange(5, 120)))
        events.append((t, STAFF, wf.RESOLVE, wf.IN_PROGRESS, wf.RESOLVED, office_id, None))
        if rng.random() < REWORK_SHARE:
            t += _hours(rng, 12)
            events.append((t, SUPERVISOR, wf.REWORK, wf.RESOLVED, wf.IN_PROGRESS, office_id, None))
            t += _hours(rng, 12)
            events.append((t, STAFF, wf.RESOLVE, wf.IN_PROGRESS, wf.RESOLVED, office_id, None))
        t += _hours(rng, 20)
        closure = wf.FIXED if rng.random() < 0.95 else wf.NO_FURTHER_ACTION
        events.append((t, SUPERVISOR, wf.CLOSE, wf.RESOLVED, wf.CLOSED, office_id, None))
        if closure == wf.FIXED and rng.random() < CONFIRM_SHARE:
            t += _hours(rng, 24)
            events.append((t, "reporter:1", wf.CONFIRM, wf.CLOSED, wf.CLOSED, None, None))
        if rng.random() < REOPEN_SHARE:
            t += _hours(rng, 48)
            events.append((t, "reporter:1", wf.REOPEN, wf.CLOSED, wf.ROUTED, office_id, None))
            t += _hours(rng, 2)
            events.append((t, STAFF, wf.ACCEPT, wf.ROUTED, wf.ACCEPTED, office_id, None))
            t += _hours(rng, 24)
            events.append((t, STAFF, wf.RESOLVE, wf.ACCEPTED, wf.RESOLVED, office_id, None))
            t += _hours(rng, 20)
            events.append((t, SUPERVISOR, wf.CLOSE, wf.RESOLVED, wf.CLOSED, office_id, None))
        return closure, t


def _ts(moment: datetime | None) -> str:
    return "\\N" if moment is None else moment.isoformat()


def _v(value: Any) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


CASE_COLUMNS = (
    "id, status, closure, version, category_code, confidence, classification, office_id, "
    "routing, lat, lon, address, due_at, opened_at, first_received_at, updated_at"
)
REPORT_COLUMNS = (
    "id, reporter_id, channel, text, language, lat, lon, address, fingerprint, state, "
    "received_at, processed_at, case_id"
)
EVENT_COLUMNS = (
    "id, case_id, report_id, at, actor, action, from_status, to_status, office_id, note, detail"
)
POINTS_COLUMNS = "id, reporter_id, case_id, report_id, kind, points, reason, note, day, at, actor"
STAT_COLUMNS = (
    "case_id, office_id, category_code, first_report_id, channel, occupation, reports_count, "
    "reported_at, reported_day, reported_week, reported_month, status, closure, due_at, "
    "routed_at, accepted_at, handled_at, resolved_at, closed_at, handled_on_time, "
    "closed_on_time, extended, confirmed, reopened, rework_count, accept_hours, "
    "accept_working_hours, resolve_hours, resolve_working_hours, close_hours, "
    "close_working_hours"
)


def load_cases(args: argparse.Namespace, city: City, now: datetime) -> Generated:
    """Draws and COPYs reporters, cases, reports, events and case_stats rows in batches."""
    out = Generated()
    rng = random.Random(f"cityrelay-stats-reporters-{args.seed}")
    occupations = list(OCCUPATION_WEIGHTS)
    occupation_weights = list(_cumulative(OCCUPATION_WEIGHTS.values()))
    reporters = rng.choices(occupations, cum_weights=occupation_weights, k=args.reporters)
    maker = CaseMaker(city, reporters, now, args.seed)
    calendar = maker.calendar
    report_id = event_id = points_id = 0
    policy = PointsPolicy()

    with psycopg.connect(plain_url(args, args.database)) as conn:
        # The rows are consistent by construction; foreign-key triggers would only slow COPY.
        conn.execute("SET session_replication_role = replica")
        started = time.perf_counter()
        buffer = io.StringIO()
        for i, occupation in enumerate(reporters, start=1):
            buffer.write(f"{i}\tReporter {i}\t{occupation}\t\t{_ts(now - timedelta(days=DAYS))}\n")
        _copy(conn, "reporters (id, display_name, occupation, platform, created_at)", buffer)
        out.reporters = len(reporters)
        out.copy_s += time.perf_counter() - started
        conn.commit()

        # Cases come in time order, as they do in a city: ids grow with the report time and
        # each case_stats row sits in the table near the rows of its days, as it would
        # (rewritten at each event, mostly within days of the report). Drawn in random order,
        # a month's cases would be spread over every page of the table.
        started = time.perf_counter()
        moments = iter(sorted(maker.reported_at() for _ in range(args.cases)))
        out.generate_s += time.perf_counter() - started
        case_id = 0
        progress_every = max(args.cases // 10, 1)
        while case_id < args.cases:
            batch_start = time.perf_counter()
            cases, reports, events, stats, points, report_days = (
                io.StringIO(),
                io.StringIO(),
                io.StringIO(),
                io.StringIO(),
                io.StringIO(),
                io.StringIO(),
            )
            for _ in range(min(args.batch, args.cases - case_id)):
                case_id += 1
                rng = maker.rng
                office_id = city.offices[
                    min(
                        _bisect(city.office_weights, rng.random() * city.office_weights[-1]),
                        len(city.offices) - 1,
                    )
                ]
                category = rng.choice(city.categories)
                reported = next(moments)
                count = rng.choices(maker.report_counts, cum_weights=maker.report_count_weights)[0]
                report_ids = list(range(report_id + 1, report_id + count + 1))
                report_id += count
                reporter_ids = [rng.randrange(1, len(reporters) + 1) for _ in report_ids]
                channels = [
                    rng.choices(maker.channels, cum_weights=maker.channel_weights)[0]
                    for _ in report_ids
                ]
                history, arrivals, status, closure, due = maker.history(
                    reported, office_id, category, report_ids, reporter_ids[0]
                )
                lat = 31.2 + rng.random() * 0.2
                lon = 121.5 + rng.random() * 0.3
                updated = history[-1][0]
                cases.write(
                    f"{case_id}\t{status}\t{_v(closure)}\t{len(history)}\t{category.code}\t"
                    f"0.9\t{{}}\t{office_id}\t{{}}\t{lat:.6f}\t{lon:.6f}\t\t{_ts(due)}\t"
                    f"{_ts(history[2][0])}\t{_ts(min(arrivals))}\t{_ts(updated)}\n"
                )
                for rid, reporter_id, channel, arrival in zip(
                    report_ids, reporter_ids, channels, arrivals, strict=True
                ):
                    reports.write(
                        f"{rid}\t{reporter_id}\t{channel}\tProblem reported\tzh\t{lat:.6f}\t"
                        f"{lon:.6f}\t\t{rid:064x}\tprocessed\t{_ts(arrival)}\t"
                        f"{_ts(arrival + timedelta(seconds=5))}\t{case_id}\n"
                    )
                # what services.statistics.refresh keeps per case for the daily and monthly rows
                days: dict[date, list[int]] = defaultdict(lambda: [0, 0])
                for rid, arrival in zip(report_ids, arrivals, strict=True):
                    tally = days[arrival.astimezone(ZONE).date()]
                    tally[0] += 1
                    tally[1] += rid != report_ids[0]
                for day, (received, merged) in days.items():
                    report_days.write(f"{case_id}\t{day}\t{received}\t{merged}\n")
                for at, actor, action, from_status, to_status, event_office, rid in history:
                    event_id += 1
                    events.write(
                        f"{event_id}\t{case_id}\t{_v(rid)}\t{at.isoformat()}\t{actor}\t{action}\t"
                        f"{_v(from_status)}\t{to_status}\t{_v(event_office)}\t\t{{}}\n"
                    )
                found = st.case_stats(
                    [st.Event(e[0], e[2], e[3], e[4]) for e in history],
                    status=status,
                    closure=closure,
                    due_at=due,
                    calendar=calendar,
                )
                stats.write(
                    _stat_line(
                        case_id,
                        office_id,
                        category.code,
                        report_ids,
                        channels,
                        reporters[reporter_ids[0] - 1],
                        found,
                    )
                )
                if closure == wf.FIXED:
                    # services.rewards at the (first) close as fixed: the first reporter gets
                    # the first-report points, each other reporter once the me-too points
                    # (the daily cap is left out: it rarely bites at 20 cases a reporter)
                    closed_at = next(e[0] for e in history if e[2] == wf.CLOSE)
                    day = closed_at.astimezone(ZONE).date()
                    awarded: set[int] = set()
                    for n, (rid, reporter_id) in enumerate(
                        zip(report_ids, reporter_ids, strict=True)
                    ):
                        if reporter_id in awarded:
                            continue
                        awarded.add(reporter_id)
                        points_id += 1
                        amount, reason = (
                            (policy.first_report, "first_report")
                            if n == 0
                            else (policy.me_too, "me_too")
                        )
                        points.write(
                            f"{points_id}\t{reporter_id}\t{case_id}\t{rid}\t{POINTS_AWARD}\t"
                            f"{amount}\t{reason}\t\t{day}\t{closed_at.isoformat()}\t{SUPERVISOR}\n"
                        )
                        out.points += 1
                out.statuses[status] += 1
                if closure:
                    out.closures[closure] += 1
                out.occupations[reporters[reporter_ids[0] - 1]] += 1
                if status in st.IN_OFFICE_HANDS and due is not None and due < now:
                    out.open_overdue += 1
                out.reports += count
                out.events += len(history)
            drawn = time.perf_counter()
            out.generate_s += drawn - batch_start
            _copy(conn, f"cases ({CASE_COLUMNS})", cases)
            _copy(conn, f"reports ({REPORT_COLUMNS})", reports)
            _copy(conn, f"case_events ({EVENT_COLUMNS})", events)
            _copy(conn, f"case_stats ({STAT_COLUMNS})", stats)
            _copy(conn, "case_report_days (case_id, day, received, merged)", report_days)
            _copy(conn, f"points_entries ({POINTS_COLUMNS})", points)
            conn.commit()
            out.copy_s += time.perf_counter() - drawn
            if case_id % progress_every < args.batch:
                print(
                    f"  {case_id:,} cases: drawing {out.generate_s:,.0f} s, "
                    f"COPY {out.copy_s:,.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
        out.cases = out.stats = case_id
        for table, last in (
            ("reporters", len(reporters)),
            ("cases", case_id),
            ("reports", report_id),
            ("case_events", event_id),
            ("points_entries", points_id),
        ):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {max(last, 1)})")
        conn.commit()
    # The monthly rows, added up in the database as `cityrelay rebuild-rollups` ends.
    started = time.perf_counter()
    engine = make_engine(server_url(args, args.database))
    with unit_of_work(make_session_factory(engine, writer=True)) as session:
        out.month_rows = stats_service.rebuild_months(session)
    engine.dispose()
    out.months_s = time.perf_counter() - started
    with psycopg.connect(plain_url(args, args.database), autocommit=True) as conn:
        started = time.perf_counter()
        for statement in () if args.without_proposed_indexes else PROPOSED_INDEXES:
            conn.execute(statement)  # type: ignore[arg-type]
        out.index_s = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")
        out.vacuum_s = time.perf_counter() - started
        for table in (
            "cases", "reports", "reporters", "case_events", "case_stats", "points_entries",
            "case_report_days", "stats_months", "stats_office_months", "stats_category_months",
            "stats_office_days", "stats_category_days",
        ):  # fmt: skip
            size = conn.execute(f"SELECT pg_total_relation_size('{table}')").fetchone()
            out.table_mb[table] = (size[0] if size else 0) / 2**20
    return out


def _bisect(cumulative: Sequence[float], value: float) -> int:
    lo, hi = 0, len(cumulative)
    while lo < hi:
        mid = (lo + hi) // 2
        if cumulative[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _stat_line(
    case_id: int,
    office_id: int,
    category: str,
    report_ids: Sequence[int],
    channels: Sequence[str],
    occupation: str,
    s: st.CaseStats,
) -> str:
    def hours(step: st.Durations | None) -> str:
        return "\\N\t\\N" if step is None else f"{step.hours}\t{step.working_hours}"

    day = s.reported_day
    week = day - timedelta(days=day.weekday())
    return (
        f"{case_id}\t{office_id}\t{category}\t{report_ids[0]}\t{channels[0]}\t{occupation}\t"
        f"{len(report_ids)}\t{s.reported_at.isoformat()}\t{day}\t{week}\t{day.replace(day=1)}\t"
        f"{s.status}\t{_v(s.closure)}\t{_ts(s.due_at)}\t{_ts(s.routed_at)}\t"
        f"{_ts(s.accepted_at)}\t{_ts(s.handled_at)}\t{_ts(s.resolved_at)}\t{_ts(s.closed_at)}\t"
        f"{_v(s.handled_on_time)}\t{_v(s.closed_on_time)}\t{_v(s.extended)}\t"
        f"{_v(s.confirmed)}\t{_v(s.reopened)}\t{s.rework_count}\t{hours(s.to_accept)}\t"
        f"{hours(s.to_resolve)}\t{hours(s.to_close)}\n"
    )


def _copy(conn: psycopg.Connection[Any], target: str, buffer: io.StringIO) -> None:
    data = buffer.getvalue()
    if not data:
        return
    with conn.cursor() as cursor, cursor.copy(f"COPY {target} FROM STDIN") as copy:
        for start in range(0, len(data), 1 << 20):
            copy.write(data[start : start + (1 << 20)])


# --------------------------------------------------------------------------- measurements


@dataclass
class Scenario:
    name: str
    label: str
    query: stats_service.StatsQuery
    with_backlog: bool
    http: str | None  # query string of GET /api/v1/stats, or None


@dataclass
class Timing:
    name: str
    label: str
    runs: list[float]
    cases_in_window: int = 0

    @property
    def p50(self) -> float:
        return statistics.median(self.runs)

    @property
    def p95(self) -> float:
        ordered = sorted(self.runs)
        return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


@dataclass
class Statement:
    kind: str
    sql: str
    params: Any
    ms: float


def statement_kind(sql: str) -> str:
    """Names a statement of figures() or backlog() by what it computes."""
    flat = " ".join(sql.split())
    if "points_entries" in flat:
        return "leaderboard"
    if ".times" in flat and "FROM stats_" in flat:
        return "rolled times"
    if "FROM stats_" in flat:
        return "rolled counts"
    if "case_stats.due_at >" in flat:
        return "due ahead"
    if "case_stats.accept_hours, case_stats.accept_working_hours" in flat:
        return "times of days"
    if "row_number() OVER" in flat:
        for column in (
            "accept_working_hours", "resolve_working_hours", "close_working_hours",
            "accept_hours", "resolve_hours", "close_hours",
        ):  # fmt: skip
            if f"case_stats.{column} AS value" in flat:
                return f"percentile {column}"
        return "percentile"
    if "FROM reports" in flat:
        return "received (reports)"
    if "AS routed" in flat:
        return "counts"
    if "case_stats.occupation, count(*)" in flat:
        return "occupations"
    if "GROUP BY case_stats.status" in flat:
        return "backlog by status"
    if "case_stats.due_at <" in flat:
        return "backlog overdue"
    if "ORDER BY case_stats.reported_at" in flat:
        return "backlog oldest"
    if "FROM offices" in flat:
        return "offices"
    return "other"


class Recorder:
    """Records each SQL statement's wall time on an engine while ``active``."""

    def __init__(self, engine: Engine) -> None:
        self.active = False
        self.statements: list[Statement] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(
        self, conn: Any, _cursor: Any, _sql: str, _params: Any, context: Any, _many: bool
    ) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def _after(
        self, conn: Any, _cursor: Any, sql: str, params: Any, _context: Any, _many: bool
    ) -> None:
        if self.active:
            elapsed = (time.perf_counter() - conn.info.pop("bench_started")) * 1000
            self.statements.append(Statement(statement_kind(sql), sql, params, elapsed))


def scenarios(
    today: date, community: tuple[int, str], office_ids: frozenset[int]
) -> list[Scenario]:
    month = (today - timedelta(days=29), today)
    year = (today - timedelta(days=364), today)

    def query(
        window: tuple[date, date], offices: frozenset[int] | None, group_by: str | None = None
    ) -> stats_service.StatsQuery:
        return stats_service.StatsQuery(
            date_from=window[0], date_to=window[1], time_zone=TIME_ZONE,
            office_ids=offices, group_by=group_by,
        )  # fmt: skip

    def qs(
        window: tuple[date, date], office: str | None = None, group_by: str | None = None
    ) -> str:
        text = f"from={window[0].isoformat()}&to={window[1].isoformat()}"
        text += f"&office={office}" if office else ""
        return text + (f"&group_by={group_by}" if group_by else "")

    code = community[1]
    return [
        Scenario("a", "whole city, last month", query(month, None), True, qs(month)),
        Scenario("b", "whole city, last year", query(year, None), True, qs(year)),
        Scenario(
            "c",
            f"one community ({code}), last month",
            query(month, office_ids),
            True,
            qs(month, code),
        ),
        Scenario(
            "d", f"one community ({code}), last year", query(year, office_ids), True, qs(year, code)
        ),
        Scenario(
            "e",
            "whole city, last year, group_by=office",
            query(year, None, "office"),
            True,
            qs(year, None, "office"),
        ),
        Scenario(
            "f",
            "whole city, last year, group_by=month",
            query(year, None, "month"),
            True,
            qs(year, None, "month"),
        ),
        Scenario(
            "g",
            "whole city, last month, group_by=day",
            query(month, None, "day"),
            True,
            qs(month, None, "day"),
        ),
    ]


def repeat(call: Callable[[], Any], runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def explain(args: argparse.Namespace, statement: Statement) -> str:
    with psycopg.connect(plain_url(args, args.database)) as conn:
        rows = conn.execute(
            "EXPLAIN (ANALYZE, BUFFERS) " + statement.sql, statement.params
        ).fetchall()
        conn.rollback()
    return "\n".join(row[0] for row in rows)


@dataclass
class Measured:
    direct: list[Timing]
    http: list[Timing]
    breakdown: dict[str, dict[str, float]]  # scenario -> kind -> ms (median of traced runs)
    statements: dict[str, list[Statement]]  # scenario -> statements of one traced run
    plans: list[tuple[str, Statement, str]]
    now: datetime
    community: tuple[int, str, int]
    queries: list[Timing] = field(default_factory=list)  # each dashboard query, by scope


def measure(args: argparse.Namespace, engine: Engine, admin_key: str, city: City) -> Measured:
    from cityrelay.app import create_app

    factory = make_session_factory(engine)
    now = datetime.now(UTC)
    today = now.astimezone(ZONE).date()
    with factory() as session:
        # the busiest community over the last year: the worst case for one community
        busiest = session.execute(
            select(CaseStat.office_id, func.count())
            .where(
                CaseStat.office_id.in_(list(city.communities)),
                CaseStat.reported_day >= today - timedelta(days=364),
            )
            .group_by(CaseStat.office_id)
            .order_by(func.count().desc())
            .limit(1)
        ).one()
        office_ids = stats_service.subtree(session, busiest[0])
    community = (busiest[0], city.communities[busiest[0]], int(busiest[1]))
    plan = scenarios(today, community[:2], office_ids)

    def run(scenario: Scenario) -> Callable[[], Any]:
        def call() -> Any:
            with factory() as session:
                answer = stats_service.figures(session, scenario.query, now)
                if scenario.with_backlog:
                    # what dashboards/stats.py _compute adds for GET /api/v1/stats
                    answer["backlog"] = stats_service.backlog(session, scenario.query, now)
                    answer["leaderboard"] = stats_service.leaderboard(session, scenario.query)
                session.rollback()
            return answer

        return call

    recorder = Recorder(engine)
    direct: list[Timing] = []
    breakdown: dict[str, dict[str, float]] = {}
    traced: dict[str, list[Statement]] = {}
    for scenario in plan:
        print(f"  timing {scenario.name}: {scenario.label}", file=sys.stderr, flush=True)
        call = run(scenario)
        timing = Timing(scenario.name, scenario.label, repeat(call, args.runs, args.warmup))
        timing.cases_in_window = int(call()["cases"])
        direct.append(timing)
        per_kind: dict[str, list[float]] = defaultdict(list)
        for attempt in range(3):
            recorder.statements = []
            recorder.active = True
            call()
            recorder.active = False
            kinds: dict[str, float] = defaultdict(float)
            for statement in recorder.statements:
                kinds[statement.kind] += statement.ms
            for kind, ms in kinds.items():
                per_kind[kind].append(ms)
            if attempt == 0:
                traced[scenario.name] = recorder.statements
        breakdown[scenario.name] = {k: statistics.median(v) for k, v in per_kind.items()}

    http: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="cityrelay-bench-stats-") as instance:
        app = create_app(
            {
                "TESTING": True,
                "DATABASE_URL": server_url(args, args.database),
                "REDIS_URL": args.redis_url,
                "INSTANCE_PATH": instance,
                "MEDIA_DIR": str(Path(instance) / "media"),
                "CLASSIFIER_PATH": str(Path(instance) / "classifier.joblib"),
                "TIMEZONE": TIME_ZONE,
            }
        )
        client = app.test_client()
        headers = {"Authorization": f"Bearer {admin_key}"}
        for scenario in plan:
            if scenario.http is None:
                continue
            url = f"/api/v1/stats?{scenario.http}"

            def get(url: str = url) -> None:
                answer = client.get(url, headers=headers)
                if answer.status_code != 200:
                    raise SystemExit(
                        f"GET {url}: {answer.status_code} {answer.get_data(as_text=True)[:300]}"
                    )

            print(f"  timing GET {scenario.name}: {url}", file=sys.stderr, flush=True)
            http.append(Timing(scenario.name, scenario.label, repeat(get, args.runs, args.warmup)))

    # EXPLAIN ANALYZE the slowest statements of the slowest whole-city and community queries.
    plans: list[tuple[str, Statement, str]] = []
    chosen: set[tuple[str, str]] = set()
    for name in args.explain.split(","):
        statements = traced.get(name, [])
        for statement in sorted(statements, key=lambda s: -s.ms)[: args.explain_top]:
            family = statement.kind.split(" ")[0]
            if (name, family) in chosen:
                continue
            chosen.add((name, family))
            plans.append((name, statement, explain(args, statement)))
    queries = dashboard_queries(args, factory, plan, now)
    return Measured(direct, http, breakdown, traced, plans, now, community, queries)


def dashboard_queries(
    args: argparse.Namespace,
    factory: Callable[[], Any],
    plan: Sequence[Scenario],
    now: datetime,
) -> list[Timing]:
    """Each query the dashboard page (dashboards/pages.py) and GET /api/v1/stats make, timed on
    its own, for the city and the community over a month and a year (scenarios a to d)."""
    from dataclasses import replace

    from services import dashboard, spikes

    found = []
    for scenario in plan[:4]:
        query = scenario.query
        period = stats_service.trend_period(query)
        calls: dict[str, Callable[[Any], Any]] = {
            "figures": lambda s, q=query: stats_service.figures(s, q, now),
            f"trend (group_by={period})": lambda s, q=query, p=period: stats_service.figures(
                s, replace(q, group_by=p), now, whole=False
            ),
            "by office": lambda s, q=query: stats_service.figures(
                s, replace(q, group_by="office"), now, whole=False
            ),
            "by category": lambda s, q=query: stats_service.figures(
                s, replace(q, group_by="category"), now, whole=False
            ),
            "backlog": lambda s, q=query: stats_service.backlog(s, q, now),
            "map of open cases": lambda s, q=query: dashboard.open_cases(s, q, now),
            "spikes": lambda s, q=query: spikes.current_spikes(s, now, office_ids=q.office_ids),
            "leaderboard (API only)": lambda s, q=query: stats_service.leaderboard(s, q),
        }
        for name, call in calls.items():

            def timed(call: Callable[[Any], Any] = call) -> None:
                with factory() as session:
                    call(session)
                    session.rollback()

            print(f"  timing {scenario.name}: {name}", file=sys.stderr, flush=True)
            found.append(Timing(scenario.name, name, repeat(timed, args.runs, args.warmup)))
    return found


# --------------------------------------------------------------------------- the results


def machine() -> dict[str, str]:
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count() or 0),
        "cpu": cpu,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


def server_settings(args: argparse.Namespace) -> dict[str, str]:
    names = ("server_version", "shared_buffers", "work_mem", "effective_cache_size",
             "max_parallel_workers_per_gather", "jit", "random_page_cost")  # fmt: skip
    with psycopg.connect(plain_url(args, args.database)) as conn:
        return {n: str(conn.execute(f"SHOW {n}").fetchone()[0]) for n in names}  # type: ignore[index]


def timing_table(direct: Sequence[Timing], http: Sequence[Timing]) -> list[str]:
    by_name = {t.name: t for t in http}
    lines = [
        "| | query | cases in window | p50 (ms) | p95 (ms) | under 200 ms p95 "
        "| GET /api/v1/stats p50 (ms) | GET p95 (ms) |",
        "|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for t in direct:
        got = by_name.get(t.name)
        what = "figures() + backlog() + leaderboard()"
        lines.append(
            f"| {t.name} | {t.label}: {what} | {t.cases_in_window:,} | {t.p50:,.0f} "
            f"| {t.p95:,.0f} | {'yes' if t.p95 < TARGET_MS else '**no**'} "
            f"| {f'{got.p50:,.0f}' if got else ''} | {f'{got.p95:,.0f}' if got else ''} |"
        )
    return lines


KIND_ORDER = (
    "rolled counts",
    "rolled times",
    "due ahead",
    "counts",
    "received (reports)",
    "times of days",
    "percentiles (6)",
    "backlog (3)",
    "leaderboard",
    "other",
)


def _family(kind: str) -> str:
    if kind.startswith("percentile"):
        return "percentiles (6)"
    if kind.startswith("backlog"):
        return "backlog (3)"
    if kind in KIND_ORDER:
        return kind
    return "other"


def query_table(queries: Sequence[Timing], scopes: dict[str, str]) -> list[str]:
    lines = [
        "| | scope | query | p50 (ms) | p95 (ms) | under 200 ms p95 |",
        "|---|---|---|---:|---:|---|",
    ]
    for timing in queries:
        lines.append(
            f"| {timing.name} | {scopes.get(timing.name, '')} | {timing.label} | "
            f"{timing.p50:,.0f} | {timing.p95:,.0f} | "
            f"{'yes' if timing.p95 < TARGET_MS else '**no**'} |"
        )
    return lines


def breakdown_table(measured: Measured) -> list[str]:
    lines = [
        "| | " + " | ".join(KIND_ORDER) + " | all SQL |",
        "|---|" + "---:|" * (len(KIND_ORDER) + 1),
    ]
    for t in measured.direct:
        families: dict[str, float] = defaultdict(float)
        for kind, ms in measured.breakdown[t.name].items():
            families[_family(kind)] += ms
        total = sum(families.values())
        cells = " | ".join(f"{families[k]:,.0f}" if k in families else "" for k in KIND_ORDER)
        lines.append(f"| {t.name} | {cells} | {total:,.0f} |")
    return lines


@dataclass
class SizeRun:
    """One size's load and measurements."""

    cases: int
    generated: Generated
    city: City
    measured: Measured


def size_args(args: argparse.Namespace, cases: int) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "cases": cases})


def command_line(args: argparse.Namespace) -> str:
    return (
        f"benchmarks/bench_stats.py --cases {','.join(str(n) for n in args.sizes)} "
        f"--runs {args.runs} --warmup {args.warmup} --seed {args.seed}"
    )


def write_markdown(path: Path, args: argparse.Namespace, runs: Sequence[SizeRun],
                   settings: dict[str, str]) -> None:  # fmt: skip
    info = machine()
    lines = [
        "# Statistics benchmark",
        "",
        f"Written by `{command_line(args)}`" + f"{harness.SMOKE_NOTE}.",
        "",
        f"- date: {datetime.now(UTC).replace(microsecond=0).isoformat()}",
        f"- machine: {info['nproc']} CPUs usable, {info['cpu']}; {info['python']}; "
        f"{info['platform']}; load average when written {info['load']}",
        f"- PostgreSQL {settings['server_version']} on the same machine: shared_buffers "
        f"{settings['shared_buffers']}, work_mem {settings['work_mem']}, effective_cache_size "
        f"{settings['effective_cache_size']}, max_parallel_workers_per_gather "
        f"{settings['max_parallel_workers_per_gather']}, jit {settings['jit']}, "
        f"random_page_cost {settings['random_page_cost']}",
        "- each size is loaded into a fresh database and measured on its own",
        "",
    ]
    if len(runs) > 1:
        lines += ["## p95 by size", "", *size_table(runs), ""]
    for run in runs:
        lines += size_section(size_args(args, run.cases), run, heading="##")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def size_table(runs: Sequence[SizeRun]) -> list[str]:
    """Each scenario's p95 (direct, then GET) at each size."""
    header = " | ".join(f"{run.cases:,} cases: p95 (ms), GET p95 (ms)" for run in runs)
    lines = [f"| | query | {header} |", "|---|---|" + "---:|" * len(runs)]
    for t in runs[0].measured.direct:
        cells = []
        for run in runs:
            direct = next(d for d in run.measured.direct if d.name == t.name)
            got = next((h for h in run.measured.http if h.name == t.name), None)
            flag = "" if direct.p95 < TARGET_MS else " **(over)**"
            cells.append(f"{direct.p95:,.0f}{flag}, {f'{got.p95:,.0f}' if got else '–'}")
        label = re.sub(r" \([^)]*\)", "", t.label)  # the community's code differs by size
        lines.append(f"| {t.name} | {label} | {' | '.join(cells)} |")
    return lines


def size_section(args: argparse.Namespace, run: SizeRun, heading: str) -> list[str]:
    """The data, timings, per-query timings, breakdown and plans of one size."""
    gen, city, measured = run.generated, run.city, run.measured
    sub = heading + "#"
    total = gen.cases
    missed = [t for t in measured.direct if t.p95 >= TARGET_MS]
    slow_queries = [t for t in measured.queries if t.p95 >= TARGET_MS]
    lines = [
        f"{heading} {run.cases:,} cases",
        "",
        f"{sub} The data",
        "",
        f"- offices: {city.office_count} (the demo city's {city.office_count - city.added_offices} "
        f"plus {args.streets} streets of {args.communities_per_street} communities), "
        f"{len(city.communities)} communities",
        f"- cases: {gen.cases:,}, reported over the {DAYS} days up to now; reports: "
        f"{gen.reports:,}; reporters: {gen.reporters:,}; case_events: {gen.events:,} "
        f"({gen.events / max(total, 1):.1f} a case); case_stats: {gen.stats:,}; "
        f"points_entries: {gen.points:,}",
        "- status now: " + ", ".join(f"{k} {v:,}" for k, v in gen.statuses.most_common()),
        f"- open, in the office's hands and past the due time: {gen.open_overdue:,}",
        "- closures: " + ", ".join(f"{k} {v:,}" for k, v in gen.closures.most_common()),
        "- first reporter: "
        + ", ".join(
            f"{k} {100 * v / max(total, 1):.0f} %" for k, v in gen.occupations.most_common()
        ),
        "- sizes with indexes: " + ", ".join(f"{k} {v:,.0f} MB" for k, v in gen.table_mb.items()),
        f"- drawing the histories and case_stats rows (Python, `routing.statistics.case_stats`): "
        f"{gen.generate_s:,.0f} s; COPY: {gen.copy_s:,.0f} s; proposed indexes: "
        f"{gen.index_s:,.0f} s; VACUUM ANALYZE: {gen.vacuum_s:,.0f} s; total "
        f"{gen.generate_s + gen.copy_s + gen.index_s + gen.vacuum_s:,.0f} s",
        f"- stats_months: {gen.month_rows:,} rows (month × office × category); it and the "
        f"monthly and daily tables per office and per category with their counts of times "
        f"were added up from case_stats and case_report_days by "
        f"`services.statistics.rebuild_months` in {gen.months_s:,.0f} s",
        "- indexes beyond the migrations' (`PROPOSED_INDEXES`, not yet in a migration): "
        + (
            "none (`--without-proposed-indexes`)"
            if args.without_proposed_indexes or not PROPOSED_INDEXES
            else "; ".join(f"`{statement}`" for statement in PROPOSED_INDEXES)
        ),
        f"- the community of (c) and (d) is the busiest one: {measured.community[1]}, "
        f"{measured.community[2]:,} cases in the last year",
        "",
        f"{sub} Timings",
        "",
        f"Each query run {args.runs} times after {args.warmup} uncounted runs, each run on a "
        "fresh read session, `now` fixed; wall time in the benchmark process (SQL, "
        "transfer and Python). `GET` is the Flask test client on an app made by "
        "`create_app`, with an admin key (authentication, parameters, scope, JSON).",
        "",
        *timing_table(measured.direct, measured.http),
        "",
        f"Each row is several queries in one call, as a grouped `GET /api/v1/stats` answers "
        f"them; below {TARGET_MS:g} ms p95: "
        + (
            "every row."
            if not missed
            else "every row but " + ", ".join(f"({t.name})" for t in missed) + "."
        ),
        "",
        f"{sub} Each dashboard query",
        "",
        "The queries the dashboard page makes (figures, the trend, the offices, the categories, "
        "the backlog, the map and the spikes) and the leaderboard that GET /api/v1/stats adds, "
        f"each timed on its own, {args.runs} runs after {args.warmup} uncounted ones, fresh "
        "read session each run.",
        "",
        *query_table(measured.queries, {t.name: t.label for t in measured.direct}),
        "",
        f"Target, every dashboard query below {TARGET_MS:g} ms p95 for the whole city and one "
        "community over a month and a year: "
        + (
            "**met** by every query."
            if not slow_queries
            else "**missed** by " + ", ".join(f"({t.name}) {t.label}" for t in slow_queries) + "."
        ),
        "",
        f"{sub} Where the time goes",
        "",
        "Milliseconds per kind of SQL statement in one call (median of three traced calls), "
        "as the driver returns them. `rolled counts` and `rolled times` read the monthly and "
        'daily tables (docs/statistics.md, "Speed"), `due ahead` the cases whose due time '
        "is still ahead; `counts`, `received (reports)` and `times of days` read case_stats "
        "and reports where no table added up ahead answers (a category within an office's "
        "subtree); `percentiles (6)` sorts case_stats (filters or groupings by occupation or "
        "channel); `backlog (3)` by status, overdue now and "
        "the oldest open case, `leaderboard` the points and valid reports by reporter. "
        "Grouped queries run figures() twice (the whole selection, then the groups), so "
        "their statements count twice.",
        "",
        *breakdown_table(measured),
        "",
        f"{sub} Plans of the slowest statements",
        "",
        "EXPLAIN (ANALYZE, BUFFERS) of the slowest statements of the scenarios "
        f"{args.explain}, with the parameters they ran with.",
        "",
    ]
    for name, statement, text in measured.plans:
        lines += [
            f"{sub}# ({name}) {statement.kind}: {statement.ms:,.0f} ms in the traced call",
            "",
            "```sql",
            " ".join(statement.sql.split()),
            "```",
            "",
            "```",
            text,
            "```",
            "",
        ]
    return lines


def timing_figures(timing: Timing) -> dict[str, Any]:
    return {
        "scenario": timing.name,
        "label": timing.label,
        "cases_in_window": timing.cases_in_window,
        "ms": harness.summarize(timing.runs, 1),
        "p95_ms": round(timing.p95, 1),
        "under_target": timing.p95 < TARGET_MS,
    }


def size_figures(run: SizeRun) -> dict[str, Any]:
    """One size for the results JSON."""
    gen, measured = run.generated, run.measured
    return {
        "cases": run.cases,
        "data": {
            "reports": gen.reports,
            "reporters": gen.reporters,
            "case_events": gen.events,
            "points_entries": gen.points,
            "stats_months_rows": gen.month_rows,
            "open_overdue": gen.open_overdue,
            "statuses": dict(gen.statuses.most_common()),
            "table_mb": {k: round(v, 1) for k, v in gen.table_mb.items()},
            "load_s": {
                "draw": round(gen.generate_s, 1),
                "copy": round(gen.copy_s, 1),
                "rebuild_months": round(gen.months_s, 1),
                "proposed_indexes": round(gen.index_s, 1),
                "vacuum_analyze": round(gen.vacuum_s, 1),
            },
        },
        "community": {"code": measured.community[1], "cases_last_year": measured.community[2]},
        "direct": [timing_figures(t) for t in measured.direct],
        "http": [timing_figures(t) for t in measured.http],
        "queries": [timing_figures(t) for t in measured.queries],
        "breakdown_ms": {
            name: {kind: round(ms, 1) for kind, ms in kinds.items()}
            for name, kinds in measured.breakdown.items()
        },
        "target_met": all(t.p95 < TARGET_MS for t in (*measured.direct, *measured.queries)),
    }


def parse_sizes(text: str) -> list[int]:
    """'100000,1000000' -> [100000, 1000000]: each a whole number of cases, at least 1."""
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma list of case counts: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"case counts must be at least 1: {text!r}")
    return sizes


def redis_version(url: str) -> str:
    import redis

    try:
        return str(redis.Redis.from_url(url, socket_timeout=2).info()["redis_version"])
    except Exception:  # the version is a detail of the results, never a reason to fail
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cases",
        dest="sizes",
        type=parse_sizes,
        default=harness.smoke_scaled("100000,1000000", "3000"),
        help="a comma list of case counts: each is loaded into a fresh database and measured",
    )
    parser.add_argument("--reporters", type=int, default=harness.smoke_scaled(50_000, 2_000))
    parser.add_argument("--streets", type=int, default=20)
    parser.add_argument("--communities-per-street", type=int, default=10)
    parser.add_argument("--runs", type=int, default=harness.smoke_scaled(20, 3))
    parser.add_argument("--warmup", type=int, default=harness.smoke_scaled(2, 0))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=20_000, help="cases per COPY")
    parser.add_argument(
        "--host", help="PostgreSQL host (default: harness.stack's, 127.0.0.1:5432 or temporary)"
    )
    parser.add_argument("--port", type=int, help="PostgreSQL port (with --host: 5432)")
    parser.add_argument("--user", help="PostgreSQL user (default: postgres)")
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument(
        "--redis-url", help="default: harness.stack's Redis, index 9 (with --host: 127.0.0.1:6379)"
    )
    parser.add_argument("--explain", default="b,d", help="scenarios whose slow SQL is explained")
    parser.add_argument("--explain-top", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the last size's database")
    parser.add_argument(
        "--without-proposed-indexes",
        action="store_true",
        help="measure with the migrations' indexes only (see PROPOSED_INDEXES)",
    )
    parser.add_argument("--output", type=Path, default=harness.results_dir() / "stats.md")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.reporters < 1:
        parser.error("--runs and --reporters must be at least 1, --warmup at least 0")

    with contextlib.ExitStack() as exits:
        if args.host is None and args.port is None:
            servers = exits.enter_context(harness.stack(redis_db=REDIS_DB))
            args.host, args.port = servers.postgres_host, servers.postgres_port
            args.user = args.user or servers.postgres_user
            args.redis_url = args.redis_url or servers.redis_url
        else:
            args.host = args.host or "127.0.0.1"
            args.port = args.port or 5432
            args.user = args.user or "postgres"
            args.redis_url = args.redis_url or f"redis://127.0.0.1:6379/{REDIS_DB}"
        runs, settings = measure_sizes(args)

    print("\n".join(size_table(runs)))
    write_markdown(args.output, args, runs, settings)
    print(f"written to {args.output}")
    harness.write_result(
        "stats",
        {
            "parameters": {
                "cases": args.sizes,
                "reporters": args.reporters,
                "streets": args.streets,
                "communities_per_street": args.communities_per_street,
                "runs": args.runs,
                "warmup": args.warmup,
                "seed": args.seed,
                "proposed_indexes": [] if args.without_proposed_indexes else PROPOSED_INDEXES,
            },
            "target_ms": TARGET_MS,
            "postgresql_settings": settings,
            "by_size": [size_figures(run) for run in runs],
        },
        servers={
            "postgresql": settings["server_version"],
            "redis": redis_version(args.redis_url),
        },
    )
    return 0


def measure_sizes(args: argparse.Namespace) -> tuple[list[SizeRun], dict[str, str]]:
    """Each size in a fresh database: load, measure; the database is dropped at the end
    (the last one kept with --keep)."""
    runs: list[SizeRun] = []
    settings: dict[str, str] = {}
    try:
        for cases in args.sizes:
            one = size_args(args, cases)
            recreate_database(one)
            url = server_url(one, one.database)
            started = time.perf_counter()
            upgrade(url)
            engine = make_engine(url)
            city, admin_key = seed_city(engine, one)
            print(
                f"statistics benchmark: {one.database} migrated and seeded "
                f"({city.office_count} offices) in {time.perf_counter() - started:,.1f} s; "
                f"drawing {cases:,} cases …",
                file=sys.stderr,
                flush=True,
            )
            now = datetime.now(UTC)
            generated = load_cases(one, city, now)
            print(
                f"  drawn in {generated.generate_s:,.0f} s, COPY {generated.copy_s:,.0f} s, "
                f"VACUUM ANALYZE {generated.vacuum_s:,.0f} s",
                file=sys.stderr,
                flush=True,
            )
            measured = measure(one, engine, admin_key, city)
            settings = server_settings(one)
            engine.dispose()
            print(f"\n{cases:,} cases:")
            print("\n".join(timing_table(measured.direct, measured.http)))
            print()
            print("\n".join(breakdown_table(measured)))
            runs.append(SizeRun(cases, generated, city, measured))
    finally:
        if not args.keep:
            recreate_database(args, drop_only=True)
    return runs, settings


if __name__ == "__main__":
    raise SystemExit(main())
