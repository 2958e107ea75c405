"""Overdue escalation end to end with real processes: TWO Celery beats (one would be the rule; a
second started by mistake must do no harm) send the escalation every second to a real worker of
two pool processes. A case past its due time gets exactly one ``escalate`` event, one version
raised, and one ``case.overdue`` notification for its office and one for the office above,
delivered once each to a real webhook endpoint on 127.0.0.1, however many runs follow."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.entities import Case, CaseEvent, OutboxMessage
from models.session import unit_of_work
from tests.conftest import PROJECT_ROOT, child_env, kill_worker, start_worker
from tests.factories import make_case, make_key
from tests.helpers import (
    WebhookReceiver,
    sample_point,
    wait_for,
    wait_for_log,
    wait_until_broker_idle,
)

pytestmark = pytest.mark.e2e

OFFICE = sample_point()["office"]
STREET = "PD-CJ"  # the office above it
SECRET = "e2e-escalation-secret-24"
SETTINGS = {"OVERDUE_INTERVAL_SECONDS": "1", "OUTBOX_RELAY_INTERVAL_SECONDS": "1"}
TIMEOUT_SECONDS = 30
BEAT_DUE = "Sending due task escalate-overdue"
# The worker's log line of a finished run (Celery logs the task's return value).
RUN_DONE = "cases escalated'"
# Runs of both beats that must follow the escalation without changing anything.
LATER_RUNS = 6


@dataclass(frozen=True)
class Processes:
    worker_log: Path
    beat_logs: tuple[Path, Path]


@pytest.fixture(scope="module")
def queue() -> str:
    return f"cityrelay-overdue-{uuid.uuid4().hex[:8]}"


def start_beat(
    test_settings: dict[str, Any], folder: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    with open(folder / "beat.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "cityrelay.cli", "beat"],
            # each beat keeps its schedule file in an instance folder of its own
            env=child_env(test_settings, CITYRELAY_INSTANCE_PATH=str(folder), **env),
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@pytest.fixture(scope="module")
def processes(
    test_settings: dict[str, Any],
    redis_client: redis.Redis,
    queue: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Processes]:
    folder = tmp_path_factory.mktemp("overdue")
    env = {"CITYRELAY_CELERY_QUEUE": queue} | {
        f"CITYRELAY_{name}": value for name, value in SETTINGS.items()
    }
    worker_log = folder / "worker.log"
    worker = start_worker(test_settings, worker_log, **env)
    beat_folders = (folder / "beat-1", folder / "beat-2")
    beats = []
    try:
        for beat_folder in beat_folders:
            beat_folder.mkdir()
            beats.append(start_beat(test_settings, beat_folder, env))
        for beat_folder in beat_folders:
            wait_for_log(beat_folder / "beat.log", BEAT_DUE, TIMEOUT_SECONDS)
        yield Processes(worker_log, (beat_folders[0] / "beat.log", beat_folders[1] / "beat.log"))
    finally:
        for beat in beats:
            stop(beat)
        try:
            wait_until_broker_idle(redis_client, queue)
        finally:
            kill_worker(worker)


@pytest.fixture
def api(make_app: Callable[..., Flask], queue: str) -> FlaskClient:
    return make_app(CELERY_QUEUE=queue).test_client()


def late_case(sessions: sessionmaker[Session]) -> tuple[int, int]:
    """A case of OFFICE, accepted, due an hour ago: its id and version."""
    case = make_case(sessions)
    with unit_of_work(sessions) as session:
        session.execute(
            update(Case)
            .where(Case.id == case.id)
            .values(status="accepted", due_at=utcnow() - timedelta(hours=1))
        )
        version = session.get(Case, case.id, populate_existing=True).version  # type: ignore[union-attr]
    return case.id, version


def escalate_events(sessions: sessionmaker[Session], case_id: int) -> list[CaseEvent]:
    with sessions() as session:
        return list(
            session.scalars(
                select(CaseEvent).where(
                    CaseEvent.case_id == case_id, CaseEvent.action == "escalate"
                )
            )
        )


def test_two_beats_escalate_a_late_case_exactly_once(
    processes: Processes, api: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    admin = {"Authorization": f"Bearer {make_key(sessions, role='admin')}"}
    with WebhookReceiver() as endpoint:
        webhook = {"url": endpoint.url, "secret": SECRET, "topics": ["case.overdue"]}
        answer = api.put("/api/v1/admin/webhooks", json={"webhooks": [webhook]}, headers=admin)
        assert answer.status_code == 200, answer.get_json()
        case_id, version = late_case(sessions)

        wait_for(
            lambda: escalate_events(sessions, case_id),
            TIMEOUT_SECONDS,
            f"case {case_id} to be escalated",
            lambda: processes.worker_log.read_text(errors="replace")[-4000:],
        )
        # both beats go on sending runs, and the worker finishes them: nothing more happens
        sent = [log.read_text().count(BEAT_DUE) for log in processes.beat_logs]
        done = processes.worker_log.read_text().count(RUN_DONE)
        for log, before in zip(processes.beat_logs, sent, strict=True):
            wait_for_log(log, BEAT_DUE, TIMEOUT_SECONDS, count=before + LATER_RUNS // 2)
        wait_for_log(processes.worker_log, RUN_DONE, TIMEOUT_SECONDS, count=done + LATER_RUNS)
        wait_for(
            lambda: len(endpoint.delivered()) >= 2,
            TIMEOUT_SECONDS,
            "both offices' notifications to be delivered",
            lambda: processes.worker_log.read_text(errors="replace")[-4000:],
        )

        (event,) = escalate_events(sessions, case_id)
        assert (event.from_status, event.to_status, event.actor) == (
            "accepted",
            "accepted",
            "system",
        )
        assert event.detail["office"] == OFFICE and event.detail["parent_office"] == STREET
        with sessions() as session:
            case = session.get(Case, case_id)
            assert case is not None
            assert case.version == version + 1
            assert case.overdue_at is not None and case.escalated_at == case.overdue_at
            rows = session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.case_id == case_id, OutboxMessage.topic == "case.overdue"
                )
            ).all()
        assert sorted(row.recipient for row in rows) == sorted(
            [f"office:{OFFICE}", f"office:{STREET}"]
        )
        assert all(row.status == "delivered" for row in rows)
        log = processes.worker_log.read_text()
        assert log.count("'1 cases escalated'") == 1, log[-4000:]

        delivered = [r.json() for r in endpoint.delivered()]
        assert sorted((d["topic"], d["recipient"]) for d in delivered) == sorted(
            [("case.overdue", f"office:{OFFICE}"), ("case.overdue", f"office:{STREET}")]
        )
        assert {d["payload"]["escalated_to"] for d in delivered} == {STREET}
        assert all(r.verifies(SECRET) for r in endpoint.delivered())

        staff = {"Authorization": f"Bearer {make_key(sessions, role='office', office_code=OFFICE)}"}
        body = api.get(f"/api/v1/cases/{case_id}", headers=staff).get_json()
        assert (body["overdue"], body["escalated_to"]) == (True, STREET)
