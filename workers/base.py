"""The one task base: an app context and a unit of work per run, late acks, and retries with
backoff for the errors that go away by themselves."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis.exceptions
from celery import Task
from flask import Flask
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from models.session import unit_of_work

# Lost connections, a locked SQLite file, a restarting broker: worth trying again later.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    BrokerError,
    ConnectionError,
    TimeoutError,
)


def make_task_base(app: Flask) -> type[Task]:
    class CityRelayTask(Task):  # type: ignore[misc]
        acks_late = True
        reject_on_worker_lost = True
        autoretry_for = TRANSIENT_ERRORS
        retry_backoff = 2
        retry_backoff_max = 300
        retry_jitter = True
        max_retries = 10
        flask_app = app

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

        @contextmanager
        def unit_of_work(self) -> Iterator[Session]:
            """One transaction, committed once; callbacks registered with run_after_commit
            (such as enqueueing the next task) run only after it committed."""
            with unit_of_work(app.extensions["cityrelay.db"].writer_sessions) as session:
                yield session

    return CityRelayTask
