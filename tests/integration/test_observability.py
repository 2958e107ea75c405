"""What operators watch, in process: /healthz, /readyz against the real database and Redis (and
a dead broker, a missing database, a missing worker heartbeat), /metrics figures moving with
what happens, request ids answered and carried on the task messages, and JSON log lines."""

from __future__ import annotations

import io
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from flask.logging import default_handler as flask_default_handler
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from cityrelay import logs, observability
from cityrelay.embedded import free_port
from models.base import utcnow
from models.entities import Case, OutboxMessage
from models.session import unit_of_work
from tests.factories import make_case, make_key, make_report
from tests.helpers import sample_point
from workers.tasks import process_report, relay_notifications, sweep_stuck_reports

POINT = sample_point()
GOOD_REPORT = {"text": "小区门口垃圾桶满了", "lat": POINT["lat"], "lon": POINT["lon"]}


def scrape(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` as {(sample name, sorted labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def own_queue(make_app: Callable[..., Flask], redis_client: redis.Redis) -> Iterator[Flask]:
    """An app of this run on a queue of its own: no worker of this run beats for it or takes
    its messages."""
    app = make_app(CELERY_QUEUE=f"cityrelay-observe-{uuid.uuid4().hex[:8]}")
    yield app
    redis_client.delete(app.config["CELERY_QUEUE"])
    redis_client.delete(observability.heartbeat_key(app.config["CELERY_QUEUE"]))


# ---------- health and readiness ----------


def test_healthz_answers_while_the_process_is_up_and_touches_nothing(
    make_app: Callable[..., Flask],
) -> None:
    # no database file can be opened here, and nothing listens on the broker's port
    app = make_app(
        DATABASE_URL="sqlite:////nonexistent/cityrelay.db",
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_the_old_health_endpoint_is_kept_beside_the_new_ones(client: FlaskClient) -> None:
    assert client.get("/api/v1/health").get_json() == {"status": "ok"}
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_is_503_without_a_worker_heartbeat(own_queue: Flask) -> None:
    response = own_queue.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(observability.RETRY_AFTER_SECONDS)
    error = response.get_json()["error"]
    assert error["code"] == "not_ready"
    assert set(error["fields"]) == {"worker"}
    assert "60 s" in error["fields"]["worker"][0]


def test_readyz_is_200_with_a_recent_heartbeat_and_503_once_it_is_stale(
    own_queue: Flask, redis_client: redis.Redis
) -> None:
    queue = own_queue.config["CELERY_QUEUE"]
    observability.send_heartbeat(redis_client, queue, "celery@machine-a", 240)
    client = own_queue.test_client()
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"status": "ok"}

    # the only worker last beat two minutes ago: longer than READY_HEARTBEAT_SECONDS (60)
    key = observability.heartbeat_key(queue)
    redis_client.zadd(key, {"celery@machine-a": time.time() - 120})
    assert client.get("/readyz").status_code == 503
    # another machine's worker beats: ready again
    observability.send_heartbeat(redis_client, queue, "celery@machine-b", 240)
    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_quickly_when_the_broker_is_unreachable(
    make_app: Callable[..., Flask],
) -> None:
    # Nothing listens on this port: every connection to the broker is refused.
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    response = app.test_client().get("/readyz")
    assert time.monotonic() - started < 2
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    assert set(response.get_json()["error"]["fields"]) == {"broker", "worker"}


def test_readyz_is_503_naming_the_database_when_it_does_not_answer(
    make_app: Callable[..., Flask], redis_client: redis.Redis
) -> None:
    app = make_app(
        DATABASE_URL="sqlite:////nonexistent/cityrelay.db",
        CELERY_QUEUE=f"cityrelay-observe-{uuid.uuid4().hex[:8]}",
    )
    queue = app.config["CELERY_QUEUE"]
    observability.send_heartbeat(redis_client, queue, "celery@machine-a", 240)
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 503
        assert set(response.get_json()["error"]["fields"]) == {"database"}

        # /metrics still answers, with what it has
        samples = scrape(app.test_client())
        assert value(samples, "cityrelay_metrics_source_up", source="database") == 0
        assert value(samples, "cityrelay_metrics_source_up", source="broker") == 1
        assert ("cityrelay_cases_overdue", ()) not in samples
    finally:
        redis_client.delete(observability.heartbeat_key(queue))


# ---------- metrics ----------


def test_metrics_count_requests_by_route_and_status(client: FlaskClient, auth: dict) -> None:
    route = "/api/v1/reports/<id:report_id>"
    before = scrape(client)
    for missing in (999_999_001, 999_999_002, 999_999_003):
        assert client.get(f"/api/v1/reports/{missing}").status_code == 404
    assert client.post("/api/v1/reports", json=GOOD_REPORT, headers=auth).status_code == 202
    after = scrape(client)

    labels = {"method": "GET", "route": route, "status": "404"}
    assert value(after, "cityrelay_http_requests_total", **labels) == (
        value(before, "cityrelay_http_requests_total", **labels) + 3
    )
    assert value(after, "cityrelay_http_request_duration_seconds_count", **labels) == (
        value(before, "cityrelay_http_request_duration_seconds_count", **labels) + 3
    )
    created = {"method": "POST", "route": "/api/v1/reports", "status": "202"}
    assert value(after, "cityrelay_http_requests_total", **created) == (
        value(before, "cityrelay_http_requests_total", **created) + 1
    )
    # the rule, never the raw path: one series however many ids are asked for
    assert not any("999999001" in str(labels) for _name, labels in after)


def test_metrics_gauges_read_the_database_and_the_queue(
    own_queue: Flask, sessions: sessionmaker[Session], redis_client: redis.Redis
) -> None:
    client = own_queue.test_client()
    before = scrape(client)
    make_report(sessions, received_at=utcnow() - timedelta(minutes=10))  # waiting too long
    make_report(sessions)  # just arrived: not yet
    late = make_case(sessions)
    with unit_of_work(sessions) as session:
        session.execute(
            update(Case).where(Case.id == late.id).values(due_at=utcnow() - timedelta(hours=1))
        )
        session.add(OutboxMessage(topic="case.routed", recipient="office:X", payload={}))
    queue = own_queue.config["CELERY_QUEUE"]
    redis_client.rpush(queue, "one", "two")
    after = scrape(client)

    for name in ("cityrelay_reports_waiting", "cityrelay_cases_overdue"):
        assert value(after, name) == value(before, name) + 1, name
    # the routed case wrote notifications too; the one added here is among them
    assert value(after, "cityrelay_outbox_backlog") >= value(before, "cityrelay_outbox_backlog") + 1
    assert value(after, "cityrelay_queue_depth", queue=queue) == 2
    assert value(after, "cityrelay_metrics_source_up", source="database") == 1


def test_task_runs_and_the_sweep_are_counted(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    before = scrape(client)
    make_report(sessions, received_at=utcnow() - timedelta(minutes=10))
    assert sweep_stuck_reports.apply().get() == 1
    after = scrape(client)

    task = {"task": "cityrelay.sweep_stuck_reports"}
    assert value(after, "cityrelay_task_runs_total", outcome="success", **task) == (
        value(before, "cityrelay_task_runs_total", outcome="success", **task) + 1
    )
    assert value(after, "cityrelay_task_duration_seconds_count", **task) == (
        value(before, "cityrelay_task_duration_seconds_count", **task) + 1
    )
    assert (
        value(after, "cityrelay_sweep_runs_total")
        == value(before, "cityrelay_sweep_runs_total") + 1
    )
    assert value(after, "cityrelay_sweep_requeued_reports_total") == (
        value(before, "cityrelay_sweep_requeued_reports_total") + 1
    )


def test_webhook_failures_are_counted(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    admin = {"Authorization": f"Bearer {make_key(sessions, role='admin')}"}
    nobody = f"http://127.0.0.1:{free_port()}/hook"
    webhook = {"url": nobody, "secret": "a-secret-of-more-than-16", "topics": ["case.*"]}
    saved = client.put("/api/v1/admin/webhooks", json={"webhooks": [webhook]}, headers=admin)
    assert saved.status_code == 200, saved.get_json()
    before = scrape(client)
    make_case(sessions)
    assert "to retry" in relay_notifications()
    after = scrape(client)
    assert value(after, "cityrelay_webhook_failures_total") >= (
        value(before, "cityrelay_webhook_failures_total") + 1
    )


# ---------- request ids and logs ----------


def test_a_sane_request_id_is_kept_and_any_other_replaced(client: FlaskClient) -> None:
    kept = client.get("/healthz", headers={"X-Request-Id": "rider-42.retry_1"})
    assert kept.headers["X-Request-Id"] == "rider-42.retry_1"
    for insane in ("x" * 65, "a b", "<script>", "ünïcode"):
        answered = client.get("/healthz", headers={"X-Request-Id": insane}).headers["X-Request-Id"]
        assert answered != insane
        assert re.fullmatch(r"[0-9a-f]{32}", answered)
    made = client.get("/api/v1/reports/999999999").headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert client.get("/healthz").headers["X-Request-Id"] != made


def test_the_request_id_travels_on_the_task_message(
    own_queue: Flask, sessions: sessionmaker[Session], redis_client: redis.Redis
) -> None:
    auth = {"Authorization": f"Bearer {make_key(sessions)}", "X-Request-Id": "req-from-rider-7"}
    response = own_queue.test_client().post("/api/v1/reports", json=GOOD_REPORT, headers=auth)
    assert response.status_code == 202
    assert response.headers["X-Request-Id"] == "req-from-rider-7"
    messages = [
        json.loads(raw) for raw in redis_client.lrange(own_queue.config["CELERY_QUEUE"], 0, -1)
    ]
    (sent,) = [m for m in messages if m["headers"]["task"] == "cityrelay.process_report"]
    assert sent["headers"][observability.TASK_REQUEST_ID_HEADER] == "req-from-rider-7"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the root logger writes, as the JSON lines a worker or web process writes."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


def lines(log: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.getvalue().splitlines()]


def test_the_task_logs_the_request_id_it_was_sent_with(
    sessions: sessionmaker[Session], json_log: io.StringIO
) -> None:
    report_id = make_report(sessions)
    headers = {observability.TASK_REQUEST_ID_HEADER: "req-from-rider-8"}
    process_report.apply(args=(report_id,), headers=headers).get()
    (line,) = [entry for entry in lines(json_log) if entry["logger"] == "workers.tasks"]
    assert line["request_id"] == "req-from-rider-8"
    assert line["report_id"] == report_id
    assert isinstance(line["case_id"], int)
    assert line["task"] == "cityrelay.process_report"
    assert line["level"] == "INFO"
    assert line["timestamp"].endswith("Z")


def test_each_request_is_logged_once_as_json_with_its_id(
    client: FlaskClient, json_log: io.StringIO
) -> None:
    client.get("/api/v1/reports/999999999", headers={"X-Request-Id": "lookup-1"})
    (line,) = [entry for entry in lines(json_log) if entry["logger"] == "cityrelay.access"]
    assert line["request_id"] == "lookup-1"
    assert line["report_id"] == 999999999
    assert line["route"] == "/api/v1/reports/<id:report_id>"
    assert line["status"] == 404
    assert line["message"].startswith("GET /api/v1/reports/999999999 404")


def test_log_format_text_and_an_unknown_format(caplog: pytest.LogCaptureFixture) -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "多行\nline", None, None)
    record.request_id = "r-1"
    text = logs.TextFormatter().format(record)
    assert text.splitlines()[0].endswith("x: 多行 [request_id=r-1]")
    with pytest.raises(ValueError, match="json or text"):
        logs.configure_logging("xml")
    one_line = logs.JsonFormatter().format(record)
    assert "\n" not in one_line
    assert json.loads(one_line)["message"] == "多行\nline"


def test_an_app_record_is_written_once_when_logging_is_set_up_after_the_app(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    """As in a worker: the app's logger was used (create_app hands it to the dispatcher), so
    Flask gave it a handler of its own, before Celery had logging set up."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    # Under pytest the root logger has handlers already, so Flask added none: as in a worker,
    # where it found none, the app's logger gets Flask's own.
    app.logger.addHandler(flask_default_handler)
    try:
        logs.configure_logging("json")
        marker = f"written-once-{uuid.uuid4().hex[:8]}"
        app.logger.warning(marker)
        assert capsys.readouterr().err.count(marker) == 1
    finally:
        root.handlers, root.level = saved
        app.logger.removeHandler(flask_default_handler)
