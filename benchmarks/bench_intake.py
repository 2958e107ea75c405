"""Intake throughput and latency: CityRelay's `POST /api/v1/reports` against the bare stack's.

Both run side by side in one run, on the same PostgreSQL and Redis (harness.stack) and with the
same gunicorn settings as `cityrelay web` (2 workers, gthread, 8 threads): CityRelay with
authentication (a reporter's bearer key), idempotency (a key per request), validation, rate limits
(counted in Redis, set high enough not to refuse) and its task sent after commit; the baseline
(baseline_intake.py) validates, inserts one row with the ORM and calls `task.delay()`. wrk with
16 connections; each round is 10 s, alternating the two servers so that anything else the machine
does hits both alike. Two bodies: a 40-character Chinese report as JSON, and the same as
multipart with one 200 KB photo (CityRelay decodes and re-encodes it without metadata; the
baseline stores the bytes as sent).

    .venv/bin/python benchmarks/bench_intake.py [--rounds 3] [--seconds 10] [--connections 16]

No worker runs: the tasks wait in Redis, so this measures intake alone.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import harness

TEXT = "小区门口的垃圾桶已经满了好几天，垃圾溢出来散落在人行道上，气味很大，请尽快清运。"
POINT = {"lat": 31.154114, "lon": 121.737424}  # a demo-city community
PHOTO_BYTES = 200 * 1024
TARGET_RATIO = 0.85
LUA = harness.HERE / "load" / "post_report.lua"


def photo_jpeg(size: int = PHOTO_BYTES) -> bytes:
    """A JPEG of about `size` bytes: noise, which compresses as badly as a real photo."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(1)
    side = 160
    while True:
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=85)
        if buffer.tell() >= size:
            return buffer.getvalue()
        side += 16


def bodies(folder: Path) -> dict[str, tuple[Path, str]]:
    """variant -> (body file, Content-Type)."""
    json_body = folder / "report.json"
    import json

    json_body.write_text(json.dumps({"text": TEXT, **POINT}, ensure_ascii=False))
    boundary = "cityrelay-bench-" + uuid.uuid4().hex
    parts = [
        *(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in (("text", TEXT), ("lat", POINT["lat"]), ("lon", POINT["lon"]))
        )
    ]
    multipart = (
        "".join(parts).encode()
        + (
            f'--{boundary}\r\nContent-Disposition: form-data; name="photos"; '
            'filename="photo.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
    )
    multipart += photo_jpeg() + f"\r\n--{boundary}--\r\n".encode()
    photo_body = folder / "report-photo.multipart"
    photo_body.write_bytes(multipart)
    return {
        "json": (json_body, "application/json"),
        "photo": (photo_body, f"multipart/form-data; boundary={boundary}"),
    }


def cityrelay_env(database_url: str, redis_url: str, instance: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYRELAY_")}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CITYRELAY_INSTANCE_PATH=str(instance),
        PYTHONPATH=str(harness.PROJECT_ROOT),
        # Counted as in production, but never refusing the benchmark's one key and address.
        CITYRELAY_RATE_LIMIT_REPORTS_PER_KEY="100000000/minute",
        CITYRELAY_RATE_LIMIT_INTAKE_PER_IP="100000000/minute",
    )
    return env


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cityrelay.cli", *args],
        env=env,
        cwd=harness.PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cityrelay {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout.strip()


def gunicorn_argv(port: int, workers: int, threads: int, app: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        app,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=harness.smoke_scaled(3, 1))
    parser.add_argument("--seconds", type=int, default=harness.smoke_scaled(10, 1))
    parser.add_argument("--warmup-seconds", type=int, default=harness.smoke_scaled(3, 1))
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=8)
    parser.add_argument(
        "--variants", default="json,photo", help="json (no photo) and/or photo (one 200 KB JPEG)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="write py-spy profiles (collapsed stacks) of CityRelay's web workers here, "
        "recorded during each variant's first round",
    )
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]

    with harness.stack(redis_db=4) as servers, tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        redis_url = servers.redis_url
        _empty_queues(redis_url)
        database_url = servers.fresh_database("cityrelay_bench_intake")
        baseline_url = servers.fresh_database("cityrelay_bench_intake_baseline")
        env = cityrelay_env(database_url, redis_url, folder / "instance")
        cli(env, "migrate")
        cli(env, "seed-demo")
        key = cli(env, "create-key", "--role", "reporter", "--name", "bench")

        processes: list[harness.Process] = []
        try:
            cityrelay_port, baseline_port = harness.free_port(), harness.free_port()
            web = harness.spawn(
                "cityrelay-web",
                [
                    sys.executable,
                    "-m",
                    "cityrelay.cli",
                    "web",
                    "--port",
                    str(cityrelay_port),
                    "--workers",
                    str(args.web_workers),
                    "--threads",
                    str(args.web_threads),
                ],
                env=env,
                log_dir=folder,
            )
            processes.append(web)
            baseline_env = {
                **os.environ,
                "BASELINE_DATABASE_URL": database_url.replace(
                    "cityrelay_bench_intake", "cityrelay_bench_intake_baseline"
                ),
                "BASELINE_REDIS_URL": redis_url,
            }
            assert baseline_env["BASELINE_DATABASE_URL"] == baseline_url
            baseline = harness.spawn(
                "baseline-web",
                gunicorn_argv(
                    baseline_port, args.web_workers, args.web_threads, "baseline_intake:app"
                ),
                env=baseline_env,
                log_dir=folder,
                cwd=harness.HERE,
            )
            processes.append(baseline)
            harness.wait_until(
                lambda: harness.http_ok(f"http://127.0.0.1:{cityrelay_port}/healthz"),
                60,
                "CityRelay's web server",
                web,
            )
            harness.wait_until(
                lambda: harness.port_open("127.0.0.1", baseline_port),
                60,
                "the baseline's web server",
                baseline,
            )

            targets = {
                "cityrelay": (f"http://127.0.0.1:{cityrelay_port}", {"REPORT_KEY": key}),
                "baseline": (f"http://127.0.0.1:{baseline_port}", {}),
            }
            files = bodies(folder)
            measured: dict[str, dict[str, list[dict[str, float]]]] = {}
            for variant in variants:
                measured[variant] = {name: [] for name in targets}

                def one(name: str, seconds: int, variant: str = variant) -> dict[str, float]:
                    url, extra = targets[name]
                    body_file, content_type = files[variant]
                    return harness.run_wrk(
                        url,
                        seconds=seconds,
                        connections=args.connections,
                        script=LUA,
                        environment={
                            "BODY_FILE": str(body_file),
                            "CONTENT_TYPE": content_type,
                            "RUN_ID": uuid.uuid4().hex[:12],
                            **extra,
                        },
                    )

                for name in targets:  # warm both: imports, pools, the first queries
                    one(name, args.warmup_seconds)
                for round_number in range(args.rounds):
                    order = list(targets) if round_number % 2 == 0 else list(reversed(targets))
                    for name in order:
                        profilers = []
                        if args.profile and round_number == 0 and name == "cityrelay":
                            profilers = start_profilers(web, args.profile, variant, args.seconds)
                        result = one(name, args.seconds)
                        for profiler in profilers:
                            profiler.wait(30)
                        measured[variant][name].append(result)
                        print(
                            f"{variant:5} round {round_number + 1} {name:9} "
                            f"{result['requests_per_s']:7.1f} req/s  p50 {result['p50_ms']:.1f} "
                            f"ms  p99 {result['p99_ms']:.1f} ms  non-2xx {result['non_2xx']}  "
                            f"socket errors {result['socket_errors']}",
                            flush=True,
                        )
                        time.sleep(1)
            report_rows = _stored_reports(servers, "cityrelay_bench_intake")
        finally:
            for process in processes:
                process.stop()
            _empty_queues(redis_url)

        figures = summarise(measured, args)
        figures["reports_stored"] = report_rows
        print_table(figures)
        harness.write_result("intake", figures, servers=servers.versions())
    return 0


