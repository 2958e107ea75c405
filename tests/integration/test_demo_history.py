"""The demo history (services.demo_history): a few hundred cases played through the real
services with past moments must leave a database as consistent as a live one: every statistics
row what its events say, the points ledger balanced, reports received counted once."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cityrelay.cli import main
from models.entities import (
    OUTBOX_SKIPPED,
    POINTS_AWARD,
    POINTS_REVERSAL,
    Case,
    CaseEvent,
    CaseStat,
    OutboxMessage,
    PointsEntry,
    Report,
    Reporter,
)
from models.queries import CLOCK_RUNNING_STATUSES
from models.session import pending_tasks, unit_of_work
from routing.rewards import PointsPolicy, local_day
from services import statistics
from services.demo_history import STORM_CATEGORY, seed_demo_history
from tests.factories import make_case, make_key

NOW = datetime.now(UTC).replace(microsecond=0)


def stat_rows(db: Session) -> dict[int, tuple[Any, ...]]:
    columns = [c.key for c in CaseStat.__table__.columns]
    db.expire_all()
    return {r.case_id: tuple(getattr(r, c) for c in columns) for r in db.scalars(select(CaseStat))}


def test_a_quarter_of_history_as_consistent_as_a_live_city(
    sessions: sessionmaker[Session], db: Session, client: FlaskClient
) -> None:
    with unit_of_work(sessions) as session:
        history = seed_demo_history(session, NOW)
        # The tasks the services asked for are done already: none is sent after commit.
        assert pending_tasks(session) == []
    assert history.seeded, history.reason

    cases = db.scalars(select(Case)).all()
    assert 280 <= len(cases) == history.cases <= 300
    assert sum(history.by_status.values()) == len(cases)
    # Open in every status and closed every way.
    assert len(history.by_status) >= 8, history.by_status
    for status in ("routed", "accepted", "in_progress", "resolved"):
        assert history.by_status.get(status, 0) >= 1, history.by_status
    for closure in ("fixed", "invalid", "duplicate", "not_responsible"):
        assert history.by_status.get(f"closed:{closure}", 0) >= 1, history.by_status
    assert history.by_status["closed:fixed"] > len(cases) / 2

    # Spread over the last ~90 days, and some are overdue now (flagged as the beat would).
    first_at = db.scalar(select(func.min(Report.received_at)))
    assert first_at is not None and first_at.astimezone(UTC) < NOW - timedelta(days=80)
    overdue = [
        c
        for c in cases
        if c.status in CLOCK_RUNNING_STATUSES and c.due_at is not None and c.due_at < NOW
    ]
    assert overdue and all(c.overdue_at is not None for c in overdue)
    assert history.overdue_now == len(overdue)
    escalations = db.scalar(select(func.count()).where(CaseEvent.action == "escalate"))
    assert escalations and escalations >= len(overdue)

    # Every workflow action happened somewhere.
    actions = set(db.scalars(select(CaseEvent.action).distinct()))
    assert {
        "received",
        "routed",
        "merged",
        "accept",
        "start",
        "ask",
        "answer",
        "extend",
        "approve-extension",
        "resolve",
        "rework",
        "close",
        "confirm",
        "reopen",
        "transfer",
    } <= actions

    # Reporters of every occupation, by more than one channel; "me too" reports merged.
    reports = db.scalars(select(Report)).all()
    assert len(reports) == history.reports
    occupations = set(
        db.scalars(
            select(Reporter.occupation).join(Report, Report.reporter_id == Reporter.id).distinct()
        )
    )
    assert occupations == {"rider", "courier", "driver", "citizen"}
    assert len({r.channel for r in reports}) >= 2
    merged = db.scalar(select(func.count()).where(CaseEvent.action == "merged"))
    assert merged == history.merged_reports >= 10
    assert all(r.case_id is not None and r.state == "processed" for r in reports)

    # The storm: waterlogging all over one community in the last 24 hours.
    storm = db.execute(
        select(Case.routing)
        .join(Report, Report.case_id == Case.id)
        .where(Case.category_code == STORM_CATEGORY, Report.received_at >= NOW - timedelta(1))
    ).all()
    polygons: dict[str, int] = defaultdict(int)
    for (routing,) in storm:
        polygons[routing.get("polygon")] += 1
    assert max(polygons.values()) >= 12

    # Statistics: one row per case, each what a rebuild from the events makes.
    kept = stat_rows(db)
    assert set(kept) == {c.id for c in cases}
    assert statistics.rebuild(db) == len(cases)
    assert stat_rows(db) == kept

    # The ledger balances: every reversal cancels exactly one award, no one is below zero,
    # no day over the cap, and the close events say exactly what was written.
    entries = db.scalars(select(PointsEntry)).all()
    assert entries
    awards = {e.id: e for e in entries if e.kind == POINTS_AWARD}
    reversals = [e for e in entries if e.kind == POINTS_REVERSAL]
    assert reversals
    for reversal in reversals:
        award = awards[reversal.reverses_id]  # type: ignore[index]
        assert (reversal.reporter_id, reversal.case_id) == (award.reporter_id, award.case_id)
        assert reversal.points == -award.points
    assert len({r.reverses_id for r in reversals}) == len(reversals)
    balances: dict[int, int] = defaultdict(int)
    per_day: dict[tuple[int, Any], int] = defaultdict(int)
    for entry in entries:
        balances[entry.reporter_id] += entry.points
        if entry.kind == POINTS_AWARD:
            per_day[(entry.reporter_id, entry.day)] += entry.points
            assert entry.day == local_day(entry.at, PointsPolicy().timezone)
    assert min(balances.values()) >= 0
    assert max(per_day.values()) <= PointsPolicy().daily_cap
    assert sum(balances.values()) == history.points
    told = {"awarded": 0, "reversed": 0}
    for detail in db.scalars(select(CaseEvent.detail).where(CaseEvent.action == "close")):
        for kind in told:
            told[kind] += sum(p["points"] for p in detail.get("points", {}).get(kind, []))
    assert told["awarded"] == sum(e.points for e in awards.values())
    assert told["reversed"] == sum(e.points for e in reversals)

    # Past notifications are marked as nobody's, at their own moment.
    outbox = db.scalars(select(OutboxMessage)).all()
    assert outbox and {m.status for m in outbox} == {OUTBOX_SKIPPED}
    assert min(m.created_at for m in outbox).astimezone(UTC) < NOW - timedelta(days=80)

    # The figures count every report once.
    admin = {"Authorization": f"Bearer {make_key(sessions, role='admin')}"}
    today = NOW.astimezone(ZoneInfo(PointsPolicy().timezone)).date()
    answer = client.get(
        "/api/v1/stats",
        query_string={"from": (today - timedelta(days=100)).isoformat(), "to": today.isoformat()},
        headers=admin,
    )
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["received"] == history.reports
    # ... and the storm stands out as a spike.
    spikes = client.get("/api/v1/spikes", headers=admin).get_json()["spikes"]
    assert spikes and spikes[0]["category"] == STORM_CATEGORY, spikes

    # A second run finds the history and adds nothing.
    counts = (len(cases), len(reports), len(entries))
    with unit_of_work(sessions) as session:
        again = seed_demo_history(session, NOW + timedelta(hours=1))
    assert not again.seeded and "already" in again.reason
    db.expire_all()
    after = (
        db.scalar(select(func.count()).select_from(Case)),
        db.scalar(select(func.count()).select_from(Report)),
        db.scalar(select(func.count()).select_from(PointsEntry)),
    )
    assert after == counts


def describe(session: Session) -> list[tuple[Any, ...]]:
    """The history without its ids, which a sequence may hand out differently."""
    rows = session.execute(
        select(
            Case.status,
            Case.closure,
            Case.category_code,
            Case.lat,
            Case.lon,
            Case.due_at,
            Case.opened_at,
            func.count(CaseEvent.id),
        )
        .join(CaseEvent, CaseEvent.case_id == Case.id)
        .group_by(Case.id)
        .order_by(Case.id)
    ).all()
    return [tuple(row) for row in rows]


def test_the_same_seed_makes_the_same_history_and_another_seed_another(
    sessions: sessionmaker[Session],
) -> None:
    made = []
    for seed in (7, 7, 8):
        with sessions() as session:
            session.begin_nested()
            history = seed_demo_history(session, NOW, cases=40, seed=seed)
            assert history.seeded
            made.append(describe(session))
            session.rollback()
    assert made[0] == made[1]
    assert made[0] != made[2]


def test_a_database_with_cases_is_left_alone(sessions: sessionmaker[Session], db: Session) -> None:
    make_case(sessions)
    with unit_of_work(sessions) as session:
        history = seed_demo_history(session, NOW)
    assert not history.seeded and "has cases" in history.reason
    assert db.scalar(select(func.count()).select_from(Case)) == 1


@pytest.mark.committed
def test_the_command_prints_cases_by_status_and_runs_once(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": database_url}
    result = runner.invoke(main, ["seed-demo-history", "--cases", "60", "--seed", "3"], env=env)
    assert result.exit_code == 0, result.output
    assert "demo history: " in result.output and "closed as fixed" in result.output
    with unit_of_work(sessions) as session:
        cases = session.scalar(select(func.count()).select_from(Case))
    assert cases is not None and 55 <= cases <= 60
    again = runner.invoke(main, ["seed-demo-history"], env=env)
    assert again.exit_code == 0 and "nothing done" in again.output
    helped = " ".join(runner.invoke(main, ["seed-demo-history", "--help"]).output.split())
    assert "--cases" in helped and "--seed" in helped and "once" in helped
