"""The figures the database adds up from ``case_stats`` rows equal the figures computed in
Python from the raw case events, on random histories; the rows follow every event as it is
written; ``rebuild`` and ``fill_missing`` make the same rows again from the events."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.entities import (
    MONTHLY_COUNTS,
    POINTS_AWARD,
    Case,
    CaseEvent,
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
from models.session import unit_of_work
from routing import statistics as st
from routing import time_grid
from routing import workflow as wf
from services import statistics
from services.calendars import calendar_context

ZONE = "Asia/Shanghai"
OFFICES = ("PD-CJ-01", "PD-CJ-02", "PD-CJ-03", "PD-SZ", "PD-HG-01")
CATEGORIES = ("bin_overflow", "exposed_garbage", "street_light", "manhole_cover", "waterlogging")
OCCUPATIONS = ("rider", "courier", "driver", "citizen")
CHANNELS = ("api", "open311", "web")
CLOSINGS = (wf.FIXED, wf.FIXED, wf.FIXED, wf.INVALID, wf.DUPLICATE, wf.NO_FURTHER_ACTION)
# Office actions a supervisor may take, reporter actions a reporter may take.
WALK = (
    (wf.ACCEPT, wf.SUPERVISOR),
    (wf.START, wf.SUPERVISOR),
    (wf.ASK, wf.SUPERVISOR),
    (wf.ANSWER, wf.REPORTER),
    (wf.RESOLVE, wf.SUPERVISOR),
    (wf.RESOLVE, wf.SUPERVISOR),
    (wf.EXTEND, wf.SUPERVISOR),
    (wf.APPROVE_EXTENSION, wf.SUPERVISOR),
    (wf.DENY_EXTENSION, wf.SUPERVISOR),
    (wf.CLOSE, wf.SUPERVISOR),
    (wf.CLOSE, wf.SUPERVISOR),
    (wf.REWORK, wf.SUPERVISOR),
    (wf.CONFIRM, wf.REPORTER),
    (wf.REOPEN, wf.REPORTER),
)


@dataclass
class History:
    status: str
    closure: str | None
    events: list[tuple[datetime, str, str | None, str]]


def random_history(rng: random.Random, start: datetime, now: datetime) -> History:
    """A walk through the case state machine from a first report at ``start``."""
    at = start
    events: list[tuple[datetime, str, str | None, str]] = [
        (at, "received", None, "received"),
        (at, "classified", "received", "received"),
    ]
    if rng.random() < 0.1:
        events.append((at, "triaged", "received", wf.TRIAGE))
        return History(wf.TRIAGE, None, events)
    events.append((at, "routed", "received", wf.ROUTED))
    status, closure = wf.ROUTED, None
    resumes_to, pending, closed_at = wf.IN_PROGRESS, False, None
    for _ in range(rng.randint(0, 12)):
        at += timedelta(minutes=rng.randint(5, 60 * 30))
        if at >= now:
            break
        action, role = rng.choice(WALK)
        chosen = rng.choice(CLOSINGS) if action == wf.CLOSE else None
        facts = wf.CaseFacts(
            resumes_to=resumes_to,
            extension_pending=pending,
            closure=closure,
            closed_at=closed_at,
            now=at,
        )
        outcome = wf.decide(status, action, role, closure=chosen, facts=facts)
        if not isinstance(outcome, wf.Transition):
            continue
        if outcome.to_status == wf.WAITING:
            resumes_to = status
        pending = (pending or action == wf.EXTEND) and action not in (
            wf.APPROVE_EXTENSION,
            wf.DENY_EXTENSION,
        )
        if action == wf.CLOSE:
            closure, closed_at = chosen, at
        elif outcome.to_status != wf.CLOSED:
            closure, closed_at = None, None
        events.append((at, outcome.action, status, outcome.to_status))
        status = outcome.to_status
    return History(status, closure, events)


@pytest.fixture
def histories(sessions: sessionmaker[Session]) -> Iterator[list[int]]:
    """About 150 cases with random histories over the last 60 days, written through the ORM
    (so the flush keeps their statistics rows), with 1 to 3 reports each."""
    rng = random.Random(20261207)
    now = utcnow()
    case_ids: list[int] = []
    with unit_of_work(sessions) as session:
        offices = {
            code: session.scalar(select(Office.id).where(Office.code == code)) for code in OFFICES
        }
        reporters = [
            Reporter(display_name=f"观察员{n}", occupation=OCCUPATIONS[n % 4]) for n in range(12)
        ]
        session.add_all(reporters)
        session.flush()
        for _ in range(150):
            start = now - timedelta(days=rng.uniform(0, 60))
            history = random_history(rng, start, now)
            office_id = None if history.status == wf.TRIAGE else offices[rng.choice(OFFICES)]
            due = (
                None
                if rng.random() < 0.2
                else start + timedelta(hours=rng.choice((4, 24, 72, 240)))
            )
            case = Case(
                status=history.status,
                closure=history.closure,
                category_code=rng.choice(CATEGORIES),
                office_id=office_id,
                due_at=None if history.status == wf.TRIAGE else due,
                opened_at=start,
                first_received_at=start,
            )
            for number in range(rng.choice((1, 1, 1, 2, 3))):
                case.reports.append(
                    Report(
                        reporter_id=rng.choice(reporters).id,
                        channel=rng.choice(CHANNELS),
                        text="随机历史",
                        fingerprint="x",
                        state="processed",
                        received_at=start + timedelta(minutes=number * 7),
                    )
                )
            for at, action, from_status, to_status in history.events:
                case.events.append(
                    CaseEvent(
                        at=at,
                        actor="system",
                        action=action,
                        from_status=from_status,
                        to_status=to_status,
                        office_id=office_id,
                    )
                )
            session.add(case)
            session.flush()
            case_ids.append(case.id)
        # a report received but not yet made a case
        session.add(Report(reporter_id=reporters[0].id, text="刚收到", fingerprint="y"))
    yield case_ids


def reference(
    session: Session, case_ids: list[int], query: statistics.StatsQuery, now: datetime
) -> dict[Any, dict[str, Any]]:
    """The figures by group, computed in Python from the raw events of ``case_ids``."""
    calendars = calendar_context(session)
    groups: dict[Any, list[tuple[st.CaseStats, str]]] = defaultdict(list)
    by_code = {c.code: c.group_zh for c in session.scalars(select(Category))}
    for case in session.scalars(select(Case).where(Case.id.in_(case_ids))):
        events = [st.Event(e.at, e.action, e.from_status, e.to_status) for e in case.events]
        stats = st.case_stats(
            events,
            status=case.status,
            closure=case.closure,
            due_at=case.due_at,
            calendar=calendars.for_office(case.office_id),
        )
        first = case.reports[0]
        occupation, channel = first.reporter.occupation, first.channel
        if not query.date_from <= stats.reported_day <= query.date_to:
            continue
        if query.office_ids is not None and case.office_id not in query.office_ids:
            continue
        if query.category is not None and case.category_code != query.category:
            continue
        if query.group is not None and by_code.get(case.category_code or "") != query.group:
            continue
        if query.occupation is not None and occupation != query.occupation:
            continue
        if query.channel is not None and channel != query.channel:
            continue
        key = {
            None: "all",
            "office": case.office_id,
            "category": case.category_code,
            "group": by_code.get(case.category_code or ""),
            "day": stats.reported_day,
            "week": stats.reported_day - timedelta(days=stats.reported_day.weekday()),
            "month": stats.reported_day.replace(day=1),
            "occupation": occupation,
        }[query.group_by]
        groups[key].append((stats, occupation))
    answer = {}
    for key, rows in groups.items():
        counts = st.count(rows, now)
        answer[key] = {
            "cases": counts.cases,
            "closed": counts.closed,
            "closed_fixed": counts.closed_fixed,
            "closed_on_time": counts.closed_on_time,
            "accepted": counts.accepted,
            "resolved": counts.resolved,
            "routed": counts.routed,
            "reopened": counts.reopened,
            "rework": counts.rework,
            "due_to_close": counts.cases - counts.open_not_yet_due,
            "due_to_handle": counts.cases - counts.unhandled_not_yet_due,
            "overdue_unhandled": counts.unhandled_overdue,
            "rates": st.rates(counts),
            "times": st.times(stats for stats, _ in rows),
        }
    return answer


def local_today(now: datetime) -> date:
    return now.astimezone(ZoneInfo(ZONE)).date()


def compare(db: Session, case_ids: list[int], query: statistics.StatsQuery, now: datetime) -> None:
    expected = reference(db, case_ids, query, now)
    answer = statistics.figures(db, query, now)
    if query.group_by is None:
        got = {"all": answer}
    else:
        offices = {o.code: o.id for o in db.scalars(select(Office))}
        got = {}
        for row in answer["rows"]:
            key = row[query.group_by]
            if query.group_by == "office":
                key = offices.get(key)
            elif query.group_by in ("day", "week", "month"):
                key = date.fromisoformat(key)
            if row["cases"]:
                got[key] = row
    assert set(got) == set(expected), query
    for key, figures in expected.items():
        for name, value in figures.items():
            assert got[key][name] == value, (query.group_by, key, name)


@pytest.mark.parametrize("group_by", [None, *statistics.GROUP_BY])
def test_rows_add_up_to_what_the_events_say(
    db: Session, histories: list[int], group_by: str | None
) -> None:
    now = utcnow()
    today = local_today(now)
    whole = statistics.StatsQuery(today - timedelta(days=61), today, ZONE, group_by=group_by)
    compare(db, histories, whole, now)
    # a narrower window, a subtree, and each filter
    street = statistics.subtree(db, db.scalar(select(Office.id).where(Office.code == "PD-CJ")))
    for query in (
        statistics.StatsQuery(
            today - timedelta(days=20), today - timedelta(days=5), ZONE, group_by=group_by
        ),
        statistics.StatsQuery(
            today - timedelta(days=61), today, ZONE, office_ids=street, group_by=group_by
        ),
        statistics.StatsQuery(
            today - timedelta(days=61), today, ZONE, category="street_light", group_by=group_by
        ),
        statistics.StatsQuery(
            today - timedelta(days=61), today, ZONE, group="市容环境", group_by=group_by
        ),
        statistics.StatsQuery(
            today - timedelta(days=61), today, ZONE, occupation="courier", group_by=group_by
        ),
        statistics.StatsQuery(
            today - timedelta(days=61), today, ZONE, channel="open311", group_by=group_by
        ),
    ):
        compare(db, histories, query, now)
    # as of another moment: what is due changes, the rest does not
    compare(db, histories, whole, now + timedelta(days=3))


def test_received_counts_every_report_once(db: Session, histories: list[int]) -> None:
    now = utcnow()
    today = local_today(now)
    answer = statistics.figures(
        db, statistics.StatsQuery(today - timedelta(days=61), today, ZONE), now
    )
    reports = db.scalars(select(Report).where(Report.case_id.in_(histories))).all()
    first = {case_id: min(r.id for r in reports if r.case_id == case_id) for case_id in histories}
    assert answer["received"] == len(reports) + 1  # and the one not yet a case
    assert answer["merged"] == sum(1 for r in reports if r.id != first[r.case_id])
    by_day = statistics.figures(
        db, statistics.StatsQuery(today - timedelta(days=61), today, ZONE, group_by="day"), now
    )
    assert sum(row["received"] for row in by_day["rows"]) == answer["received"]
    by_office = statistics.figures(
        db, statistics.StatsQuery(today - timedelta(days=61), today, ZONE, group_by="office"), now
    )
    # the report not yet a case has no office: it counts in the whole, under no office
    unplaced = next(row for row in by_office["rows"] if row["office"] is None)
    assert unplaced["received"] >= 1


def test_rebuild_and_fill_missing_make_the_same_rows(db: Session, histories: list[int]) -> None:
    columns = [c.key for c in CaseStat.__table__.columns]

    def rows() -> dict[int, tuple[Any, ...]]:
        found = db.scalars(select(CaseStat).where(CaseStat.case_id.in_(histories))).all()
        return {r.case_id: tuple(getattr(r, c) for c in columns) for r in found}

    kept = rows()
    assert set(kept) == set(histories)
    db.execute(delete(CaseStat).where(CaseStat.case_id.in_(histories[:40])))
    db.expire_all()
    assert len(rows()) == len(histories) - 40
    assert statistics.fill_missing(db) >= 40
    db.expire_all()
    assert rows() == kept
    assert statistics.rebuild(db) >= len(histories)
    db.expire_all()
    assert rows() == kept


def test_a_row_follows_each_event_as_it_is_written(db: Session, histories: list[int]) -> None:
    case = db.scalars(select(Case).where(Case.id.in_(histories), Case.status == wf.ROUTED)).first()
    assert case is not None
    at = utcnow()
    case.events.append(
        CaseEvent(
            at=at, actor="system", action=wf.ACCEPT, from_status=wf.ROUTED, to_status=wf.ACCEPTED
        )
    )
    case.status = wf.ACCEPTED
    db.flush()
    row = db.get(CaseStat, case.id)
    db.refresh(row)
    assert row is not None and row.status == wf.ACCEPTED and row.accepted_at == at


MONTH_COLUMNS = [c.key for c in StatsMonth.__table__.columns]
MONTHLY = (StatsMonth, StatsOfficeMonth, StatsCategoryMonth, StatsOfficeDay, StatsCategoryDay)


def month_rows(db: Session) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """The rows of the three monthly tables that count something, by table and key, with
    their counts of times per grid value unpacked."""
    db.expire_all()
    found = {}
    for model in MONTHLY:
        names = [c.key for c in model.__table__.columns]
        keys = [c.key for c in model.__table__.primary_key.columns]
        for row in db.scalars(select(model)):
            counts = tuple(getattr(row, n) for n in MONTHLY_COUNTS)
            times = time_grid.unpack(row.times) if "times" in names else {}
            if any(counts) or times:
                found[(model.__tablename__, *(getattr(row, k) for k in keys))] = (counts, times)
    return found


def test_monthly_rows_kept_in_step_equal_a_rebuild(db: Session, histories: list[int]) -> None:
    kept = month_rows(db)
    received = MONTHLY_COUNTS.index("received")
    reports = db.scalars(select(Report.id).where(Report.case_id.in_(histories))).all()
    for model in MONTHLY:
        mine = [v for k, v in kept.items() if k[0] == model.__tablename__]
        assert sum(counts[0] for counts, _ in mine) == len(histories)
        assert sum(counts[received] for counts, _ in mine) == len(reports)
    timed = sum(
        1 for case in db.scalars(select(CaseStat).where(CaseStat.case_id.in_(histories)))
        if case.close_hours is not None
    )  # fmt: skip
    closing = time_grid.MEASURES.index("close_hours") * time_grid.GRID_SIZE
    assert timed and timed == sum(
        n
        for key, (_, times) in kept.items()
        if key[0] == "stats_office_months"
        for k, n in times.items()
        if closing <= k < closing + time_grid.GRID_SIZE
    )
    statistics.rebuild_months(db)
    assert month_rows(db) == kept
    # a case moved to another office and category, a me-too report split out of its case and
    # another report joining one: each change moves the monthly rows by exactly its difference
    moved = db.scalars(select(Case).where(Case.id.in_(histories), Case.office_id.is_not(None)))
    case = moved.first()
    assert case is not None
    other_office = db.scalar(
        select(Office.id).where(Office.code == "PD-SZ", Office.id != case.office_id)
    ) or db.scalar(select(Office.id).where(Office.code == "PD-CJ-01"))
    case.office_id, case.category_code = other_office, "waterlogging"
    case.updated_at = utcnow()
    db.flush()
    shared = next(
        c for c in db.scalars(select(Case).where(Case.id.in_(histories))) if len(c.reports) > 1
    )
    leaving = shared.reports[-1]
    leaving.case_id = None
    shared.events.append(
        CaseEvent(
            at=utcnow(), actor="system", action="split", from_status=shared.status,
            to_status=shared.status,
        )
    )  # fmt: skip
    db.flush()
    joining = db.scalars(select(Case).where(Case.id.in_(histories), Case.id != shared.id)).first()
    assert joining is not None
    joining.reports.append(
        Report(
            reporter_id=leaving.reporter_id, text="我也看到了", fingerprint="z", state="processed"
        )
    )
    joining.events.append(
        CaseEvent(
            at=utcnow(), actor="system", action="merged", from_status=joining.status,
            to_status=joining.status,
        )
    )  # fmt: skip
    db.flush()
    changed = month_rows(db)
    assert changed != kept
    statistics.rebuild_months(db)
    assert month_rows(db) == changed


def first_of_month(day: date, months_back: int) -> date:
    for _ in range(months_back):
        day = day.replace(day=1) - timedelta(days=1)
    return day.replace(day=1)


@pytest.mark.parametrize("group_by", [None, "office", "category", "group", "month", "day", "week"])
def test_whole_months_from_their_rows_equal_the_cases(
    db: Session, histories: list[int], group_by: str | None
) -> None:
    now = utcnow()
    today = local_today(now)
    street = statistics.subtree(db, db.scalar(select(Office.id).where(Office.code == "PD-CJ")))
    windows = (
        # two whole months and no more, whole months with days on both sides, whole months up
        # to today, and a window with no whole month (read from the cases alone)
        (first_of_month(today, 2), first_of_month(today, 0) - timedelta(days=1)),
        (first_of_month(today, 2) - timedelta(days=3), today),
        (first_of_month(today, 1), today),
        (today - timedelta(days=9), today),
    )
    for date_from, date_to in windows:
        for narrowed in (
            {},
            {"office_ids": street},
            {"category": "street_light"},
            {"group": "市容环境"},
        ):
            query = statistics.StatsQuery(date_from, date_to, ZONE, group_by=group_by, **narrowed)
            for moment in (now, now + timedelta(days=3)):
                from_months = statistics.figures(db, query, moment)
                rows = statistics.figures_from_cases(db, query, moment)
                if group_by is None:
                    expected = rows.get("all")
                    assert expected is not None
                    expected.pop("key")
                    assert from_months == expected, (date_from, date_to, narrowed)
                else:
                    assert len(from_months["rows"]) == len(rows), (date_from, narrowed)
                    expected_rows = statistics._ordered_rows(db, group_by, rows)
                    assert from_months["rows"] == expected_rows, (date_from, date_to, narrowed)
    compare(db, histories, statistics.StatsQuery(windows[0][0], windows[0][1], ZONE), now)


def test_the_leaderboard_counts_valid_reports_only_of_those_who_can_place(
    db: Session, histories: list[int]
) -> None:
    """Points decide first: the board built from the few reporters at or above the tenth best
    points equals the board built from every reporter's tallies, ties at the cut included."""
    rng = random.Random(5)
    now = utcnow()
    today = local_today(now)
    cases = db.scalars(select(Case).where(Case.id.in_(histories))).all()
    reporters = sorted({report.reporter_id for case in cases for report in case.reports})
    assert len(reporters) >= 12
    # 12 reporters: ten with points (three of them tied at the cut), one with fewer, one below
    # zero
    amounts = [40, 30, 25, 20, 20, 15, 12, 10, 10, 10, 5, -5]
    for reporter_id, amount in zip(reporters, amounts, strict=False):
        case = rng.choice(
            [c for c in cases if any(r.reporter_id == reporter_id for r in c.reports)]
        )
        for points in (amount, 5, -5) if amount > 0 else (amount,):
            back = rng.randint(0, 60)  # across whole months and the days around them
            db.add(
                PointsEntry(
                    reporter_id=reporter_id, case_id=case.id, kind=POINTS_AWARD, points=points,
                    reason="first_report", day=today - timedelta(days=back),
                    at=now - timedelta(days=back), actor="test",
                )
            )  # fmt: skip
    db.flush()
    for query in (
        statistics.StatsQuery(today - timedelta(days=61), today, ZONE),
        statistics.StatsQuery(today - timedelta(days=20), today, ZONE),
        statistics.StatsQuery(
            today - timedelta(days=61),
            today,
            ZONE,
            office_ids=statistics.subtree(
                db, db.scalar(select(Office.id).where(Office.code == "PD-CJ"))
            ),
        ),
    ):
        for size in (3, 9, 10, 12):
            board = statistics.leaderboard(db, query, size)
            assert board == statistics._every_reporters_leaderboard(db, query, size), (
                query,
                size,
            )

    # the reporters' rows of the year, kept in step with the ledger, equal a rebuild
    def years() -> list[tuple[Any, ...]]:
        db.expire_all()
        return [
            (row.reporter_id, row.year, *(getattr(row, f"points_{m:02d}") for m in range(1, 13)))
            for row in db.scalars(select(ReporterPointsYear).order_by("reporter_id", "year"))
        ]

    kept = years()
    assert sum(sum(row[2:]) for row in kept) == sum(db.scalars(select(PointsEntry.points)).all())
    statistics.rebuild_reporter_points(db)
    assert years() == kept
    whole = statistics.leaderboard(
        db, statistics.StatsQuery(today - timedelta(days=61), today, ZONE), 10
    )
    assert [row["points"] for row in whole][:3] == [40, 30, 25]
    assert [row["points"] for row in whole][7:] == [10, 10, 10]
