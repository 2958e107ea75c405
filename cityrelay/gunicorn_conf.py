"""gunicorn's configuration for `cityrelay web`: log lines in CITYRELAY_LOG_FORMAT, and the
multiprocess metrics of a worker that exited marked dead (prometheus_client's rule).

gunicorn's master process imports this and never the app: keep its imports light (the master
would otherwise hold the app's libraries for nothing, on top of every worker)."""

from __future__ import annotations

from typing import Any

from cityrelay.logs import gunicorn_logconfig
from cityrelay.settings import load_settings

logconfig_dict = gunicorn_logconfig(load_settings()["LOG_FORMAT"])


def child_exit(_server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
