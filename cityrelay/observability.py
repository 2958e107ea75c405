"""What operators watch: ``/healthz`` and ``/readyz``, Prometheus ``/metrics``, and log lines
that are one JSON object each and carry the request id from the web request to the worker.

- ``/healthz``: the process answers; it touches nothing else.
- ``/readyz``: the database answers ``SELECT 1``, the broker answers ``PING`` within
  ``BROKER_TIMEOUT_SECONDS``, and a worker consuming this queue sent a heartbeat within
  ``READY_HEARTBEAT_SECONDS``; otherwise 503 with ``Retry-After``, naming the checks that failed.
  Each worker's main process writes its heartbeat (a sorted set in Redis, one member per worker
  node, scored by the time) from a thread started when the worker is ready.
- ``/metrics``: the request counter and latency histogram by route and status, the task
  counters and histogram (from Celery's signals, in the pool processes), the sweep's and the
  relay's counters (``workers.metrics``), and gauges computed at each scrape from the database
  (``services.monitoring``) and the broker. Under gunicorn (and ``cityrelay up``) every process
  writes to ``PROMETHEUS_MULTIPROC_DIR`` (see ``cityrelay.metrics_dir``) and a scrape adds them
  up; a database that does not answer leaves its gauges out, the rest is served.
- Logs: ``cityrelay.logs.configure_logging`` (called by Celery's ``setup_logging`` signal;
  gunicorn's config uses the same formatters) writes each record as one JSON object (or a text
  line: ``LOG_FORMAT``) with the request id, and the report and case ids when known. A
  request's id (its sane ``X-Request-Id``, else a new one) is answered in ``X-Request-Id`` and
  travels in the header ``cityrelay_request_id`` of every task message sent while it runs, and
  on from those tasks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextvars import ContextVar, Token
from datetime import timedelta
from typing import Any

import redis
from celery import Celery
from celery.signals import (
    before_task_publish,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_ready,
    worker_shutdown,
)
from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.exc import SQLAlchemyError

from cityrelay.logs import (
    case_id_var,
    configure_logging,
    report_id_var,
    request_id_var,
    task_id_var,
    task_var,
)
from cityrelay.metrics_dir import ENV as MULTIPROC_ENV
from cityrelay.settings import load_settings
from models.base import utcnow
from services import monitoring
from services.filing import PROCESS_REPORT
from web.db import database
from web.errors import error_body

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("cityrelay.access")

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# The task message header that carries the request id to the worker.
TASK_REQUEST_ID_HEADER = "cityrelay_request_id"
BROKER_TIMEOUT_SECONDS = 0.5
RETRY_AFTER_SECONDS = 5
HEARTBEAT_KEY = "cityrelay:heartbeats:{queue}"
REDIS_CLIENT = "cityrelay.observability.redis"
# Anything else a client sends as its method is counted as "other": labels stay few.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


HTTP_REQUESTS = Counter(
    "cityrelay_http_requests",
    "HTTP requests answered, by method, route (the URL rule) and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "cityrelay_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, route (the URL rule) and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
TASK_RUNS = Counter(
    "cityrelay_task_runs",
    "Task runs by task and outcome (success, failure, retry, ...).",
    ["task", "outcome"],
)
TASK_DURATION = Histogram(
    "cityrelay_task_duration_seconds",
    "Time a task run took, by task.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)

bp = Blueprint("observability", __name__)


def init_app(app: Flask) -> None:
    """Health, readiness and metrics routes, and the request id and measures of every request
    (run before any other ``before_request``, so a request refused early is counted too)."""
    app.register_blueprint(bp)
    app.before_request_funcs.setdefault(None, []).insert(0, _start_request)
    app.after_request(_finish_request)
    app.teardown_request(_end_request)


# ---------- health and readiness ----------


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    problems: dict[str, list[str]] = {}
    try:
        with database().sessions() as session:
            monitoring.database_answers(session)
    except SQLAlchemyError:
        logger.warning("readiness: the database does not answer", exc_info=True)
        problems["database"] = ["The database does not answer."]
    window = float(current_app.config["READY_HEARTBEAT_SECONDS"])
    try:
        client = broker_client(current_app)
        client.ping()
        newest = newest_heartbeat(client, current_app.config["CELERY_QUEUE"])
    except redis.RedisError:
        logger.warning("readiness: the broker does not answer", exc_info=True)
        problems["broker"] = [f"The broker does not answer within {BROKER_TIMEOUT_SECONDS} s."]
        problems["worker"] = ["Unknown: worker heartbeats are kept in the broker."]
    else:
        if newest is None or time.time() - newest > window:
            problems["worker"] = [f"No worker sent a heartbeat in the last {window:g} s."]
    if problems:
        names = ", ".join(sorted(problems))
        body = error_body("not_ready", f"Not ready: {names}.", problems)
        return jsonify(body), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return {"status": "ok"}


def broker_client(app: Flask) -> redis.Redis:
    """A Redis client on the Celery broker that gives up after ``BROKER_TIMEOUT_SECONDS``,
    without retrying: a check must say "no" quickly, not wait out an outage."""
    client: redis.Redis | None = app.extensions.get(REDIS_CLIENT)
    if client is None:
        client = redis.Redis.from_url(
            app.extensions["celery"].conf.broker_url,
            socket_timeout=BROKER_TIMEOUT_SECONDS,
            socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        app.extensions[REDIS_CLIENT] = client
    return client


def heartbeat_key(queue: str) -> str:
    return HEARTBEAT_KEY.format(queue=queue)


def send_heartbeat(client: redis.Redis, queue: str, worker: str, keep_seconds: float) -> None:
    """Record that ``worker`` (a Celery node name) consumes ``queue`` now; members silent for
    ``keep_seconds`` are dropped, and so is the whole key once every worker is silent."""
    now = time.time()
    key = heartbeat_key(queue)
    with client.pipeline() as pipe:
        pipe.zadd(key, {worker: now})
        pipe.zremrangebyscore(key, "-inf", now - keep_seconds)
        pipe.expire(key, max(1, int(keep_seconds)))
        pipe.execute()


def newest_heartbeat(client: redis.Redis, queue: str) -> float | None:
    """When a worker on ``queue`` last sent a heartbeat (Unix time), or None."""
    newest = client.zrange(heartbeat_key(queue), 0, 0, desc=True, withscores=True)
    return float(newest[0][1]) if newest else None


class _Heartbeat(threading.Thread):
    def __init__(self, client: redis.Redis, queue: str, worker: str, window: float) -> None:
        super().__init__(name="cityrelay-heartbeat", daemon=True)
        self.client = client
        self.queue = queue
        self.worker = worker
        self.interval = min(15.0, max(1.0, window / 4))
        self.keep = max(window * 4, 60.0)
        self.stopped = threading.Event()

    def run(self) -> None:
        failing = False
        while True:
            try:
                send_heartbeat(self.client, self.queue, self.worker, self.keep)
                failing = False
            except redis.RedisError:
                if not failing:
                    logger.warning("worker heartbeat not sent; trying again", exc_info=True)
                failing = True
            if self.stopped.wait(self.interval):
                return

    def stop(self) -> None:
        self.stopped.set()
        with contextlib.suppress(redis.RedisError):
            self.client.zrem(heartbeat_key(self.queue), self.worker)


_heartbeat: _Heartbeat | None = None


@worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    global _heartbeat
    celery: Celery = sender.app
    flask_app: Flask = celery.Task.flask_app
    _heartbeat = _Heartbeat(
        broker_client(flask_app),
        flask_app.config["CELERY_QUEUE"],
        str(sender.hostname),
        float(flask_app.config["READY_HEARTBEAT_SECONDS"]),
    )
    _heartbeat.start()


@worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()


# ---------- metrics ----------


@bp.get("/metrics")
def metrics() -> ResponseReturnValue:
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(_AtScrape(current_app._get_current_object()))  # type: ignore[attr-defined]
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def serve_worker_metrics(port: int, host: str) -> None:
    """The metrics of every process of this worker (its pool processes write them to
    ``PROMETHEUS_MULTIPROC_DIR``), served on ``host:port`` from a thread of this process."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(port, addr=host, registry=registry)


