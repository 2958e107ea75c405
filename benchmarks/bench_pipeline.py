"""How fast the workers route reports, against what Celery itself costs on the same workers.

On PostgreSQL (the harness's stack, production settings), with the demo city seeded:

1. **Drain.** N reports (3,000; 30 under BENCH_SMOKE=1) are POSTed through `cityrelay web`
   (gunicorn, as in production) with the workers stopped: points over the demo city's
   communities, 10 % "me too" reports a few metres from an earlier report of the same problem,
   5 % with a ~200 KB JPEG, 3 % that end in triage (no coordinates, or text no category fits),
   Chinese texts from the classifier's corpus. Then `cityrelay worker --concurrency C` starts
   and the drain is timed from the first message taken off the queue to the last report
   processed (``reports.state``), in reports/s. In the same run, as the yardstick, a Celery task
   that does nothing (benchmarks/baseline_celery.py: same broker, pool, concurrency, prefetch
   and late acks) drains N messages the same way. Ratio = pipeline / no-op. For each C, the
   rounds alternate no-op and pipeline; each pipeline round starts from a fresh copy of the
   seeded database and an empty Redis db.
2. **Sustained.** Web and workers (C = the first concurrency) running, reports are POSTed open
   loop (at fixed times, whatever the answers) at half the median drain rate for 60 s (3 s
   under smoke); each report's submit-to-routed latency is ``processed_at - received_at``.

    .venv/bin/python benchmarks/bench_pipeline.py [--reports 3000] [--concurrency 2,4]
        [--rounds 3] [--sustained-seconds 60] [--sustained-rate R] [--no-sustained]
        [--profile DIR]

``--profile DIR`` records the workers of one extra drain per concurrency with py-spy
(``--subprocesses``, on-CPU samples only, collapsed stacks) and writes DIR/profile-c<C>.txt
(the stacks) and DIR/profile-c<C>-top.txt (functions by inclusive and by own samples).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.harness import (  # noqa: E402
    PROJECT_ROOT,
    Process,
    Stack,
    free_port,
    http_ok,
    percentile,
    shown,
    smoke_scaled,
    spawn,
    stack,
    summarize,
    wait_until,
    write_result,
)

SCENARIO = "pipeline"
DATABASE = "cityrelay_bench_pipeline"
SEEDED = "cityrelay_bench_pipeline_seeded"
REDIS_DB = 6
QUEUE = "bench_pipeline"
NOOP_QUEUE = "bench_noop"
REPORTER_KEYS = 8
POST_THREADS = 16
TARGET_RATIO = 0.5
TARGET_P99_MS = 500.0
ME_TOO_SHARE = 0.10
PHOTO_SHARE = 0.05
TRIAGE_SHARE = 0.03
# Texts no category fits: the classifier's confidence stays under the threshold.
UNCLASSIFIABLE = ("嗯嗯", "你好，请问一下", "测试测试", "谢谢", "哈哈哈", "？？？", "好的收到")
PYTHON = sys.executable


# --------------------------------------------------------------------------- the reports


@dataclass
class ReportSpec:
    fields: dict[str, Any]
    photo: bool = False
    kind: str = "new"  # new | me_too | triage_no_location | triage_unclassifiable


def corpus_texts() -> dict[str, list[str]]:
    """Chinese report texts by category, from the classifier's corpus."""
    by_category: dict[str, list[str]] = defaultdict(list)
    with (PROJECT_ROOT / "routing" / "data" / "corpus.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["lang"].startswith("zh") and row["text"].strip():
                by_category[row["category"]].append(row["text"].strip())
    return dict(by_category)


def community_shapes() -> list[Any]:
    """The demo city's smallest jurisdictions (communities), as shapely geometries."""
    from shapely.geometry import shape

    from models.seed import demo_city

    return [
        shape(office["jurisdiction"])
        for office in demo_city()["offices"]
        if office["kind"] == "community" and office["jurisdiction"] is not None
    ]


def random_point(rng: random.Random, shapes: Sequence[Any]) -> tuple[float, float]:
    """(lat, lon) uniformly inside one of the communities, chosen by area."""
    from shapely.geometry import Point

    weights = [s.area for s in shapes]
    chosen = rng.choices(list(shapes), weights=weights)[0]
    min_x, min_y, max_x, max_y = chosen.bounds
    while True:
        lon, lat = rng.uniform(min_x, max_x), rng.uniform(min_y, max_y)
        if chosen.contains(Point(lon, lat)):
            return round(lat, 6), round(lon, 6)


def make_reports(count: int, rng: random.Random) -> list[ReportSpec]:
    texts = corpus_texts()
    categories = sorted(texts)
    shapes = community_shapes()
    specs: list[ReportSpec] = []
    originals: list[ReportSpec] = []
    for _ in range(count):
        roll = rng.random()
        photo = rng.random() < PHOTO_SHARE
        if roll < TRIAGE_SHARE / 2:
            text = rng.choice(texts[rng.choice(categories)])
            spec = ReportSpec({"text": text, "address": "浦东新区川沙路5558号附近"}, photo,
                              "triage_no_location")  # fmt: skip
        elif roll < TRIAGE_SHARE:
            lat, lon = random_point(rng, shapes)
            spec = ReportSpec({"text": rng.choice(UNCLASSIFIABLE), "lat": lat, "lon": lon}, photo,
                              "triage_unclassifiable")  # fmt: skip
        elif roll < TRIAGE_SHARE + ME_TOO_SHARE and originals:
            earlier = rng.choice(originals[-200:])  # a case still open: recent
            # 5-25 m away (a degree of latitude is ~111 km)
            lat = earlier.fields["lat"] + rng.uniform(-1, 1) * 0.0002
            lon = earlier.fields["lon"] + rng.uniform(-1, 1) * 0.0002
            spec = ReportSpec(
                {"text": earlier.fields["text"], "lat": round(lat, 6), "lon": round(lon, 6)},
                photo,
                "me_too",
            )
        else:
            lat, lon = random_point(rng, shapes)
            spec = ReportSpec(
                {"text": rng.choice(texts[rng.choice(categories)]), "lat": lat, "lon": lon}, photo
            )
            originals.append(spec)
        specs.append(spec)
    return specs


def photo_jpeg(rng: random.Random, target_bytes: int = 200_000) -> bytes:
    """A JPEG of about ``target_bytes``: a street-ish gradient with noise (noise keeps it big)."""
    from PIL import Image

    width, height = 640, 480
    noise = bytes(rng.getrandbits(8) for _ in range(width * height * 3))
    image = Image.frombytes("RGB", (width, height), noise)
    quality = 90
    while True:
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=quality)
        if out.tell() <= target_bytes * 1.15 or quality <= 20:
            return out.getvalue()
        quality -= 10


