"""What operators watch, with real processes: `cityrelay web` (gunicorn, two worker processes
adding up their metrics in multiprocess mode) and `cityrelay worker --metrics-port` (a worker as
on a machine of its own). A report's request id, given to the web server, is in the worker's
JSON log line for that report; /readyz turns 200 with the worker's heartbeat."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from cityrelay.embedded import free_port
from tests.conftest import WORKER_COMMAND, kill_worker, start_worker
from tests.factories import make_key
from tests.helpers import sample_point, wait_for
from tests.live_server import running_web

pytestmark = pytest.mark.e2e

POINT = sample_point()
TIMEOUT_SECONDS = 30.0
# A queue of this module's own: the package's shared worker (tests/e2e/conftest.py) must not
# take this module's reports, whose log lines are looked for in this module's worker's log.
QUEUE = f"cityrelay-observed-{uuid.uuid4().hex[:8]}"


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, _headers, body = get(url)
    assert status == 200
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def json_lines(path: Path) -> list[dict[str, Any]]:
    """The log's lines that are JSON objects (Celery's start-up banner is not a log record)."""
    found = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


@pytest.fixture(scope="module")
def metrics_worker(
    test_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[subprocess.Popen[bytes], Path, int]]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("metrics-worker") / "worker.log"
    command = [*WORKER_COMMAND, "--metrics-port", str(port)]
    process = start_worker(test_settings, log_path, command, CITYRELAY_CELERY_QUEUE=QUEUE)
    yield process, log_path, port
    kill_worker(process)


@pytest.fixture(scope="module")
def web(
    test_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    log_path = tmp_path_factory.mktemp("observed-web") / "web.log"
    with running_web(test_settings, log_path, CITYRELAY_CELERY_QUEUE=QUEUE) as base:
        yield base, log_path


def test_a_request_id_reaches_the_worker_log_line_of_its_report(
    web: tuple[str, Path],
    metrics_worker: tuple[subprocess.Popen[bytes], Path, int],
    sessions: sessionmaker[Session],
) -> None:
    base, web_log = web
    _worker, worker_log, metrics_port = metrics_worker
    # ready: the database, the broker, and the worker's heartbeat
    wait_for(
        lambda: get(f"{base}/readyz")[0] == 200,
        TIMEOUT_SECONDS,
        "/readyz to answer 200",
        lambda: get(f"{base}/readyz")[2].decode(),
    )

    request_id = f"e2e-{uuid.uuid4().hex[:12]}"
    body = json.dumps({"text": "小区门口垃圾桶满了", "lat": POINT["lat"], "lon": POINT["lon"]})
    post = urllib.request.Request(
        f"{base}/api/v1/reports",
        data=body.encode(),
        headers={
            "Authorization": f"Bearer {make_key(sessions)}",
            "Content-Type": "application/json",
            "X-Request-Id": request_id,
        },
        method="POST",
    )
    with urllib.request.urlopen(post) as answer:
        assert answer.status == 202
        assert answer.headers["X-Request-Id"] == request_id
        report_id = json.loads(answer.read())["id"]

    def worker_line() -> dict[str, Any] | None:
        for line in json_lines(worker_log):
            if line.get("logger") == "workers.tasks" and line.get("report_id") == report_id:
                return line
        return None

    line = wait_for(
        worker_line,
        TIMEOUT_SECONDS,
        f"the worker's log line for report {report_id}",
        lambda: worker_log.read_text(errors="replace")[-4000:],
    )
    assert line["request_id"] == request_id
    assert isinstance(line["case_id"], int)
    assert {"timestamp", "level", "logger", "message"} <= set(line)
    # Celery's start-up banner is no log record: left out of a JSON log
    assert "[config]" not in worker_log.read_text(errors="replace")

    # the web server's own line for the POST, with the same id
    (access,) = [
        entry
        for entry in json_lines(web_log)
        if entry.get("logger") == "cityrelay.access" and entry.get("request_id") == request_id
    ]
    assert access["route"] == "/api/v1/reports"
    assert access["status"] == 202
    # gunicorn's own lines are JSON too: every line of the web server's log is
    assert all(line.startswith("{") for line in web_log.read_text().splitlines() if line)

    # the worker's metrics port adds up its pool processes' task runs
    on_worker = samples(f"http://127.0.0.1:{metrics_port}/metrics")
    runs = ("cityrelay_task_runs_total", (("outcome", "success"), ("task", PROCESS)))
    assert on_worker.get(runs, 0) >= 1


PROCESS = "cityrelay.process_report"


def test_the_web_servers_processes_add_up_their_counts(web: tuple[str, Path]) -> None:
    base, _log = web
    route = (
        ("method", "GET"),
        ("route", "/api/v1/reports/<id:report_id>"),
        ("status", "404"),
    )
    key = ("cityrelay_http_requests_total", route)
    before = samples(f"{base}/metrics").get(key, 0)
    for missing in range(999_999_100, 999_999_120):
        assert get(f"{base}/api/v1/reports/{missing}")[0] == 404
    # Whichever of the two gunicorn processes answers a scrape, it counts all 20 requests.
    for _scrape in range(6):
        assert samples(f"{base}/metrics").get(key, 0) == before + 20
