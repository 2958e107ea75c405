"""Redis stopped, frozen (SIGSTOP), or back empty after a crash, while riders keep reporting:
intake keeps answering 202 at once, because the database holds the work, and once Redis is back
every report is routed by the sweep, with no manual step."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.faults.conftest import (
    ANSWER_BOUND_SECONDS,
    Load,
    PrivateRedis,
    Stack,
    assert_each_report_once,
    latency_summary,
    new_reporter_keys,
    percentile,
    wait_until_routed,
)

# How long Redis stays out in each test (production outages run longer; the mechanism is the
# same, and the suite must stay short).
OUTAGE_SECONDS = 10.0
# Reports flowing before the outage and after Redis is back.
CALM_SECONDS = 1.5
REPORTERS = 2
# Enough reports to judge the answers' times, few enough for two worker processes to route
# them in seconds once Redis is back.
PAUSE_SECONDS = 0.1


def out_and_back(redis: PrivateRedis, how: str) -> Callable[[], None]:
    """Takes Redis out the way named; answers how to bring it back."""
    if how == "stopped":
        redis.stop()
        return redis.start
    if how == "frozen":
        redis.freeze()
        return redis.thaw
    redis.kill_and_wipe()
    return redis.start


@pytest.mark.parametrize("how", ["stopped", "frozen", "lost its data"])
def test_intake_stays_fast_and_every_report_is_routed_after_redis_returns(
    stack: Stack, pg_sessions: sessionmaker[Session], how: str
) -> None:
    keys = new_reporter_keys(pg_sessions, REPORTERS)
    reporter_ids = [reporter_id for reporter_id, _ in keys]

    with Load(stack.base, keys, pause=PAUSE_SECONDS) as load:
        time.sleep(CALM_SECONDS)
        out_at = time.monotonic()
        bring_back = out_and_back(stack.redis, how)
        time.sleep(OUTAGE_SECONDS)
        bring_back()
        back_at = time.monotonic()
        time.sleep(CALM_SECONDS)

    during = load.between(out_at, back_at)
    print(f"\nRedis {how} for {OUTAGE_SECONDS:.0f} s: intake {latency_summary(during)}")
    assert len(during) > 20, "too few reports arrived during the outage to judge"
    refused = [(a.status, a.body[:200]) for a in load.answers if a.status != 202]
    assert not refused, refused[:5]
    p99 = percentile([a.seconds for a in during], 0.99)
    assert p99 < ANSWER_BOUND_SECONDS, latency_summary(during)

    wait_until_routed(
        pg_sessions,
        reporter_ids,
        describe=lambda: stack.log("worker")[-3000:] + stack.log("beat")[-2000:],
    )
    print(f"Redis {how}: every report routed {time.monotonic() - back_at:.1f} s after its return")
    reports = assert_each_report_once(pg_sessions, reporter_ids)
    assert reports == len(load.answers)