def start_profilers(
    web: harness.Process, folder: Path, variant: str, seconds: int
) -> list[subprocess.Popen[bytes]]:
    """py-spy on each of gunicorn's worker processes (the children of its arbiter)."""
    folder.mkdir(parents=True, exist_ok=True)
    arbiter = web.popen.pid  # `cityrelay web` execs gunicorn in the same process
    return [
        subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(seconds),
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                str(folder / f"intake-{variant}-{pid}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in harness.children_of(arbiter)
    ]


def _empty_queues(redis_url: str) -> None:
    """The benchmark's Redis database holds only what it sent: no worker ever takes it."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()


def _stored_reports(servers: harness.Stack, database: str) -> int:
    return int(servers.psql("SELECT count(*) FROM reports", database))


def summarise(
    measured: dict[str, dict[str, list[dict[str, float]]]], args: argparse.Namespace
) -> dict[str, Any]:
    scenarios: dict[str, Any] = {}
    for variant, by_target in measured.items():
        rates = {name: [r["requests_per_s"] for r in rounds] for name, rounds in by_target.items()}
        ratios = [c / b for c, b in zip(rates["cityrelay"], rates["baseline"], strict=True) if b]
        scenarios[variant] = {
            name: {
                "requests_per_s": harness.summarize(rates[name], 1),
                "p50_ms": harness.summarize([r["p50_ms"] for r in rounds], 2),
                "p99_ms": harness.summarize([r["p99_ms"] for r in rounds], 2),
                "non_2xx": sum(r["non_2xx"] for r in rounds),
                "socket_errors": sum(r["socket_errors"] for r in rounds),
            }
            for name, rounds in by_target.items()
        }
        scenarios[variant]["ratio"] = harness.summarize(ratios, 3)
        scenarios[variant]["target_ratio"] = TARGET_RATIO
    return {
        "settings": {
            "rounds": args.rounds,
            "seconds": args.seconds,
            "connections": args.connections,
            "web_workers": args.web_workers,
            "web_threads": args.web_threads,
            "text_chars": len(TEXT),
            "photo_bytes": PHOTO_BYTES,
        },
        "variants": scenarios,
    }


def print_table(figures: dict[str, Any]) -> None:
    print()
    print("| body | CityRelay req/s | p50 / p99 ms | baseline req/s | p50 / p99 ms | ratio |")
    print("|---|---|---|---|---|---|")
    for variant, row in figures["variants"].items():
        c, b = row["cityrelay"], row["baseline"]
        print(
            f"| {variant} | {harness.shown(c['requests_per_s'])} | "
            f"{c['p50_ms']['median']} / {c['p99_ms']['median']} | "
            f"{harness.shown(b['requests_per_s'])} | "
            f"{b['p50_ms']['median']} / {b['p99_ms']['median']} | "
            f"{harness.shown(row['ratio'])} (target {TARGET_RATIO}) |"
        )


if __name__ == "__main__":
    sys.exit(main())
