"""Resolution statistics: the ``case_stats`` rows kept in step with case events, and the
figures they add up to (docs/statistics.md defines each one).

Every flush that writes a case event rewrites that case's ``case_stats`` row from its events in
the same transaction, and moves the monthly rows (``stats_months``) by the difference, so the
figures are never behind the cases. ``fill_missing`` writes the rows of cases that have none
(after the migrations that made the tables); ``rebuild`` rewrites every row (``cityrelay
rebuild-rollups``). Whole months are read from the monthly rows, the days around them and the
percentiles from ``case_stats``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import (
    ARRAY,
    Date,
    Float,
    LargeBinary,
    and_,
    bindparam,
    case,
    cast,
    delete,
    event,
    extract,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from models.entities import (
    CASE_CLOSED,
    MONTHLY_COUNTS,
    OCCUPATIONS,
    Case,
    CaseEvent,
    CaseReportDay,
    CaseStat,
    Category,
    Office,
    PointsEntry,
    Report,
    Reporter,
    ReporterPointsYear,
    StatsCategoryDay,
    StatsCategoryMonth,
    StatsMonth,
    StatsOfficeDay,
    StatsOfficeMonth,
)
from models.session import on_conflict_insert
from routing import statistics as st
from routing import time_grid as tg
from routing import workflow as wf
from services.calendars import calendar_context
from services.errors import Forbidden, InvalidField

_TOUCHED = "cityrelay_cases_with_new_events"
_NEW_POINTS = "cityrelay_new_points_entries"
# Cases inserted by this transaction (being flushed, then flushed) that have no rows yet: their
# refresh has nothing to read back or delete first.
_INSERTING = "cityrelay_cases_being_inserted"
_WITHOUT_ROWS = "cityrelay_new_cases_without_rows"
REFRESH_BATCH = 500


# ----------------------------------------------------------------- keeping rows in step


@event.listens_for(Session, "before_flush")
def _note_cases_with_new_events(session: Session, _context: Any, _instances: Any) -> None:
    touched = session.info.setdefault(_TOUCHED, [])
    entries = session.info.setdefault(_NEW_POINTS, [])
    inserting = session.info.setdefault(_INSERTING, [])
    for obj in session.new:
        if isinstance(obj, CaseEvent):
            touched.append(obj)
        elif isinstance(obj, PointsEntry):
            entries.append(obj)
        elif isinstance(obj, Case):
            inserting.append(obj)
    for obj in session.dirty:
        if isinstance(obj, Case):
            touched.append(obj)


@event.listens_for(Session, "after_flush")
def _add_new_points(session: Session, _context: Any) -> None:
    entries = session.info.pop(_NEW_POINTS, [])
    if entries:
        add_to_reporter_points(
            session, [(entry.reporter_id, entry.day, entry.points) for entry in entries]
        )


@event.listens_for(Session, "after_flush")
def _refresh_touched_cases(session: Session, _context: Any) -> None:
    inserted = session.info.pop(_INSERTING, [])
    if inserted:
        session.info.setdefault(_WITHOUT_ROWS, set()).update(case.id for case in inserted)
    touched = session.info.pop(_TOUCHED, [])
    case_ids = {
        obj.case_id if isinstance(obj, CaseEvent) else obj.id
        for obj in touched
        if (obj.case_id if isinstance(obj, CaseEvent) else obj.id) is not None
    }
    if case_ids:
        refresh(session, sorted(case_ids))


def skip_refresh_of_this_flush(session: Session) -> None:
    """From a ``before_flush`` listener registered after this module's: the cases this flush
    touches get no refresh now. Whoever calls it refreshes them later (``refresh``), as a
    replay of many events does once at its end."""
    session.info.pop(_TOUCHED, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_touched(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_TOUCHED, None)
        session.info.pop(_NEW_POINTS, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_new_cases(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_INSERTING, None)
        session.info.pop(_WITHOUT_ROWS, None)


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def refresh(session: Session, case_ids: Sequence[int], *, months: bool = True) -> int:
    """Rewrite the ``case_stats`` and ``case_report_days`` rows of ``case_ids`` from their
    events and reports, and move what they add to ``stats_months`` by the difference (unless
    ``months`` is false: the caller rebuilds the monthly rows afterwards); answers how many
    rows were written (a case without events has none)."""
    written = 0
    calendars = calendar_context(session)
    for start in range(0, len(case_ids), REFRESH_BATCH):
        batch = list(case_ids[start : start + REFRESH_BATCH])
        cases = {
            row.id: row
            for row in session.execute(
                select(
                    Case.id,
                    Case.status,
                    Case.closure,
                    Case.due_at,
                    Case.office_id,
                    Case.category_code,
                ).where(Case.id.in_(batch))
            )
        }
        events: dict[int, list[st.Event]] = defaultdict(list)
        for row in session.execute(
            select(
                CaseEvent.case_id,
                CaseEvent.at,
                CaseEvent.action,
                CaseEvent.from_status,
                CaseEvent.to_status,
            )
            .where(CaseEvent.case_id.in_(batch))
            .order_by(CaseEvent.case_id, CaseEvent.id)
        ):
            events[row.case_id].append(st.Event(row.at, row.action, row.from_status, row.to_status))
        arrivals: dict[int, list[tuple[int, datetime]]] = defaultdict(list)
        # Each report's channel and reporter's occupation come along, in the same round trip,
        # for the one that counts: the first report of its case.
        origins_of_all: dict[int, Any] = {}
        for row in session.execute(
            select(
                Report.case_id, Report.id, Report.received_at, Report.channel, Reporter.occupation
            )
            .join(Reporter, Reporter.id == Report.reporter_id)
            .where(Report.case_id.in_(batch))
        ):
            arrivals[row.case_id].append((row.id, row.received_at))
            origins_of_all[row.id] = row
        first_reports = {
            case_id: _FirstReport(min(id_ for id_, _ in found), len(found))
            for case_id, found in arrivals.items()
        }
        origins = {
            r.first_report_id: origins_of_all[r.first_report_id] for r in first_reports.values()
        }
        rows: list[dict[str, Any]] = []
        report_days: list[dict[str, Any]] = []
        for case_id in batch:
            found, history, first = (
                cases.get(case_id),
                events.get(case_id),
                first_reports.get(case_id),
            )
            if found is None or not history or first is None:
                continue
            origin = origins[first.first_report_id]
            calendar = calendars.for_office(found.office_id)
            stats = st.case_stats(
                history,
                status=found.status,
                closure=found.closure,
                due_at=found.due_at,
                calendar=calendar,
            )
            rows.append(_row(case_id, found, first, origin, stats))
            report_days += _report_days(
                case_id, arrivals[case_id], first.first_report_id, ZoneInfo(calendar.timezone)
            )
        # Cases this transaction inserted and never refreshed have no rows: nothing to
        # subtract or delete (three round trips fewer for every report that opens a case).
        without_rows = session.info.get(_WITHOUT_ROWS, set())
        all_new = all(case_id in without_rows for case_id in batch)
        old = _contributions(session, batch) if months and not all_new else _Tallies()
        if not all_new:
            session.execute(delete(CaseStat).where(CaseStat.case_id.in_(batch)))
            session.execute(delete(CaseReportDay).where(CaseReportDay.case_id.in_(batch)))
        without_rows.difference_update(batch)
        if rows:
            session.execute(insert(CaseStat), rows)
        if report_days:
            session.execute(insert(CaseReportDay), report_days)
        if months:
            _add_to_months(session, _difference(_added_by(rows, report_days), old))
        written += len(rows)
    return written


@dataclass(frozen=True)
class _FirstReport:
    first_report_id: int
    reports_count: int


def _report_days(
    case_id: int, arrivals: list[tuple[int, datetime]], first_report_id: int, zone: ZoneInfo
) -> list[dict[str, Any]]:
    by_day: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for report_id, received_at in arrivals:
        tally = by_day[received_at.astimezone(zone).date()]
        tally[0] += 1
        tally[1] += report_id != first_report_id
    return [
        {"case_id": case_id, "day": day, "received": received, "merged": merged}
        for day, (received, merged) in by_day.items()
    ]


# The tables of counts added up ahead and the columns that name a row of each.
_MONTHLY_TABLES: tuple[tuple[type[Any], tuple[str, ...]], ...] = (
    (StatsMonth, ("month", "office_key", "category_key")),
    (StatsOfficeMonth, ("month", "office_key")),
    (StatsCategoryMonth, ("month", "category_key")),
    (StatsOfficeDay, ("day", "office_key")),
    (StatsCategoryDay, ("day", "category_key")),
)
_WITH_TIMES = (StatsOfficeMonth, StatsCategoryMonth, StatsOfficeDay, StatsCategoryDay)
# The daily table beside each monthly one that keeps times.
_DAILY = {StatsOfficeMonth: StatsOfficeDay, StatsCategoryMonth: StatsCategoryDay}


def _cells(day: date, office_id: int | None, category_code: str | None) -> dict[Any, tuple]:
    """The row of each table that a case reported (or a report received) on ``day`` counts in."""
    office, category, month = office_id or 0, category_code or "", day.replace(day=1)
    return {
        StatsMonth: (month, office, category),
        StatsOfficeMonth: (month, office),
        StatsCategoryMonth: (month, category),
        StatsOfficeDay: (day, office),
        StatsCategoryDay: (day, category),
    }


@dataclass
class _Tallies:
    """Counts and counts of times per grid value, by monthly table and row."""

    counts: dict[Any, dict[tuple, dict[str, int]]] = field(
        default_factory=lambda: defaultdict(
            lambda: defaultdict(lambda: dict.fromkeys(MONTHLY_COUNTS, 0))
        )
    )
    times: dict[Any, dict[tuple, Counter[int]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(Counter))
    )


def _case_counts(row: Any) -> dict[str, int]:
    """What one ``case_stats`` row (a mapping) adds to its month's counts."""
    closed = row["status"] == CASE_CLOSED
    unhandled = row["handled_at"] is None
    no_due = row["due_at"] is None
    counts = {
        "cases": 1,
        "routed": row["routed_at"] is not None,
        "accepted": row["accepted_at"] is not None,
        "resolved": row["resolved_at"] is not None,
        "closed": closed,
        "closed_fixed": closed and row["closure"] == wf.FIXED,
        "closed_on_time": row["closed_on_time"] is True,
        "reopened": row["reopened"] is True,
        "rework": row["rework_count"],
        "reworked_cases": row["rework_count"] > 0,
        "handled": not unhandled,
        "handled_on_time": row["handled_on_time"] is True,
        "extended": row["extended"] is True,
        "confirmed": row["confirmed"] is True,
        "open_without_due": not closed and no_due,
        "unhandled_without_due": unhandled and no_due,
        "unhandled_with_due": unhandled and not no_due,
        **{f"first_{o}": row["occupation"] == o for o in OCCUPATIONS},
    }
    return {name: int(value) for name, value in counts.items()}


