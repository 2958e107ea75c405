"""POST to routed through a real Celery worker process and a real Redis."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from models.base import utcnow
from routing.classify import model_id
from tests.helpers import sample_point
from tests.integration.test_pipeline import new_report
from workers.tasks import sweep_stuck_reports

pytestmark = pytest.mark.e2e


def wait_until_processed(
    client: FlaskClient, report_id: int, timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = client.get(f"/api/v1/reports/{report_id}").get_json()
        if report["status"] != "received":
            return report
        time.sleep(0.1)
    raise AssertionError(f"report {report_id} still not processed after {timeout}s")


@pytest.mark.parametrize(
    ("text", "category"),
    [("小区门口垃圾桶满了，溢出来了", "bin_overflow"), ("垃圾桶滿了溢出來", "bin_overflow")],
)
def test_report_is_routed_by_the_worker(
    worker, client: FlaskClient, auth: dict, text: str, category: str
) -> None:
    point = sample_point()
    created = client.post(
        "/api/v1/reports",
        json={"text": text, "lat": point["lat"], "lon": point["lon"]},
        headers={**auth, "Idempotency-Key": f"e2e-{text}"},
    )
    assert created.status_code == 202
    report = wait_until_processed(client, created.get_json()["id"])
    assert report["status"] == "routed"
    assert report["category"] == category
    assert report["office"]["code"] == point["office"]
    assert [e["action"] for e in report["events"]] == ["received", "classified", "routed"]
    assert report["due_at"] is not None
    # The case names the model the worker classified with: the model file of this run.
    assert report["classifier_model"] == model_id()


def test_every_community_gets_its_own_reports(worker, client: FlaskClient, auth: dict) -> None:
    from models.seed import demo_city

    ids = {}
    for point in demo_city()["sample_points"]:
        response = client.post(
            "/api/v1/reports",
            json={
                "text": "绿化带被踩坏了",
                "category": "green_space",
                "lat": point["lat"],
                "lon": point["lon"],
            },
            headers=auth,
        )
        ids[response.get_json()["id"]] = point["office"]
    for report_id, office in ids.items():
        assert wait_until_processed(client, report_id)["office"]["code"] == office


def test_a_lost_message_is_recovered_by_the_sweep(
    worker, app, sessions, client: FlaskClient
) -> None:
    # committed, but its message never reached the broker
    report_id = new_report(sessions, received_at=utcnow() - timedelta(minutes=5))
    time.sleep(0.5)
    assert client.get(f"/api/v1/reports/{report_id}").get_json()["status"] == "received"
    assert sweep_stuck_reports() >= 1
    assert wait_until_processed(client, report_id)["status"] == "routed"
