"""Faults proven with real processes: a private PostgreSQL cluster and a private Redis server,
started, stopped, frozen and restarted by the tests, with the real web server (gunicorn), Celery
workers and beats on them. Never the machine's shared servers, whatever DATABASE_URL names.

They run in the PostgreSQL pass of the suite (DATABASE_URL names a PostgreSQL); in the SQLite
pass they are skipped, since the guarantees they prove are PostgreSQL's (lock and statement
timeouts, a server that restarts)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from cityrelay.embedded import free_port, wait_for_port
from models.entities import Case, CaseEvent, Report
from models.migrate import upgrade
from models.seed import demo_city, load_demo_city
from models.session import make_engine, make_session_factory, unit_of_work
from services.accounts import register_reporter
from tests.conftest import TEST_RATE_LIMITS

FAULT_TESTS = Path(__file__).resolve().parent
PROJECT_ROOT = FAULT_TESTS.parent.parent
START_TIMEOUT_SECONDS = 60.0
# Long enough for a loaded CI machine to route what is queued; a stuck run says so.
ROUTED_TIMEOUT_SECONDS = 180.0
# Each task spends much of its time waiting on PostgreSQL: four processes keep two cores busy.
WORKER_CONCURRENCY = 4
# A correctness bound on each answer while something is out, far above the ~10 ms intake takes.
ANSWER_BOUND_SECONDS = 1.0
# The sweep as the fault tests run it: often, and for reports a few seconds old.
SWEEP_INTERVAL_SECONDS = 1
SWEEP_STALE_SECONDS = 3
# A lock wait this long fails (and its task is retried); short, so a test of it is short.
LOCK_TIMEOUT_SECONDS = 2
# How often beat escalates overdue cases and looks for spikes (the two-beats test counts them).
PERIODIC_SECONDS = 2

# Texts the classifier files confidently, at points inside demo communities.
TEXTS = ("小区门口垃圾桶满了", "路灯不亮 晚上很黑", "井盖没了 很危险", "路面积水 车过不去")


def _is_postgresql(url: str | None) -> bool:
    return bool(url) and url.split(":", 1)[0] in {"postgres", "postgresql", "postgresql+psycopg"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(
        reason="fault tests run in the PostgreSQL pass (DATABASE_URL=postgresql://...); they "
        "start a private PostgreSQL and Redis of their own"
    )
    for item in items:
        if FAULT_TESTS in item.path.parents:
            item.add_marker(pytest.mark.e2e)
            if not _is_postgresql(os.environ.get("DATABASE_URL")):
                item.add_marker(skip)


# ---------------------------------------------------------------- private servers


def postgres_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    pytest.fail("no PostgreSQL server binaries (initdb) on this machine", pytrace=False)


class PrivatePostgres:
    """A PostgreSQL cluster of its own in a temporary folder, on a free port of 127.0.0.1, with
    trust authentication. PostgreSQL refuses to run as root: then it runs as `postgres`."""

    def __init__(self, folder: Path) -> None:
        self.bindir = postgres_bindir()
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.user = "postgres" if os.geteuid() == 0 else None
        self.log = folder / "postgres.log"

    def _chown(self, path: Path) -> None:
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._chown(self.folder)
        subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            user=self.user,
        )

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.bindir / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.folder}",
                    "-c",
                    "fsync=off",
                    "-c",
                    "max_connections=200",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                user=self.user,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "private PostgreSQL did not start:\n" + self.log_text()
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        """A fast shutdown: open transactions are rolled back, connections cut."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(60)
        self.process = None

    def url(self, database: str = "cityrelay") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


