"""Thirty retries of one report at the same moment, through the real web server's processes
on PostgreSQL: one report, the same answer for each; the same key with another body is 422."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.entities import Report
from tests.faults.conftest import Stack, new_reporter_keys, post_report, report_body

RETRIES = 30


def test_thirty_concurrent_retries_with_one_key_make_one_report(
    stack: Stack, pg_sessions: sessionmaker[Session]
) -> None:
    [(reporter_id, key)] = new_reporter_keys(pg_sessions, 1)
    body = report_body(7)
    ready = threading.Barrier(RETRIES)

    def retry(_: int):  # type: ignore[no-untyped-def]
        ready.wait(30)
        return post_report(stack.base, key, body, "one-tap-many-retries")

    with ThreadPoolExecutor(max_workers=RETRIES) as pool:
        answers = list(pool.map(retry, range(RETRIES)))

    assert [a.status for a in answers] == [202] * RETRIES, [a.body[:200] for a in answers]
    assert len({a.report_id for a in answers}) == 1
    with pg_sessions() as session:
        stored = session.scalar(
            select(func.count()).select_from(Report).where(Report.reporter_id == reporter_id)
        )
    assert stored == 1

    other = post_report(stack.base, key, {**body, "text": "另一件事"}, "one-tap-many-retries")
    assert other.status == 422, other.body
    assert json.loads(other.body)["error"]["code"] == "idempotency_key_reused"
