"""The `cityrelay` command."""

from __future__ import annotations

import os
import sys

import click
from sqlalchemy import select

from intake.config import load_settings


@click.group(
    help="CityRelay: city problems reported on the move, classified and routed to the office "
    "that must act. Settings come from the environment (see README, 'Configuration')."
)
def main() -> None:
    pass


@main.command(
    help="Run everything: migrate, seed the demo city on first start, then Redis (embedded "
    "unless REDIS_URL is set), a Celery worker, beat and the web server. Ctrl-C stops all."
)
@click.option("--port", type=int, default=None, help="Web port (default: $PORT, else 8000).")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address the web server binds."
)
@click.option("--concurrency", type=int, default=2, show_default=True, help="Worker processes.")
def up(port: int | None, host: str, concurrency: int) -> None:
    from intake.embedded import run_everything

    chosen = port if port is not None else int(os.environ.get("PORT") or 8000)
    sys.exit(run_everything(host=host, port=chosen, concurrency=concurrency))


@main.command(help="Run the web server (gunicorn) on its own. Needs REDIS_URL.")
@click.option("--port", type=int, default=None, help="Web port (default: $PORT, else 8000).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--workers", type=int, default=2, show_default=True, help="gunicorn worker processes."
)
def web(port: int | None, host: str, workers: int) -> None:
    _require_redis()
    chosen = port if port is not None else int(os.environ.get("PORT") or 8000)
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{host}:{chosen}",
        "--workers",
        str(workers),
        "--access-logfile",
        "-",
        "--graceful-timeout",
        "10",
        "wsgi:app",
    ]
    os.execv(sys.executable, argv)


@main.command(help="Run a Celery worker on its own. Needs REDIS_URL.")
@click.option("--concurrency", type=int, default=2, show_default=True)
@click.option("--loglevel", default="INFO", show_default=True)
def worker(concurrency: int, loglevel: str) -> None:
    settings = _require_redis()
    from workers.celery_app import celery

    celery.worker_main(
        [
            "worker",
            f"--loglevel={loglevel}",
            f"--concurrency={concurrency}",
            "-Q",
            settings["CELERY_QUEUE"],
            "--without-gossip",
            "--without-mingle",
        ]
    )


@main.command(
    help="Run Celery beat (the periodic sweep) on its own. Run exactly one. Needs REDIS_URL."
)
@click.option("--loglevel", default="INFO", show_default=True)
def beat(loglevel: str) -> None:
    settings = _require_redis()
    from workers.celery_app import celery

    os.makedirs(settings["INSTANCE_PATH"], exist_ok=True)
    schedule = os.path.join(settings["INSTANCE_PATH"], "celerybeat-schedule")
    celery.start(["beat", f"--loglevel={loglevel}", f"--schedule={schedule}"])


@main.command(help="Bring the database schema up to date.")
def migrate() -> None:
    from models.migrate import upgrade

    settings = load_settings()
    upgrade(settings["DATABASE_URL"])
    click.echo(f"database at head: {_safe_url(settings['DATABASE_URL'])}")


@main.command("seed-demo", help="Load the taxonomy and the demo city (idempotent: upsert by code).")
def seed_demo() -> None:
    from models.seed import load_demo_city

    with _unit_of_work() as session:
        count = load_demo_city(session)
    click.echo(f"demo city loaded: {count} offices")


@main.command(
    "create-key",
    help="Create an API key and print it. Roles: reporter, "
    "office:<office code>, admin. A reporter key also creates its reporter.",
)
@click.option("--role", required=True, help="reporter | office:<office code> | admin")
@click.option("--name", default="", help="Reporter's display name or the key's label.")
@click.option(
    "--occupation",
    type=click.Choice(["rider", "courier", "driver", "citizen"]),
    default="rider",
    show_default=True,
    help="For reporter keys.",
)
@click.option("--platform", default="", help="For reporter keys: the rider's platform.")
def create_key(role: str, name: str, occupation: str, platform: str) -> None:
    from intake.auth import KEY_PREFIX_CHARS, hash_key, new_key
    from models.entities import ApiKey, Office, Reporter

    key = new_key()
    with _unit_of_work() as session:
        row = ApiKey(prefix=key[:KEY_PREFIX_CHARS], key_hash=hash_key(key), label=name)
        if role == "reporter":
            reporter = Reporter(
                display_name=name or "Reporter", occupation=occupation, platform=platform
            )
            session.add(reporter)
            row.role, row.reporter = "reporter", reporter
        elif role.startswith("office:"):
            code = role.removeprefix("office:")
            office = session.scalar(select(Office).where(Office.code == code))
            if office is None:
                raise click.BadParameter(f"no office with code {code!r}", param_hint="--role")
            row.role, row.office = "office", office
        elif role == "admin":
            row.role = "admin"
        else:
            raise click.BadParameter("reporter, office:<code> or admin", param_hint="--role")
        session.add(row)
    click.echo(key)


def _require_redis() -> dict[str, object]:
    settings = load_settings()
    if not settings["REDIS_URL"]:
        raise click.UsageError(
            "REDIS_URL is not set. Set it, or run `cityrelay up`, which starts an embedded Redis."
        )
    return settings


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _unit_of_work():  # type: ignore[no-untyped-def]
    from models.session import make_engine, make_session_factory, unit_of_work

    settings = load_settings()
    return unit_of_work(make_session_factory(make_engine(settings["DATABASE_URL"]), writer=True))


if __name__ == "__main__":
    main()
