"""`cityrelay up` as a new user runs it: fresh instance folder, embedded SQLite and Redis, real
worker, beat and web processes; a report posted over HTTP comes back routed; Ctrl-C stops all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from cityrelay.embedded import free_port
from routing.classify import model_id
from tests.helpers import sample_point

pytestmark = pytest.mark.e2e

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def http(
    method: str, url: str, body: dict | None = None, headers: dict | None = None
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def children_of(pid: int) -> list[int]:
    result = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True
    )
    return [int(p) for p in result.stdout.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def test_up_runs_the_whole_service_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    # A new user has no classifier model file either: `up` trains one into the instance folder.
    inherited = {"DATABASE_URL", "REDIS_URL", "CITYRELAY_CLASSIFIER_PATH"}
    env = {k: v for k, v in os.environ.items() if k not in inherited}
    env.update(
        PORT=str(port), CITYRELAY_INSTANCE_PATH=str(tmp_path / "instance"), PYTHONUNBUFFERED="1"
    )
    cli = [sys.executable, "-m", "cityrelay.cli"]
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115 - closed in finally
    up = subprocess.Popen(
        [*cli, "up"], env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while b"running on" not in (tmp_path / "up.log").read_bytes():
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "up.log").read_text()
            time.sleep(0.3)
        assert (tmp_path / "instance" / "cityrelay.db").exists()
        startup = (tmp_path / "up.log").read_bytes()
        assert b"demo city seeded" in startup
        # ... with a past for the dashboards, which the first report below must not join.
        assert b"demo history seeded (" in startup
        assert b"training it from the bundled corpus" in startup
        assert f"classifier {model_id()} ready".encode() in startup
        assert (tmp_path / "instance" / "classifier.joblib").is_file()
        # "running" only once a worker is consuming: Celery logs "ready." when it starts to.
        assert b" ready." in startup.split(b"running on")[0], startup.decode(errors="replace")

        key = subprocess.run(
            [*cli, "create-key", "--role", "reporter", "--name", "王师傅"],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert key.startswith("cr_")

        point = sample_point()
        status, accepted = http(
            "POST",
            f"{base}/api/v1/reports",
            {"text": "这边垃圾桶满了没人清", "lat": point["lat"], "lon": point["lon"]},
            {"Authorization": f"Bearer {key}", "Idempotency-Key": "up-test-1"},
        )
        assert status == 202
        posted_at = time.monotonic()
        while True:
            status, report = http("GET", accepted["status_url"])
            if report["status"] != "received" or time.monotonic() - posted_at > 20:
                break
            time.sleep(0.1)
        assert report["status"] == "routed", report
        assert report["office"]["code"] == point["office"]
        assert [e["action"] for e in report["events"]] == ["received", "classified", "routed"]
        assert report["classifier_model"] == model_id()

        status, offices = http("GET", f"{base}/api/v1/offices")
        assert status == 200 and any(o["code"] == point["office"] for o in offices)

        children = children_of(up.pid)
        assert len(children) == 4  # redis, worker, beat, web
    finally:
        up.send_signal(signal.SIGINT)
        try:
            code = up.wait(40)
        finally:
            if up.poll() is None:
                up.kill()
            log.close()
    assert code == 0, (tmp_path / "up.log").read_text()
    assert not [pid for pid in children if alive(pid)]
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{base}/api/v1/health", timeout=2)
