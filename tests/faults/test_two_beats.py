"""Two beat processes by mistake: every periodic task is sent twice as often, and still no
sweep, escalation or spike announcement does its work twice."""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.entities import Case, CaseEvent, OutboxMessage, Report, SpikeAlert
from models.session import unit_of_work
from services.filing import NewReport, file_report
from services.spikes import SPIKE_TOPIC
from tests.faults.conftest import (
    PERIODIC_SECONDS,
    SWEEP_STALE_SECONDS,
    Stack,
    assert_each_report_once,
    new_reporter_keys,
    report_body,
    wait_until_routed,
)

STUCK_REPORTS = 12
# A new spike while both beats look for spikes: this many reports of one category in one
# community (at least routing.spikes.MIN_REPORTS, with no history there).
SPIKE_REPORTS = 6
SPIKE_TEXT = "共享单车乱停放 堵住人行道"
# Runs of each periodic task, by both beats, after the work was done.
SETTLE_SECONDS = 4 * PERIODIC_SECONDS
BEAT_TASKS = ("sweep-stuck-reports", "escalate-overdue", "detect-spikes")


def beat_sends(stack: Stack, name: str, offset: int) -> Counter[str]:
    log = stack.log(name)[offset:]
    return Counter(re.findall(r"Sending due task ([\w-]+)", log))


def test_two_beats_do_no_periodic_work_twice(
    stack: Stack, pg_sessions: sessionmaker[Session]
) -> None:
    offsets = {name: len(stack.log(name)) for name in ("beat", "beat2", "worker")}
    stack.start_beat("beat2")
    started = utcnow()
    [(reporter_id, _key)] = new_reporter_keys(pg_sessions, 1)

    # Reports whose message never reached the broker: only the sweeps will find them.
    with unit_of_work(pg_sessions) as session:
        for number in range(STUCK_REPORTS):
            file_report(session, NewReport(reporter_id, "api", **report_body(number)))
        spot = report_body(STUCK_REPORTS)
        for number in range(SPIKE_REPORTS):
            file_report(
                session,
                NewReport(
                    reporter_id,
                    "api",
                    text=SPIKE_TEXT,
                    lat=spot["lat"] + number * 0.0006,
                    lon=spot["lon"],
                ),
            )
    wait_until_routed(pg_sessions, [reporter_id], describe=lambda: stack.log("worker")[-3000:])

    # Every case of them overdue at once: both beats' escalations find them.
    with unit_of_work(pg_sessions) as session:
        case_ids = set(
            session.scalars(select(Report.case_id).where(Report.reporter_id == reporter_id))
        )
        session.execute(
            update(Case)
            .where(Case.id.in_(case_ids), Case.office_id.is_not(None))
            .values(due_at=utcnow() - timedelta(hours=1))
        )
        routed = set(
            session.scalars(
                select(Case.id).where(Case.id.in_(case_ids), Case.office_id.is_not(None))
            )
        )
    deadline = time.monotonic() + 60
    while True:
        with pg_sessions() as session:
            flagged = session.scalar(
                select(func.count())
                .select_from(Case)
                .where(Case.id.in_(routed), Case.overdue_at.is_not(None))
            )
        if flagged == len(routed):
            break
        assert time.monotonic() < deadline, f"{len(routed) - flagged} cases never escalated"
        time.sleep(0.2)
    time.sleep(SETTLE_SECONDS)

    # Both beats really sent each periodic task, again and again.
    for name in ("beat", "beat2"):
        sends = beat_sends(stack, name, offsets[name])
        assert all(sends[task] >= 2 for task in BEAT_TASKS), (name, sends)

    assert_each_report_once(pg_sessions, [reporter_id])
    with pg_sessions() as session:
        escalations = Counter(
            session.scalars(
                select(CaseEvent.case_id).where(
                    CaseEvent.case_id.in_(routed), CaseEvent.action == "escalate"
                )
            )
        )
        assert set(escalations) == routed
        assert set(escalations.values()) == {1}, escalations
        alerts = session.scalars(select(SpikeAlert).where(SpikeAlert.announced_at >= started))
        announced = Counter((a.office_id, a.category_code, a.day) for a in alerts)
        spike_notices = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.topic == SPIKE_TOPIC, OutboxMessage.created_at >= started)
        )
    assert set(announced.values()) <= {1}
    assert spike_notices == sum(announced.values())

    # What the sweeps re-sent (each run's own log line): every stuck report, and a report
    # again only once it is stale again (SWEEP_STALE_SECONDS after it was re-sent).
    runs = re.findall(
        r"sweep re-enqueued \d+ stuck reports: \[([\d, ]+)\]",
        stack.log("worker")[offsets["worker"] :],
    )
    resent = Counter(int(report_id) for run in runs for report_id in run.split(", "))
    with pg_sessions() as session:
        stuck = set(session.scalars(select(Report.id).where(Report.reporter_id == reporter_id)))
    assert stuck <= set(resent), stuck - set(resent)
    times_resent = sorted(Counter(resent.values()).items())
    print(
        f"\ntwo beats: {len(routed)} cases escalated once each; {len(announced)} spikes "
        f"announced once each; (times re-sent by a sweep, reports): {times_resent} (a report "
        f"is re-sent again only once stale again, {SWEEP_STALE_SECONDS} s later)"
    )