class _ThisProcess:
    """Without multiprocess mode: the metrics of this process, as prometheus_client keeps them."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


class _AtScrape:
    """Gauges read at each scrape: from the database (one query each) and the broker."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        config = self.app.config
        up = GaugeMetricFamily(
            "cityrelay_metrics_source_up",
            "1 when the source of the gauges read at scrape time answered this scrape.",
            labels=["source"],
        )
        now = utcnow()
        try:
            with database().sessions() as session:
                waiting = monitoring.reports_waiting(
                    session, timedelta(seconds=float(config["SWEEP_STALE_SECONDS"])), now
                )
                overdue = monitoring.cases_overdue(session, now)
                backlog = monitoring.outbox_backlog(session)
        except SQLAlchemyError:
            logger.warning("metrics: the database does not answer", exc_info=True)
            up.add_metric(["database"], 0)
        else:
            up.add_metric(["database"], 1)
            yield GaugeMetricFamily(
                "cityrelay_reports_waiting",
                "Reports not routed yet, older than the sweep threshold (SWEEP_STALE_SECONDS).",
                value=waiting,
            )
            yield GaugeMetricFamily(
                "cityrelay_cases_overdue",
                "Cases in the office's hands (routed, accepted, in progress) past their due time.",
                value=overdue,
            )
            yield GaugeMetricFamily(
                "cityrelay_outbox_backlog",
                "Notifications neither delivered nor dead: waiting for the relay or being sent.",
                value=backlog,
            )
        queue = config["CELERY_QUEUE"]
        try:
            depth = broker_client(self.app).llen(queue)
        except redis.RedisError:
            logger.warning("metrics: the broker does not answer", exc_info=True)
            up.add_metric(["broker"], 0)
        else:
            up.add_metric(["broker"], 1)
            gauge = GaugeMetricFamily(
                "cityrelay_queue_depth",
                "Task messages waiting in the Celery queue (LLEN of its Redis list).",
                labels=["queue"],
            )
            gauge.add_metric([queue], depth)
            yield gauge
        yield up


