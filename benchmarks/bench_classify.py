"""Classifier cost: model load (training from the bundled corpus in a fresh process, as
`cityrelay train-classifier` does; workers load the model file instead, see
bench_worker_start.py) and per-report classify() time. Prints a table and writes
benchmarks/results/classify.md and <date>-classify.json (harness.write_result).

The model load is timed `--loads` times, each in a fresh process. The per-report times are
taken over every text in `--rounds` rounds: each figure is the median of the rounds' values,
with their min and max.

    .venv/bin/python benchmarks/bench_classify.py [--reports 3000] [--loads 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import harness

ROOT = harness.PROJECT_ROOT
sys.path.insert(0, str(ROOT))

from routing.classify import TextClassifier, load, load_corpus  # noqa: E402

# Run in a child so imports, OpenCC dictionaries and training are all paid, as in a new process.
# The first child also saves its model (after the timing) for the per-report timings, which
# would otherwise train a model of their own.
_LOAD_SNIPPET = """
import sys, time
t0 = time.perf_counter()
from routing.classify import default_classifier
c = default_classifier()
c.classify("井盖没了")
elapsed = time.perf_counter() - t0
if len(sys.argv) > 1:
    from routing.classify import save
    save(c, sys.argv[1])
print(elapsed)
"""

# Rider-style noise added to the corpus texts so the timed texts are not all ones the model saw.
_PREFIXES = ("", "那个 ", "um ", "美团驿站门口 ", "🚨 ", "near Gate 3 of 春江小区 ")
_SUFFIXES = ("", " 很危险", " please fix", " 😡😡", " 快来看看吧", " asap")


def measure_load(runs: int, model_path: Path) -> list[float]:
    """Seconds to train and classify once in each of `runs` fresh processes; the first one
    writes its model to `model_path`."""
    times = []
    for run in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _LOAD_SNIPPET, *([str(model_path)] if run == 0 else [])],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return times


def texts_to_time(count: int, style: str) -> list[str]:
    base = [text for text, _ in load_corpus(style=style)]
    texts = []
    i = 0
    while len(texts) < count:
        text = base[i % len(base)]
        texts.append(_PREFIXES[i % len(_PREFIXES)] + text + _SUFFIXES[(i // 7) % len(_SUFFIXES)])
        i += 1
    return texts


def measure_classify(classifier: TextClassifier, texts: list[str]) -> list[float]:
    for text in texts[:200]:  # warm caches (OpenCC, numpy) before timing
        classifier.classify(text)
    times = []
    for text in texts:
        t0 = time.perf_counter()
        classifier.classify(text)
        times.append(time.perf_counter() - t0)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def per_text_ms(rounds: Sequence[list[float]]) -> dict[str, dict[str, Any]]:
    """Median, p95 and max per text of each round (in ms), each as median, min and max of the
    rounds."""
    return {
        "median": harness.summarize([statistics.median(r) * 1000 for r in rounds], 3),
        "p95": harness.summarize([percentile(r, 0.95) * 1000 for r in rounds], 3),
        "max": harness.summarize([max(r) * 1000 for r in rounds], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=harness.smoke_scaled(3000, 100))
    parser.add_argument("--loads", type=int, default=harness.smoke_scaled(3, 1))
    parser.add_argument("--rounds", type=int, default=3, help="timings of every text")
    parser.add_argument("--output", type=Path, default=harness.results_dir() / "classify.md")
    args = parser.parse_args()
    if min(args.reports, args.loads, args.rounds) < 1:
        parser.error("--reports, --loads and --rounds must be at least 1")

    with tempfile.TemporaryDirectory(prefix="cityrelay-bench-classify-") as folder:
        model_path = Path(folder) / "classifier.joblib"
        loads = measure_load(args.loads, model_path)
        classifier = load(model_path)
    short_texts = texts_to_time(args.reports, "short")
    long_texts = texts_to_time(args.reports, "long")
    short_rounds: list[list[float]] = []
    long_rounds: list[list[float]] = []
    for _ in range(args.rounds):  # alternate, so load from elsewhere hits both alike
        short_rounds.append(measure_classify(classifier, short_texts))
        long_rounds.append(measure_classify(classifier, long_texts))
    load_ms = harness.summarize([seconds * 1000 for seconds in loads], 0)
    short_ms = per_text_ms(short_rounds)
    long_ms = per_text_ms(long_rounds)

    rows = [
        ("model load, fresh process", harness.shown(load_ms, " ms")),
        ("classify, median per report", harness.shown(short_ms["median"], " ms")),
        ("classify, p95 per report", harness.shown(short_ms["p95"], " ms")),
        ("classify, max per report", harness.shown(short_ms["max"], " ms")),
        ("classify, median per long description", harness.shown(long_ms["median"], " ms")),
        ("classify, p95 per long description", harness.shown(long_ms["p95"], " ms")),
    ]
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    width = max(len(name) for name, _ in rows)
    print(f"classifier benchmark, {when}, {machine}")
    print(f"{args.loads} loads, {args.reports} reports, {args.rounds} rounds")
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>28}")

    lines = [
        "# Classifier benchmark",
        "",
        f"Measured {when} on {machine} with `.venv/bin/python benchmarks/bench_classify.py"
        f" --reports {args.reports} --loads {args.loads} --rounds {args.rounds}`"
        + harness.SMOKE_NOTE,
        f"({args.loads} loads in fresh processes; {args.reports} rider-style reports and "
        f"{args.reports} long resident-style descriptions, each with added noise, timed in "
        f"{args.rounds} rounds). Each value is the median of the loads or of the rounds' "
        "figures, with their min–max.",
        "",
        "| measure | value |",
        "|---|---|",
        *[f"| {name} | {value} |" for name, value in rows],
        "",
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.output}")
    harness.write_result(
        "classify",
        {
            "parameters": {"reports": args.reports, "loads": args.loads, "rounds": args.rounds},
            "model_load_ms": load_ms,
            "classify_report_ms": short_ms,
            "classify_long_description_ms": long_ms,
        },
    )


if __name__ == "__main__":
    main()