# --------------------------------------------------------------------------- posting


@dataclass
class Posted:
    sent_at: float  # time.time()
    seconds: float
    status: int
    report_id: int | None


@dataclass
class Poster:
    base_url: str
    keys: list[str]
    photo: bytes
    local: threading.local = field(default_factory=threading.local)

    def session(self) -> Any:
        import requests

        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def post(self, index: int, spec: ReportSpec) -> Posted:
        headers = {"Authorization": f"Bearer {self.keys[index % len(self.keys)]}"}
        url = f"{self.base_url}/api/v1/reports"
        sent = time.time()
        started = time.perf_counter()
        try:
            if spec.photo:
                data = {k: str(v) for k, v in spec.fields.items()}
                files = {"photos": ("photo.jpg", self.photo, "image/jpeg")}
                response = self.session().post(
                    url, data=data, files=files, headers=headers, timeout=30
                )
            else:
                response = self.session().post(url, json=spec.fields, headers=headers, timeout=30)
        except Exception as error:  # counted as a failure, not fatal
            print(f"POST failed: {error}", file=sys.stderr)
            return Posted(sent, time.perf_counter() - started, 0, None)
        seconds = time.perf_counter() - started
        report_id = response.json().get("id") if response.status_code == 202 else None
        if response.status_code != 202:
            print(f"POST {response.status_code}: {response.text[:200]}", file=sys.stderr)
        return Posted(sent, seconds, response.status_code, report_id)


