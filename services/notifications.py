"""Notifications: the outbox rows other services write in the transaction of the change they
announce, delivered as signed webhooks to the subscriptions admins keep.

The relay works in three steps so that no database transaction is held while an endpoint is
called: ``claim_due`` (in one transaction: the due rows, locked with FOR UPDATE SKIP LOCKED on
PostgreSQL, are leased to this run), ``deliver`` (after that commit, no session: one POST per
subscription that wants a row), ``record_outcomes`` (in another transaction: delivered, retried
later with backoff, or dead). A run that dies between the steps loses nothing: its rows' lease
expires and they are due again. Nothing here commits.
"""

from __future__ import annotations

import http.client
import json
import random
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, selectinload

from models.entities import (
    OUTBOX_DEAD,
    OUTBOX_DELIVERED,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    OUTBOX_SKIPPED,
    Office,
    OutboxMessage,
    OutboxReplay,
    WebhookSubscription,
)
from models.session import enqueue_after_commit, pending_tasks
from routing.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TOPIC_HEADER,
    backoff_seconds,
    recipient_pattern_problem,
    secret_problem,
    sign,
    topic_pattern_problem,
    url_problem,
    wants,
)
from services.errors import Conflict, InvalidFields, NotFound

RELAY_NOTIFICATIONS = "cityrelay.relay_notifications"
USER_AGENT = "CityRelay-Webhooks/1"
MAX_ERROR_CHARS = 2000


def ask_for_relay(session: Session) -> None:
    """Ask for a relay run once this transaction commits (once, however often it is asked)."""
    if (RELAY_NOTIFICATIONS, ()) not in pending_tasks(session):
        enqueue_after_commit(session, RELAY_NOTIFICATIONS)


# ---------------------------------------------------------------- subscriptions


@dataclass(frozen=True)
class WebhookSpec:
    """One webhook as an admin lists it. ``id`` names an existing one to keep (its secret too,
    when ``secret`` is None); without an id it is a new one, which needs a secret."""

    url: str
    topics: Sequence[str]
    secret: str | None = None
    recipients: Sequence[str] | None = None
    active: bool = True
    description: str = ""
    id: int | None = None


def webhooks(session: Session) -> list[WebhookSubscription]:
    return list(session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id)))


def replace_webhooks(
    session: Session, specs: Sequence[WebhookSpec], actor: str, allowed_hosts: frozenset[str]
) -> list[WebhookSubscription]:
    """Make the subscriptions exactly ``specs``: those named by id are updated, the others
    added, and every one not listed removed. Refuses the whole list (nothing changes) naming
    each wrong field as ``webhooks.<n>.<field>``."""
    existing = {subscription.id: subscription for subscription in webhooks(session)}
    problems = _problems(session, specs, existing, allowed_hosts)
    if problems:
        raise InvalidFields(problems)
    kept: set[int] = set()
    for spec in specs:
        subscription = existing[spec.id] if spec.id is not None else WebhookSubscription()
        subscription.url = spec.url
        if spec.secret is not None:
            subscription.secret = spec.secret
        subscription.topics = list(spec.topics)
        subscription.recipients = list(spec.recipients) if spec.recipients is not None else None
        subscription.active = spec.active
        subscription.description = spec.description
        subscription.updated_by = actor
        if spec.id is None:
            session.add(subscription)
        else:
            kept.add(spec.id)
    for subscription_id, subscription in existing.items():
        if subscription_id not in kept:
            session.delete(subscription)
    session.flush()
    return webhooks(session)


def _problems(
    session: Session,
    specs: Sequence[WebhookSpec],
    existing: dict[int, WebhookSubscription],
    allowed_hosts: frozenset[str],
) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    offices = set(session.scalars(select(Office.code)))
    listed: set[int] = set()
    for n, spec in enumerate(specs):

        def refuse(name: str, message: str, n: int = n) -> None:
            problems.setdefault(f"webhooks.{n}.{name}", []).append(message)

        if spec.id is not None:
            if spec.id not in existing:
                refuse("id", f"No webhook {spec.id}; leave the id out to add a new one.")
            elif spec.id in listed:
                refuse("id", f"Webhook {spec.id} is listed twice.")
            listed.add(spec.id)
        if spec.secret is None and spec.id is None:
            refuse("secret", "A new webhook needs a secret.")
        if spec.secret is not None and (problem := secret_problem(spec.secret)):
            refuse("secret", problem)
        if problem := url_problem(spec.url, allowed_hosts):
            refuse("url", problem)
        if not spec.topics:
            refuse("topics", "At least one topic, such as 'case.*' or '*'.")
        for pattern in spec.topics:
            if problem := topic_pattern_problem(pattern):
                refuse("topics", problem)
        if spec.recipients is not None and not spec.recipients:
            refuse("recipients", "Leave recipients out (or null) for all; [] would match none.")
        for pattern in spec.recipients or ():
            code = pattern.removeprefix("office:") if pattern.startswith("office:") else None
            if problem := recipient_pattern_problem(pattern):
                refuse("recipients", problem)
            elif code is not None and code != "*" and code not in offices:
                refuse("recipients", f"No office with code '{code}'.")
    return problems


