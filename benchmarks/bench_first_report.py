"""How soon the first report is routed after `cityrelay up` says "running".

Starts `cityrelay up` as a new user would (fresh instance folder, embedded SQLite and Redis,
the model file already trained in a shared folder so that only the first start pays for
training), waits for its "running on" line, posts one report at a demo community point, and polls
its status every 10 ms until it is routed. Repeats with a fresh instance each time and writes
the figures to benchmarks/results/first_report.md.

    .venv/bin/python benchmarks/bench_first_report.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from cityrelay.embedded import free_port  # noqa: E402
from models.seed import demo_city  # noqa: E402
from routing.classify import load_or_train  # noqa: E402

TARGET_SECONDS = 1.0


def call(method: str, url: str, body: dict | None = None, headers: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict = json.loads(response.read())
        return answer


def one_run(model_dir: Path) -> tuple[float, float]:
    """(seconds from start to "running", seconds from POST to routed)."""
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
        env.update(
            PORT=str(port),
            CITYRELAY_INSTANCE_PATH=str(Path(folder) / "instance"),
            CITYRELAY_CLASSIFIER_PATH=str(model_dir / "classifier.joblib"),
            PYTHONUNBUFFERED="1",
        )
        log_path = Path(folder) / "up.log"
        cli = [sys.executable, "-m", "cityrelay.cli"]
        started = time.monotonic()
        with open(log_path, "wb") as log:
            up = subprocess.Popen([*cli, "up"], env=env, cwd=PROJECT_ROOT, stdout=log, stderr=log)
        try:
            while b"running on" not in log_path.read_bytes():
                if up.poll() is not None or time.monotonic() - started > 300:
                    raise RuntimeError(log_path.read_text(errors="replace"))
                time.sleep(0.02)
            running_after = time.monotonic() - started
            key = subprocess.run(
                [*cli, "create-key", "--role", "reporter"],
                env=env,
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            point = demo_city()["sample_points"][0]
            base = f"http://127.0.0.1:{port}"
            posted = time.monotonic()
            accepted = call(
                "POST",
                f"{base}/api/v1/reports",
                {"text": "小区门口垃圾桶满了", "lat": point["lat"], "lon": point["lon"]},
                {"Authorization": f"Bearer {key}"},
            )
            while call("GET", accepted["status_url"])["status"] == "received":
                if time.monotonic() - posted > 60:
                    raise RuntimeError("not routed within 60 s")
                time.sleep(0.01)
            return running_after, time.monotonic() - posted
        finally:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(40)
            except subprocess.TimeoutExpired:
                up.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--output", type=Path, default=PROJECT_ROOT / "benchmarks/results/first_report.md"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as models:
        load_or_train(str(Path(models) / "classifier.joblib"))
        results = [one_run(Path(models)) for _ in range(args.runs)]
    for i, (running, routed) in enumerate(results, 1):
        print(f"run {i}: running after {running:.1f} s; first report routed in {routed:.3f} s")
    latencies = [routed for _, routed in results]
    median = statistics.median(latencies)
    verdict = "met" if max(latencies) < TARGET_SECONDS else "NOT met"
    lines = [
        "# First report after `cityrelay up`",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; "
        f"`benchmarks/bench_first_report.py --runs {args.runs}`.",
        "",
        "Each run starts `cityrelay up` on a fresh instance folder (embedded SQLite and Redis; the "
        "classifier model file trained before the first run, so the first run includes no "
        'training), posts one report right after the "running on" line and polls its status '
        "every 10 ms.",
        "",
        '| run | start to "running" | POST to routed |',
        "|---|---|---|",
        *[
            f"| {i} | {running:.1f} s | {routed * 1000:.0f} ms |"
            for i, (running, routed) in enumerate(results, 1)
        ],
        "",
        f"Median POST to routed: {median * 1000:.0f} ms; target under {TARGET_SECONDS:.0f} s "
        f"for every run: {verdict}.",
        "",
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
