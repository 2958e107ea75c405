"""Celery built from the Flask config, with every task running inside an app context (as in
Flask's own Celery example). ``cityrelay.worker`` builds the app a worker process runs."""

from __future__ import annotations

from datetime import timedelta

from celery import Celery
from flask import Flask

from models.session import Database
from workers.base import make_task_base

BROKER_SOCKET_TIMEOUT_SECONDS = 1.5
# Every task is stopped past these (a soft limit raises SoftTimeLimitExceeded in the task, the
# hard one kills its pool process); a task that legitimately runs longer says so (exports). A
# report whose processing was stopped is still "received", and the sweep asks for it again.
TASK_SOFT_TIME_LIMIT_SECONDS = 60
TASK_TIME_LIMIT_SECONDS = 90


def celery_init_app(app: Flask, database: Database) -> Celery:
    celery = Celery(app.name, task_cls=make_task_base(app, database))
    queue = app.config["CELERY_QUEUE"]
    celery.conf.update(
        broker_url=app.config["REDIS_URL"] or "redis://127.0.0.1:6379/0",
        broker_connection_retry_on_startup=True,
        # A web request must not hang on a dead or hung broker: the report is committed already
        # and the sweep enqueues it later. Socket timeouts bound a broker that accepts the
        # connection and then never answers; the publish retries are few and short.
        broker_transport_options={
            "visibility_timeout": 3600,
            "max_retries": 2,
            "socket_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
            "socket_connect_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
        },
        broker_connection_timeout=BROKER_SOCKET_TIMEOUT_SECONDS,
        task_publish_retry_policy={
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.2,
        },
        task_default_queue=queue,
        task_ignore_result=True,
        task_acks_late=True,
        task_soft_time_limit=TASK_SOFT_TIME_LIMIT_SECONDS,
        task_time_limit=TASK_TIME_LIMIT_SECONDS,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        beat_schedule={
            "sweep-stuck-reports": {
                "task": "cityrelay.sweep_stuck_reports",
                "schedule": timedelta(seconds=app.config["SWEEP_INTERVAL_SECONDS"]),
                "options": {"queue": queue, "expires": app.config["SWEEP_INTERVAL_SECONDS"]},
            },
            "sweep-stuck-exports": {
                "task": "cityrelay.sweep_stuck_exports",
                "schedule": timedelta(seconds=app.config["SWEEP_INTERVAL_SECONDS"]),
                "options": {"queue": queue, "expires": app.config["SWEEP_INTERVAL_SECONDS"]},
            },
            # Delivers the outbox; processing also asks for a run as soon as it wrote rows,
            # so this catches retries that came due and runs that were lost.
            "relay-notifications": {
                "task": "cityrelay.relay_notifications",
                "schedule": timedelta(seconds=app.config["OUTBOX_RELAY_INTERVAL_SECONDS"]),
                "options": {
                    "queue": queue,
                    "expires": app.config["OUTBOX_RELAY_INTERVAL_SECONDS"],
                },
            },
            # Flags overdue cases and escalates them; safe with two beats running.
            "escalate-overdue": {
                "task": "cityrelay.escalate_overdue",
                "schedule": timedelta(seconds=app.config["OVERDUE_INTERVAL_SECONDS"]),
                "options": {"queue": queue, "expires": app.config["OVERDUE_INTERVAL_SECONDS"]},
            },
            # Announces new spikes on stats.spike; each once per 24 hours, however often it runs.
            "detect-spikes": {
                "task": "cityrelay.detect_spikes",
                "schedule": timedelta(seconds=app.config["SPIKE_INTERVAL_SECONDS"]),
                "options": {"queue": queue, "expires": app.config["SPIKE_INTERVAL_SECONDS"]},
            },
        },
        include=["workers.tasks"],
    )
    celery.set_default()
    app.extensions["celery"] = celery
    return celery