# ---------------------------------------------------------------- the relay


@dataclass(frozen=True)
class RelayPolicy:
    max_attempts: int = 8
    backoff_base_seconds: float = 30.0
    backoff_cap_seconds: float = 3600.0
    lease_seconds: float = 120.0
    batch_size: int = 20
    timeout_seconds: float = 5.0
    # Hosts webhook URLs may name; empty: any.
    allowed_hosts: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Target:
    subscription_id: int
    url: str
    secret: str


@dataclass(frozen=True)
class Claimed:
    """A row leased to this run, with what its webhooks carry; no session needed."""

    message_id: int
    claim_token: str
    topic: str
    recipient: str
    case_id: int | None
    payload: dict[str, Any]
    created_at: datetime
    attempt: int
    targets: tuple[Target, ...]

    def body(self, target: Target) -> dict[str, Any]:
        return {
            "delivery_id": delivery_id(self.message_id, target.subscription_id),
            "message_id": self.message_id,
            "topic": self.topic,
            "recipient": self.recipient,
            "case_id": self.case_id,
            "payload": self.payload,
            "created_at": self.created_at.isoformat(),
            "attempt": self.attempt,
        }


@dataclass
class Outcome:
    message_id: int
    claim_token: str
    delivered: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Targets not tried because the lease would have run out first (no failure).
    unfinished: bool = False

    @property
    def attempted(self) -> bool:
        return bool(self.delivered or self.errors)


@dataclass(frozen=True)
class Sent:
    """What an endpoint answered: its HTTP status (None: no answer) and why it failed."""

    status: int | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class RelaySummary:
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    # Rows whose lease another run took over before this one reported: left to that run.
    lost_lease: int = 0


def delivery_id(message_id: int, subscription_id: int) -> str:
    """The same for every attempt at one notification to one subscription: receivers use it to
    drop repeats (a relay that died after the POST, before recording it, sends again)."""
    return f"{message_id}.{subscription_id}"


def claim_due(session: Session, now: datetime, policy: RelayPolicy) -> list[Claimed]:
    """Lease the due rows to this run: pending ones whose time has come, and sending ones whose
    lease expired. Rows no active subscription wants any more are settled here and then."""
    due = or_(
        and_(OutboxMessage.status == OUTBOX_PENDING, OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.status == OUTBOX_SENDING, OutboxMessage.lease_expires_at <= now),
    )
    rows = session.scalars(
        select(OutboxMessage)
        .where(due)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(policy.batch_size)
        # PostgreSQL: concurrent runs take disjoint rows. SQLite ignores it: its writers run
        # one at a time (BEGIN IMMEDIATE), so the select and the updates below are one step.
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return []
    subscriptions = session.scalars(
        select(WebhookSubscription)
        .where(WebhookSubscription.active.is_(True))
        .order_by(WebhookSubscription.id)
    ).all()
    token = uuid.uuid4().hex
    lease_until = now + timedelta(seconds=policy.lease_seconds)
    claimed: list[Claimed] = []
    for row in rows:
        already = set(row.delivered_to or ())
        targets = tuple(
            Target(subscription.id, subscription.url, subscription.secret)
            for subscription in subscriptions
            if subscription.id not in already
            and wants(subscription.topics, subscription.recipients, row.topic, row.recipient)
        )
        row.claim_token = None
        row.lease_expires_at = None
        if not targets:
            # Nobody (left) to send to: done if somebody got it, else nobody wanted it.
            row.status = OUTBOX_DELIVERED if already else OUTBOX_SKIPPED
            row.delivered_at = now if already else None
            continue
        row.status = OUTBOX_SENDING
        row.claim_token = token
        row.lease_expires_at = lease_until
        claimed.append(
            Claimed(
                message_id=row.id,
                claim_token=token,
                topic=row.topic,
                recipient=row.recipient,
                case_id=row.case_id,
                payload=dict(row.payload or {}),
                created_at=row.created_at,
                attempt=row.attempts + 1,
                targets=targets,
            )
        )
    if len(rows) == policy.batch_size:
        ask_for_relay(session)  # more may be due: another run takes the next batch
    return claimed


Send = Callable[[str, bytes, dict[str, str], float], Sent]


def deliver(
    batch: Sequence[Claimed],
    policy: RelayPolicy,
    *,
    send: Send | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> list[Outcome]:
    """POST each claimed row to each of its targets, signed; call with no transaction open.
    Stops starting new requests when one might outlast the lease, leaving the rest due (the
    first request is always made, so a lease shorter than the timeout still makes progress)."""
    post = send or post_webhook
    stop_at = clock() + policy.lease_seconds - policy.timeout_seconds
    started = False
    outcomes: list[Outcome] = []
    for claimed in batch:
        outcome = Outcome(claimed.message_id, claimed.claim_token)
        for target in claimed.targets:
            if started and clock() > stop_at:
                outcome.unfinished = True
                continue
            started = True
            if problem := url_problem(target.url, policy.allowed_hosts):
                # The host was allowed when the webhook was saved; CITYRELAY_WEBHOOK_HOSTS
                # changed since. Fail loudly instead of calling it.
                outcome.errors.append(f"{target.url}: {problem}")
                continue
            body = json.dumps(
                claimed.body(target), ensure_ascii=False, separators=(",", ":")
            ).encode("utf-8")
            timestamp = int(wall_clock())
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": USER_AGENT,
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: sign(target.secret, timestamp, body),
                DELIVERY_HEADER: delivery_id(claimed.message_id, target.subscription_id),
                TOPIC_HEADER: claimed.topic,
            }
            sent = post(target.url, body, headers, policy.timeout_seconds)
            if sent.ok:
                outcome.delivered.append(target.subscription_id)
            else:
                outcome.errors.append(f"{target.url}: {sent.error}")
        outcomes.append(outcome)
    return outcomes


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect could send the signed body to a host nobody configured: it is a failure.
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_RefuseRedirects)


