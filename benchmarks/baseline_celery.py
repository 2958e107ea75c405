"""The yardstick for bench_pipeline.py: a Celery app whose one task does nothing, configured as
CityRelay's worker is (cityrelay/celery_app.py and workers/base.py): the same broker, late acks,
a prefetch of one, no results, the same time limits and transport options. Whatever a report
costs above this task is CityRelay's own.

    celery -A benchmarks.baseline_celery worker --concurrency 2 -Q bench_noop \
        --without-gossip --without-mingle
"""

from __future__ import annotations

import os

from celery import Celery

from cityrelay.celery_app import (
    BROKER_SOCKET_TIMEOUT_SECONDS,
    TASK_SOFT_TIME_LIMIT_SECONDS,
    TASK_TIME_LIMIT_SECONDS,
)

NOOP_TASK = "bench.noop"
NOOP_QUEUE = os.environ.get("BENCH_NOOP_QUEUE", "bench_noop")

app = Celery("bench_noop")
app.conf.update(
    broker_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    broker_connection_retry_on_startup=True,
    broker_transport_options={
        "visibility_timeout": 3600,
        "max_retries": 2,
        "socket_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
        "socket_connect_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
    },
    broker_connection_timeout=BROKER_SOCKET_TIMEOUT_SECONDS,
    task_default_queue=NOOP_QUEUE,
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
)


@app.task(name=NOOP_TASK, acks_late=True, reject_on_worker_lost=True)
def noop(_report_id: int) -> str:
    return "nothing"