def _time_keys(row: Any) -> list[int]:
    """The packed grid keys of a ``case_stats`` row's times (``routing.time_grid``)."""
    measures = [i for i, name in enumerate(tg.MEASURES) if row[name] is not None]
    if not measures:
        return []
    positions = tg.grid_positions([row[tg.MEASURES[i]] for i in measures])
    return [i * tg.GRID_SIZE + int(p) for i, p in zip(measures, positions, strict=True)]


def _added_by(rows: Iterable[Any], report_days: Iterable[Any]) -> _Tallies:
    """What case rows and their report days add to the tables, by row."""
    added = _Tallies()
    places: dict[int, tuple[int | None, str | None]] = {}
    for row in rows:
        places[row["case_id"]] = (row["office_id"], row["category_code"])
        counts, times = _case_counts(row), _time_keys(row)
        for model, key in _cells(
            row["reported_day"], row["office_id"], row["category_code"]
        ).items():
            target = added.counts[model][key]
            for name, value in counts.items():
                target[name] += value
            if model in _WITH_TIMES:
                added.times[model][key].update(times)
    for day in report_days:
        for model, key in _cells(day["day"], *places[day["case_id"]]).items():
            target = added.counts[model][key]
            target["received"] += day["received"]
            target["merged"] += day["merged"]
    return added


_CONTRIBUTING = (
    "case_id", "office_id", "category_code", "reported_day", "status", "closure", "due_at",
    "routed_at", "accepted_at", "resolved_at", "handled_at", "closed_on_time", "reopened",
    "rework_count", "handled_on_time", "extended", "confirmed", "occupation", *tg.MEASURES,
)  # fmt: skip


def _contributions(session: Session, case_ids: list[int]) -> _Tallies:
    """What the cases' present rows add to the monthly tables (before they are rewritten)."""
    rows = [
        row._mapping
        for row in session.execute(
            select(*(getattr(CaseStat, name) for name in _CONTRIBUTING)).where(
                CaseStat.case_id.in_(case_ids)
            )
        )
    ]
    if not rows:
        return _Tallies()
    report_days = [
        row._mapping
        for row in session.execute(
            select(
                CaseReportDay.case_id,
                CaseReportDay.day,
                CaseReportDay.received,
                CaseReportDay.merged,
            ).where(CaseReportDay.case_id.in_([row["case_id"] for row in rows]))
        )
    ]
    return _added_by(rows, report_days)


def _difference(new: _Tallies, old: _Tallies) -> _Tallies:
    changes = _Tallies()
    for model, _names in _MONTHLY_TABLES:
        after, before = new.counts.get(model, {}), old.counts.get(model, {})
        for key in set(after) | set(before):
            change = {
                name: after.get(key, {}).get(name, 0) - before.get(key, {}).get(name, 0)
                for name in MONTHLY_COUNTS
            }
            if any(change.values()):
                changes.counts[model][key] = change
        times_after, times_before = new.times.get(model, {}), old.times.get(model, {})
        for key in set(times_after) | set(times_before):
            moved = Counter(times_after.get(key, Counter()))
            moved.subtract(times_before.get(key, Counter()))
            moved = Counter({k: v for k, v in moved.items() if v})
            if moved:
                changes.times[model][key] = moved
    return changes


# Built once per table and dialect: the upsert's SET clause has a term for each of the many
# counts, and building it (and its cache key) for every case refreshed cost more CPU than
# everything else a report's processing does. Statements are immutable, so one serves all.
_UPSERTS: dict[tuple[Any, bool], Any] = {}
_TIMES_UPDATES: dict[Any, Any] = {}


def _month_upsert(model: Any, names: tuple[str, ...], postgresql: bool) -> Any:
    """INSERT … ON CONFLICT (the row's key) DO UPDATE adding each count to the stored one."""
    found = _UPSERTS.get((model, postgresql))
    if found is None:
        statement = (postgresql_insert if postgresql else sqlite_insert)(model)
        found = statement.on_conflict_do_update(
            index_elements=list(names),
            set_={
                name: getattr(model, name) + getattr(statement.excluded, name)
                for name in MONTHLY_COUNTS
            },
        )
        _UPSERTS[(model, postgresql)] = found
    return found


def _times_update(model: Any, names: tuple[str, ...]) -> Any:
    """UPDATE of one row's counts of times, the row named by ``cell_<key column>``."""
    found = _TIMES_UPDATES.get(model)
    if found is None:
        table = model.__table__
        found = (
            update(table)
            .where(*(table.c[name] == bindparam(f"cell_{name}") for name in names))
            .values(times=bindparam("cell_times"))
        )
        _TIMES_UPDATES[model] = found
    return found


def _add_to_months(session: Session, changes: _Tallies) -> None:
    """Add ``changes`` to the monthly rows, making the rows that are missing. In key order, so
    that two transactions changing the same rows lock them in the same order; the counts of
    times are read and written back while the row is locked by its upsert."""
    postgresql = _on_postgresql(session)
    for model, names in _MONTHLY_TABLES:
        counts, times = changes.counts.get(model, {}), changes.times.get(model, {})
        keys = sorted(set(counts) | set(times))
        if not keys:
            continue
        session.execute(
            _month_upsert(model, names, postgresql),
            [
                {
                    **dict(zip(names, key, strict=True)),
                    **counts.get(key, dict.fromkeys(MONTHLY_COUNTS, 0)),
                }
                for key in keys
            ],
        )
        if not times:
            continue
        table = model.__table__
        columns = [table.c[name] for name in names]
        stored = {
            tuple(row[:-1]): row[-1]
            for row in session.execute(
                select(*columns, table.c.times).where(tuple_(*columns).in_(sorted(times)))
            )
        }
        written = []
        for key in sorted(times):
            counted = Counter(tg.unpack(stored.get(key)))
            counted.update(times[key])
            written.append(
                {**{f"cell_{n}": v for n, v in zip(names, key, strict=True)},
                 "cell_times": tg.pack(counted)}
            )  # fmt: skip
        session.execute(_times_update(model, names), written)