# ---------- requests ----------


def current_request_id() -> str | None:
    """The id of the request (or of the request that led to the task) this code serves."""
    return request_id_var.get()


def _start_request() -> None:
    g.cityrelay_started = time.perf_counter()
    given = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    g.request_id = request_id
    tokens: list[tuple[ContextVar[Any], Token[Any]]] = [
        (request_id_var, request_id_var.set(request_id))
    ]
    view_args = request.view_args or {}
    for name, var in (("report_id", report_id_var), ("case_id", case_id_var)):
        if isinstance(view_args.get(name), int):
            tokens.append((var, var.set(view_args[name])))
    g.cityrelay_log_context = tokens


def _finish_request(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    elapsed = time.perf_counter() - g.get("cityrelay_started", time.perf_counter())
    method = request.method if request.method in METHODS else "other"
    route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
    status = str(response.status_code)
    HTTP_REQUESTS.labels(method, route, status).inc()
    HTTP_DURATION.labels(method, route, status).observe(elapsed)
    access_logger.info(
        "%s %s %s %.1f ms",
        request.method,
        request.path,
        status,
        elapsed * 1000,
        extra={
            "method": request.method,
            "route": route,
            "status": response.status_code,
            "duration_ms": round(elapsed * 1000, 1),
        },
    )
    return response


def _end_request(_exc: BaseException | None) -> None:
    for var, token in reversed(g.pop("cityrelay_log_context", [])):
        try:
            var.reset(token)
        except ValueError:  # set in another context: nothing of ours to undo here
            var.set(None)


# ---------- tasks ----------


@before_task_publish.connect
def _send_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = request_id_var.get()
    if request_id and headers is not None:
        headers.setdefault(TASK_REQUEST_ID_HEADER, request_id)


_runs: dict[str, tuple[float, list[tuple[ContextVar[Any], Token[Any]]]]] = {}


@task_prerun.connect
def _task_started(
    task_id: str | None = None,
    task: Any = None,
    args: tuple[Any, ...] | None = None,
    **_: Any,
) -> None:
    if task_id is None or task is None:
        return
    # A message's own headers are attributes of the request; Task.apply(headers=) keeps a dict.
    given = getattr(task.request, TASK_REQUEST_ID_HEADER, None) or (
        getattr(task.request, "headers", None) or {}
    ).get(TASK_REQUEST_ID_HEADER)
    request_id = given if isinstance(given, str) and REQUEST_ID.fullmatch(given) else None
    tokens: list[tuple[ContextVar[Any], Token[Any]]] = [
        (request_id_var, request_id_var.set(request_id)),
        (task_var, task_var.set(task.name)),
        (task_id_var, task_id_var.set(task_id)),
    ]
    if task.name == PROCESS_REPORT and args and isinstance(args[0], int):
        tokens.append((report_id_var, report_id_var.set(args[0])))
    _runs[task_id] = (time.perf_counter(), tokens)


@task_postrun.connect
def _task_finished(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    if task_id is None or task is None:
        return
    started, tokens = _runs.pop(task_id, (None, []))
    outcome = (state or "unknown").lower()
    TASK_RUNS.labels(task.name, outcome).inc()
    if started is not None:
        TASK_DURATION.labels(task.name).observe(time.perf_counter() - started)
    for var, token in reversed(tokens):
        try:
            var.reset(token)
        except ValueError:
            var.set(None)


@setup_logging.connect
def _celery_logging(loglevel: int | str | None = None, **_: Any) -> None:
    # Connected, this receiver replaces Celery's own logging set-up in workers and beat.
    configure_logging(load_settings()["LOG_FORMAT"], loglevel or logging.INFO)
