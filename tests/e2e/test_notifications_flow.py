"""Notifications end to end with real processes: a Celery worker and Celery beat (small relay
intervals and backoffs through their settings) deliver the outbox of a report filed over the
API to a real HTTP endpoint on 127.0.0.1 that fails, then recovers; one that keeps failing
drives its notification to the dead-letter state, from which an admin replays it."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.entities import OutboxMessage
from tests.conftest import PROJECT_ROOT, child_env, kill_worker, start_worker
from tests.factories import make_key
from tests.helpers import (
    WebhookReceiver,
    sample_point,
    wait_for,
    wait_for_log,
    wait_until_broker_idle,
)

pytestmark = pytest.mark.e2e

POINT = sample_point()
OFFICE = f"office:{POINT['office']}"
SECRET = "e2e-secret-of-24-chars!!"
MAX_ATTEMPTS = 3
# Bounded: with these the whole module takes seconds, not the minutes of the defaults.
RELAY_SETTINGS = {
    "OUTBOX_RELAY_INTERVAL_SECONDS": "0.5",
    "OUTBOX_BACKOFF_BASE_SECONDS": "0.5",
    "OUTBOX_BACKOFF_CAP_SECONDS": "2",
    "OUTBOX_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    "OUTBOX_LEASE_SECONDS": "10",
    "WEBHOOK_TIMEOUT_SECONDS": "2",
}
TIMEOUT_SECONDS = 20


@pytest.fixture(scope="module")
def queue() -> str:
    """A queue of this module's own, so that only its worker runs its relay settings."""
    return f"cityrelay-notify-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def relay_processes(
    test_settings: dict[str, Any],
    redis_client: redis.Redis,
    queue: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Path]:
    """A real worker and a real beat on the module's queue; yields the worker's log."""
    folder = tmp_path_factory.mktemp("notify")
    env = {"CITYRELAY_CELERY_QUEUE": queue} | {
        f"CITYRELAY_{name}": value for name, value in RELAY_SETTINGS.items()
    }
    worker_log = folder / "worker.log"
    worker = start_worker(test_settings, worker_log, **env)
    beat_log = folder / "beat.log"
    with open(beat_log, "wb") as log:
        beat = subprocess.Popen(
            [sys.executable, "-m", "cityrelay.cli", "beat"],
            # beat keeps its schedule file in the instance folder: one of its own
            env=child_env(test_settings, CITYRELAY_INSTANCE_PATH=str(folder), **env),
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_log(beat_log, "Sending due task relay-notifications", TIMEOUT_SECONDS)
        yield worker_log
    finally:
        beat.send_signal(signal.SIGTERM)
        try:
            beat.wait(15)
        except subprocess.TimeoutExpired:
            beat.kill()
            beat.wait(5)
        try:
            wait_until_broker_idle(redis_client, queue)
        finally:
            kill_worker(worker)


@pytest.fixture
def api(make_app: Callable[..., Flask], queue: str) -> FlaskClient:
    """The web app, sending its tasks to the module's queue."""
    return make_app(CELERY_QUEUE=queue).test_client()


@pytest.fixture
def admin(sessions: sessionmaker[Session]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(sessions, role='admin')}"}


def subscribe(api: FlaskClient, admin: dict[str, str], url: str, recipients: list[str]) -> int:
    webhook = {"url": url, "secret": SECRET, "topics": ["case.*"], "recipients": recipients}
    response = api.put("/api/v1/admin/webhooks", json={"webhooks": [webhook]}, headers=admin)
    assert response.status_code == 200, response.get_json()
    subscription_id: int = response.get_json()[0]["id"]
    return subscription_id


def file_report(api: FlaskClient, sessions: sessionmaker[Session]) -> int:
    """A report filed over the API by a new reporter; its id."""
    key = make_key(sessions)
    response = api.post(
        "/api/v1/reports",
        json={"text": "小区门口垃圾桶满了", "lat": POINT["lat"], "lon": POINT["lon"]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 202
    report_id: int = response.get_json()["id"]
    return report_id


def outbox_row(
    sessions: sessionmaker[Session], report_id: int, recipient: str, status: str, log: Path
) -> OutboxMessage:
    """The report's notification for ``recipient`` once it is in ``status``."""

    def found() -> OutboxMessage | None:
        with sessions() as session:
            rows = session.scalars(
                select(OutboxMessage).where(OutboxMessage.recipient.startswith(recipient))
            ).all()
            mine = [r for r in rows if r.payload.get("report_id") == report_id]
            return mine[0] if mine and mine[0].status == status else None

    row: OutboxMessage = wait_for(
        found,
        TIMEOUT_SECONDS,
        f"report {report_id}'s notification to {recipient} to be {status}",
        lambda: log.read_text(errors="replace")[-4000:],
    )
    return row


def test_a_notification_survives_failures_and_arrives_once_signed(
    relay_processes: Path, api: FlaskClient, admin: dict[str, str], sessions
) -> None:
    failures = 2
    with WebhookReceiver(fail_first=failures) as endpoint:
        subscription = subscribe(api, admin, endpoint.url, [OFFICE])
        report_id = file_report(api, sessions)

        row = outbox_row(sessions, report_id, OFFICE, "delivered", relay_processes)
        assert row.attempts == failures
        assert row.delivered_to == [subscription] and "HTTP 500" in row.last_error
        # two more relay runs (beat's) after it was delivered: nothing is sent again
        finished = relay_processes.read_text().count("succeeded in")
        wait_for_log(relay_processes, "succeeded in", count=finished + 2)

        received = endpoint.received
        assert [r.answered for r in received] == [500] * failures + [204]
        assert len(endpoint.delivered()) == 1
        assert all(r.verifies(SECRET) for r in received)
        assert {r.header("X-CityRelay-Delivery") for r in received} == {f"{row.id}.{subscription}"}
        bodies = [r.json() for r in received]
        assert [b["attempt"] for b in bodies] == [1, 2, 3]
        assert {(b["topic"], b["recipient"], b["payload"]["report_id"]) for b in bodies} == {
            ("case.routed", OFFICE, report_id)
        }
        # each retry waited at least what the failure before it set: 0.5 s × 2^(n − 1), at
        # most a quarter shorter (jitter)
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(received)]
        assert gaps[0] >= 0.5 * 0.75 and gaps[1] >= 1.0 * 0.75, gaps
        (reporter_row,) = [
            r
            for r in _rows_of(sessions, report_id)
            if r.recipient.startswith("reporter:")  # wanted by no webhook
        ]
        assert reporter_row.status == "skipped"


def test_a_dead_notification_is_replayed_by_an_admin(
    relay_processes: Path, api: FlaskClient, admin: dict[str, str], sessions
) -> None:
    with WebhookReceiver(failing=True) as endpoint:
        subscribe(api, admin, endpoint.url, ["reporter:*"])
        report_id = file_report(api, sessions)

        dead = outbox_row(sessions, report_id, "reporter:", "dead", relay_processes)
        assert dead.attempts == MAX_ATTEMPTS and "HTTP 500" in dead.last_error
        assert len(endpoint.received) == MAX_ATTEMPTS
        listed = api.get("/api/v1/admin/outbox?status=dead", headers=admin).get_json()
        assert dead.id in {m["id"] for m in listed}

        endpoint.failing = False
        replayed = api.post(f"/api/v1/admin/outbox/{dead.id}/replay", headers=admin)
        assert replayed.status_code == 200
        assert replayed.get_json()["status"] == "pending"

        delivered = outbox_row(sessions, report_id, "reporter:", "delivered", relay_processes)
        assert delivered.attempts == 0
        assert [r.answered for r in endpoint.received] == [500] * MAX_ATTEMPTS + [204]
        assert endpoint.delivered()[0].verifies(SECRET)
        listed = api.get("/api/v1/admin/outbox?status=delivered", headers=admin).get_json()
        (shown,) = [m for m in listed if m["id"] == dead.id]
        assert len(shown["replays"]) == 1 and shown["replays"][0]["attempts_before"] == 3


def _rows_of(sessions: sessionmaker[Session], report_id: int) -> list[OutboxMessage]:
    with sessions() as session:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        return [r for r in rows if r.payload.get("report_id") == report_id]