def rebuild_months(session: Session) -> int:
    """Add up every row of the monthly and daily tables again from ``case_stats`` and
    ``case_report_days`` (the counts in the database, the counts of times per grid value from
    the times read once), and the reporters' points by year from the ledger; answers how many
    rows of ``stats_months`` were written."""
    closed = CaseStat.status == CASE_CLOSED
    unhandled = CaseStat.handled_at.is_(None)
    no_due = CaseStat.due_at.is_(None)
    counted = (
        *_clockless_counts(),
        _flag(and_(~closed, no_due)).label("open_without_due"),
        _flag(and_(unhandled, no_due)).label("unhandled_without_due"),
        _flag(and_(unhandled, ~no_due)).label("unhandled_with_due"),
        *(_flag(CaseStat.occupation == o).label(f"first_{o}") for o in OCCUPATIONS),
        literal(0).label("received"),
        literal(0).label("merged"),
    )
    keys = {
        "month": CaseStat.reported_month,
        "day": CaseStat.reported_day,
        "office_key": func.coalesce(CaseStat.office_id, 0),
        "category_key": func.coalesce(CaseStat.category_code, ""),
    }
    for model, names in _MONTHLY_TABLES:
        session.execute(delete(model))
        session.execute(
            insert(model).from_select(
                [*names, *MONTHLY_COUNTS],
                select(*(keys[name].label(name) for name in names), *counted).group_by(
                    *(keys[name] for name in names)
                ),
            )
        )
    arrivals = (
        select(
            CaseReportDay.day,
            keys["office_key"],
            keys["category_key"],
            func.sum(CaseReportDay.received).label("received"),
            func.sum(CaseReportDay.merged).label("merged"),
        )
        .join(CaseStat, CaseStat.case_id == CaseReportDay.case_id)
        .group_by(CaseReportDay.day, keys["office_key"], keys["category_key"])
    )
    changes = _Tallies()
    for row in session.execute(arrivals):
        for model, key in _cells(_as_date(row[0]), row[1], row[2]).items():
            target = changes.counts[model][key]
            target["received"] += int(row.received)
            target["merged"] += int(row.merged)
    _add_to_months(session, changes)
    _rebuild_times(session)
    rebuild_reporter_points(session)
    return session.scalar(select(func.count()).select_from(StatsMonth)) or 0