class PrivateRedis:
    """A Redis server of its own, with the append-only file the embedded Redis runs with."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        from cityrelay.embedded import redis_server_binary

        self.folder.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("redis-server") or redis_server_binary()
        self.process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.folder),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port("127.0.0.1", self.port, 15, self.process)

    def stop(self) -> None:
        """SIGTERM: Redis writes its append-only file and exits; it comes back with its data."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)

    def freeze(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def kill_and_wipe(self) -> None:
        """kill -9 and delete every file: it comes back empty, its queued messages lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(20)
        shutil.rmtree(self.folder, ignore_errors=True)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
            self.process.wait(20)


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A migrated PostgreSQL with the demo city, for the fault tests of this run."""
    # Not under pytest's temporary folders: those are private to the user running the tests,
    # and the server may run as another user (`postgres`, when the tests run as root).
    server = PrivatePostgres(Path(tempfile.mkdtemp(prefix="cityrelay-faults-pg-")))
    try:
        server.init()
        server.start()
        with psycopg.connect(server.url("postgres"), autocommit=True) as connection:
            connection.execute("CREATE DATABASE cityrelay")
        upgrade(server.url())
        engine = make_engine(server.url())
        with unit_of_work(make_session_factory(engine, writer=True)) as session:
            load_demo_city(session)
        engine.dispose()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture
def pg_engine(private_postgres: PrivatePostgres) -> Iterator[Engine]:
    engine = make_engine(private_postgres.url())
    yield engine
    engine.dispose()


@pytest.fixture
def pg_sessions(pg_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(pg_engine, writer=True)


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path_factory.mktemp("private-redis") / "data")
    server.start()
    yield server
    server.close()


# ---------------------------------------------------------------- the service's processes


@dataclass
class Stack:
    """The service's real processes on the private servers: web, workers, beats."""

    database_url: str
    redis: PrivateRedis
    classifier_path: Path
    folder: Path
    settings: dict[str, str] = field(default_factory=dict)
    queue: str = field(default_factory=lambda: f"cityrelay-faults-{uuid.uuid4().hex[:8]}")
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    web_port: int = 0
    worker: subprocess.Popen[bytes] | None = None
    # Restarts of the worker by its supervisor, as (seconds since the epoch, the exit code).
    restarts: list[tuple[float, int | None]] = field(default_factory=list)
    _worker_lock: threading.Lock = field(default_factory=threading.Lock)
    _supervising: threading.Event = field(default_factory=threading.Event)

    def env(self, **overrides: str) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("CITYRELAY_DATABASE_URL", None)
        env.pop("CITYRELAY_REDIS_URL", None)
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis.url,
            CITYRELAY_INSTANCE_PATH=str(self.folder / "instance"),
            CITYRELAY_CLASSIFIER_PATH=str(self.classifier_path),
            CITYRELAY_CELERY_QUEUE=self.queue,
            CITYRELAY_SWEEP_INTERVAL_SECONDS=str(SWEEP_INTERVAL_SECONDS),
            CITYRELAY_SWEEP_STALE_SECONDS=str(SWEEP_STALE_SECONDS),
            PYTHONPATH=str(PROJECT_ROOT),
            PYTHONUNBUFFERED="1",
        )
        # Load from one address and one key is what these tests make: limits would refuse it.
        env.update({f"CITYRELAY_{name}": value for name, value in TEST_RATE_LIMITS.items()})
        env.update(self.settings)
        env.update(overrides)
        return env

    def launch(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        """`cityrelay <args>` as a process group of its own, its output in ``<name>.log``."""
        log_path = self.folder / f"{name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "cityrelay.cli", *args],
                env=self.env(**env),
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def launch_web(self) -> subprocess.Popen[bytes]:
        self.web_port = free_port()
        return self.launch("web", "web", "--port", str(self.web_port), "--workers", "2")

    def wait_for_web(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/api/v1/health", timeout=2):
                    return
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("web did not start:\n" + self.log("web")[-4000:]) from None
                time.sleep(0.1)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def launch_worker(
        self, name: str = "worker", concurrency: int = WORKER_CONCURRENCY
    ) -> subprocess.Popen[bytes]:
        return self.launch(name, "worker", "--concurrency", str(concurrency))

    def wait_for_worker(self, process: subprocess.Popen[bytes], name: str, offset: int = 0) -> None:
        """Until the worker consumes: Celery logs "ready." then."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while "ready." not in self.log(name)[offset:]:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("worker did not start:\n" + self.log(name)[-4000:])
            time.sleep(0.1)

    def start_beat(self, name: str = "beat") -> subprocess.Popen[bytes]:
        # Each beat keeps its schedule in an instance folder of its own.
        return self.launch(name, "beat", CITYRELAY_INSTANCE_PATH=str(self.folder / name))

    def start(self, web: bool = True, beats: int = 1) -> subprocess.Popen[bytes]:
        """Web, one worker and the beats, started side by side; answers the worker once every
        part is ready."""
        for number in range(beats):
            self.start_beat("beat" if number == 0 else f"beat{number + 1}")
        self.worker = self.launch_worker()
        web_process = self.launch_web() if web else None
        if web_process is not None:
            self.wait_for_web(web_process)
        self.wait_for_worker(self.worker, "worker")
        threading.Thread(target=self._supervise, daemon=True).start()
        return self.worker

    def _supervise(self) -> None:
        """As systemd's Restart=always does for a worker service: a worker whose main process
        exited (killed, or stopped by one of Celery's unrecoverable errors on a broker
        reconnection) is started again."""
        while not self._supervising.is_set():
            worker = self.worker
            if worker is not None and worker.poll() is not None:
                with self._worker_lock:
                    if self.worker is worker:
                        self.restarts.append((time.time(), worker.returncode))
                        self._restart_worker(wait=False)
            time.sleep(0.2)

    def restart_worker(self, wait: bool = True) -> subprocess.Popen[bytes]:
        with self._worker_lock:
            return self._restart_worker(wait)

    def _restart_worker(self, wait: bool) -> subprocess.Popen[bytes]:
        """A new worker in place of the one gone, as systemd restarts a service: what is left
        of the old one's process group is killed first (KillMode=control-group)."""
        if self.worker is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.worker.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.worker.wait(10)
        offset = len(self.log("worker"))
        self.worker = self.launch_worker()
        if wait:
            self.wait_for_worker(self.worker, "worker", offset)
        return self.worker

    def stop_all(self) -> None:
        self._supervising.set()
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)


@pytest.fixture(scope="session")
def running(
    private_postgres: PrivatePostgres,
    private_redis: PrivateRedis,
    classifier_model: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Web, a worker and beat on the private servers, started once for the fault tests (each
    start costs seconds): the tests take parts out and put them back."""
    folder = tmp_path_factory.mktemp("stack")
    (folder / "instance").mkdir()
    made = Stack(
        private_postgres.url(),
        private_redis,
        classifier_model,
        folder,
        settings={
            "CITYRELAY_DB_LOCK_TIMEOUT_SECONDS": str(LOCK_TIMEOUT_SECONDS),
            "CITYRELAY_OVERDUE_INTERVAL_SECONDS": str(PERIODIC_SECONDS),
            "CITYRELAY_SPIKE_INTERVAL_SECONDS": str(PERIODIC_SECONDS),
        },
    )
    try:
        made.start()
        yield made
    finally:
        made.stop_all()


@pytest.fixture
def stack(running: Stack) -> Iterator[Stack]:
    """The running stack, whole again at the start of each test: Redis answering, PostgreSQL
    up, the worker consuming; the processes a test added are gone at its end."""
    if running.redis.process is None or running.redis.process.poll() is not None:
        running.redis.start()
    running.redis.thaw()
    if running.worker is None or running.worker.poll() is not None:
        running.restart_worker()
    restarts_before = len(running.restarts)
    before = list(running.processes)
    yield running
    for at, code in running.restarts[restarts_before:]:
        print(f"the supervisor restarted the worker (it exited with {code}) at {at:.0f}")
    for process in running.processes:
        if process not in before and process is not running.worker:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


# ---------------------------------------------------------------- reporters and their reports


def new_reporter_keys(sessions: sessionmaker[Session], count: int) -> list[tuple[int, str]]:
    keys = []
    with unit_of_work(sessions) as session:
        for number in range(count):
            reporter, key = register_reporter(
                session, display_name=f"骑手{number}", occupation="rider", platform="faults"
            )
            session.flush()
            keys.append((reporter.id, key))
    return keys


# Reports spread on a grid around each community's sample point, the grid's steps (about
# 130 m) wider than a category's "me too" radius: most reports open a case of their own, as on a
# busy day across the city, instead of piling hundreds onto one case.
GRID = 5
GRID_STEP_LAT = 0.0012
GRID_STEP_LON = 0.0014


def report_body(number: int) -> dict[str, Any]:
    points = demo_city()["sample_points"]
    point = points[number % len(points)]
    cell = (number // len(points)) % (GRID * GRID)
    return {
        "text": TEXTS[number % len(TEXTS)],
        "lat": round(point["lat"] + (cell // GRID - GRID // 2) * GRID_STEP_LAT, 6),
        "lon": round(point["lon"] + (cell % GRID - GRID // 2) * GRID_STEP_LON, 6),
    }


@dataclass
class Answer:
    sent_at: float
    seconds: float
    status: int
    report_id: int | None
    retry_after: str | None
    body: str


def post_report(
    base: str, key: str, body: dict[str, Any], idempotency_key: str, timeout: float = 30
) -> Answer:
    import json

    request = urllib.request.Request(
        f"{base}/api/v1/reports",
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key,
        },
    )
    sent_at = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text, headers = response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as error:
        status, text, headers = error.code, error.read().decode(errors="replace"), error.headers
    seconds = time.monotonic() - sent_at
    report_id = json.loads(text).get("id") if status == 202 else None
    return Answer(sent_at, seconds, status, report_id, headers.get("Retry-After"), text)


class Load:
    """Reporters posting reports on threads of their own, each after the other's answer plus a
    pause, until stopped; every answer is kept."""

    def __init__(
        self,
        base: str,
        keys: list[tuple[int, str]],
        pause: float = 0.05,
        limit: int | None = None,
    ) -> None:
        """``limit``: how many reports in all, then the reporters stop by themselves."""
        self.base = base
        self.keys = keys
        self.pause = pause
        self.limit = limit
        self.accepted = 0
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(index,), daemon=True)
            for index in range(len(keys))
        ]
        self.prefix = uuid.uuid4().hex[:8]

    def _run(self, index: int) -> None:
        _reporter_id, key = self.keys[index]
        number = 0
        while not self._stop.is_set():
            with self._lock:
                if self.limit is not None and self.accepted >= self.limit:
                    return
            answer = post_report(
                self.base,
                key,
                report_body(index + number),
                f"{self.prefix}-{index}-{number}",
            )
            with self._lock:
                self.answers.append(answer)
                self.accepted += answer.status == 202
            # As a rider's app does: a 503 is tried again later with the same Idempotency-Key.
            if answer.status != 503:
                number += 1
            time.sleep(self.pause)

    def wait(self, timeout: float) -> None:
        """Until the reporters stopped by themselves (``limit``)."""
        for thread in self._threads:
            thread.join(timeout)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def between(self, start: float, end: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if start <= a.sent_at < end]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency_summary(answers: list[Answer]) -> str:
    seconds = [a.seconds for a in answers]
    return (
        f"{len(seconds)} answers, p50 {statistics.median(seconds) * 1000:.0f} ms, "
        f"p99 {percentile(seconds, 0.99) * 1000:.0f} ms, max {max(seconds) * 1000:.0f} ms"
    )


def reporter_reports(session: Session, reporter_ids: list[int]) -> list[Report]:
    return list(
        session.scalars(
            select(Report).where(Report.reporter_id.in_(reporter_ids)).order_by(Report.id)
        )
    )


def wait_until_routed(
    sessions: sessionmaker[Session],
    reporter_ids: list[int],
    timeout: float = ROUTED_TIMEOUT_SECONDS,
    describe: Callable[[], str] = lambda: "",
) -> float:
    """Seconds until every report of these reporters has its case; fails past ``timeout``."""
    started = time.monotonic()
    while True:
        with sessions() as session:
            waiting = session.scalar(
                select(func.count())
                .select_from(Report)
                .where(Report.reporter_id.in_(reporter_ids), Report.case_id.is_(None))
            )
        if waiting == 0:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            pytest.fail(f"{waiting} reports without a case after {timeout:.0f}s\n{describe()}")
        time.sleep(0.2)


def assert_each_report_once(sessions: sessionmaker[Session], reporter_ids: list[int]) -> int:
    """Every report of these reporters has exactly one case link, made once: its own case's
    three events (received, classified, routed or triaged) or one "merged" event, never an
    event twice, and no case without its report. Answers how many reports."""
    with sessions() as session:
        reports = reporter_reports(session, reporter_ids)
        ids = [r.id for r in reports]
        assert all(r.state == "processed" and r.case_id is not None for r in reports)
        events = session.execute(
            select(CaseEvent.report_id, CaseEvent.action, CaseEvent.case_id, func.count())
            .where(CaseEvent.report_id.in_(ids))
            .group_by(CaseEvent.report_id, CaseEvent.action, CaseEvent.case_id)
        ).all()
        doubled = [row for row in events if row[3] != 1]
        assert not doubled, f"events written twice: {doubled[:10]}"
        by_report: dict[int, set[str]] = {}
        for report_id, action, case_id, _count in events:
            by_report.setdefault(report_id, set()).add(action)
            assert case_id == next(r.case_id for r in reports if r.id == report_id)
        for report in reports:
            actions = by_report.get(report.id, set())
            assert actions in (
                {"received", "classified", "routed"},
                {"received", "classified", "triaged"},
                {"merged"},
            ), (report.id, actions)
        opened = {r.case_id for r in reports if "received" in by_report[r.id]}
        # A case is opened once per report that opened it: no second case for one report.
        assert len(opened) == sum("received" in a for a in by_report.values())
        orphans = session.scalar(
            select(func.count())
            .select_from(Case)
            .where(~Case.id.in_(select(Report.case_id).where(Report.case_id.is_not(None))))
        )
        assert orphans == 0, f"{orphans} cases without a report"
    return len(reports)
