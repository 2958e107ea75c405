"""A stuck transaction holding the category locks that open cases (as a change of a category's
merge settings holds them, and every me-too search of the category waits for): the task
processing a report waits no longer than the lock timeout, says so in the log and is retried;
once the lock is gone the report is routed. No worker stalls behind it."""

from __future__ import annotations

import time

import psycopg
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.entities import Category, Report
from services.processing import merge_settings_lock_key
from tests.faults.conftest import (
    LOCK_TIMEOUT_SECONDS,
    PrivatePostgres,
    Stack,
    new_reporter_keys,
    post_report,
    report_body,
    wait_until_routed,
)

# The first retry is logged within the lock timeout and a slack for a loaded machine.
RETRY_SEEN_WITHIN_SECONDS = LOCK_TIMEOUT_SECONDS + 8.0
HELD_SECONDS = 3.0


def test_a_held_category_lock_makes_the_task_retry_not_hang(
    stack: Stack, private_postgres: PrivatePostgres, pg_sessions: sessionmaker[Session]
) -> None:
    [(reporter_id, key)] = new_reporter_keys(pg_sessions, 1)
    with pg_sessions() as session:
        categories = session.scalars(select(Category.code)).all()

    # Another connection's transaction holds the case-opening lock of every category, as a
    # stuck transaction would.
    holder = psycopg.connect(private_postgres.url())
    try:
        for code in categories:
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (merge_settings_lock_key(code),))
        offset = len(stack.log("worker"))
        answer = post_report(stack.base, key, report_body(0), "held-lock-1")
        assert answer.status == 202, answer.body

        said = f"cityrelay.process_report({answer.report_id},) failed (OperationalError"
        deadline = time.monotonic() + RETRY_SEEN_WITHIN_SECONDS
        while said not in stack.log("worker")[offset:]:
            assert time.monotonic() < deadline, (
                "the task waited on the lock instead of timing out and retrying:\n"
                + stack.log("worker")[offset:][-3000:]
            )
            time.sleep(0.1)
        retried_after = time.monotonic() - answer.sent_at
        [line, *_] = [x for x in stack.log("worker")[offset:].splitlines() if said in x]
        assert "LockNotAvailable" in line and "retry 1 of" in line, line
        with pg_sessions() as session:
            report = session.get(Report, answer.report_id)
            assert report is not None and report.state == "received"
        time.sleep(HELD_SECONDS)
    finally:
        holder.rollback()
        holder.close()
    released_at = time.monotonic()

    wait_until_routed(pg_sessions, [reporter_id], timeout=60)
    print(
        f"\nlock held: first retry {retried_after:.1f} s after the report; routed "
        f"{time.monotonic() - released_at:.1f} s after the lock was released"
    )
