"""PostgreSQL restarted while riders keep reporting: every request fails cleanly (503 with
Retry-After, never a 500), nothing is half written, and once it is back the web server and the
worker work again by themselves; every report accepted, before or after, is routed."""

from __future__ import annotations

import json
import time

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.entities import Report
from tests.faults.conftest import (
    Load,
    PrivatePostgres,
    Stack,
    assert_each_report_once,
    latency_summary,
    new_reporter_keys,
    reporter_reports,
    wait_until_routed,
)

DOWN_SECONDS = 4.0
CALM_SECONDS = 2.0


def test_a_postgresql_restart_under_load_fails_requests_cleanly_and_recovers_by_itself(
    stack: Stack, private_postgres: PrivatePostgres, pg_sessions: sessionmaker[Session]
) -> None:
    keys = new_reporter_keys(pg_sessions, 2)
    reporter_ids = [reporter_id for reporter_id, _ in keys]

    with Load(stack.base, keys, pause=0.1) as load:
        time.sleep(CALM_SECONDS)
        down_at = time.monotonic()
        private_postgres.stop()
        time.sleep(DOWN_SECONDS)
        private_postgres.start()
        up_at = time.monotonic()
        time.sleep(CALM_SECONDS)

    statuses = sorted({a.status for a in load.answers})
    unavailable = [a for a in load.answers if a.status == 503]
    while_down = latency_summary(load.between(down_at, up_at))
    print(
        f"\nPostgreSQL down {DOWN_SECONDS:.0f} s: {len(load.answers)} answers {statuses}, "
        f"{len(unavailable)} of them 503; while down: {while_down}"
    )
    assert statuses == [202, 503], [
        a.body[:300] for a in load.answers if a.status not in (202, 503)
    ]
    assert all(a.retry_after and int(a.retry_after) > 0 for a in unavailable)
    assert all(json.loads(a.body)["error"]["code"] == "service_unavailable" for a in unavailable)
    # The web server is back without a restart: the last answers were reports accepted.
    assert all(a.status == 202 for a in load.between(up_at + 1.0, time.monotonic()))

    accepted = {a.report_id for a in load.answers if a.status == 202}
    with pg_sessions() as session:
        reports = reporter_reports(session, reporter_ids)
        # Every report the riders were told about is stored, and nothing else: a 503 wrote
        # nothing that a retry with the same Idempotency-Key would not find.
        assert {r.id for r in reports} == accepted
        keys_used = session.scalar(
            select(func.count(func.distinct(Report.idempotency_key))).where(
                Report.reporter_id.in_(reporter_ids)
            )
        )
        assert keys_used == len(reports)
        assert all(r.text and r.lat is not None and r.fingerprint for r in reports)

    # The worker's tasks that met the restart were retried; the sweep asks for any left.
    recovery = wait_until_routed(
        pg_sessions, reporter_ids, describe=lambda: stack.log("worker")[-3000:]
    )
    print(f"PostgreSQL back: every report routed {recovery:.1f} s after the load stopped")
    assert_each_report_once(pg_sessions, reporter_ids)
