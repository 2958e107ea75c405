"""POST to routed through a real Celery worker process and a real Redis."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from models.base import utcnow
from routing.classify import model_id
from tests.factories import make_report
from tests.helpers import sample_point, wait_until_broker_idle, wait_until_processed
from workers.tasks import sweep_stuck_reports

pytestmark = pytest.mark.e2e


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
    worker, app: Flask, sessions, client: FlaskClient, auth: dict, redis_client: redis.Redis
) -> None:
    # committed, but its message never reached the broker
    lost = make_report(sessions, received_at=utcnow() - timedelta(minutes=5))
    # A report filed after it whose message does reach the broker: once the worker has routed
    # it and the broker holds nothing more for the queue, the worker has taken every message
    # there was, and none of them was about the lost report.
    point = sample_point("PD-HX-01")
    sent = client.post(
        "/api/v1/reports",
        json={"text": "路灯不亮", "lat": point["lat"], "lon": point["lon"]},
        headers=auth,
    )
    wait_until_processed(client, sent.get_json()["id"])
    wait_until_broker_idle(redis_client, app.config["CELERY_QUEUE"])
    assert client.get(f"/api/v1/reports/{lost}").get_json()["status"] == "received"

    assert sweep_stuck_reports() >= 1
    assert wait_until_processed(client, lost)["status"] == "routed"
