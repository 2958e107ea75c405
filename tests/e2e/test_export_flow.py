"""A case-list export too large to answer at once, written by a real Celery worker process:
202, poll until done, download the same CSV as a small list would have been answered with."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import make_case, make_key
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


def test_the_worker_writes_a_large_export(
    worker: Any, make_app: Any, app: Flask, sessions: sessionmaker[Session]
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
    assert download.status_code == 200
    at_once = app.test_client().get("/api/v1/cases.csv", headers=supervisor)
    assert download.get_data(as_text=True) == at_once.get_data(as_text=True)
    download.close()
    assert done["rows"] >= 3
