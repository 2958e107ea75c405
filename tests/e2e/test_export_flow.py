"""A case-list export too large to answer at once, written by a real Celery worker process
with an instance folder of its own (as on another machine: the two share only the database and
Redis): 202, poll until done, download the same CSV as a small list would have been answered
with."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import kill_worker, start_worker
from tests.factories import make_case, make_key
from tests.helpers import wait_for, wait_until_broker_idle

pytestmark = pytest.mark.e2e


@pytest.fixture
def worker_elsewhere(
    test_settings: dict[str, Any], redis_client: redis.Redis, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker whose instance folder is not the web side's."""
    instance = tmp_path / "worker-instance"
    assert str(instance) != test_settings["INSTANCE_PATH"]
    process = start_worker(
        test_settings, tmp_path / "worker.log", CITYRELAY_INSTANCE_PATH=str(instance)
    )
    yield process
    try:
        wait_until_broker_idle(redis_client, test_settings["CELERY_QUEUE"])
    finally:
        kill_worker(process)


def test_the_worker_writes_a_large_export(
    worker_elsewhere: Any, make_app: Any, app: Flask, sessions: sessionmaker[Session]
) -> None:
    supervisor = {
        "Authorization": f"Bearer {make_key(sessions, role='supervisor', office_code='PD-CJ')}"
    }
    for _ in range(3):
        make_case(sessions)
    client = make_app(EXPORT_SYNC_MAX_ROWS=1).test_client()
    asked = client.get("/api/v1/cases.csv", headers=supervisor)
    assert asked.status_code == 202
    url = asked.headers["Location"]

    def finished() -> dict[str, Any] | None:
        body = client.get(url, headers=supervisor).get_json()
        return body if body["status"] != "pending" else None

    done = wait_for(finished, 30, "the worker to write the export")
    assert done["status"] == "done", done
    download = client.get(done["download_url"], headers=supervisor)
    assert download.status_code == 200 and download.mimetype == "text/csv"
    at_once = app.test_client().get("/api/v1/cases.csv", headers=supervisor)
    assert download.get_data(as_text=True) == at_once.get_data(as_text=True)
    download.close()
    assert done["rows"] >= 3