def _rebuild_times(session: Session) -> None:
    """The counts of times per grid value of every row of the tables that keep them."""
    rows = session.execute(
        select(
            CaseStat.reported_month,
            CaseStat.reported_day,
            func.coalesce(CaseStat.office_id, 0),
            func.coalesce(CaseStat.category_code, ""),
            *(getattr(CaseStat, name) for name in tg.MEASURES),
        )
    ).all()
    if not rows:
        return
    values = np.array(
        [[np.nan if v is None else v for v in row[4:]] for row in rows], dtype=np.float64
    )
    for model, names in _MONTHLY_TABLES:
        if model not in _WITH_TIMES:
            continue
        period = 0 if names[0] == "month" else 1
        place = 2 if names[1] == "office_key" else 3
        cells: dict[tuple, int] = {}
        cell_of_row = np.fromiter(
            (cells.setdefault((_as_date(row[period]), row[place]), len(cells)) for row in rows),
            dtype=np.int64,
            count=len(rows),
        )
        flat = []
        for measure in range(len(tg.MEASURES)):
            present = ~np.isnan(values[:, measure])
            flat.append(
                cell_of_row[present] * tg.STRIDE
                + tg.measure_keys(measure, values[present, measure])
            )
        found, counts = np.unique(np.concatenate(flat), return_counts=True)
        bounds = np.searchsorted(found // tg.STRIDE, np.arange(len(cells) + 1))
        table = model.__table__
        columns = [table.c[name] for name in names]
        session.execute(
            update(table)
            .where(*(column == bindparam(f"cell_{column.name}") for column in columns))
            .values(times=bindparam("cell_times")),
            [
                {
                    f"cell_{names[0]}": key[0],
                    f"cell_{names[1]}": key[1],
                    "cell_times": tg.pack(
                        dict(
                            zip(
                                (found[bounds[i] : bounds[i + 1]] % tg.STRIDE).tolist(),
                                counts[bounds[i] : bounds[i + 1]].tolist(),
                                strict=True,
                            )
                        )
                    ),
                }
                for key, i in cells.items()
            ],
        )


def _row(case_id: int, found: Any, first: Any, origin: Any, stats: st.CaseStats) -> dict[str, Any]:
    def hours(step: st.Durations | None) -> tuple[float | None, float | None]:
        return (None, None) if step is None else (step.hours, step.working_hours)

    accept, resolve, close = hours(stats.to_accept), hours(stats.to_resolve), hours(stats.to_close)
    return {
        "case_id": case_id,
        "office_id": found.office_id,
        "category_code": found.category_code,
        "first_report_id": first.first_report_id,
        "channel": origin.channel,
        "occupation": origin.occupation,
        "reports_count": first.reports_count,
        "reported_at": stats.reported_at,
        "reported_day": stats.reported_day,
        "reported_week": _week_start(stats.reported_day),
        "reported_month": stats.reported_day.replace(day=1),
        "status": stats.status,
        "closure": stats.closure,
        "due_at": stats.due_at,
        "routed_at": stats.routed_at,
        "accepted_at": stats.accepted_at,
        "handled_at": stats.handled_at,
        "resolved_at": stats.resolved_at,
        "closed_at": stats.closed_at,
        "handled_on_time": stats.handled_on_time,
        "closed_on_time": stats.closed_on_time,
        "extended": stats.extended,
        "confirmed": stats.confirmed,
        "reopened": stats.reopened,
        "rework_count": stats.rework_count,
        "accept_hours": accept[0],
        "accept_working_hours": accept[1],
        "resolve_hours": resolve[0],
        "resolve_working_hours": resolve[1],
        "close_hours": close[0],
        "close_working_hours": close[1],
    }


_MONTH_POINTS = tuple(f"points_{month:02d}" for month in range(1, 13))


def add_to_reporter_points(session: Session, entries: Iterable[tuple[int, date, int]]) -> None:
    """Add ledger entries (reporter, day, points) to their reporters' rows of the year, in key
    order, as the monthly tables are."""
    sums: dict[tuple[int, int], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(_MONTH_POINTS, 0)
    )
    for reporter_id, day, points in entries:
        sums[(reporter_id, day.year)][_MONTH_POINTS[day.month - 1]] += points
    statement = on_conflict_insert(session, ReporterPointsYear)
    statement = statement.on_conflict_do_update(
        index_elements=["reporter_id", "year"],
        set_={
            name: getattr(ReporterPointsYear, name) + getattr(statement.excluded, name)
            for name in _MONTH_POINTS
        },
    )
    session.execute(
        statement,
        [{"reporter_id": key[0], "year": key[1], **sums[key]} for key in sorted(sums)],
    )


def rebuild_reporter_points(session: Session) -> int:
    """Every reporter's rows of the year again from the ledger; answers how many."""
    session.execute(delete(ReporterPointsYear))
    year, month = extract("year", PointsEntry.day), extract("month", PointsEntry.day)
    rows = session.execute(
        select(PointsEntry.reporter_id, year, month, func.sum(PointsEntry.points)).group_by(
            PointsEntry.reporter_id, year, month
        )
    ).all()
    if rows:
        add_to_reporter_points(
            session, [(row[0], date(int(row[1]), int(row[2]), 1), int(row[3])) for row in rows]
        )
    return session.scalar(select(func.count()).select_from(ReporterPointsYear)) or 0


def fill_missing(session: Session) -> int:
    """Write the rows of the cases that have none, and of those whose reports were never
    counted by day (a database from before ``case_report_days``), then add the monthly
    rows up again; answers how many cases were written."""
    missing = session.scalars(
        select(Case.id)
        .outerjoin(CaseStat, CaseStat.case_id == Case.id)
        .where(
            or_(
                CaseStat.case_id.is_(None),
                ~select(CaseReportDay.case_id).where(CaseReportDay.case_id == Case.id).exists(),
            )
        )
        .order_by(Case.id)
    ).all()
    written = refresh(session, list(missing), months=False)
    unsummed_points = (
        session.scalar(select(func.count()).select_from(ReporterPointsYear)) == 0
        and session.scalar(select(PointsEntry.id).limit(1)) is not None
    )
    if missing or unsummed_points:
        rebuild_months(session)
    return written


def rebuild(session: Session) -> int:
    """Rewrite every case's rows from its events and reports, and the monthly rows from them;
    answers how many cases were written."""
    session.execute(delete(CaseReportDay))
    session.execute(delete(CaseStat))
    return fill_missing(session)


# ------------------------------------------------------------------------------ querying

GROUP_BY = ("office", "category", "group", "day", "week", "month", "occupation")


@dataclass(frozen=True)
class StatsQuery:
    """Which cases and reports count: reported on ``date_from`` to ``date_to`` (inclusive,
    in the city's time zone), under ``office_ids`` (a subtree; None: the whole city), of a
    category or category group, first reported by an occupation, through a channel."""

    date_from: date
    date_to: date
    time_zone: str
    office_ids: frozenset[int] | None = None
    category: str | None = None
    group: str | None = None
    occupation: str | None = None
    channel: str | None = None
    group_by: str | None = None


def subtree(session: Session, office_id: int) -> frozenset[int]:
    """``office_id`` and every office under it."""
    children: dict[int | None, list[int]] = defaultdict(list)
    for row in session.execute(select(Office.id, Office.parent_id)):
        children[row.parent_id].append(row.id)
    found, todo = {office_id}, [office_id]
    while todo:
        for child in children[todo.pop()]:
            if child not in found:
                found.add(child)
                todo.append(child)
    return frozenset(found)


# The role of an anonymous reader of the public figures: any office, figures without people.
PUBLIC = "public"


def resolve_scope(
    session: Session,
    *,
    role: str,
    own_office_id: int | None,
    office_code: str | None,
    category: str | None,
    group: str | None,
) -> tuple[frozenset[int] | None, str | None]:
    """The offices a caller's figures cover and the office code they are named by: an admin
    any office's subtree or the whole city; a supervisor its own subtree or a part of it.
    Unknown names are refused, each by its field."""
    if category is not None and session.get(Category, category) is None:
        raise InvalidField("category", f"No category with code '{category}'.")
    if (
        group is not None
        and session.scalar(
            select(func.count()).select_from(Category).where(Category.group_zh == group)
        )
        == 0
    ):
        raise InvalidField("group", f"No category group named '{group}'.")
    office: Office | None = None
    if office_code is not None:
        office = session.scalar(select(Office).where(Office.code == office_code))
        if office is None:
            raise InvalidField("office", f"No office with code '{office_code}'.")
    if role in ("admin", PUBLIC):
        return (subtree(session, office.id), office.code) if office else (None, None)
    if role != "supervisor" or own_office_id is None:
        raise Forbidden("Only supervisors and admins see the statistics.")
    own = subtree(session, own_office_id)
    if office is None:
        office = session.get(Office, own_office_id)
        assert office is not None, "a supervisor key names its office"
        return own, office.code
    if office.id not in own:
        raise Forbidden(f"Office '{office.code}' is not under this supervisor's office.")
    return subtree(session, office.id), office.code


def case_filters(query: StatsQuery, *, window: bool = True) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if window:
        conditions += [
            CaseStat.reported_day >= query.date_from,
            CaseStat.reported_day <= query.date_to,
        ]
    if query.office_ids is not None:
        conditions.append(CaseStat.office_id.in_(sorted(query.office_ids)))
    if query.category is not None:
        conditions.append(CaseStat.category_code == query.category)
    if query.group is not None:
        conditions.append(
            CaseStat.category_code.in_(
                select(Category.code).where(Category.group_zh == query.group)
            )
        )
    if query.occupation is not None:
        conditions.append(CaseStat.occupation == query.occupation)
    if query.channel is not None:
        conditions.append(CaseStat.channel == query.channel)
    return conditions


def _case_group_key(group_by: str | None) -> ColumnElement[Any]:
    if group_by is None:
        return literal("all")
    return {
        "office": CaseStat.office_id,
        "category": CaseStat.category_code,
        "group": Category.group_zh,
        "day": CaseStat.reported_day,
        "week": CaseStat.reported_week,
        "month": CaseStat.reported_month,
        "occupation": CaseStat.occupation,
    }[group_by]


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _clockless_counts() -> tuple[ColumnElement[int], ...]:
    """The counts over ``case_stats`` rows that do not depend on the time they are read, in the
    order of ``MONTHLY_COUNTS``."""
    closed = CaseStat.status == CASE_CLOSED
    return (
        func.count().label("cases"),
        _flag(CaseStat.routed_at.is_not(None)).label("routed"),
        _flag(CaseStat.accepted_at.is_not(None)).label("accepted"),
        _flag(CaseStat.resolved_at.is_not(None)).label("resolved"),
        _flag(closed).label("closed"),
        _flag(and_(closed, CaseStat.closure == wf.FIXED)).label("closed_fixed"),
        _flag(CaseStat.closed_on_time.is_(True)).label("closed_on_time"),
        _flag(CaseStat.reopened.is_(True)).label("reopened"),
        func.coalesce(func.sum(CaseStat.rework_count), 0).label("rework"),
        _flag(CaseStat.rework_count > 0).label("reworked_cases"),
        _flag(CaseStat.handled_at.is_not(None)).label("handled"),
        _flag(CaseStat.handled_on_time.is_(True)).label("handled_on_time"),
        _flag(CaseStat.extended.is_(True)).label("extended"),
        _flag(CaseStat.confirmed.is_(True)).label("confirmed"),
    )


def _counts_select(query: StatsQuery, now: datetime) -> Any:
    closed = CaseStat.status == CASE_CLOSED
    not_yet_due = or_(CaseStat.due_at.is_(None), CaseStat.due_at > now)
    key = _case_group_key(query.group_by).label("key")
    statement = select(
        key,
        *_clockless_counts(),
        _flag(and_(~closed, not_yet_due)).label("open_not_yet_due"),
        _flag(and_(CaseStat.handled_at.is_(None), not_yet_due)).label("unhandled_not_yet_due"),
        _flag(and_(CaseStat.handled_at.is_(None), ~not_yet_due)).label("unhandled_overdue"),
    ).where(*case_filters(query))
    if query.group_by == "group":
        statement = statement.outerjoin(Category, Category.code == CaseStat.category_code)
    return statement.group_by(key)


_COUNT_FIELDS = (
    "cases", "routed", "accepted", "resolved", "closed", "closed_fixed", "closed_on_time",
    "reopened", "rework", "reworked_cases", "open_not_yet_due", "handled", "handled_on_time",
    "unhandled_not_yet_due", "unhandled_overdue", "extended", "confirmed",
)  # fmt: skip


def _occupations(session: Session, query: StatsQuery) -> dict[Any, dict[str, int]]:
    key = _case_group_key(query.group_by).label("key")
    statement = (
        select(key, CaseStat.occupation, func.count())
        .where(*case_filters(query))
        .group_by(key, CaseStat.occupation)
    )
    if query.group_by == "group":
        statement = statement.outerjoin(Category, Category.code == CaseStat.category_code)
    found: dict[Any, dict[str, int]] = defaultdict(dict)
    for group, occupation, number in session.execute(statement):
        found[group][occupation] = number
    return found


_DURATIONS = {
    "to_accept": (CaseStat.accept_hours, CaseStat.accept_working_hours),
    "to_resolve": (CaseStat.resolve_hours, CaseStat.resolve_working_hours),
    "to_close": (CaseStat.close_hours, CaseStat.close_working_hours),
}


def _percentiles(
    session: Session, query: StatsQuery, column: Any
) -> dict[Any, tuple[int, float | None, float | None]]:
    """Per group: the count, and the nearest-rank median and 90th percentile of ``column``."""
    key = _case_group_key(query.group_by).label("key")
    ranked = select(
        key,
        column.label("value"),
        func.row_number().over(partition_by=key, order_by=column).label("rank"),
        func.count().over(partition_by=key).label("n"),
    ).where(*case_filters(query), column.is_not(None))
    if query.group_by == "group":
        ranked = ranked.outerjoin(Category, Category.code == CaseStat.category_code)
    inner = ranked.subquery()
    # ceil(n/2) and ceil(9n/10), in integer (floor) division so that every database agrees
    median_rank = (inner.c.n + 1) // 2
    p90_rank = (inner.c.n * 9 + 9) // 10
    statement = select(
        inner.c.key,
        inner.c.n,
        inner.c.value,
        inner.c.rank,
        median_rank.label("m"),
        p90_rank.label("p"),
    ).where(or_(inner.c.rank == median_rank, inner.c.rank == p90_rank))
    found: dict[Any, tuple[int, float | None, float | None]] = {}
    for row in session.execute(statement):
        n, median, p90 = found.get(row.key, (row.n, None, None))
        if row.rank == int(row.m):
            median = row.value
        if row.rank == int(row.p):
            p90 = row.value
        found[row.key] = (n, median, p90)
    return found


def _times(session: Session, query: StatsQuery) -> dict[Any, dict[str, dict[str, Any]]]:
    found: dict[Any, dict[str, dict[str, Any]]] = defaultdict(_empty_times)
    for step, (wall, working) in _DURATIONS.items():
        on_wall = _percentiles(session, query, wall)
        on_working = _percentiles(session, query, working)
        for key in set(on_wall) | set(on_working):
            n, median, p90 = on_wall.get(key, (0, None, None))
            _, median_working, p90_working = on_working.get(key, (0, None, None))
            found[key][step] = {
                "count": n,
                "median_hours": tg.on_grid(median),
                "p90_hours": tg.on_grid(p90),
                "median_working_hours": tg.on_grid(median_working),
                "p90_working_hours": tg.on_grid(p90_working),
            }
    return found


def _empty_times() -> dict[str, dict[str, Any]]:
    return {
        step: {
            "count": 0,
            "median_hours": None,
            "p90_hours": None,
            "median_working_hours": None,
            "p90_working_hours": None,
        }
        for step in st.STEPS
    }


def window_bounds(query: StatsQuery) -> tuple[datetime, datetime]:
    """The UTC instants the window's local days start and end at."""
    zone = ZoneInfo(query.time_zone)
    start = datetime.combine(query.date_from, time(), zone).astimezone(UTC)
    end = datetime.combine(query.date_to + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


def _received(
    session: Session, query: StatsQuery, *, unplaced: bool = False
) -> dict[Any, dict[str, int]]:
    """Reports received in the window (and of them, those that joined an existing case), by
    group. A report not yet made a case counts only where no office, category or group
    narrows the figures, and grouped by time, occupation or channel. ``unplaced``: only the
    reports not yet made a case."""
    start, end = window_bounds(query)
    received_day = _local_day(session, Report.received_at, query.time_zone, start)
    keys: dict[str, ColumnElement[Any]] = {
        "office": CaseStat.office_id,
        "category": CaseStat.category_code,
        "group": Category.group_zh,
        "day": received_day,
        "week": received_day,
        "month": received_day,
        "occupation": Reporter.occupation,
    }
    key = (keys[query.group_by] if query.group_by else literal("all")).label("key")
    merged = and_(CaseStat.case_id.is_not(None), Report.id != CaseStat.first_report_id)
    statement = (
        select(key, func.count().label("received"), _flag(merged).label("merged"))
        .select_from(Report)
        .outerjoin(CaseStat, CaseStat.case_id == Report.case_id)
        .where(Report.received_at >= start, Report.received_at < end)
    )
    if unplaced:
        statement = statement.where(Report.case_id.is_(None))
    if query.group_by == "occupation" or query.occupation is not None:
        # Every report has its reporter (a foreign key, never null): the join drops no
        # report, so it is made only when the occupation is asked for.
        statement = statement.join(Reporter, Reporter.id == Report.reporter_id)
    if query.group_by == "group" or query.group is not None:
        statement = statement.outerjoin(Category, Category.code == CaseStat.category_code)
    if query.office_ids is not None:
        statement = statement.where(CaseStat.office_id.in_(sorted(query.office_ids)))
    if query.category is not None:
        statement = statement.where(CaseStat.category_code == query.category)
    if query.group is not None:
        statement = statement.where(Category.group_zh == query.group)
    if query.occupation is not None:
        statement = statement.where(Reporter.occupation == query.occupation)
    if query.channel is not None:
        statement = statement.where(Report.channel == query.channel)
    found: dict[Any, dict[str, int]] = defaultdict(lambda: {"received": 0, "merged": 0})
    for row in session.execute(statement.group_by(key)):
        group = _as_date(row.key) if query.group_by in ("day", "week", "month") else row.key
        if query.group_by == "week" and group is not None:
            group = _week_start(group)
        elif query.group_by == "month" and group is not None:
            group = group.replace(day=1)
        found[group]["received"] += row.received
        found[group]["merged"] += row.merged
    return found


def _local_day(
    session: Session, column: Any, time_zone: str, moment: datetime
) -> ColumnElement[Any]:
    """The local date of a UTC timestamp column. PostgreSQL converts with the zone's rules;
    SQLite (the embedded database) shifts by the zone's offset at ``moment``, which is exact
    for zones without daylight saving time, such as China's."""
    if _on_postgresql(session):
        return cast(func.timezone(time_zone, column), Date)
    offset = ZoneInfo(time_zone).utcoffset(moment.replace(tzinfo=None)) or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    return func.date(column, f"{minutes:+d} minutes")


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def figures(
    session: Session, query: StatsQuery, now: datetime, *, whole: bool = True
) -> dict[str, Any]:
    """Every figure over the whole selection, and one row per group with ``group_by``;
    ``whole=False`` leaves out the figures of the whole selection (only ``rows``), for a
    caller that has them already or needs only the groups."""
    answer: dict[str, Any] = {}
    if whole or query.group_by is None:
        found = _figures_by_group(session, StatsQuery(**{**query.__dict__, "group_by": None}), now)
        answer = found.get("all") or _group_figures(None, st.Counts(), {}, _empty_times(), now)
        answer.pop("key", None)
    if query.group_by is not None:
        rows = _figures_by_group(session, query, now)
        answer["group_by"] = query.group_by
        answer["rows"] = _ordered_rows(session, query.group_by, rows)
    return answer


def _on_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _group_key(query: StatsQuery, key: Any) -> Any:
    return _as_date(key) if query.group_by in ("day", "week", "month") else key


# percentile_disc picks the row at ceil(fraction * n) (PostgreSQL computes it in float8): for
# 0.5 and 0.9 that is the nearest rank of routing.statistics, (n + 1) // 2 and (9n + 9) // 10.
_QUANTILES = literal_column("ARRAY[0.5, 0.9]::float8[]", ARRAY(Float))


def _in_one_pass(
    session: Session, query: StatsQuery, now: datetime
) -> tuple[dict[Any, Any], dict[Any, dict[str, int]], dict[Any, dict[str, dict[str, Any]]]]:
    """PostgreSQL: the counts, the counts by occupation and the six percentiles in one scan
    of the selection (each percentile sorts only its own column), where the embedded
    database takes one statement for each."""
    statement = _counts_select(query, now).add_columns(
        *(_flag(CaseStat.occupation == o).label(f"occupation_{o}") for o in OCCUPATIONS),
        *(
            column
            for step, (wall, working) in _DURATIONS.items()
            for column in (
                func.count(wall).label(f"{step}_count"),
                func.percentile_disc(_QUANTILES).within_group(wall).label(f"{step}_wall"),
                func.percentile_disc(_QUANTILES).within_group(working).label(f"{step}_working"),
            )
        ),
    )
    counted: dict[Any, Any] = {}
    occupations: dict[Any, dict[str, int]] = {}
    durations: dict[Any, dict[str, dict[str, Any]]] = {}
    for row in session.execute(statement):
        key = _group_key(query, row.key)
        counted[key] = row
        occupations[key] = {
            o: int(getattr(row, f"occupation_{o}"))
            for o in OCCUPATIONS
            if getattr(row, f"occupation_{o}")
        }
        durations[key] = _times_of(row)
    return counted, occupations, durations


# Groupings the monthly rows can answer: neither a day nor a week fits in a month's row, and
# the rows do not keep who filed a report or through which channel.
_MONTHLY_GROUPINGS = (None, "office", "category", "group", "month", "day", "week")
# Groupings finer than a month: read from the daily tables alone.
_BY_DAYS = ("day", "week")


def _figures_by_group(
    session: Session, query: StatsQuery, now: datetime
) -> dict[Any, dict[str, Any]]:
    """The figures from the rows added up ahead: the whole months of the window from a monthly
    table, the days around them from a daily one, the times from their counts per grid value.
    A category within an office's subtree has only monthly counts: its other days and its times
    come from ``case_stats``. Grouped by day or week, every day of the window comes from a
    daily table. Everything comes from ``case_stats`` (``figures_from_cases``) where the rows
    cannot answer: by occupation or channel, or by day or week within a category of an
    office's subtree."""
    source = _monthly_source(query)
    if (
        query.occupation is not None
        or query.channel is not None
        or query.group_by not in _MONTHLY_GROUPINGS
        or (query.group_by in _BY_DAYS and source not in _WITH_TIMES)
    ):
        return figures_from_cases(session, query, now)
    span = None if query.group_by in _BY_DAYS else _whole_months(query)
    around = _edges(query, span) if span else [query]
    if source in _WITH_TIMES:
        parts = [(source, *span)] if span else []
        parts += [(_DAILY[source], edge.date_from, edge.date_to) for edge in around]
        tallies = _rolled_tallies(session, query, parts, query, now)
        durations = _rolled_durations(session, query, parts)
    else:
        tallies = {}
        if span:
            months = replace(query, date_from=span[0], date_to=_month_end(span[1]))
            tallies = _rolled_tallies(session, query, [(source, *span)], months, now)
        for edge in around:
            for key, tally in _case_tallies(session, edge, now).items():
                target = tallies.setdefault(key, dict.fromkeys(_TALLIED, 0))
                for name, value in tally.items():
                    target[name] += value
        durations = _durations_on_grid(session, query)
    groups: dict[Any, dict[str, Any]] = {}
    for key, tally in tallies.items():
        counts = st.Counts(
            **{name: tally[name] for name in _COUNT_FIELDS},
            by_occupation={o: tally[f"first_{o}"] for o in OCCUPATIONS if tally[f"first_{o}"]},
        )
        groups[key] = _group_figures(key, counts, tally, durations.get(key) or _empty_times(), now)
    return groups


_TALLIED = (*_COUNT_FIELDS, *(f"first_{o}" for o in OCCUPATIONS), "received", "merged")


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _whole_months(query: StatsQuery) -> tuple[date, date] | None:
    """The first days of the first and the last month that lie wholly in the window."""
    first = query.date_from if query.date_from.day == 1 else _next_month(query.date_from)
    if (query.date_to + timedelta(days=1)).day == 1:
        last = query.date_to.replace(day=1)
    else:
        last = (query.date_to.replace(day=1) - timedelta(days=1)).replace(day=1)
    return (first, last) if first <= last else None


def _edges(query: StatsQuery, span: tuple[date, date]) -> list[StatsQuery]:
    """The parts of the window before and after its whole months."""
    first, last = span
    end = _next_month(last) - timedelta(days=1)
    edges = []
    if query.date_from < first:
        edges.append(replace(query, date_from=query.date_from, date_to=first - timedelta(days=1)))
    if end < query.date_to:
        edges.append(replace(query, date_from=end + timedelta(days=1), date_to=query.date_to))
    return edges


def _monthly_source(query: StatsQuery) -> type[Any]:
    """The monthly table with the fewest rows that answers ``query``: per month and category
    for the whole city, per month and office for offices, per month, office and category
    (counts only) for a category within an office's subtree."""
    if query.office_ids is None and query.group_by != "office":
        return StatsCategoryMonth
    if (
        query.category is None
        and query.group is None
        and query.group_by in (None, "office", "month", *_BY_DAYS)
    ):
        return StatsOfficeMonth
    return StatsMonth


def _month_end(month: date) -> date:
    return _next_month(month) - timedelta(days=1)


def _rolled_selection(
    model: type[Any], query: StatsQuery, first: date, last: date, *columns: Any
) -> Any:
    """``columns`` of the rows of ``model`` (a monthly or a daily table) from ``first`` to
    ``last`` that ``query`` selects, with the group key first (``key``)."""
    period = model.month if hasattr(model, "month") else model.day
    keys: dict[str | None, Any] = {
        None: literal("all"),
        "office": getattr(model, "office_key", None),
        "category": getattr(model, "category_key", None),
        "group": Category.group_zh,
        "month": period,
        "day": period,
        "week": period,
    }
    statement = select(keys[query.group_by].label("key"), *columns).where(
        period >= first, period <= last
    )
    if query.office_ids is not None:
        statement = statement.where(model.office_key.in_(sorted(query.office_ids)))
    if query.category is not None:
        statement = statement.where(model.category_key == query.category)
    if query.group is not None:
        statement = statement.where(
            model.category_key.in_(select(Category.code).where(Category.group_zh == query.group))
        )
    if query.group_by == "group":
        statement = statement.outerjoin(Category, Category.code == model.category_key)
    return statement


def _rolled_group(query: StatsQuery, key: Any) -> Any:
    group = _group_key(query, key)
    if query.group_by in ("office", "category"):
        return group or None  # office_key 0 and category_key '' stand for none
    if query.group_by == "month" and group is not None:
        return group.replace(day=1)  # a daily row counts in its month
    if query.group_by == "week" and group is not None:
        return _week_start(group)  # and in its week
    return group


def _rolled_tallies(
    session: Session,
    query: StatsQuery,
    parts: list[tuple[type[Any], date, date]],
    covered: StatsQuery,
    now: datetime,
) -> dict[Any, dict[str, int]]:
    """The counts of the rows ``parts`` (table, first and last month or day), which cover the
    days of ``covered``. The rows cannot know the time: of the cases whose due time is still
    ahead (a few days' worth, found by an index) those still open or unhandled are counted
    here and moved from overdue to not yet due."""
    sums: dict[Any, dict[str, int]] = {}
    for model, first, last in parts:
        statement = _rolled_selection(
            model,
            query,
            first,
            last,
            *(func.sum(getattr(model, name)).label(name) for name in MONTHLY_COUNTS),
        )
        statement = statement.group_by(literal_column("key")).having(
            or_(func.sum(model.cases) > 0, func.sum(model.received) > 0)
        )
        for row in session.execute(statement):
            target = sums.setdefault(
                _rolled_group(query, row.key), dict.fromkeys(MONTHLY_COUNTS, 0)
            )
            for name in MONTHLY_COUNTS:
                target[name] += int(getattr(row, name))
    tallies: dict[Any, dict[str, int]] = {}
    for group, tally in sums.items():
        tally["open_not_yet_due"] = tally.pop("open_without_due")
        tally["unhandled_not_yet_due"] = tally.pop("unhandled_without_due")
        tally["unhandled_overdue"] = tally.pop("unhandled_with_due")
        tallies[group] = tally
    due_key = _case_group_key(query.group_by).label("key")
    ahead = select(
        due_key,
        _flag(CaseStat.status != CASE_CLOSED).label("open"),
        _flag(CaseStat.handled_at.is_(None)).label("unhandled"),
    ).where(CaseStat.due_at > now, *case_filters(covered))
    if query.group_by == "group":
        ahead = ahead.outerjoin(Category, Category.code == CaseStat.category_code)
    for row in session.execute(ahead.group_by(due_key)):
        tally = tallies.setdefault(_group_key(query, row.key), dict.fromkeys(_TALLIED, 0))
        tally["open_not_yet_due"] += int(row.open)
        tally["unhandled_not_yet_due"] += int(row.unhandled)
        tally["unhandled_overdue"] -= int(row.unhandled)
    if query.office_ids is None and query.category is None and query.group is None:
        for group, found in _received(session, covered, unplaced=True).items():
            tally = tallies.setdefault(group, dict.fromkeys(_TALLIED, 0))
            tally["received"] += found["received"]
    return tallies


def _rolled_durations(
    session: Session, query: StatsQuery, parts: list[tuple[type[Any], date, date]]
) -> dict[Any, dict[str, Any]]:
    """The medians and 90th percentiles from the counts of times per grid value of the rows
    ``parts``: every row's stored counts joined and read at once."""
    groups: dict[Any, int] = {}
    stored: list[bytes] = []
    owners: list[int] = []
    joined = _on_postgresql(session)
    for model, first, last in parts:
        if joined:
            # one row per group: its rows' stored counts joined in the database
            times = func.string_agg(model.times, literal(b"", LargeBinary))
            statement = _rolled_selection(model, query, first, last, times).group_by(
                literal_column("key")
            )
        else:
            statement = _rolled_selection(model, query, first, last, model.times)
        for key, found in session.execute(statement).all():
            if found:
                stored.append(found)
                owners.append(groups.setdefault(_rolled_group(query, key), len(groups)))
    if not stored:
        return {}
    keys, counts = tg.unpack_arrays(b"".join(stored))
    sizes = np.fromiter((len(times) for times in stored), dtype=np.int64, count=len(stored))
    group_of = np.repeat(np.array(owners, dtype=np.int64), sizes // tg.PACKED_SIZE)
    return _medians(groups, [group_of * tg.STRIDE + keys], [counts])


def _durations_on_grid(session: Session, query: StatsQuery) -> dict[Any, dict[str, Any]]:
    """The medians and 90th percentiles of the window, counted per grid value from
    ``case_stats``."""
    groups: dict[Any, int] = {}
    flat: list[Any] = []
    weights: list[Any] = []
    for key, keys, counts in _grid_counts(session, query):
        group = groups.setdefault(_group_key(query, key), len(groups))
        flat.append(group * tg.STRIDE + keys)
        weights.append(counts)
    return _medians(groups, flat, weights)


def _medians(groups: dict[Any, int], flat: list[Any], weights: list[Any]) -> dict[Any, Any]:
    """Each group's times from its counts per packed grid key (flat: group * STRIDE + key)."""
    if not flat:
        return {}
    counted = (
        np.bincount(
            np.concatenate(flat),
            weights=np.concatenate(weights),
            minlength=len(groups) * tg.STRIDE,
        )
        .astype(np.int64)
        .reshape(len(groups), len(tg.MEASURES), tg.GRID_SIZE)
    )
    totals, medians, p90s = tg.percentiles(counted)
    found: dict[Any, dict[str, dict[str, Any]]] = {}
    for group, index in groups.items():
        times = _empty_times()
        for number, step in enumerate(st.STEPS):
            wall, working = 2 * number, 2 * number + 1
            times[step] = {
                "count": int(totals[index, wall]),
                "median_hours": medians[index][wall],
                "p90_hours": p90s[index][wall],
                "median_working_hours": medians[index][working],
                "p90_working_hours": p90s[index][working],
            }
        found[group] = times
    return found


def _grid_counts(session: Session, query: StatsQuery) -> Iterator[tuple[Any, Any, Any]]:
    """Per group of ``query`` (its raw key): the packed grid keys of its cases' times, each
    counted once (the selections read here are one office's or one category's: small)."""
    key = _case_group_key(query.group_by).label("key")
    statement = select(key, *(getattr(CaseStat, name) for name in tg.MEASURES)).where(
        *case_filters(query)
    )
    if query.group_by == "group":
        statement = statement.outerjoin(Category, Category.code == CaseStat.category_code)
    rows: dict[Any, list[Any]] = defaultdict(list)
    for row in session.execute(statement).all():
        rows[row[0]].append([np.nan if v is None else v for v in row[1:]])
    for group, found in rows.items():
        values = np.array(found, dtype=np.float64)
        keys = [
            tg.measure_keys(measure, values[~np.isnan(values[:, measure]), measure])
            for measure in range(len(tg.MEASURES))
        ]
        yield group, np.concatenate(keys), np.ones(sum(k.size for k in keys), dtype=np.int64)


def _case_tallies(session: Session, query: StatsQuery, now: datetime) -> dict[Any, dict[str, int]]:
    """The counts of ``query`` from ``case_stats`` and ``reports``, as ``_rolled_tallies``."""
    statement = _counts_select(query, now).add_columns(
        *(_flag(CaseStat.occupation == o).label(f"first_{o}") for o in OCCUPATIONS)
    )
    tallies: dict[Any, dict[str, int]] = {}
    for row in session.execute(statement):
        tallies[_group_key(query, row.key)] = {
            name: int(getattr(row, name)) for name in _TALLIED if name not in ("received", "merged")
        } | {"received": 0, "merged": 0}
    for group, found in _received(session, query).items():
        tally = tallies.setdefault(group, dict.fromkeys(_TALLIED, 0))
        tally["received"] += found["received"]
        tally["merged"] += found["merged"]
    return tallies


def _durations(session: Session, query: StatsQuery) -> dict[Any, dict[str, dict[str, Any]]]:
    """The median and 90th percentile of each time, over every case of the window."""
    if not _on_postgresql(session):
        return {_group_key(query, k): v for k, v in _times(session, query).items()}
    key = _case_group_key(query.group_by).label("key")
    statement = select(
        key,
        *(
            column
            for step, (wall, working) in _DURATIONS.items()
            for column in (
                func.count(wall).label(f"{step}_count"),
                func.percentile_disc(_QUANTILES).within_group(wall).label(f"{step}_wall"),
                func.percentile_disc(_QUANTILES).within_group(working).label(f"{step}_working"),
            )
        ),
    ).where(*case_filters(query))
    if query.group_by == "group":
        statement = statement.outerjoin(Category, Category.code == CaseStat.category_code)
    return {
        _group_key(query, row.key): _times_of(row)
        for row in session.execute(statement.group_by(key))
    }


def _times_of(row: Any) -> dict[str, dict[str, Any]]:
    times = _empty_times()
    for step in _DURATIONS:
        wall, working = getattr(row, f"{step}_wall"), getattr(row, f"{step}_working")
        times[step] = {
            "count": int(getattr(row, f"{step}_count")),
            "median_hours": tg.on_grid(wall[0]) if wall else None,
            "p90_hours": tg.on_grid(wall[1]) if wall else None,
            "median_working_hours": tg.on_grid(working[0]) if working else None,
            "p90_working_hours": tg.on_grid(working[1]) if working else None,
        }
    return times


def figures_from_cases(
    session: Session, query: StatsQuery, now: datetime
) -> dict[Any, dict[str, Any]]:
    """The figures by group from the ``case_stats`` rows alone: what the monthly rows must
    add up to, and the answer where they cannot answer."""
    if _on_postgresql(session):
        counted, occupations, durations = _in_one_pass(session, query, now)
    else:
        counted = {
            _group_key(query, row.key): row for row in session.execute(_counts_select(query, now))
        }
        occupations = {_group_key(query, k): v for k, v in _occupations(session, query).items()}
        durations = {_group_key(query, k): v for k, v in _times(session, query).items()}
    received = _received(session, query)
    groups: dict[Any, dict[str, Any]] = {}
    for key in set(counted) | set(received):
        row = counted.get(key)
        counts = st.Counts(
            **({name: int(getattr(row, name)) for name in _COUNT_FIELDS} if row else {}),
            by_occupation=occupations.get(key, {}),
        )
        groups[key] = _group_figures(
            key, counts, received.get(key, {}), durations.get(key) or _empty_times(), now
        )
    return groups


def _group_figures(
    key: Any,
    counts: st.Counts,
    received: dict[str, int],
    durations: dict[str, dict[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    return {
        "key": key,
        "received": received.get("received", 0),
        "merged": received.get("merged", 0),
        "cases": counts.cases,
        "routed": counts.routed,
        "accepted": counts.accepted,
        "resolved": counts.resolved,
        "closed": counts.closed,
        "closed_fixed": counts.closed_fixed,
        "closed_on_time": counts.closed_on_time,
        "reopened": counts.reopened,
        "rework": counts.rework,
        "due_to_close": counts.cases - counts.open_not_yet_due,
        "due_to_handle": counts.cases - counts.unhandled_not_yet_due,
        "handled_on_time": counts.handled_on_time,
        "overdue_unhandled": counts.unhandled_overdue,
        "extended": counts.extended,
        "confirmed": counts.confirmed,
        "rates": st.rates(counts),
        "times": durations,
        "first_reported_by": {o: counts.by_occupation.get(o, 0) for o in _OCCUPATIONS},
    }


_OCCUPATIONS = ("rider", "courier", "driver", "citizen")


def _ordered_rows(
    session: Session, group_by: str, groups: dict[Any, dict[str, Any]]
) -> list[dict[str, Any]]:
    rows = list(groups.values())
    if group_by == "office":
        offices = {
            row.id: row
            for row in session.execute(
                select(Office.id, Office.code, Office.name, Office.name_en).where(
                    Office.id.in_([k for k in groups if k is not None])
                )
            )
        }
        _rank(rows)
        for row in rows:
            office = offices.get(row["key"])
            row["key"] = office.code if office else None
            row["office_name"] = (
                {"zh": office.name, "en": office.name_en or office.name} if office else None
            )
    for row in rows:
        key = row.pop("key")
        row[group_by] = key.isoformat() if isinstance(key, date) else key
    return sorted(rows, key=lambda r: (r[group_by] is None, str(r[group_by])))


def _rank(rows: list[dict[str, Any]]) -> None:
    """League-table places by on-time closure rate, then closure rate; an office with fewer
    than ``MIN_CLOSED_TO_RANK`` closed cases is shown but not placed."""
    rankable = [r for r in rows if r["key"] is not None and st.rankable(r["closed"])]
    rankable.sort(
        key=lambda r: (
            -(r["rates"]["on_time_closure_rate"] or 0.0),
            -(r["rates"]["closure_rate"] or 0.0),
            r["key"],
        )
    )
    for place, row in enumerate(rankable, start=1):
        row["rank"] = place
        row["rank_note"] = None
    for row in rows:
        if "rank" not in row:
            row["rank"] = None
            row["rank_note"] = st.TOO_FEW_TO_RANK


def backlog(session: Session, query: StatsQuery, now: datetime) -> dict[str, Any]:
    """What is open now, whatever the window: cases by status, overdue now, the oldest."""
    conditions = case_filters(query, window=False)
    open_statuses = list(st.OPEN_STATUSES)
    by_status = {
        status: number
        for status, number in session.execute(
            select(CaseStat.status, func.count())
            .where(*conditions, CaseStat.status.in_(open_statuses))
            .group_by(CaseStat.status)
        )
    }
    overdue = session.scalar(
        select(func.count()).where(
            *conditions,
            CaseStat.status.in_(list(st.IN_OFFICE_HANDS)),
            CaseStat.due_at < now,
        )
    )
    oldest = session.execute(
        select(CaseStat.case_id, CaseStat.reported_at, CaseStat.status)
        .where(*conditions, CaseStat.status.in_(open_statuses))
        .order_by(CaseStat.reported_at, CaseStat.case_id)
        .limit(1)
    ).first()
    return {
        "by_status": {status: by_status.get(status, 0) for status in open_statuses},
        "open": sum(by_status.values()),
        "overdue_now": overdue or 0,
        "oldest_open": (
            {
                "case_id": oldest.case_id,
                "reported_at": oldest.reported_at,
                "status": oldest.status,
                "age_hours": round((now - oldest.reported_at).total_seconds() / 3600, 1),
            }
            if oldest
            else None
        ),
    }


def case_stat_rows(session: Session, case_ids: Iterable[int]) -> list[CaseStat]:
    return list(session.scalars(select(CaseStat).where(CaseStat.case_id.in_(list(case_ids)))))


# ------------------------------------------------------------------------------- people

LEADERBOARD_SIZE = 10
# A report counts as valid unless its case was closed as one of these.
INVALID_CLOSURES = (wf.INVALID, wf.DUPLICATE)


def leaderboard(
    session: Session, query: StatsQuery, size: int = LEADERBOARD_SIZE
) -> list[dict[str, Any]]:
    """The reporters who earned the most points in the window (the net of their ledger entries
    of its days), then filed the most valid reports in it: by display name and occupation,
    never by phone or key. Under an office filter, only points and reports of its cases.

    Points decide first, so only the reporters with at least the ``size``-th best points can
    place: their valid reports are counted, not every reporter's. Where fewer than ``size``
    reporters earned anything, every reporter's tallies are added up."""
    start, end = window_bounds(query)
    offices = None if query.office_ids is None else sorted(query.office_ids)
    tallied = _points_by_reporter(query).subquery()
    reach = size * 5
    best = session.execute(
        select(tallied.c.reporter_id, tallied.c.points)
        .order_by(tallied.c.points.desc(), tallied.c.reporter_id)
        .limit(reach)
    ).all()
    if len(best) < size or best[size - 1].points <= 0:
        return _every_reporters_leaderboard(session, query, size)
    cutoff = best[size - 1].points
    if len(best) == reach and best[-1].points >= cutoff:
        # ties at the cutoff reach further than the first rows read: all of them
        best = session.execute(
            select(tallied.c.reporter_id, tallied.c.points).where(tallied.c.points >= cutoff)
        ).all()
    points = {row.reporter_id: int(row.points) for row in best if row.points >= cutoff}
    invalid = and_(CaseStat.status == CASE_CLOSED, CaseStat.closure.in_(INVALID_CLOSURES))
    valid = (
        select(Report.reporter_id, func.count().label("valid_reports"))
        .join(CaseStat, CaseStat.case_id == Report.case_id)
        .where(
            Report.reporter_id.in_(sorted(points)),
            Report.received_at >= start,
            Report.received_at < end,
            ~invalid,
        )
        .group_by(Report.reporter_id)
    )
    if offices is not None:
        valid = valid.where(CaseStat.office_id.in_(offices))
    reports = {row.reporter_id: int(row.valid_reports) for row in session.execute(valid)}
    placed = sorted(points, key=lambda r: (-points[r], -reports.get(r, 0), r))[:size]
    names = {
        row.id: row
        for row in session.execute(
            select(Reporter.id, Reporter.display_name, Reporter.occupation).where(
                Reporter.id.in_(placed)
            )
        )
    }
    return [
        {
            "place": place,
            "display_name": names[reporter].display_name,
            "occupation": names[reporter].occupation,
            "points": points[reporter],
            "valid_reports": reports.get(reporter, 0),
        }
        for place, reporter in enumerate(placed, start=1)
    ]


def _points_by_reporter(query: StatsQuery) -> Any:
    """Each reporter's points of the window's days (``reporter_id``, ``points``): for the whole
    city, the whole months from the reporters' rows of the year and the days around them from
    the ledger; under an office filter, the ledger entries of its cases."""
    span = _whole_months(query) if query.office_ids is None else None
    if span is None:
        earned = select(
            PointsEntry.reporter_id, func.sum(PointsEntry.points).label("points")
        ).where(PointsEntry.day >= query.date_from, PointsEntry.day <= query.date_to)
        if query.office_ids is not None:
            earned = earned.join(CaseStat, CaseStat.case_id == PointsEntry.case_id).where(
                CaseStat.office_id.in_(sorted(query.office_ids))
            )
        return earned.group_by(PointsEntry.reporter_id)
    first, last = span
    parts: list[Any] = []
    for year in range(first.year, last.year + 1):
        months = [m for m in range(1, 13) if first <= date(year, m, 1) <= last]
        parts.append(
            select(
                ReporterPointsYear.reporter_id.label("reporter_id"),
                sum(
                    (getattr(ReporterPointsYear, _MONTH_POINTS[m - 1]) for m in months),
                    start=literal(0),
                ).label("points"),
            ).where(ReporterPointsYear.year == year)
        )
    for edge in _edges(query, span):
        parts.append(
            select(PointsEntry.reporter_id, PointsEntry.points).where(
                PointsEntry.day >= edge.date_from, PointsEntry.day <= edge.date_to
            )
        )
    every = union_all(*parts).subquery()
    return select(every.c.reporter_id, func.sum(every.c.points).label("points")).group_by(
        every.c.reporter_id
    )


def _every_reporters_leaderboard(
    session: Session, query: StatsQuery, size: int
) -> list[dict[str, Any]]:
    """The leaderboard from every reporter's points and valid reports in the window."""
    start, end = window_bounds(query)
    earned = (
        select(PointsEntry.reporter_id, func.sum(PointsEntry.points).label("points"))
        .outerjoin(CaseStat, CaseStat.case_id == PointsEntry.case_id)
        .where(PointsEntry.day >= query.date_from, PointsEntry.day <= query.date_to)
        .group_by(PointsEntry.reporter_id)
    )
    invalid = and_(CaseStat.status == CASE_CLOSED, CaseStat.closure.in_(INVALID_CLOSURES))
    valid = (
        select(Report.reporter_id, func.count().label("valid_reports"))
        .join(CaseStat, CaseStat.case_id == Report.case_id)
        .where(Report.received_at >= start, Report.received_at < end, ~invalid)
        .group_by(Report.reporter_id)
    )
    if query.office_ids is not None:
        offices = sorted(query.office_ids)
        earned = earned.where(CaseStat.office_id.in_(offices))
        valid = valid.where(CaseStat.office_id.in_(offices))
    earned_q, valid_q = earned.subquery(), valid.subquery()
    # The top of the two tallies first, then the names of those few reporters only: joining
    # every reporter to the tallies costs more than the tallies themselves.
    reporter_id = func.coalesce(earned_q.c.reporter_id, valid_q.c.reporter_id)
    points = func.coalesce(earned_q.c.points, 0)
    reports = func.coalesce(valid_q.c.valid_reports, 0)
    top = (
        select(reporter_id.label("id"), points.label("p"), reports.label("v"))
        .select_from(earned_q)
        .join(valid_q, earned_q.c.reporter_id == valid_q.c.reporter_id, full=True)
        .order_by(points.desc(), reports.desc(), reporter_id)
        .limit(size)
        .subquery()
    )
    statement = (
        select(Reporter.display_name, Reporter.occupation, top.c.p, top.c.v)
        .join(top, top.c.id == Reporter.id)
        .order_by(top.c.p.desc(), top.c.v.desc(), top.c.id)
    )
    return [
        {
            "place": place,
            "display_name": row.display_name,
            "occupation": row.occupation,
            "points": int(row.p),
            "valid_reports": int(row.v),
        }
        for place, row in enumerate(session.execute(statement), start=1)
    ]


# ----------------------------------------------------------------------- the public page


def communities(session: Session, office_ids: frozenset[int] | None = None) -> list[Office]:
    """The community offices (under ``office_ids`` when given), by code."""
    statement = select(Office).where(Office.kind == "community", Office.active.is_(True))
    if office_ids is not None:
        statement = statement.where(Office.id.in_(sorted(office_ids)))
    return list(session.scalars(statement.order_by(Office.code)))


def public_figures(session: Session, query: StatsQuery, now: datetime) -> list[dict[str, Any]]:
    """Per community, what anyone may see: reports and cases, closed, fixed, on time, the
    rates and the median times. No names, no reporters, no texts."""
    by_office = {
        row["office"]: row
        for row in figures(
            session, StatsQuery(**{**query.__dict__, "group_by": "office"}), now, whole=False
        )["rows"]
    }
    answer = []
    for office in communities(session, query.office_ids):
        row = by_office.get(office.code)
        answer.append(
            {
                "office": office.code,
                "name": office.name,
                "name_en": office.name_en or office.name,
                "received": row["received"] if row else 0,
                "cases": row["cases"] if row else 0,
                "closed": row["closed"] if row else 0,
                "closed_fixed": row["closed_fixed"] if row else 0,
                "closed_on_time": row["closed_on_time"] if row else 0,
                "due_to_close": row["due_to_close"] if row else 0,
                "rates": {
                    name: (row["rates"][name] if row else None)
                    for name in ("closure_rate", "on_time_closure_rate", "fixed_share_of_closed")
                },
                "median_hours_to_close": row["times"]["to_close"]["median_hours"] if row else None,
                "ranked": bool(row and st.rankable(row["closed"])),
            }
        )
    return answer


def trend_period(query: StatsQuery) -> str:
    """Days for a window of up to a month, weeks up to half a year, months beyond."""
    days = (query.date_to - query.date_from).days + 1
    return "day" if days <= 31 else "week" if days <= 183 else "month"


def public_trend(session: Session, query: StatsQuery, now: datetime) -> list[dict[str, Any]]:
    period = trend_period(query)
    grouped = StatsQuery(**{**query.__dict__, "group_by": period})
    rows = figures(session, grouped, now, whole=False)["rows"]
    return [
        {
            "period": row[period],
            "received": row["received"],
            "cases": row["cases"],
            "closed": row["closed"],
            "on_time_closure_rate": row["rates"]["on_time_closure_rate"],
        }
        for row in rows
        if row[period] is not None
    ]


def public_categories(session: Session, query: StatsQuery, now: datetime) -> list[dict[str, Any]]:
    grouped = StatsQuery(**{**query.__dict__, "group_by": "category"})
    rows = figures(session, grouped, now, whole=False)["rows"]
    names = {c.code: c for c in session.scalars(select(Category))}
    answer = []
    for row in rows:
        if not row["cases"]:
            continue
        category = names.get(row["category"])
        answer.append(
            {
                "category": row["category"],
                "name_zh": category.name_zh if category else None,
                "name_en": category.name_en if category else None,
                "cases": row["cases"],
                "closed": row["closed"],
                "closed_fixed": row["closed_fixed"],
            }
        )
    return sorted(answer, key=lambda r: (-r["cases"], r["category"] or ""))
