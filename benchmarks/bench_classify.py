"""Classifier cost: model load (training from the bundled corpus in a fresh process, as
`cityrelay train-classifier` does; workers load the model file instead, see
bench_worker_start.py) and per-report classify() time. Prints a table and writes
benchmarks/results/classify.md.

    .venv/bin/python benchmarks/bench_classify.py [--reports 3000] [--loads 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from routing.classify import TextClassifier, load_corpus, train_from_bundled_corpus  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "classify.md"

# Run in a child so imports, OpenCC dictionaries and training are all paid, as in a new process.
_LOAD_SNIPPET = """
import time
t0 = time.perf_counter()
from routing.classify import default_classifier
c = default_classifier()
c.classify("井盖没了")
print(time.perf_counter() - t0)
"""

# Rider-style noise added to the corpus texts so the timed texts are not all ones the model saw.
_PREFIXES = ("", "那个 ", "um ", "美团驿站门口 ", "🚨 ", "near Gate 3 of 春江小区 ")
_SUFFIXES = ("", " 很危险", " please fix", " 😡😡", " 快来看看吧", " asap")


def measure_load(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _LOAD_SNIPPET],
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=3000)
    parser.add_argument("--loads", type=int, default=3)
    args = parser.parse_args()

    loads = measure_load(args.loads)
    classifier = train_from_bundled_corpus()
    per_report = measure_classify(classifier, texts_to_time(args.reports, "short"))
    per_long = measure_classify(classifier, texts_to_time(args.reports, "long"))

    rows = [
        ("model load, fresh process (median)", f"{statistics.median(loads) * 1000:.0f} ms"),
        ("model load, fresh process (max)", f"{max(loads) * 1000:.0f} ms"),
        ("classify, median per report", f"{statistics.median(per_report) * 1000:.3f} ms"),
        ("classify, p95 per report", f"{percentile(per_report, 0.95) * 1000:.3f} ms"),
        ("classify, max per report", f"{max(per_report) * 1000:.3f} ms"),
        (
            "classify, median per long description",
            f"{statistics.median(per_long) * 1000:.3f} ms",
        ),
        ("classify, p95 per long description", f"{percentile(per_long, 0.95) * 1000:.3f} ms"),
    ]
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    width = max(len(name) for name, _ in rows)
    print(f"classifier benchmark, {when}, {machine}")
    print(f"{args.loads} loads, {len(per_report)} reports")
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>12}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Classifier benchmark",
        "",
        f"Measured {when} on {machine} with `.venv/bin/python benchmarks/bench_classify.py`",
        f"({args.loads} loads in fresh processes, {len(per_report)} rider-style reports and "
        f"{len(per_long)} long resident-style descriptions, each with added noise).",
        "",
        "| measure | value |",
        "|---|---|",
        *[f"| {name} | {value} |" for name, value in rows],
        "",
    ]
    RESULTS.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
