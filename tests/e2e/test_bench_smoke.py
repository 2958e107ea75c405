"""`make bench` keeps working: every benchmarks/bench_*.py runs on a tiny load (BENCH_SMOKE=1)
and writes its results file with what the harness records. No timing is asserted: a smoke run's
figures mean nothing, and timings live in the benchmarks themselves."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = PROJECT_ROOT / "benchmarks"
RESULT_NAME = re.compile(r"^(?P<date>\d{4}-\d{2}-\d{2})-(?P<scenario>[a-z0-9-]+)\.json$")
# Every benchmark, one after the other, on a busy 2-core machine: minutes, not hours.
WHOLE_RUN_TIMEOUT_SECONDS = 1800


def bench_environment(results: Path) -> dict[str, str]:
    """What a developer's shell would give `make bench`: none of this test run's settings (its
    classifier file, database or Redis), the tree under test ahead of any installed copy."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CITYRELAY_", "BENCH_")) and key not in {"DATABASE_URL", "REDIS_URL"}
    }
    env.update(
        BENCH_SMOKE="1",
        BENCH_RESULTS_DIR=str(results),
        PYTHONPATH=str(PROJECT_ROOT),
        PYTHONUNBUFFERED="1",
    )
    return env


def committed_results() -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((BENCHMARKS / "results").iterdir())
        if path.is_file()
    }


@pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")),
    reason="runs in the embedded pass only: the benchmarks find or start their own servers",
)
def test_make_bench_smoke_writes_every_benchmarks_results(tmp_path: Path) -> None:
    make = shutil.which("make")
    assert make is not None, "make is not installed"
    results = tmp_path / "results"
    # This interpreter's virtualenv, whose install stamp make must not try to renew (-o): a
    # reinstall from a checkout other than the one installed would repoint the editable install.
    venv = Path(sys.executable).parent.parent
    before = committed_results()
    log = tmp_path / "bench.log"
    with log.open("wb") as output:
        completed = subprocess.run(
            [make, "-o", f"{venv}/.installed", "bench", f"VENV={venv}"],
            cwd=PROJECT_ROOT,
            env=bench_environment(results),
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=WHOLE_RUN_TIMEOUT_SECONDS,
        )
    text = log.read_text(errors="replace")
    assert completed.returncode == 0, f"make bench failed:\n{text[-8000:]}"

    documents: list[dict[str, Any]] = []
    for path in sorted(results.glob("*.json")):
        name = RESULT_NAME.match(path.name)
        assert name is not None, f"{path.name} is not <date>-<scenario>.json"
        document = json.loads(path.read_text())
        assert document["scenario"] == name["scenario"], path.name
        assert document["measured_at"].startswith(name["date"]), path.name
        assert document["smoke"] is True, path.name
        assert isinstance(document["machine"]["cores"], int), path.name
        assert document["machine"]["cores"] >= 1, path.name
        assert document["versions"]["python"], path.name
        assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", document["git_revision"]), path.name
        documents.append(document)

    # Generic, so that a benchmark added later is held to it too: each script names itself in
    # the `command` of at least one results file.
    scripts = sorted(path.name for path in BENCHMARKS.glob("bench_*.py"))
    assert scripts, "no benchmarks/bench_*.py"
    written_by = {document["command"].split()[0] for document in documents}
    missing = [script for script in scripts if script not in written_by]
    assert not missing, f"no results from {missing}, only {sorted(written_by)}:\n{text[-4000:]}"
    # A smoke run writes nothing over the committed results.
    assert committed_results() == before


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--cases", "0"], "at least 1"),
        (["--cases", "100000,lots"], "not a comma list"),
        (["--cases", ","], "at least 1"),
        (["--runs", "0"], "at least 1"),
    ],
)
def test_bench_stats_refuses_bad_sizes_before_touching_a_server(
    tmp_path: Path, arguments: list[str], complaint: str
) -> None:
    # a server nothing listens on: the refusal must come before any connection
    nowhere = ["--host", "127.0.0.1", "--port", "9"]
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_stats.py"), *nowhere, *arguments],
        cwd=PROJECT_ROOT,
        env=bench_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2, completed.stderr
    assert complaint in completed.stderr
    assert not list(tmp_path.glob("*.json"))
