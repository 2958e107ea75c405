"""The one task base: an app context and a unit of work per run, late acks, and retries with
backoff for the errors that go away by themselves."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis.exceptions
from celery import Celery, Task
from flask import Flask
from kombu import Connection
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from models.session import Database, Dispatch, unit_of_work
from services.notifications import RELAY_NOTIFICATIONS

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


# A send after a commit waits at most this long for the broker (connecting, and each reply),
# so a hung broker (frozen, or behind a dead network path) costs one request a quarter second.
PUBLISH_TIMEOUT_SECONDS = 0.25
# After a failed send nothing is sent for this long: requests answer at once, and the periodic
# sweep enqueues the reports committed meanwhile (it finds every report still "received").
BREAKER_OPEN_SECONDS = 5.0

# Tasks without arguments whose one run does the work of every request made before it starts
# (a relay run delivers all the rows due): while a run waits in the queue a request sends
# nothing, so a busy worker runs one relay per queue wait, not one per report. The mark that
# a run is queued lapses after this long, in case its message was lost (beat asks on its own
# schedule besides).
COALESCED_TASKS = frozenset({RELAY_NOTIFICATIONS})
COALESCE_SECONDS = 5.0


def queued_mark(task_name: str) -> str:
    """The Redis key that says a run of ``task_name`` is queued and has not started."""
    return f"cityrelay:queued:{task_name}"


class BrokerBreaker:
    """A circuit breaker for the broker, one per process: open for ``open_seconds`` after a
    failure, so that an outage costs one request its timeout, not every request."""

    def __init__(
        self,
        open_seconds: float = BREAKER_OPEN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.open_seconds = open_seconds
        self._clock = clock
        self._open_until = 0.0

    def is_open(self) -> bool:
        return self._clock() < self._open_until

    def failed(self) -> None:
        self._open_until = self._clock() + self.open_seconds

    def succeeded(self) -> None:
        self._open_until = 0.0


class Dispatcher:
    """What ``dispatcher`` builds: a ``Dispatch``, and ``started`` for the tasks it
    coalesces."""

    def __init__(self, send: Dispatch, started: Callable[[str], None]) -> None:
        self._send = send
        self.started = started

    def __call__(self, task_name: str, args: tuple[Any, ...]) -> None:
        self._send(task_name, args)


def dispatcher(
    celery: Celery,
    log: logging.Logger = logger,
    breaker: BrokerBreaker | None = None,
    timeout: float = PUBLISH_TIMEOUT_SECONDS,
    coalesced: frozenset[str] = COALESCED_TASKS,
) -> Dispatcher:
    """Sends a task by name after a commit. A broker outage must not fail, nor slow, the request
    or task that committed: the rows are in the database, and the periodic sweep enqueues them
    again. Sends go over one connection of this process with short timeouts and no retries;
    after a failure the breaker skips sending for a while (``BREAKER_OPEN_SECONDS``).

    A task of ``coalesced`` is sent only if no run of it is queued already (``queued_mark``);
    the run calls ``started`` as it begins, so a request made after that sends a new one."""
    breaker = breaker or BrokerBreaker()
    lock = threading.Lock()
    held: dict[str, Any] = {"pid": None, "connection": None}

    def connection() -> Connection:
        # Never a connection opened before a fork (gunicorn and Celery fork their workers).
        if held["connection"] is None or held["pid"] != os.getpid():
            held["connection"] = celery.connection_for_write(
                connect_timeout=timeout,
                transport_options={
                    "socket_timeout": timeout,
                    "socket_connect_timeout": timeout,
                    "max_retries": 0,
                },
            )
            held["pid"] = os.getpid()
        return held["connection"]

    def drop_connection() -> None:
        stale, held["connection"] = held["connection"], None
        if stale is not None:
            try:
                stale.release()
            except Exception:  # a broken connection may fail to close; it is gone either way
                log.debug("closing the broker connection failed", exc_info=True)

    def dispatch(task_name: str, args: tuple[Any, ...]) -> None:
        with lock:
            if breaker.is_open():
                log.warning("broker unavailable: %s%s left to the sweep", task_name, args)
                return
            try:
                if task_name in coalesced and not args:
                    client = connection().default_channel.client
                    ttl_ms = round(COALESCE_SECONDS * 1000)
                    if not client.set(queued_mark(task_name), "1", nx=True, px=ttl_ms):
                        return  # a run is queued and has not started: it does this work
                celery.send_task(task_name, args=args, connection=connection(), retry=False)
            except Exception:
                breaker.failed()
                drop_connection()
                log.warning(
                    "could not enqueue %s%s; the sweep will retry; no sends for %.0f s",
                    task_name,
                    args,
                    breaker.open_seconds,
                    exc_info=True,
                )
            else:
                breaker.succeeded()

    def started(task_name: str) -> None:
        with lock:
            if breaker.is_open():
                return  # the mark lapses by itself
            try:
                connection().default_channel.client.delete(queued_mark(task_name))
            except Exception:
                breaker.failed()
                drop_connection()
                log.warning("could not clear the queued mark of %s", task_name, exc_info=True)

    return Dispatcher(dispatch, started)


def make_task_base(app: Flask, database: Database) -> type[Task]:
    # One dispatcher (its connection and breaker) for every task this process runs.
    dispatchers: dict[Celery, Dispatcher] = {}

    def dispatcher_of(celery: Celery) -> Dispatcher:
        found = dispatchers.get(celery)
        if found is None:
            found = dispatchers.setdefault(celery, dispatcher(celery))
        return found

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
            if self.name in COALESCED_TASKS:
                # From now on a request needs a run of its own: this one may have read its rows
                # already.
                dispatcher_of(self.app).started(self.name)
            with app.app_context():
                return self.run(*args, **kwargs)

        def on_retry(
            self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
        ) -> None:
            # A lock or statement timeout, a lost connection: said once per attempt, in words.
            logger.warning(
                "%s%s failed (%s: %s); retry %d of %d later",
                self.name,
                tuple(args),
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
                self.request.retries + 1,
                self.max_retries,
            )

        @contextmanager
        def unit_of_work(self) -> Iterator[Session]:
            """One transaction, committed once; the tasks it asked for
            (``enqueue_after_commit``) are sent only after it committed."""
            with unit_of_work(database.writer_sessions, dispatcher_of(self.app)) as session:
                yield session

    return CityRelayTask
