"""The one task base: an app context and a unit of work per run, late acks, and retries with
backoff for the errors that go away by themselves."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis.exceptions
from celery import Celery, Task
from flask import Flask
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from models.session import Database, Dispatch, unit_of_work

logger = logging.getLogger(__name__)

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


def dispatcher(celery: Celery, log: logging.Logger = logger) -> Dispatch:
    """Sends a task by name after a commit. A broker outage must not fail the request or task
    that committed: the rows are in the database, and the periodic sweep enqueues them again."""

    def dispatch(task_name: str, args: tuple[Any, ...]) -> None:
        try:
            celery.send_task(task_name, args=args)
        except Exception:
            log.warning(
                "could not enqueue %s%s; the sweep will retry", task_name, args, exc_info=True
            )

    return dispatch


def make_task_base(app: Flask, database: Database) -> type[Task]:
    class CityRelayTask(Task):  # type: ignore[misc]
        acks_late = True
        reject_on_worker_lost = True
        autoretry_for = TRANSIENT_ERRORS
        retry_backoff = 2
        retry_backoff_max = 300
        retry_jitter = True
        max_retries = 10
        flask_app = app
        db = database

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

        @contextmanager
        def unit_of_work(self) -> Iterator[Session]:
            """One transaction, committed once; the tasks it asked for
            (``enqueue_after_commit``) are sent only after it committed."""
            with unit_of_work(database.writer_sessions, dispatcher(self.app)) as session:
                yield session

    return CityRelayTask
