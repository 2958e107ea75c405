"""A worker loads the classifier before it forks its pool, so its first report waits for no
import: the pool processes hold scikit-learn from the start, shared copy-on-write. (The web and
beat never import it: tests/integration/test_process_imports.py.)"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import WORKER_COMMAND, kill_worker, start_worker

pytestmark = pytest.mark.e2e

CELERY_COMMAND = [
    sys.executable,
    *("-m", "celery", "-A", "cityrelay.worker", "worker", "--concurrency", "2"),
    *("--loglevel", "INFO", "--without-gossip", "--without-mingle"),
]


def children_of(pid: int) -> list[int]:
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


def mapped_files(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.parametrize("command", [WORKER_COMMAND, CELERY_COMMAND], ids=["cityrelay", "celery"])
def test_pool_processes_hold_the_classifier_before_their_first_task(
    test_settings: dict[str, Any], tmp_path: Path, command: list[str]
) -> None:
    # A queue of its own: this worker takes no task of another test, and is given none.
    queue = f"cityrelay-preload-{uuid.uuid4().hex[:8]}"
    process = start_worker(
        test_settings, tmp_path / "worker.log", command, CITYRELAY_CELERY_QUEUE=queue
    )
    try:
        pool = children_of(process.pid)
        assert len(pool) == 2
        for pid in [process.pid, *pool]:
            assert "/sklearn/" in mapped_files(pid), f"process {pid} has no scikit-learn"
    finally:
        kill_worker(process)