def post_all(poster: Poster, specs: Sequence[ReportSpec]) -> tuple[list[Posted], float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(POST_THREADS) as pool:
        posted = list(pool.map(poster.post, range(len(specs)), specs))
    return posted, time.perf_counter() - started


def post_open_loop(
    poster: Poster, specs: Sequence[ReportSpec], rate: float
) -> tuple[list[Posted], float]:
    """Each report at its own time (i / rate), whatever the earlier answers took."""
    results: list[Posted | None] = [None] * len(specs)
    start = time.perf_counter() + 0.2

    def send(i: int) -> None:
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        results[i] = poster.post(i, specs[i])

    with ThreadPoolExecutor(64) as pool:
        list(pool.map(send, range(len(specs))))
    return [r for r in results if r is not None], time.perf_counter() - start


# --------------------------------------------------------------------------- the bench


@dataclass
class Bench:
    stack: Stack
    folder: Path
    keys: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    log_dir: Path | None = None

    @property
    def redis_url(self) -> str:
        return self.stack.redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"

    def base_env(self, database: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CITYRELAY_")}
        env.update(
            PYTHONPATH=str(PROJECT_ROOT),
            PYTHONUNBUFFERED="1",
            DATABASE_URL=self.stack.database_url(database),
            REDIS_URL=self.redis_url,
            CITYRELAY_INSTANCE_PATH=str(self.folder / "instance"),
            CITYRELAY_CLASSIFIER_PATH=str(self.folder / "classifier.joblib"),
            CITYRELAY_CELERY_QUEUE=QUEUE,
            # One client address and a few keys send what thousands of riders would: the limits
            # are counted as in production, but set past what the benchmark sends.
            CITYRELAY_RATE_LIMIT_REPORTS_PER_KEY="100000/minute",
            CITYRELAY_RATE_LIMIT_INTAKE_PER_IP="100000/minute",
        )
        return env

    def cli(self, *args: str, database: str = DATABASE) -> str:
        done = subprocess.run(
            [PYTHON, "-m", "cityrelay.cli", *args],
            env=self.base_env(database),
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"cityrelay {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout.strip()

    def prepare(self) -> None:
        """The seeded database every round copies: migrated, the demo city, reporter keys."""
        self.stack.fresh_database(SEEDED)
        self.cli("migrate", database=SEEDED)
        self.cli("seed-demo", database=SEEDED)
        self.keys = [
            self.cli("create-key", "--role", "reporter", "--name", f"rider {i}", database=SEEDED)
            for i in range(REPORTER_KEYS)
        ]
        self.cli("train-classifier", database=SEEDED)

    def fresh_copy(self) -> None:
        self.stack.drop_database(DATABASE)
        self.stack.psql(f'CREATE DATABASE "{DATABASE}" TEMPLATE "{SEEDED}"')
        if DATABASE not in self.stack.databases:
            self.stack.databases.append(DATABASE)
        self.redis().flushdb()

    def redis(self) -> Any:
        import redis

        return redis.Redis.from_url(self.redis_url)

    def spawn(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> Process:
        process = spawn(
            name,
            argv,
            env=env or self.base_env(DATABASE),
            log_dir=self.log_dir or self.folder,
            cwd=PROJECT_ROOT,
        )
        self.processes.append(process)
        return process

    def start_web(self) -> tuple[Process, str]:
        port = free_port()
        web = self.spawn("web", [PYTHON, "-m", "cityrelay.cli", "web", "--port", str(port)])
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_ok(f"{base}/healthz"), 60, "the web server", web)
        return web, base

    def start_worker(self, concurrency: int, separate: bool = False) -> Workers:
        """One `cityrelay worker --concurrency C` (a prefork pool of C), or with ``separate``
        C workers of one pool process each."""
        if separate:
            return Workers(
                [
                    self.spawn(
                        f"worker-1-of-{concurrency}-{n}",
                        [PYTHON, "-m", "cityrelay.cli", "worker", "--concurrency", "1"],
                    )
                    for n in range(concurrency)
                ]
            )
        return Workers(
            [
                self.spawn(
                    f"worker-c{concurrency}",
                    [PYTHON, "-m", "cityrelay.cli", "worker", "--concurrency", str(concurrency)],
                )
            ]
        )

    def stop_workers(self, workers: Workers) -> None:
        for member in workers.members:
            member.stop()
            self.processes.remove(member)

    def start_noop_worker(self, concurrency: int) -> Workers:
        env = self.base_env(DATABASE) | {"BENCH_NOOP_QUEUE": NOOP_QUEUE}
        process = self.spawn(
            f"noop-c{concurrency}",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "benchmarks.baseline_celery",
                "--quiet",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={concurrency}",
                "-Q",
                NOOP_QUEUE,
                "--without-gossip",
                "--without-mingle",
            ],
            env,
        )
        return Workers([process])

    def db(self) -> Any:
        import psycopg

        return psycopg.connect(self.stack.database_url(DATABASE), autocommit=True)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()


def tree_cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU of a process and its children (the pool), as /proc has it now."""
    from benchmarks.harness import children_of

    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for member in [pid, *(children_of(pid) if children else [])]:
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


@dataclass
class Workers:
    """The worker processes of one drain."""

    members: list[Process]

    @property
    def name(self) -> str:
        return "+".join(member.name for member in self.members)

    def alive(self) -> bool:
        return all(member.alive() for member in self.members)

    def tail(self) -> str:
        return "\n".join(member.tail() for member in self.members)

    def cpu_seconds(self) -> float:
        return sum(tree_cpu_seconds(member.popen.pid) for member in self.members)


def wait_for_queue(client: Any, queue: str, count: int, timeout: float = 30) -> None:
    wait_until(lambda: client.llen(queue) >= count, timeout, f"{count} messages on {queue}")


def time_drain(
    client: Any, queue: str, total: int, done: Any, worker: Workers, timeout: float
) -> tuple[float, float, float]:
    """(first message taken, all done): wall-clock times, and the worker's CPU seconds
    between them. ``done()`` says when all are done."""
    deadline = time.monotonic() + timeout
    started = None
    cpu_before = 0.0
    while started is None:
        if client.llen(queue) < total:
            started = time.time()
            cpu_before = worker.cpu_seconds()
            break
        if not worker.alive():
            raise RuntimeError(f"{worker.name} exited:\n{worker.tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{worker.name} took nothing:\n{worker.tail()}")
        time.sleep(0.002)
    while not done():
        if not worker.alive():
            raise RuntimeError(f"{worker.name} exited:\n{worker.tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{worker.name} did not finish:\n{worker.tail()}")
        time.sleep(0.01)
    ended = time.time()
    return started, ended, worker.cpu_seconds() - cpu_before


def noop_round(bench: Bench, concurrency: int, total: int) -> tuple[float, float]:
    """(tasks/s, worker CPU ms per task)"""
    from benchmarks.baseline_celery import NOOP_TASK
    from benchmarks.baseline_celery import app as noop_app

    client = bench.redis()
    client.flushdb()
    noop_app.conf.broker_url = bench.redis_url
    with noop_app.connection_for_write() as connection:
        for i in range(total):
            noop_app.send_task(NOOP_TASK, args=(i,), queue=NOOP_QUEUE, connection=connection)
    wait_for_queue(client, NOOP_QUEUE, total)
    worker = bench.start_noop_worker(concurrency)
    try:
        started, ended, cpu = time_drain(
            client,
            NOOP_QUEUE,
            total,
            lambda: client.llen(NOOP_QUEUE) == 0 and client.hlen("unacked") == 0,
            worker,
            timeout=300,
        )
    finally:
        bench.stop_workers(worker)
    return total / (ended - started), 1000 * cpu / total


@dataclass
class DrainRound:
    rate: float
    cpu_ms_per_report: float
    postgres_cpu_ms_per_report: float
    rate_first_to_last: float
    post_rate: float
    outcomes: dict[str, int]


def enqueue_reports(bench: Bench, specs: Sequence[ReportSpec], photo: bytes) -> float:
    """POST every report through a fresh web server, workers stopped; answers reports/s."""
    web, base = bench.start_web()
    try:
        posted, seconds = post_all(Poster(base, bench.keys, photo), specs)
    finally:
        web.stop()
        bench.processes.remove(web)
    failed = [p for p in posted if p.status != 202]
    if failed:
        raise RuntimeError(f"{len(failed)} POSTs failed (status {failed[0].status})")
    return len(specs) / seconds


def outcomes(connection: Any) -> dict[str, int]:
    found: dict[str, int] = {}
    for status, count in connection.execute("SELECT status, count(*) FROM cases GROUP BY status"):
        found[f"cases_{status}"] = count
    found["merged_reports"] = connection.execute(
        "SELECT count(*) - count(DISTINCT case_id) FROM reports WHERE case_id IS NOT NULL"
    ).fetchone()[0]
    found["outbox_rows"] = connection.execute("SELECT count(*) FROM outbox").fetchone()[0]
    return found


def pipeline_round(
    bench: Bench,
    concurrency: int,
    specs: Sequence[ReportSpec],
    photo: bytes,
    profile: Path | None = None,
    separate: bool = False,
) -> DrainRound:
    bench.fresh_copy()
    post_rate = enqueue_reports(bench, specs, photo)
    client = bench.redis()
    total = len(specs)
    wait_for_queue(client, QUEUE, total)
    worker = bench.start_worker(concurrency, separate)
    recorder = None
    with bench.db() as connection:

        def all_processed() -> bool:
            row = connection.execute(
                "SELECT count(*) FROM reports WHERE state = 'received'"
            ).fetchone()
            return bool(row[0] == 0)

        try:
            if profile is not None:
                recorder = start_profiler(bench, worker, profile, concurrency)
            started, ended, cpu = time_drain(
                client, QUEUE, total, all_processed, worker, timeout=max(600, total)
            )
            # The worker's PostgreSQL backends, opened during the drain: their CPU is the
            # reports' too.
            backends = [
                row[0]
                for row in connection.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s "
                    "AND pid <> pg_backend_pid()",
                    (DATABASE,),
                )
            ]
            postgres_cpu = sum(tree_cpu_seconds(pid, children=False) for pid in backends)
        finally:
            if recorder is not None:
                stop_profiler(recorder)
            bench.stop_workers(worker)
        first, last = connection.execute(
            "SELECT extract(epoch FROM min(processed_at)), extract(epoch FROM max(processed_at)) "
            "FROM reports"
        ).fetchone()
        found = outcomes(connection)
    first_to_last = (total - 1) / float(last - first) if last > first else float("nan")
    return DrainRound(
        total / (ended - started),
        1000 * cpu / total,
        1000 * postgres_cpu / total,
        first_to_last,
        post_rate,
        found,
    )


# --------------------------------------------------------------------------- profiling


def start_profiler(bench: Bench, workers: Workers, folder: Path, concurrency: int) -> Any:
    worker = workers.members[0]
    py_spy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    folder.mkdir(parents=True, exist_ok=True)
    raw = folder / f"profile-c{concurrency}.txt"
    # The pool processes exist once the worker is ready: wait for them before attaching.
    from benchmarks.harness import children_of

    wait_until(lambda: len(children_of(worker.popen.pid)) >= concurrency, 60, "pool", worker)
    recorder = subprocess.Popen(
        [
            py_spy,
            "record",
            "--subprocesses",
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(raw),
            "--pid",
            str(worker.popen.pid),
        ],
        stdout=subprocess.DEVNULL,
        stderr=(folder / f"py-spy-c{concurrency}.log").open("wb"),
    )
    time.sleep(1.0)  # py-spy attaches to every process before the drain starts counting
    return (recorder, raw)


def stop_profiler(recorder: Any) -> None:
    process, raw = recorder
    process.send_signal(2)  # SIGINT: py-spy writes what it recorded
    process.wait(60)
    summarize_profile(raw)


def summarize_profile(raw: Path, top: int = 60) -> Path:
    """Functions by inclusive and by own samples, from py-spy's collapsed stacks."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    by_process: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack_text.split(";")
        total += count
        by_process[frames[0]] += count
        for frame in set(frames[1:]):
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [f"{total} samples", "", "by process:"]
    lines += [f"{count:8d} {100 * count / total:5.1f}%  {name}" for name, count in
              by_process.most_common()]  # fmt: skip
    lines += ["", "inclusive (the function or anything it called):"]
    lines += [f"{count:8d} {100 * count / total:5.1f}%  {name}" for name, count in
              inclusive.most_common(top)]  # fmt: skip
    lines += ["", "own (the function itself):"]
    lines += [f"{count:8d} {100 * count / total:5.1f}%  {name}" for name, count in
              own.most_common(top)]  # fmt: skip
    out = raw.with_name(raw.stem + "-top.txt")
    out.write_text("\n".join(lines) + "\n")
    print(f"profile: {out}")
    return out


# --------------------------------------------------------------------------- sustained


def sustained(
    bench: Bench, concurrency: int, rate: float, seconds: float, photo: bytes, rng: random.Random
) -> dict[str, Any]:
    bench.fresh_copy()
    specs = make_reports(max(1, round(rate * seconds)), rng)
    _web, base = bench.start_web()
    worker = bench.start_worker(concurrency)
    try:
        from celery import Celery

        probe = Celery("bench-probe", broker=bench.redis_url)
        wait_until(
            lambda: bool(probe.control.ping(timeout=0.5)), 120, "the worker", worker.members[0]
        )
        probe.close()
        posted, elapsed = post_open_loop(Poster(base, bench.keys, photo), specs, rate)
        ids = [p.report_id for p in posted if p.report_id is not None]
        with bench.db() as connection:
            wait_until(
                lambda: (
                    connection.execute(
                        "SELECT count(*) FROM reports WHERE state = 'received'"
                    ).fetchone()[0]
                    == 0
                ),
                120,
                "every report processed",
                worker.members[0],
            )
            latencies = [
                float(row[0]) * 1000
                for row in connection.execute(
                    "SELECT extract(epoch FROM processed_at - received_at) FROM reports "
                    "WHERE id = ANY(%s)",
                    (ids,),
                )
            ]
    finally:
        bench.stop_all()
    post_ms = [p.seconds * 1000 for p in posted if p.status == 202]
    return {
        "concurrency": concurrency,
        "offered_rate": round(rate, 1),
        "seconds": seconds,
        "reports": len(specs),
        "accepted": len(ids),
        "achieved_post_rate": round(len(posted) / elapsed, 1),
        "routed_p50_ms": round(percentile(latencies, 0.50), 1),
        "routed_p99_ms": round(percentile(latencies, 0.99), 1),
        "routed_max_ms": round(max(latencies), 1),
        "post_p50_ms": round(percentile(post_ms, 0.50), 1),
        "post_p99_ms": round(percentile(post_ms, 0.99), 1),
    }


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=smoke_scaled(3000, 30))
    parser.add_argument("--concurrency", default="2,4", help="comma-separated pool sizes")
    parser.add_argument("--rounds", type=int, default=smoke_scaled(3, 1))
    parser.add_argument("--sustained-seconds", type=float, default=smoke_scaled(60, 3))
    parser.add_argument("--sustained-rate", type=float, default=None, help="default: half drain")
    parser.add_argument("--no-sustained", action="store_true")
    parser.add_argument(
        "--separate",
        action="store_true",
        help="C workers of --concurrency 1 instead of one prefork pool of C",
    )
    parser.add_argument("--profile", type=Path, default=None, help="py-spy output folder")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--logs", type=Path, default=None, help="keep the processes' logs here")
    args = parser.parse_args()
    # A stop asked for (SIGTERM) still stops the servers and drops the databases.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    rng = random.Random(args.seed)
    specs = make_reports(args.reports, rng)
    photo = photo_jpeg(rng)
    kinds = Counter(spec.kind for spec in specs)
    print(f"{len(specs)} reports: {dict(kinds)}, {sum(s.photo for s in specs)} with a "
          f"{len(photo) // 1000} KB photo")  # fmt: skip

    figures: dict[str, Any] = {
        "reports": len(specs),
        "workers": "separate --concurrency 1 workers" if args.separate else "one prefork pool",
        "mix": dict(kinds) | {"photo": sum(s.photo for s in specs), "photo_bytes": len(photo)},
        "drain": {},
    }
    with stack(redis_db=REDIS_DB) as servers, tempfile.TemporaryDirectory() as folder:
        if args.logs is not None:
            args.logs.mkdir(parents=True, exist_ok=True)
        bench = Bench(servers, Path(folder), log_dir=args.logs or Path(folder))
        try:
            bench.prepare()
            for concurrency in concurrencies:
                noop_rates, pipeline_rates, first_to_last, post_rates = [], [], [], []
                noop_cpu, pipeline_cpu, postgres_cpu = [], [], []
                found: dict[str, int] = {}
                for round_number in range(args.rounds):
                    noop_rate, noop_cpu_ms = noop_round(bench, concurrency, len(specs))
                    noop_rates.append(noop_rate)
                    noop_cpu.append(noop_cpu_ms)
                    drained = pipeline_round(
                        bench, concurrency, specs, photo, separate=args.separate
                    )
                    pipeline_rates.append(drained.rate)
                    pipeline_cpu.append(drained.cpu_ms_per_report)
                    postgres_cpu.append(drained.postgres_cpu_ms_per_report)
                    first_to_last.append(drained.rate_first_to_last)
                    post_rates.append(drained.post_rate)
                    found = drained.outcomes
                    print(f"C={concurrency} round {round_number + 1}: pipeline "
                          f"{drained.rate:.0f}/s, no-op {noop_rates[-1]:.0f}/s, ratio "
                          f"{drained.rate / noop_rates[-1]:.2f}; worker CPU "
                          f"{drained.cpu_ms_per_report:.1f} ms/report (PostgreSQL "
                          f"{drained.postgres_cpu_ms_per_report:.1f}), "
                          f"{noop_cpu_ms:.2f} ms/no-op; load {os.getloadavg()[0]:.1f}",
                          flush=True)  # fmt: skip
                ratios = [p / n for p, n in zip(pipeline_rates, noop_rates, strict=True)]
                figures["drain"][f"c{concurrency}"] = {
                    "concurrency": concurrency,
                    "pipeline_reports_per_s": summarize(pipeline_rates, 1),
                    "pipeline_first_to_last_per_s": summarize(first_to_last, 1),
                    "noop_tasks_per_s": summarize(noop_rates, 1),
                    # the worker's processes (parent and pool) only, not PostgreSQL's or Redis's
                    "pipeline_worker_cpu_ms_per_report": summarize(pipeline_cpu, 2),
                    "noop_worker_cpu_ms_per_task": summarize(noop_cpu, 3),
                    "postgres_cpu_ms_per_report": summarize(postgres_cpu, 2),
                    "ratio": summarize(ratios, 3),
                    "post_reports_per_s": summarize(post_rates, 1),
                    "outcomes_last_round": found,
                }
                if args.profile is not None:
                    pipeline_round(bench, concurrency, specs, photo, profile=args.profile)
            if not args.no_sustained:
                first = figures["drain"][f"c{concurrencies[0]}"]
                rate = args.sustained_rate or first["pipeline_reports_per_s"]["median"] / 2
                figures["sustained"] = sustained(
                    bench, concurrencies[0], rate, args.sustained_seconds, photo, rng
                )
            servers_seen = servers.versions()
        finally:
            bench.stop_all()
    figures["targets"] = {"ratio": TARGET_RATIO, "sustained_p99_ms": TARGET_P99_MS}
    write_result(SCENARIO, figures, servers=servers_seen)
    print_table(figures)


def print_table(figures: dict[str, Any]) -> None:
    print()
    print(f"{'C':>3} | {'pipeline reports/s':>22} | {'no-op tasks/s':>22} | {'ratio':>20} | "
          f"{'POST reports/s':>20}")  # fmt: skip
    for row in figures["drain"].values():
        print(
            f"{row['concurrency']:>3} | {shown(row['pipeline_reports_per_s']):>22} | "
            f"{shown(row['noop_tasks_per_s']):>22} | {shown(row['ratio']):>20} | "
            f"{shown(row['post_reports_per_s']):>20}"
        )
    print(f"target ratio ≥ {TARGET_RATIO}")
    if "sustained" in figures:
        s = figures["sustained"]
        print(
            f"\nsustained C={s['concurrency']}: {s['offered_rate']} reports/s offered for "
            f"{s['seconds']:g} s ({s['achieved_post_rate']}/s sent): submit-to-routed "
            f"p50 {s['routed_p50_ms']} ms, p99 {s['routed_p99_ms']} ms (max "
            f"{s['routed_max_ms']} ms; target p99 < {TARGET_P99_MS:g} ms); POST p50 "
            f"{s['post_p50_ms']} ms, p99 {s['post_p99_ms']} ms"
        )
    _ = json  # results are written by the harness


if __name__ == "__main__":
    main()
