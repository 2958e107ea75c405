"""Every task runs under the one delivery policy, seen in what tasks do, not in their flags:
transient errors are retried with a growing, jittered backoff; real bugs are not retried; and a
worker process killed in the middle of a task hands its message to another worker, which routes
the report once."""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from statistics import mean
from typing import Any

import pytest
import redis
from celery import Celery
from celery.exceptions import Retry
from celery.signals import task_retry
from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from models.entities import Case, CaseEvent, OutboxMessage, Report
from tests.conftest import kill_worker, launch_worker, wait_until_ready
from tests.factories import make_report, make_reporter
from tests.helpers import wait_for, wait_for_log

# Importing the tasks' module registers them on every app built from now on, as in a worker.
from workers.tasks import PROCESS_REPORT

TASKS = (PROCESS_REPORT, "cityrelay.sweep_stuck_reports", "cityrelay.escalate_overdue")

# Celery's exponential backoff: the n-th retry (from 0) waits a random whole number of seconds
# between 0 and min(retry_backoff_max, retry_backoff * 2**n).
BACKOFF_FACTOR = 2
BACKOFF_MAX_SECONDS = 300
# Enough runs that the average waits cannot be mistaken for each other by chance.
RUNS = 6
# Remote control asks get their answers in milliseconds; a loaded CI machine may take a while.
CONTROL_TIMEOUT_SECONDS = 5.0
KILL_TEST_TIMEOUT_SECONDS = 30.0
QUEUE_ENV = "CITYRELAY_CELERY_QUEUE"


@pytest.fixture
def retries() -> Iterator[list[tuple[str, int, Retry]]]:
    """Each retry a task asks for, as it asks: (task name, retries so far, the Retry)."""
    seen: list[tuple[str, int, Retry]] = []

    def record(sender: Any, request: Any, reason: Retry, **_: Any) -> None:
        seen.append((sender.name, request.retries, reason))

    task_retry.connect(record, weak=False)
    yield seen
    task_retry.disconnect(record)


def ceiling(retry_number: int) -> int:
    return min(BACKOFF_MAX_SECONDS, BACKOFF_FACTOR * 2**retry_number)


@pytest.mark.parametrize("task_name", TASKS)
def test_a_transient_database_error_is_retried_with_growing_backoff(
    make_app: Callable[..., Flask],
    tmp_path: Path,
    retries: list[tuple[str, int, Retry]],
    task_name: str,
) -> None:
    # The database file's folder does not exist: every attempt fails to connect, as when the
    # database is down, with the driver's own OperationalError.
    unreachable = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'absent' / 'cityrelay.db'}")
    task = unreachable.extensions["celery"].tasks[task_name]
    args = (1,) if task_name == PROCESS_REPORT else ()

    for _ in range(RUNS):
        result = task.apply(args=args)
        # after its last retry the task fails with the error itself
        assert result.failed() and isinstance(result.result, OperationalError)

    waits: dict[int, list[float]] = defaultdict(list)
    for name, retry_number, retry in retries:
        assert name == task_name and isinstance(retry.exc, OperationalError)
        waits[retry_number].append(float(retry.when))
    assert sorted(waits) == list(range(task.max_retries))
    assert all(len(w) == RUNS for w in waits.values())
    for retry_number, seconds in waits.items():
        assert all(0 <= s <= ceiling(retry_number) for s in seconds), (retry_number, seconds)
    # jittered: runs that fail alike do not all come back at the same moment
    assert len(set(waits[5])) > 1
    # growing: the later retries wait far longer than the first ones
    first, late = [s for n in (0, 1, 2) for s in waits[n]], [s for n in (6, 7, 8) for s in waits[n]]
    assert mean(late) > 10 * mean(first), (mean(first), mean(late))


def test_an_integrity_error_is_not_retried(
    app: Flask, sessions: sessionmaker[Session], db: Session, retries: list
) -> None:
    # A task with a real bug: it files one report twice under one idempotency key, which the
    # database refuses. Trying again can only fail again.
    attempts: list[int] = []

    @app.extensions["celery"].task(bind=True, name="tests.file_one_tap_twice", shared=False)
    def file_one_tap_twice(self: Any, reporter_id: int) -> None:
        attempts.append(self.request.retries)
        with self.unit_of_work() as session:
            for _ in range(2):
                session.add(
                    Report(
                        reporter_id=reporter_id,
                        text="井盖没了",
                        fingerprint="x",
                        idempotency_key="tap-1",
                    )
                )
                session.flush()

    reporter_id, _key = make_reporter(sessions)
    result = file_one_tap_twice.apply(args=(reporter_id,))
    assert result.failed() and isinstance(result.result, IntegrityError)
    assert "idempotency" in str(result.result)  # the unique key, not some other mistake
    assert attempts == [0] and retries == []
    # the unit of work rolled back: not even the first report is kept
    reports = select(func.count()).select_from(Report).where(Report.reporter_id == reporter_id)
    assert db.scalar(reports) == 0


