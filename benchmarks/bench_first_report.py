"""How soon the first report is routed after `cityrelay up` says "running".

Starts `cityrelay up` as a new user would (fresh instance folder, embedded SQLite and Redis,
the model file already trained in a shared folder so that only the first start pays for
training), waits for its "running on" line, posts one report at a demo community point, and polls
its status every 10 ms until it is routed. Repeats with a fresh instance each time (`--runs`,
3; 1 under BENCH_SMOKE=1) and writes the figures, the median with min and max, to
benchmarks/results/first_report.md and <date>-first-report.json (harness.write_result).

`up` writes the demo history (300 cases) on a fresh instance before it says "running"; under
BENCH_SMOKE=1 the instance gets a few cases first (`cityrelay seed-demo-history --cases 3`), so
that `up` skips it.

    .venv/bin/python benchmarks/bench_first_report.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import harness

PROJECT_ROOT = harness.PROJECT_ROOT
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


# On a busy machine, with the demo history to write, `up` may take minutes.
START_TIMEOUT_SECONDS = 600
# Under BENCH_SMOKE=1 the instance gets this many cases before `up`, which then leaves out the
# 300 cases of the demo history (minutes on a busy machine; tests/e2e/test_up.py starts `up`
# with them).
SMOKE_HISTORY_CASES = 3
# `up` writes the demo history once on a fresh instance, before "running": part of the start.
DEMO_HISTORY_LINE = re.compile(rb"demo history seeded \((\d+) cases, .*?([\d.]+) s\)")


def one_run(model_dir: Path) -> tuple[float, float, float | None]:
    """(seconds from start to "running", seconds from POST to routed, seconds of those
    writing the demo history, if the log says)."""
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
        if harness.SMOKE:
            for command in (
                ["migrate"],
                ["seed-demo"],
                ["seed-demo-history", "--cases", str(SMOKE_HISTORY_CASES)],
            ):
                subprocess.run(
                    [*cli, *command],
                    env=env,
                    cwd=PROJECT_ROOT,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
        started = time.monotonic()
        with open(log_path, "wb") as log:
            up = subprocess.Popen([*cli, "up"], env=env, cwd=PROJECT_ROOT, stdout=log, stderr=log)
        try:
            while b"running on" not in log_path.read_bytes():
                if up.poll() is not None:
                    raise RuntimeError(
                        f"cityrelay up exited with {up.returncode}:\n"
                        + log_path.read_text(errors="replace")
                    )
                if time.monotonic() - started > START_TIMEOUT_SECONDS:
                    raise RuntimeError(
                        f"cityrelay up not running after {START_TIMEOUT_SECONDS} s:\n"
                        + log_path.read_text(errors="replace")
                    )
                time.sleep(0.02)
            running_after = time.monotonic() - started
            history = DEMO_HISTORY_LINE.search(log_path.read_bytes())
            history_s = float(history.group(2)) if history else None
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
            return running_after, time.monotonic() - posted, history_s
        finally:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(40)
            except subprocess.TimeoutExpired:
                up.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=harness.smoke_scaled(3, 1))
    parser.add_argument("--output", type=Path, default=harness.results_dir() / "first_report.md")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    with tempfile.TemporaryDirectory() as models:
        load_or_train(str(Path(models) / "classifier.joblib"))
        results = [one_run(Path(models)) for _ in range(args.runs)]
    for i, (running, routed, history) in enumerate(results, 1):
        print(
            f"run {i}: running after {running:.1f} s (demo history {history} s); "
            f"first report routed in {routed:.3f} s"
        )
    latencies = [routed for _, routed, _ in results]
    running_s = harness.summarize([running for running, _, _ in results], 1)
    histories = [history for _, _, history in results if history is not None]
    history_s = harness.summarize(histories, 1)
    routed_ms = harness.summarize([routed * 1000 for routed in latencies], 0)
    met = max(latencies) < TARGET_SECONDS
    verdict = "met" if met else "NOT met"
    lines = [
        "# First report after `cityrelay up`",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; "
        f"`benchmarks/bench_first_report.py --runs {args.runs}`" + f"{harness.SMOKE_NOTE}.",
        "",
        "Each run starts `cityrelay up` on a fresh instance folder (embedded SQLite and Redis; the "
        "classifier model file trained before the first run, so the first run includes no "
        "training; `up` writes the demo history before it says it is running), posts one report "
        'right after the "running on" line and polls its status every 10 ms.'
        + (
            f" Under BENCH_SMOKE=1 the instance had {SMOKE_HISTORY_CASES} cases before `up`, "
            "so `up` wrote no demo history."
            if harness.SMOKE
            else ""
        ),
        "",
        '| run | start to "running" | of which the demo history | POST to routed |',
        "|---|---|---|---|",
        *[
            f"| {i} | {running:.1f} s | {'–' if history is None else f'{history:.1f} s'} "
            f"| {routed * 1000:.0f} ms |"
            for i, (running, routed, history) in enumerate(results, 1)
        ],
        "",
        f'Start to "running": {harness.shown(running_s, " s")}; POST to routed: '
        f"{harness.shown(routed_ms, ' ms')} (median, min–max); target under "
        f"{TARGET_SECONDS:.0f} s for every run: {verdict}.",
        "",
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.output}")
    harness.write_result(
        "first-report",
        {
            "parameters": {"runs": args.runs},
            "start_to_running_s": running_s,
            "demo_history_s": history_s,
            "post_to_routed_ms": routed_ms,
            "target_s": TARGET_SECONDS,
            "target_met": met,
        },
    )


if __name__ == "__main__":
    main()
