"""Every task runs under the one policy: late acks, redelivery when a worker dies, and retries
with backoff on transient errors only."""

from flask import Flask
from sqlalchemy.exc import IntegrityError, OperationalError

from workers.tasks import process_report, sweep_stuck_reports


def test_tasks_share_the_delivery_policy(app: Flask) -> None:
    for task in (process_report, sweep_stuck_reports):
        assert task.acks_late is True
        assert task.reject_on_worker_lost is True
        assert OperationalError in task.autoretry_for  # a locked SQLite file, a lost connection
        assert not issubclass(IntegrityError, tuple(task.autoretry_for))  # a real bug: no retry
        assert task.retry_backoff and task.retry_jitter and task.max_retries >= 5


def test_broker_settings(app: Flask) -> None:
    celery = app.extensions["celery"]
    assert celery.conf.task_acks_late and celery.conf.worker_prefetch_multiplier == 1
    assert celery.conf.task_default_queue == app.config["CELERY_QUEUE"]
    assert "sweep-stuck-reports" in celery.conf.beat_schedule
