"""The `cityrelay` command."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cityrelay.settings import load_settings
from models.limits import OCCUPATIONS

if TYPE_CHECKING:
    from routing.classify import TextClassifier

# Web processes: allocations this large are mapped and unmapped on their own (see `web`).
WEB_MMAP_THRESHOLD_BYTES = 1024 * 1024


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
    from cityrelay.embedded import run_everything

    chosen = port if port is not None else int(os.environ.get("PORT") or 8000)
    sys.exit(run_everything(host=host, port=chosen, concurrency=concurrency))


@main.command(help="Run the web server (gunicorn) on its own. Needs REDIS_URL.")
@click.option("--port", type=int, default=None, help="Web port (default: $PORT, else 8000).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--workers", type=int, default=2, show_default=True, help="gunicorn worker processes."
)
@click.option(
    "--threads",
    type=int,
    default=8,
    show_default=True,
    help="Threads per worker process (gunicorn's gthread workers): a slow client holds one "
    "thread, not a whole process, and no longer than the slow-body settings allow.",
)
def web(port: int | None, host: str, workers: int, threads: int) -> None:
    settings = _require_redis()
    chosen = port if port is not None else int(os.environ.get("PORT") or 8000)
    from cityrelay.metrics_dir import use_metrics_dir

    use_metrics_dir(settings["INSTANCE_PATH"], f"web-{chosen}")
    # glibc raises its mmap threshold to the size of each large block freed, so after the first
    # photo a decoded image's blocks (48 MiB for 12 megapixels) come from the threads' heaps,
    # which give little of it back: a worker's RSS ratchets up with each burst of uploads. A
    # fixed threshold returns blocks of a megabyte or more when freed. An operator's own wins.
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(WEB_MMAP_THRESHOLD_BYTES))
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{host}:{chosen}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        # logs and the metrics of exited workers (each request is logged by the app itself)
        "--config",
        "python:cityrelay.gunicorn_conf",
        "--graceful-timeout",
        "10",
        "wsgi:app",
    ]
    os.execv(sys.executable, argv)


@main.command(help="Run a Celery worker on its own. Needs REDIS_URL.")
@click.option("--concurrency", type=int, default=2, show_default=True)
@click.option("--loglevel", default="INFO", show_default=True)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve this worker's Prometheus metrics (task runs, sweeps, webhook failures, of "
    "every pool process) on this port, for a worker on a machine of its own. Default: none.",
)
@click.option(
    "--metrics-host", default="127.0.0.1", show_default=True, help="Address --metrics-port binds."
)
def worker(concurrency: int, loglevel: str, metrics_port: int | None, metrics_host: str) -> None:
    settings = _require_redis()
    if metrics_port is not None:
        from cityrelay.metrics_dir import use_metrics_dir

        # before prometheus_client is imported: every pool process writes to this folder
        use_metrics_dir(settings["INSTANCE_PATH"], f"worker-{metrics_port}")
    from workers.tasks import load_classifier

    # Before Celery starts: a bad model file stops the worker here, with the reason, before it
    # connects to anything.
    classifier = _classifier_or_fail(load_classifier, settings)
    click.echo(f"cityrelay: classifier {classifier.model_id} ready", err=True)
    from cityrelay.worker import celery_app as celery

    if metrics_port is not None:
        from cityrelay.observability import serve_worker_metrics

        serve_worker_metrics(metrics_port, metrics_host)
    celery.worker_main(
        [
            *_quiet_when_json(settings),
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
    help=(
        "Run Celery beat (the periodic sweep, the notification relay and the overdue "
        "escalation) on its own. Run exactly one. Needs REDIS_URL."
    )
)
@click.option("--loglevel", default="INFO", show_default=True)
def beat(loglevel: str) -> None:
    settings = _require_redis()
    from cityrelay.worker import celery_app as celery

    os.makedirs(settings["INSTANCE_PATH"], exist_ok=True)
    schedule = os.path.join(settings["INSTANCE_PATH"], "celerybeat-schedule")
    celery.start(
        [*_quiet_when_json(settings), "beat", f"--loglevel={loglevel}", f"--schedule={schedule}"]
    )


@main.command(help="Bring the database schema up to date.")
def migrate() -> None:
    from models.migrate import upgrade
    from services.statistics import fill_missing

    settings = load_settings()
    upgrade(settings["DATABASE_URL"])
    with _unit_of_work() as session:
        filled = fill_missing(session)
    click.echo(f"database at head: {_safe_url(settings['DATABASE_URL'])}")
    if filled:
        click.echo(f"statistics written for {filled} cases that had none")


@main.command(
    "rebuild-rollups",
    help="Rebuild the statistics of every case (the case_stats and case_report_days rows) "
    "from the case events and reports, and the monthly and daily tables (stats_months, "
    "stats_office_months, stats_category_months, stats_office_days, stats_category_days) from "
    "them, and each reporter's points by year (reporter_points_years) from the ledger, in one "
    "transaction: the figures never show a half-built state.",
)
def rebuild_rollups() -> None:
    from services.statistics import rebuild

    with _unit_of_work() as session:
        written = rebuild(session)
    click.echo(f"statistics rebuilt from events: {written} cases")


@main.command(
    "import-media",
    help="Copy the photos of a media folder (where CityRelay kept photos before they went to "
    "the database, CITYRELAY_MEDIA_DIR by default) into the database's photo store, so every "
    "web machine serves them. Files are matched by name (<sha256>.<jpg|png|webp|heic>); a "
    "file whose bytes do not hash to its name, or that is no image of its kind, is left out "
    "and listed. One transaction per file; safe to repeat (photos stored already are not read "
    "again). The folder itself is left as it was. Run it after `cityrelay migrate`.",
)
@click.option(
    "--from",
    "folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="The folder to read (default: CITYRELAY_MEDIA_DIR, <instance>/media).",
)
def import_media_command(folder: Path | None) -> None:
    from cityrelay.media_import import import_media

    settings = load_settings()
    source = folder if folder is not None else Path(settings["MEDIA_DIR"])
    if not source.is_dir():
        raise click.ClickException(f"no such folder: {source}")
    summary = import_media(settings["DATABASE_URL"], source)
    click.echo(
        f"photos of {source}: {summary.imported} imported, "
        f"{summary.already_stored} stored already, {len(summary.skipped)} left out"
    )
    for name, why in summary.skipped:
        click.echo(f"  left out {name}: {why}")


@main.command("seed-demo", help="Load the taxonomy and the demo city (idempotent: upsert by code).")
def seed_demo() -> None:
    from models.seed import load_demo_city

    with _unit_of_work() as session:
        count = load_demo_city(session)
    click.echo(f"demo city loaded: {count} offices")


@main.command(
    "seed-demo-history",
    help="Give the demo city a past: about --cases cases over the last 90 days, reported by "
    "riders, couriers, drivers and citizens, some merged as 'me too', played through the real "
    "workflow (routed, accepted, asked, extended, resolved, reworked, closed, confirmed, "
    "reopened; some still open, some overdue) with a storm of waterlogging reports in one "
    "community in the last hours. Each resolution comes with a drawn after-photo, stored in "
    "the photo store (CITYRELAY_PHOTO_STORE). One transaction; the same seed at the same "
    "moment gives the same history. Does nothing on a database that already has a case. "
    "`cityrelay up` runs it once, on a database without cases.",
)
@click.option(
    "--cases", type=click.IntRange(1, 2000), default=300, show_default=True, help="How many."
)
@click.option("--seed", type=int, default=None, help="Random seed (default: a fixed one).")
def seed_history(cases: int, seed: int | None) -> None:
    from models.base import utcnow
    from services.demo_history import DEFAULT_SEED, seed_demo_history
    from services.photo_store import open_photo_store
    from services.rewards import policy_from_settings

    settings = load_settings()
    policy = policy_from_settings(settings)
    started = time.perf_counter()
    with _unit_of_work() as session:
        history = seed_demo_history(
            session,
            utcnow(),
            cases=cases,
            seed=DEFAULT_SEED if seed is None else seed,
            points_policy=policy,
            photo_store=open_photo_store(settings["PHOTO_STORE"], settings["MEDIA_DIR"], session),
        )
    if not history.seeded:
        click.echo(f"demo history: nothing done ({history.reason})")
        return
    click.echo(
        f"demo history: {history.cases} cases from {history.reports} reports "
        f"({history.merged_reports} merged as 'me too') by {history.reporters} reporters, "
        f"in {time.perf_counter() - started:.1f} s"
    )
    for status, count in history.by_status.items():
        click.echo(f"  {status.replace(':', ' as '):<28}{count:>5}")
    click.echo(f"  overdue now: {history.overdue_now}; points in the ledger: {history.points}")


@main.command(
    "create-key",
    help="Create an API key and print it. Roles: reporter, office:<office code> (staff of that "
    "office), supervisor:<office code> (of that office and every office under it), admin. "
    "A reporter key also creates its reporter. Only the key is printed (on stdout); it is shown "
    "once. With --expires-in-days the key is refused (401) from then on, like a revoked one.",
)
@click.option(
    "--role",
    required=True,
    help="reporter | office:<office code> | supervisor:<office code> | admin",
)
@click.option("--name", default="", help="Reporter's display name or the key's label.")
@click.option(
    "--occupation",
    type=click.Choice(OCCUPATIONS),
    default="rider",
    show_default=True,
    help="For reporter keys.",
)
@click.option("--platform", default="", help="For reporter keys: the rider's platform.")
@click.option(
    "--expires-in-days",
    type=click.IntRange(min=1, max=36500),
    default=None,
    help="The key expires this many days from now (default: never); the expiry time goes to "
    "stderr.",
)
def create_key(
    role: str, name: str, occupation: str, platform: str, expires_in_days: int | None
) -> None:
    from datetime import timedelta

    from models.base import utcnow
    from services.accounts import issue_key, register_reporter
    from services.errors import ServiceError

    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    with _unit_of_work() as session:
        try:
            if role == "reporter":
                _reporter, key = register_reporter(
                    session,
                    display_name=name or "Reporter",
                    occupation=occupation,
                    platform=platform,
                    label=name,
                    expires_at=expires_at,
                )
            elif role.startswith(("office:", "supervisor:")):
                key_role, _, office_code = role.partition(":")
                _row, key = issue_key(
                    session, key_role, office_code=office_code, label=name, expires_at=expires_at
                )
            elif role == "admin":
                _row, key = issue_key(session, "admin", label=name, expires_at=expires_at)
            else:
                raise click.BadParameter(
                    "reporter, office:<code>, supervisor:<code> or admin", param_hint="--role"
                )
        except ServiceError as error:
            raise click.BadParameter(error.message, param_hint="--role") from None
    click.echo(key)
    if expires_at is not None:
        click.echo(f"expires {expires_at.isoformat(timespec='seconds')}", err=True)


@main.command(
    "revoke-key",
    help="Revoke an API key at once: from now on it answers 401. KEY is the key's id (the "
    "api_keys row), its prefix (its first 12 characters) or the whole key. Revoking a revoked "
    "key changes nothing.",
)
@click.argument("key")
def revoke_key(key: str) -> None:
    from services.accounts import revoke_key as revoke
    from services.errors import ServiceError

    with _unit_of_work() as session:
        try:
            row, revoked_now = revoke(session, key)
        except ServiceError as error:
            raise click.BadParameter(error.message, param_hint="KEY") from None
        described = f"key {row.id} ({row.role}{': ' + row.label if row.label else ''})"
        when = row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else ""
    click.echo(f"{described} revoked" if revoked_now else f"{described} was revoked at {when}")


@main.command(
    "create-user",
    help="Create a login for the office console (/console) and print its one-time password, "
    "which must be changed at the first login. Roles: staff (the office's cases), supervisor "
    "(the office's and every office's under it), admin (the triage desk). Only an argon2 hash "
    "of the password is stored.",
)
@click.option("--office", "office_code", required=True, help="The user's office code.")
@click.option(
    "--role",
    type=click.Choice(["staff", "supervisor", "admin"]),
    required=True,
    help="staff | supervisor | admin",
)
@click.option(
    "--username",
    required=True,
    help="Lower-case letters, digits, '.', '_' or '-'; unique.",
)
@click.option("--name", "display_name", default="", help="The name the console shows.")
def create_user(office_code: str, role: str, username: str, display_name: str) -> None:
    from services.errors import ServiceError
    from services.users import create_user as create_console_user

    with _unit_of_work() as session:
        try:
            user, password = create_console_user(
                session,
                username=username,
                office_code=office_code,
                role=role,
                display_name=display_name,
            )
        except ServiceError as error:
            hint = {"office": "--office", "role": "--role"}.get(
                getattr(error, "field", None) or "", "--username"
            )
            raise click.BadParameter(error.message, param_hint=hint) from None
    click.echo(f"user {user.username} ({user.role} of {user.office_code}) created")
    click.echo(f"one-time password: {password}")
    click.echo("It is shown only now; it must be changed at the first login at /console.")


@main.command(
    "train-classifier",
    help="Train the text classifier on the bundled corpus (its train split) and write the model "
    "file workers load: --output, else CITYRELAY_CLASSIFIER_PATH, else "
    "<instance>/classifier.joblib. Replaces a stale or damaged file. Prints the model id.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the model file.",
)
def train_classifier(output: Path | None) -> None:
    from routing.classify import artifact

    path = output if output is not None else Path(load_settings()["CLASSIFIER_PATH"])
    started = time.perf_counter()
    classifier = artifact.train_from_bundled_corpus()
    artifact.save(classifier, path)
    click.echo(
        f"classifier {classifier.model_id} written to {path} "
        f"(trained in {time.perf_counter() - started:.1f} s)"
    )


@main.command(
    "eval-classifier",
    help="Evaluate the text classifier: accuracy, macro-F1, per-category precision and recall, "
    "confusion pairs and triage, on the bundled held-out split (short rider-style reports, and "
    "long descriptions apart) and on the real labelled sets "
    "under --data (default ../shared/data next to the project).",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder with the shared evaluation data (default: ../shared/data).",
)
@click.option(
    "--threshold",
    type=float,
    default=None,
    help="Triage threshold (default: CITYRELAY_CLASSIFY_THRESHOLD, else 0.45).",
)
@click.option(
    "--set",
    "set_names",
    multiple=True,
    help="Only this evaluation set (repeatable): held-out, held-out-long, newport, newport-dev, "
    "newport-test, multicity, teddycup, teddycup-title.",
)
def eval_classifier(
    data_dir: Path | None, threshold: float | None, set_names: tuple[str, ...]
) -> None:
    from evaluation import datasets, evaluate
    from routing.classify import load_or_train

    folder = data_dir if data_dir is not None else datasets.DEFAULT_DATA_DIR
    cutoff = threshold if threshold is not None else float(load_settings()["CLASSIFY_THRESHOLD"])
    unknown = [name for name in set_names if name not in datasets.SET_NAMES]
    if unknown:
        raise click.BadParameter(
            f"unknown set {', '.join(unknown)}; choose from {', '.join(datasets.SET_NAMES)}",
            param_hint="--set",
        )
    found, missing = datasets.available(folder)
    wanted = list(set_names) or list(datasets.SET_NAMES)
    settings = load_settings()
    classifier = _classifier_or_fail(load_or_train, settings)
    click.echo(f"classifier model {classifier.model_id} ({settings['CLASSIFIER_PATH']})")
    summary: list[tuple[str, evaluate.Report]] = []
    for name in wanted:
        if name not in found:
            continue
        dataset = datasets.load(name, folder)
        triples = []
        for text, gold in dataset.examples:
            result = classifier.classify(text)
            triples.append((gold, dataset.label_of(result.category), result.confidence))
        figures = evaluate.report(triples, cutoff)
        summary.append((name, figures))
        _print_eval(dataset.description, name, dataset.skipped, figures)
    not_found = [name for name in wanted if name in missing]
    if not_found:
        click.echo(f"not found under {folder}: {', '.join(not_found)} (skipped)")
    if summary:
        click.echo("")
        click.echo(
            f"{'set':<16}{'n':>6}{'accuracy':>10}{'macro-F1':>10}{'triaged':>9}"
            f"{'triage prec':>13}{'auto acc':>10}"
        )
        for name, figures in summary:
            t = figures.triage
            click.echo(
                f"{name:<16}{figures.total:>6}{figures.accuracy:>10.1%}{figures.macro_f1:>10.3f}"
                f"{t.share:>9.1%}{t.precision:>13.1%}{t.auto_accuracy:>10.1%}"
            )


def _print_eval(description: str, name: str, skipped: int, figures) -> None:  # type: ignore[no-untyped-def]
    t = figures.triage
    click.echo(f"== {name}: {description}")
    click.echo(
        f"reports {figures.total} (left out {skipped})  accuracy {figures.accuracy:.1%}  "
        f"macro-F1 {figures.macro_f1:.3f}"
    )
    click.echo(
        f"triage at {t.threshold:.2f}: {t.triaged} of {t.total} ({t.share:.1%}); "
        f"precision {t.precision:.1%} (triaged that were wrong), catches {t.recall:.1%} of "
        f"errors; accuracy of the rest {t.auto_accuracy:.1%}"
    )
    width = max([len(f.label) for f in figures.per_label] + [8])
    click.echo(f"  {'category':<{width}}  precision  recall  support")
    for f in figures.per_label:
        click.echo(f"  {f.label:<{width}}  {f.precision:>9.1%}  {f.recall:>6.1%}  {f.support:>7}")
    if figures.confusions:
        click.echo("  top confusions (gold -> predicted):")
        for gold, predicted, count in figures.confusions:
            click.echo(f"    {gold} -> {predicted}: {count}")
    click.echo("")


def _require_redis() -> dict[str, Any]:
    settings = load_settings()
    if not settings["REDIS_URL"]:
        raise click.UsageError(
            "REDIS_URL is not set. Set it, or run `cityrelay up`, which starts an embedded Redis."
        )
    return settings


def _quiet_when_json(settings: dict[str, Any]) -> list[str]:
    """Celery's start-up banner is not a log record: left out when each line must be JSON."""
    return ["--quiet"] if settings["LOG_FORMAT"] == "json" else []


def _classifier_or_fail(
    load: Callable[[str], TextClassifier], settings: dict[str, Any]
) -> TextClassifier:
    """``load(path)`` on the configured model file; a missing file is trained, a damaged or
    stale one ends the command with the reason and what to run."""
    from routing.classify import ModelArtifactError

    try:
        return load(settings["CLASSIFIER_PATH"])
    except ModelArtifactError as error:
        raise click.ClickException(str(error)) from None


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _unit_of_work():  # type: ignore[no-untyped-def]
    from models.session import make_engine, make_session_factory, unit_of_work

    settings = load_settings()
    return unit_of_work(make_session_factory(make_engine(settings["DATABASE_URL"]), writer=True))


if __name__ == "__main__":
    main()