def post_webhook(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Sent:
    """One POST; any answer or failure as a ``Sent``, never an exception."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(65536)
            return Sent(response.status, "" if 200 <= response.status < 300 else "not 2xx")
    except urllib.error.HTTPError as error:
        error.close()
        return Sent(error.code, f"HTTP {error.code} {error.reason}".strip())
    except urllib.error.URLError as error:
        return Sent(None, f"no answer: {error.reason}")
    except (OSError, http.client.HTTPException, ValueError) as error:
        return Sent(None, f"no answer: {type(error).__name__}: {error}")


def record_outcomes(
    session: Session,
    outcomes: Sequence[Outcome],
    now: datetime,
    policy: RelayPolicy,
    unit: Callable[[], float] = random.random,
) -> RelaySummary:
    """Settle each leased row: delivered when every target answered 2xx; else one more failed
    attempt, retried after a backoff, or dead after ``max_attempts``. A row whose lease this run
    no longer holds is left alone."""
    delivered = retrying = dead = lost = 0
    for outcome in outcomes:
        row = session.scalar(
            select(OutboxMessage)
            .where(
                OutboxMessage.id == outcome.message_id,
                OutboxMessage.status == OUTBOX_SENDING,
                OutboxMessage.claim_token == outcome.claim_token,
            )
            .with_for_update()
        )
        if row is None:
            lost += 1
            continue
        row.delivered_to = sorted(set(row.delivered_to or ()) | set(outcome.delivered))
        row.claim_token = None
        row.lease_expires_at = None
        if outcome.attempted:
            row.last_attempt_at = now
        if outcome.errors:
            row.attempts += 1
            row.last_error = "; ".join(outcome.errors)[:MAX_ERROR_CHARS]
            if row.attempts >= policy.max_attempts:
                row.status = OUTBOX_DEAD
                row.dead_at = now
                dead += 1
            else:
                wait = backoff_seconds(
                    row.attempts,
                    policy.backoff_base_seconds,
                    policy.backoff_cap_seconds,
                    unit(),
                )
                row.status = OUTBOX_PENDING
                row.next_attempt_at = now + timedelta(seconds=wait)
                retrying += 1
        elif outcome.unfinished:
            row.status = OUTBOX_PENDING
            row.next_attempt_at = now
            retrying += 1
        else:
            row.status = OUTBOX_DELIVERED
            row.delivered_at = now
            delivered += 1
    return RelaySummary(delivered, retrying, dead, lost)


# ---------------------------------------------------------------- dead letters


def outbox_messages(
    session: Session, status: str | None, limit: int, before_id: int | None = None
) -> list[OutboxMessage]:
    """Outbox rows, newest first, of one status (None: all); ``before_id`` pages back."""
    query = select(OutboxMessage).options(selectinload(OutboxMessage.replays))
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    if before_id is not None:
        query = query.where(OutboxMessage.id < before_id)
    return list(session.scalars(query.order_by(OutboxMessage.id.desc()).limit(limit)))


def replay(session: Session, message_id: int, actor: str, now: datetime) -> OutboxMessage:
    """Put a dead row back to pending with its attempts reset, due now, and record the replay.
    The subscriptions that had it already do not get it again."""
    row = session.scalar(
        select(OutboxMessage).where(OutboxMessage.id == message_id).with_for_update()
    )
    if row is None:
        raise NotFound(f"No outbox message {message_id}.")
    if row.status != OUTBOX_DEAD:
        raise Conflict(
            f"Outbox message {message_id} is {row.status}; only dead ones are replayed.",
            code="not_dead",
        )
    row.replays.append(
        OutboxReplay(at=now, actor=actor, attempts_before=row.attempts, last_error=row.last_error)
    )
    row.status = OUTBOX_PENDING
    row.attempts = 0
    row.next_attempt_at = now
    row.dead_at = None
    ask_for_relay(session)
    session.flush()
    return row
