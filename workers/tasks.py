"""Celery tasks. Each takes ids, opens one unit of work, calls one service, and does nothing on
a rerun."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from celery import current_app as current_celery_app
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_init, worker_process_init
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from models.base import utcnow
from routing.webhooks import allowed_hosts
from services import escalation, exports, notifications, processing, spikes
from services.escalation import ESCALATE_OVERDUE
from services.exports import EXPORT_CASES
from services.filing import PROCESS_REPORT
from services.notifications import RELAY_NOTIFICATIONS, RelayPolicy
from services.spikes import DETECT_SPIKES
from workers.metrics import SWEEP_REQUEUED, SWEEP_RUNS, WEBHOOK_FAILURES

if TYPE_CHECKING:
    from routing.classify import TextClassifier

logger = logging.getLogger(__name__)

_classifier: TextClassifier | None = None
_classifier_lock = threading.Lock()


def load_classifier(path: str) -> TextClassifier:
    """The classifier this process classifies with: the model file at ``path``, loaded once
    (trained and saved first if there is none). Raises ``ModelArtifactError`` when the file is
    damaged or was trained under another model id."""
    global _classifier
    with _classifier_lock:
        if _classifier is None:
            # Imported here, not with this module: beat imports this module too (Celery's
            # loader does, at start), and must not carry scikit-learn. A worker calls this
            # before it forks its pool, so no report waits for the import.
            from routing.classify import load_or_train

            _classifier = load_or_train(path)
        return _classifier


@shared_task(name=PROCESS_REPORT, bind=True)
def process_report(self, report_id: int) -> str:  # type: ignore[no-untyped-def]
    with self.unit_of_work() as session:
        case = processing.process_report(
            session,
            report_id,
            classifier=load_classifier(current_app.config["CLASSIFIER_PATH"]),
            threshold=current_app.config["CLASSIFY_THRESHOLD"],
        )
    if case is None:
        return "nothing to do"
    logger.info(
        "report %s: case %s %s",
        report_id,
        case.id,
        case.status,
        extra={"report_id": report_id, "case_id": case.id},
    )
    return f"case {case.id} {case.status}"


@shared_task(name="cityrelay.sweep_stuck_reports", bind=True)
def sweep_stuck_reports(self) -> int:  # type: ignore[no-untyped-def]
    """Enqueue again every report that should have been routed by now."""
    stale_after = timedelta(seconds=current_app.config["SWEEP_STALE_SECONDS"])
    with self.unit_of_work() as session:
        ids = processing.requeue_stuck_reports(session, stale_after, utcnow())
    SWEEP_RUNS.inc()
    SWEEP_REQUEUED.inc(len(ids))
    if ids:
        current_app.logger.info("sweep re-enqueued %d stuck reports: %s", len(ids), ids[:20])
    return len(ids)


@shared_task(name=ESCALATE_OVERDUE, bind=True)
def escalate_overdue(self) -> str:  # type: ignore[no-untyped-def]
    """Flag the cases past their due time in the office's hands and escalate each to the
    office above (a rerun, or a second beat's run, finds nothing left to do)."""
    with self.unit_of_work() as session:
        escalated = escalation.escalate_overdue(session, utcnow())
    if escalated:
        current_app.logger.info(
            "%d cases overdue: %s", len(escalated), [e.case_id for e in escalated][:20]
        )
    return f"{len(escalated)} cases escalated"


@shared_task(name=DETECT_SPIKES, bind=True)
def detect_spikes(self) -> str:  # type: ignore[no-untyped-def]
    """Announce on stats.spike every current spike not announced in the last 24 hours (a
    rerun, or a second beat's run, finds them announced)."""
    with self.unit_of_work() as session:
        announced = spikes.announce_spikes(session, utcnow(), current_app.config["TIMEZONE"])
    if announced:
        current_app.logger.info(
            "%d new spikes: %s", len(announced), [(s.office, s.category) for s in announced][:20]
        )
    return f"{len(announced)} spikes announced"


# A case list of a million lines takes minutes, not the hour this allows.
EXPORT_SOFT_TIME_LIMIT_SECONDS = 3600
EXPORT_TIME_LIMIT_SECONDS = 3700


@shared_task(
    name=EXPORT_CASES,
    bind=True,
    soft_time_limit=EXPORT_SOFT_TIME_LIMIT_SECONDS,
    time_limit=EXPORT_TIME_LIMIT_SECONDS,
)
def export_cases(self, export_id: int) -> str:  # type: ignore[no-untyped-def]
    """Write a requested case-list export into the database, the file and its ``done`` in the
    run's one commit (a rerun of a finished one does nothing). An export past its time limit
    fails with the reason, for the requester to see, instead of retrying forever."""
    try:
        with self.unit_of_work() as session:
            return exports.write_export(session, export_id, utcnow())
    except SoftTimeLimitExceeded:
        with self.unit_of_work() as session:
            exports.fail_export(
                session,
                export_id,
                f"took longer than {EXPORT_SOFT_TIME_LIMIT_SECONDS} s; ask for fewer cases",
                utcnow(),
            )
        current_app.logger.error("export %s stopped at its time limit", export_id)
        return f"export {export_id} failed"


@shared_task(name="cityrelay.sweep_stuck_exports", bind=True)
def sweep_stuck_exports(self) -> int:  # type: ignore[no-untyped-def]
    """Enqueue again every export still pending long after it was asked for."""
    stale_after = timedelta(seconds=current_app.config["SWEEP_STALE_SECONDS"])
    with self.unit_of_work() as session:
        ids = exports.requeue_stuck(session, stale_after, utcnow())
    if ids:
        current_app.logger.info("sweep re-enqueued %d stuck exports: %s", len(ids), ids[:20])
    return len(ids)


def relay_policy(config: Mapping[str, Any]) -> RelayPolicy:
    """The relay's limits, from the settings (CITYRELAY_OUTBOX_*, CITYRELAY_WEBHOOK_*)."""
    return RelayPolicy(
        max_attempts=int(config["OUTBOX_MAX_ATTEMPTS"]),
        backoff_base_seconds=float(config["OUTBOX_BACKOFF_BASE_SECONDS"]),
        backoff_cap_seconds=float(config["OUTBOX_BACKOFF_CAP_SECONDS"]),
        lease_seconds=float(config["OUTBOX_LEASE_SECONDS"]),
        batch_size=int(config["OUTBOX_BATCH_SIZE"]),
        timeout_seconds=float(config["WEBHOOK_TIMEOUT_SECONDS"]),
        allowed_hosts=allowed_hosts(config["WEBHOOK_HOSTS"]),
    )


@shared_task(name=RELAY_NOTIFICATIONS, bind=True)
def relay_notifications(self) -> str:  # type: ignore[no-untyped-def]
    """Deliver the due outbox rows as signed webhooks: claim them (one short transaction),
    POST them with no transaction open, then record what happened (another one)."""
    policy = relay_policy(current_app.config)
    with self.unit_of_work() as session:
        batch = notifications.claim_due(session, utcnow(), policy)
    if not batch:
        return "nothing due"
    outcomes = notifications.deliver(batch, policy)
    WEBHOOK_FAILURES.inc(sum(len(outcome.errors) for outcome in outcomes))
    with self.unit_of_work() as session:
        summary = notifications.record_outcomes(session, outcomes, utcnow(), policy)
    return (
        f"{summary.delivered} delivered, {summary.retrying} to retry, {summary.dead} dead, "
        f"{summary.lost_lease} lost their lease"
    )


@worker_init.connect
def _load_classifier_before_fork(**_: object) -> None:
    # Loaded in the parent, the classifier is shared copy-on-write by every pool process.
    # `cityrelay worker` has loaded it already, to refuse a bad model file before starting;
    # this covers `celery -A cityrelay.worker worker`.
    from routing.classify import ModelArtifactError

    path = current_celery_app.Task.flask_app.config["CLASSIFIER_PATH"]
    try:
        load_classifier(path)
    except ModelArtifactError as error:
        logger.critical("%s", error)
        # Celery logs and swallows an Exception from a signal handler; a worker without a
        # usable model must not start taking reports, so leave with SystemExit instead.
        raise SystemExit(1) from error
    _warm_up(current_celery_app.Task)


def _warm_up(task_base: type) -> None:
    """Do once in the parent what the first report would otherwise wait for in every pool
    process: the text folding dictionaries and the offices' spatial index. Both are shared
    copy-on-write after the fork."""
    load_classifier(task_base.flask_app.config["CLASSIFIER_PATH"]).classify("路灯不亮 light out")
    database = task_base.db
    try:
        with task_base.flask_app.app_context(), database.sessions() as session:
            processing.routing_context(session)
    except SQLAlchemyError:
        # A database not reachable or not migrated yet: the first task builds the index.
        logger.warning("offices not loaded before the first report", exc_info=True)
    finally:
        database.engine.dispose()


@worker_process_init.connect
def _fresh_connections_after_fork(**_: object) -> None:
    # Pooled connections must never cross a fork; each pool process opens its own.
    current_celery_app.Task.db.engine.dispose(close=False)