# ---------- a worker killed in the middle of a task ----------


def celery_worker_command(node: str, queue: str) -> list[str]:
    """A worker as `celery -A cityrelay.worker worker` runs it, with a node name of its own so
    remote control can address it; one pool process, so one task at a time."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "cityrelay.worker",
        "worker",
        "--loglevel=INFO",
        "--concurrency=1",
        f"--hostname={node}",
        f"--queues={queue}",
        "--without-gossip",
        "--without-mingle",
    ]


def control_ok(replies: list[dict[str, dict[str, str]]] | None, node: str) -> bool:
    return bool(replies) and any("ok" in reply.get(node, {}) for reply in replies or [])


def active_task_pid(celery: Celery, node: str, task_id: str) -> int | None:
    """The pid of the pool process of ``node`` running ``task_id``, once one runs it."""
    replies = celery.control.inspect(destination=[node], limit=1, timeout=1).active() or {}
    for task in replies.get(node, []):
        if task["id"] == task_id:
            return int(task["worker_pid"])
    return None


@pytest.mark.committed  # the workers are other processes: they see committed rows only
def test_a_worker_killed_mid_task_hands_the_report_to_another_worker(
    app: Flask,
    test_settings: dict[str, Any],
    sessions: sessionmaker[Session],
    db: Session,
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    celery: Celery = app.extensions["celery"]
    run = uuid.uuid4().hex[:8]
    queue = f"{test_settings['CELERY_QUEUE']}-kill-{run}"
    idle_queue = f"{queue}-idle"
    first, second = f"first-{run}@localhost", f"second-{run}@localhost"
    logs = {first: tmp_path / "first.log", second: tmp_path / "second.log"}
    report_id = make_report(sessions, text="小区门口垃圾桶满了")

    # The first worker takes the report; the second waits on a queue of its own until needed.
    workers = {
        node: launch_worker(
            test_settings, logs[node], celery_worker_command(node, consumes), **{QUEUE_ENV: queue}
        )
        for node, consumes in ((first, queue), (second, idle_queue))
    }
    blocker = sessions()
    try:
        for node, process in workers.items():
            wait_until_ready(process, logs[node])
        # Hold the report's row (on SQLite the whole database) so the task cannot finish: it
        # waits on the lock, in the middle of its transaction.
        blocker.execute(update(Report).where(Report.id == report_id).values(state=Report.state))
        task_id = celery.send_task(PROCESS_REPORT, args=(report_id,), queue=queue).id
        pid = wait_for(
            lambda: active_task_pid(celery, first, task_id),
            KILL_TEST_TIMEOUT_SECONDS,
            f"the first worker to run task {task_id}",
            lambda: logs[first].read_text(errors="replace"),
        )
        # The first worker takes nothing more; the second starts on the report's queue.
        assert control_ok(
            celery.control.cancel_consumer(
                queue, destination=[first], reply=True, timeout=CONTROL_TIMEOUT_SECONDS
            ),
            first,
        )
        assert control_ok(
            celery.control.add_consumer(
                queue, destination=[second], reply=True, timeout=CONTROL_TIMEOUT_SECONDS
            ),
            second,
        )

        os.kill(pid, signal.SIGKILL)
        # The first worker gives the unfinished message back (reject_on_worker_lost) instead of
        # acknowledging it, and the second worker receives it.
        wait_for_log(logs[first], "WorkerLostError", KILL_TEST_TIMEOUT_SECONDS)
        wait_for_log(
            logs[second], f"Task {PROCESS_REPORT}[{task_id}] received", KILL_TEST_TIMEOUT_SECONDS
        )
        blocker.rollback()
        second_log = wait_for_log(
            logs[second], f"Task {PROCESS_REPORT}[{task_id}] succeeded", KILL_TEST_TIMEOUT_SECONDS
        )
    finally:
        blocker.close()
        # Each has finished what it was given (the killed one gave its message back).
        for process in workers.values():
            kill_worker(process)
        redis_client.delete(queue, idle_queue)

    assert "routed" in second_log.split(f"[{task_id}] succeeded")[1].splitlines()[0]
    assert f"[{task_id}] succeeded" not in logs[first].read_text(errors="replace")
    # routed exactly once: one case, one history, one set of notifications
    db.expire_all()
    report = db.get(Report, report_id)
    assert report is not None and report.state == "processed" and report.case_id is not None
    cases = db.scalars(select(Case).join(Report).where(Report.id == report_id)).all()
    assert [case.id for case in cases] == [report.case_id]
    events = db.scalars(
        select(CaseEvent.action).where(CaseEvent.case_id == report.case_id).order_by(CaseEvent.id)
    ).all()
    assert events == ["received", "classified", "routed"]
    outbox = (
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.case_id == report.case_id)
    )
    assert db.scalar(outbox) == 2
