"""Notifications through the outbox, on the real database with real HTTP endpoints on
127.0.0.1: who gets a case's notifications, the webhook subscriptions API, and the relay —
claim, signed delivery, failure and backoff, the dead-letter state, replay, leases, and two
relay runs claiming at once."""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cityrelay.embedded import free_port
from models.base import utcnow
from models.entities import OutboxMessage, WebhookSubscription
from models.session import unit_of_work
from routing.classify import default_classifier
from services import notifications
from services.notifications import RELAY_NOTIFICATIONS, Claimed, RelayPolicy, RelaySummary
from services.processing import process_report
from tests.factories import make_case, make_key, make_report, make_reporter, process
from tests.helpers import WebhookReceiver, sample_point
from workers.tasks import relay_notifications

WEBHOOKS = "/api/v1/admin/webhooks"
OUTBOX = "/api/v1/admin/outbox"
OFFICE = sample_point()["office"]
SECRET = "a-secret-of-more-than-16"
OTHER_SECRET = "another-secret-of-16+"


@pytest.fixture
def admin(sessions: sessionmaker[Session]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(sessions, role='admin')}"}


@pytest.fixture
def policy() -> RelayPolicy:
    return RelayPolicy(
        max_attempts=3,
        backoff_base_seconds=10,
        backoff_cap_seconds=60,
        lease_seconds=30,
        batch_size=20,
        timeout_seconds=3,
        allowed_hosts=frozenset({"127.0.0.1"}),
    )


def subscribe(client: FlaskClient, admin: dict[str, str], *webhooks: dict[str, Any]) -> list[dict]:
    response = client.put(WEBHOOKS, json={"webhooks": list(webhooks)}, headers=admin)
    assert response.status_code == 200, response.get_json()
    saved: list[dict] = response.get_json()
    return saved


def hook(url: str, secret: str = SECRET, **fields: Any) -> dict[str, Any]:
    return {"url": url, "secret": secret, "topics": ["case.*"], **fields}


def relay_round(
    sessions: sessionmaker[Session], policy: RelayPolicy, now: datetime
) -> tuple[list[Claimed], RelaySummary]:
    """One relay run as the task does it, at ``now``: claim, deliver, record."""
    with unit_of_work(sessions) as session:
        batch = notifications.claim_due(session, now, policy)
    outcomes = notifications.deliver(batch, policy)
    with unit_of_work(sessions) as session:
        summary = notifications.record_outcomes(session, outcomes, now, policy, unit=lambda: 0)
    return batch, summary


def rows(db: Session, case_id: int, recipient: str | None = None) -> list[OutboxMessage]:
    db.expire_all()
    query = select(OutboxMessage).where(OutboxMessage.case_id == case_id)
    if recipient is not None:
        query = query.where(OutboxMessage.recipient == recipient)
    return list(db.scalars(query.order_by(OutboxMessage.id)))


def office_row(db: Session, case_id: int) -> OutboxMessage:
    (row,) = rows(db, case_id, f"office:{OFFICE}")
    return row


# ---------- who is notified ----------


def test_every_reporter_of_a_merged_case_is_notified_once_each(
    sessions: sessionmaker[Session], db: Session
) -> None:
    first_reporter, _ = make_reporter(sessions)
    second_reporter, _ = make_reporter(sessions)
    case = make_case(sessions, no_merge=False, reporter_id=first_reporter)
    written = {1: [r.recipient for r in rows(db, case.id)]}
    for n, reporter in [(2, second_reporter), (3, first_reporter)]:
        before = {r.id for r in rows(db, case.id)}
        joined = process(sessions, make_report(sessions, no_merge=False, reporter_id=reporter))
        assert joined is not None and joined.id == case.id
        written[n] = [r.recipient for r in rows(db, case.id) if r.id not in before]

    office = f"office:{OFFICE}"
    first, second = f"reporter:{first_reporter}", f"reporter:{second_reporter}"
    assert written == {
        1: [office, first],
        2: [office, first, second],  # the first reporter hears of the "me too" as well
        3: [office, first, second],  # a reporter reporting twice is still one recipient
    }


def test_processing_asks_for_one_relay_run_after_its_commit(
    sessions: sessionmaker[Session],
) -> None:
    report = make_report(sessions)
    sent: list[tuple[str, tuple[Any, ...]]] = []
    with unit_of_work(sessions, lambda name, args: sent.append((name, args))) as session:
        case = process_report(session, report, classifier=default_classifier(), threshold=0.45)
        assert case is not None
        assert sent == []  # nothing before the commit
    assert sent == [(RELAY_NOTIFICATIONS, ())]


# ---------- the subscriptions API ----------


def test_webhooks_are_replaced_as_a_list_and_listed_without_secrets(
    client: FlaskClient, admin: dict[str, str], db: Session
) -> None:
    assert client.get(WEBHOOKS, headers=admin).get_json() == []
    first, second = subscribe(
        client,
        admin,
        hook("http://127.0.0.1:9/a", recipients=[f"office:{OFFICE}", "reporter:*"]),
        hook("http://localhost:9/b", OTHER_SECRET, topics=["case.routed"], active=False),
    )
    assert first["recipients"] == [f"office:{OFFICE}", "reporter:*"]
    assert second["recipients"] is None and second["active"] is False
    listed = client.get(WEBHOOKS, headers=admin).get_json()
    assert listed == [first, second]
    assert all("secret" not in w for w in listed)
    assert first["updated_by"].startswith("admin-key:")

    # keep the first (its secret too), drop the second, add a third
    changed = hook("http://127.0.0.1:9/a2", topics=["*"])
    del changed["secret"]
    kept, added = subscribe(
        client,
        admin,
        {**changed, "id": first["id"], "description": "kept"},
        hook("http://127.0.0.1:9/c", OTHER_SECRET),
    )
    assert kept["id"] == first["id"] and kept["url"].endswith("/a2")
    assert kept["recipients"] is None and kept["description"] == "kept"
    assert added["id"] not in (first["id"], second["id"])
    db.expire_all()
    secrets = dict(db.execute(select(WebhookSubscription.id, WebhookSubscription.secret)).all())
    assert secrets == {first["id"]: SECRET, added["id"]: OTHER_SECRET}


@pytest.mark.parametrize(
    ("webhook", "field", "says"),
    [
        (hook("ftp://127.0.0.1/x"), "webhooks.0.url", "http"),
        (hook("http://example.org/x"), "webhooks.0.url", "CITYRELAY_WEBHOOK_HOSTS"),
        (hook("http://u:p@127.0.0.1/x"), "webhooks.0.url", "password"),
        (hook("http://127.0.0.1/x", "short"), "webhooks.0.secret", "16"),
        (hook("http://127.0.0.1/x", "秘" * 20), "webhooks.0.secret", "ASCII"),
        ({"url": "http://127.0.0.1/x", "topics": ["*"]}, "webhooks.0.secret", "needs a secret"),
        ({**hook("http://127.0.0.1/x"), "id": 999_999}, "webhooks.0.id", "No webhook"),
        (hook("http://127.0.0.1/x", topics=[]), "webhooks.0.topics", "between 1"),
        (hook("http://127.0.0.1/x", topics=["case.*.x"]), "webhooks.0.topics", "not a topic"),
        (hook("http://127.0.0.1/x", recipients=["office:NOPE"]), "webhooks.0.recipients", "NOPE"),
        (hook("http://127.0.0.1/x", recipients=["a b"]), "webhooks.0.recipients", "recipient"),
        (hook("http://127.0.0.1/x", recipients=[]), "webhooks.0.recipients", "between 1"),
        ({**hook("http://127.0.0.1/x"), "extra": 1}, "webhooks.0.extra", "Unknown"),
    ],
)
def test_a_wrong_webhook_is_refused_naming_the_field_and_nothing_changes(
    client: FlaskClient, admin: dict[str, str], webhook: dict, field: str, says: str
) -> None:
    before = subscribe(client, admin, hook("http://127.0.0.1:9/kept"))
    response = client.put(
        WEBHOOKS, json={"webhooks": [webhook, hook("http://127.0.0.1:9/ok")]}, headers=admin
    )
    assert response.status_code == 422
    fields = response.get_json()["error"]["fields"]
    assert list(fields) == [field], fields
    assert says in " ".join(fields[field])
    assert client.get(WEBHOOKS, headers=admin).get_json() == before


def test_one_webhook_listed_twice_is_refused(client: FlaskClient, admin: dict[str, str]) -> None:
    (saved,) = subscribe(client, admin, hook("http://127.0.0.1:9/a"))
    again = {"id": saved["id"], "url": saved["url"], "topics": ["*"]}
    response = client.put(WEBHOOKS, json={"webhooks": [again, again]}, headers=admin)
    assert response.status_code == 422
    assert "twice" in response.get_json()["error"]["fields"]["webhooks.1.id"][0]


def test_only_admins_manage_webhooks(
    client: FlaskClient, sessions: sessionmaker[Session], admin: dict[str, str]
) -> None:
    office = {"Authorization": f"Bearer {make_key(sessions, role='office', office_code=OFFICE)}"}
    body = {"webhooks": [hook("http://127.0.0.1:9/a")]}
    assert client.get(WEBHOOKS).status_code == 401
    assert client.put(WEBHOOKS, json=body, headers=office).status_code == 403
    assert client.get(f"{OUTBOX}?status=dead", headers=office).status_code == 403
    assert client.post(f"{OUTBOX}/1/replay", headers=office).status_code == 403
    assert client.put(WEBHOOKS, data="[]", content_type="application/json",
                      headers=admin).status_code == 400  # fmt: skip
    assert client.get(WEBHOOKS, headers=admin).get_json() == []


# ---------- the relay ----------


def test_a_notification_reaches_each_webhook_that_wants_it_once_signed(
    client: FlaskClient, admin: dict[str, str], sessions: sessionmaker[Session], db: Session
) -> None:
    with (
        WebhookReceiver() as office_hook,
        WebhookReceiver() as reporters_hook,
        WebhookReceiver() as closures_hook,
    ):
        office_sub, reporters_sub, _ = subscribe(
            client,
            admin,
            hook(office_hook.url, recipients=[f"office:{OFFICE}"]),
            hook(reporters_hook.url, OTHER_SECRET, recipients=["reporter:*"]),
            hook(closures_hook.url, topics=["case.closed"]),
        )
        case = make_case(sessions)
        assert relay_notifications() == "2 delivered, 0 to retry, 0 dead, 0 lost their lease"

        (to_office,) = office_hook.received
        (to_reporter,) = reporters_hook.received
        assert closures_hook.received == []
        assert to_office.verifies(SECRET) and not to_office.verifies(OTHER_SECRET)
        assert to_reporter.verifies(OTHER_SECRET)
        row = office_row(db, case.id)
        body = to_office.json()
        assert body == {
            "delivery_id": f"{row.id}.{office_sub['id']}",
            "message_id": row.id,
            "topic": "case.routed",
            "recipient": f"office:{OFFICE}",
            "case_id": case.id,
            "payload": row.payload,
            "created_at": row.created_at.isoformat(),
            "attempt": 1,
        }
        assert body["payload"]["report_id"] == case.reports[0].id
        assert to_office.header("X-CityRelay-Delivery") == body["delivery_id"]
        assert to_office.header("X-CityRelay-Topic") == "case.routed"
        assert to_office.header("Content-Type") == "application/json; charset=utf-8"
        assert to_office.path == "/hooks/cityrelay"
        assert to_reporter.json()["recipient"] == f"reporter:{case.reports[0].reporter_id}"
        for delivered, subscription in [(row, office_sub), (rows(db, case.id)[1], reporters_sub)]:
            assert delivered.status == "delivered" and delivered.attempts == 0
            assert delivered.delivered_to == [subscription["id"]]
            assert delivered.delivered_at is not None and delivered.claim_token is None

        # a rerun finds nothing to do and sends nothing again
        assert relay_notifications() == "nothing due"
        assert len(office_hook.received) == len(reporters_hook.received) == 1


def test_failures_back_off_then_die_and_an_admin_replays_the_dead_letter(
    client: FlaskClient,
    admin: dict[str, str],
    sessions: sessionmaker[Session],
    db: Session,
    policy: RelayPolicy,
) -> None:
    with WebhookReceiver(failing=True) as endpoint:
        (subscription,) = subscribe(client, admin, hook(endpoint.url, recipients=["office:*"]))
        case = make_case(sessions)
        now = utcnow()
        waits = []
        for attempt in (1, 2):
            _batch, summary = relay_round(sessions, policy, now)
            assert summary == RelaySummary(retrying=1)
            row = office_row(db, case.id)
            assert (row.status, row.attempts) == ("pending", attempt)
            assert f"{endpoint.url}: HTTP 500" in row.last_error
            waits.append((row.next_attempt_at - now).total_seconds())
            # not due before its time: nothing is sent
            assert relay_round(sessions, policy, row.next_attempt_at - timedelta(seconds=1)) == (
                [],
                RelaySummary(),
            )
            now = row.next_attempt_at
        assert waits == [10.0, 20.0]  # base × 2^(failures − 1), no jitter with unit 0

        _batch, summary = relay_round(sessions, policy, now)
        assert summary == RelaySummary(dead=1)
        row = office_row(db, case.id)
        assert (row.status, row.attempts, row.dead_at) == ("dead", 3, now)
        received = endpoint.received
        assert [r.json()["attempt"] for r in received] == [1, 2, 3]
        assert {r.header("X-CityRelay-Delivery") for r in received} == {
            f"{row.id}.{subscription['id']}"
        }
        assert all(r.verifies(SECRET) for r in received)
        # the reporter's row was wanted by no webhook
        (reporter_row,) = [r for r in rows(db, case.id) if r.recipient.startswith("reporter:")]
        assert reporter_row.status == "skipped"

        # dead letters, as an admin sees them
        dead = client.get(f"{OUTBOX}?status=dead", headers=admin).get_json()
        (listed,) = [m for m in dead if m["case_id"] == case.id]
        assert listed["id"] == row.id and listed["attempts"] == 3
        assert "HTTP 500" in listed["last_error"] and listed["replays"] == []
        assert relay_round(sessions, policy, now + timedelta(days=1)) == ([], RelaySummary())

        endpoint.failing = False
        replayed = client.post(f"{OUTBOX}/{row.id}/replay", headers=admin)
        assert replayed.status_code == 200
        body = replayed.get_json()
        assert (body["status"], body["attempts"], body["dead_at"]) == ("pending", 0, None)
        (replay,) = body["replays"]
        assert replay["attempts_before"] == 3 and "HTTP 500" in replay["last_error"]
        assert replay["actor"].startswith("admin-key:")
        again = client.post(f"{OUTBOX}/{row.id}/replay", headers=admin)
        assert again.status_code == 409 and "pending" in again.get_json()["error"]["message"]
        assert client.post(f"{OUTBOX}/999999/replay", headers=admin).status_code == 404

        _batch, summary = relay_round(sessions, policy, utcnow())
        assert summary == RelaySummary(delivered=1)
        assert len(endpoint.delivered()) == 1
        assert endpoint.delivered()[0].json()["attempt"] == 1
        assert office_row(db, case.id).status == "delivered"
        delivered = client.get(f"{OUTBOX}?status=delivered", headers=admin).get_json()
        assert row.id in {m["id"] for m in delivered}
        assert row.id not in {m["id"] for m in client.get(f"{OUTBOX}?status=dead",
                                                          headers=admin).get_json()}  # fmt: skip


def test_a_retry_goes_only_to_the_webhooks_that_failed(
    client: FlaskClient,
    admin: dict[str, str],
    sessions: sessionmaker[Session],
    db: Session,
    policy: RelayPolicy,
) -> None:
    with WebhookReceiver() as good, WebhookReceiver(failing=True) as bad:
        good_sub, bad_sub = subscribe(
            client,
            admin,
            hook(good.url, recipients=["office:*"]),
            hook(bad.url, recipients=["office:*"]),
        )
        case = make_case(sessions)
        relay_round(sessions, policy, utcnow())
        row = office_row(db, case.id)
        assert (row.status, row.attempts, row.delivered_to) == ("pending", 1, [good_sub["id"]])
        assert bad.url in row.last_error and good.url not in row.last_error

        bad.failing = False
        relay_round(sessions, policy, row.next_attempt_at)
        row = office_row(db, case.id)
        assert row.status == "delivered"
        assert sorted(row.delivered_to) == sorted([good_sub["id"], bad_sub["id"]])
        assert len(good.received) == 1  # never twice to the one that had it
        assert [r.answered for r in bad.received] == [500, 204]


def test_a_crashed_run_s_rows_are_due_again_when_its_lease_expires(
    client: FlaskClient,
    admin: dict[str, str],
    sessions: sessionmaker[Session],
    db: Session,
    policy: RelayPolicy,
) -> None:
    with WebhookReceiver() as endpoint:
        subscribe(client, admin, hook(endpoint.url, recipients=["office:*"]))
        case = make_case(sessions)
        now = utcnow()
        with unit_of_work(sessions) as session:
            (crashed,) = notifications.claim_due(session, now, policy)
        # ...and the run that claimed it dies before it sends or records anything
        row = office_row(db, case.id)
        assert row.status == "sending"
        assert row.lease_expires_at == now + timedelta(seconds=policy.lease_seconds)
        with unit_of_work(sessions) as session:
            assert notifications.claim_due(session, now + timedelta(seconds=29), policy) == []

        batch, summary = relay_round(sessions, policy, now + timedelta(seconds=31))
        assert [c.message_id for c in batch] == [crashed.message_id]
        assert batch[0].claim_token != crashed.claim_token
        assert summary == RelaySummary(delivered=1)
        assert len(endpoint.received) == 1

        # the dead run's late report changes nothing
        late = notifications.Outcome(crashed.message_id, crashed.claim_token, errors=["late"])
        with unit_of_work(sessions) as session:
            assert notifications.record_outcomes(session, [late], utcnow(), policy) == RelaySummary(
                lost_lease=1
            )
        row = office_row(db, case.id)
        assert (row.status, row.attempts, row.last_error) == ("delivered", 0, "")


def test_without_a_wanting_webhook_rows_are_skipped(
    client: FlaskClient, admin: dict[str, str], sessions: sessionmaker[Session], db: Session
) -> None:
    with WebhookReceiver() as endpoint:
        subscribe(client, admin, hook(endpoint.url, active=False))
        case = make_case(sessions)
        assert relay_notifications() == "nothing due"
        assert {r.status for r in rows(db, case.id)} == {"skipped"}
        assert endpoint.received == []


def test_no_answer_and_redirects_are_failures(
    client: FlaskClient,
    admin: dict[str, str],
    sessions: sessionmaker[Session],
    db: Session,
    policy: RelayPolicy,
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/hook"
    with WebhookReceiver() as elsewhere, WebhookReceiver(redirect_to=elsewhere.url) as redirecting:
        subscribe(
            client,
            admin,
            hook(nobody, recipients=["office:*"]),
            hook(redirecting.url, recipients=["office:*"]),
        )
        case = make_case(sessions)
        relay_round(sessions, policy, utcnow())
        row = office_row(db, case.id)
        assert (row.status, row.attempts) == ("pending", 1)
        assert f"{nobody}: no answer" in row.last_error
        assert f"{redirecting.url}: HTTP 307" in row.last_error
        assert [r.answered for r in redirecting.received] == [307]
        assert elsewhere.received == []  # the signed body never followed the redirect


def test_a_host_no_longer_allowed_is_not_called(
    client: FlaskClient,
    admin: dict[str, str],
    sessions: sessionmaker[Session],
    db: Session,
    policy: RelayPolicy,
) -> None:
    with WebhookReceiver() as endpoint:
        subscribe(client, admin, hook(endpoint.url, recipients=["office:*"]))
        case = make_case(sessions)
        narrowed = dataclasses.replace(policy, allowed_hosts=frozenset({"localhost"}))
        relay_round(sessions, narrowed, utcnow())
        assert endpoint.received == []
        assert "CITYRELAY_WEBHOOK_HOSTS" in office_row(db, case.id).last_error


def test_the_outbox_list_pages_back_and_checks_its_query(
    client: FlaskClient, admin: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    make_case(sessions)
    make_case(sessions)
    newest = client.get(f"{OUTBOX}?limit=3", headers=admin).get_json()
    assert len(newest) == 3
    ids = [m["id"] for m in newest]
    assert ids == sorted(ids, reverse=True)
    older = client.get(f"{OUTBOX}?limit=3&before={ids[-1]}", headers=admin).get_json()
    assert older and all(m["id"] < ids[-1] for m in older)
    for bad, field in [("status=lost", "status"), ("limit=0", "limit"), ("limit=x", "limit"),
                       ("before=0", "before"), ("color=red", "color")]:  # fmt: skip
        response = client.get(f"{OUTBOX}?{bad}", headers=admin)
        assert response.status_code == 422
        assert field in response.get_json()["error"]["fields"]


# ---------- two runs at once ----------


@pytest.mark.committed
def test_two_relay_runs_at_once_claim_disjoint_rows(
    sessions: sessionmaker[Session], client: FlaskClient, admin: dict[str, str], db: Session
) -> None:
    """On PostgreSQL the second run skips the rows the first has locked and takes the next
    ones while the first is still open; on SQLite it waits for the first to commit (writers
    run one at a time) and finds those rows leased. Either way no row is claimed twice."""
    with WebhookReceiver() as endpoint:
        subscribe(client, admin, hook(endpoint.url))
        # 2 rows each: the office's and the reporter's
        cases = [make_case(sessions).id for _ in range(3)]
        policy = RelayPolicy(batch_size=3, allowed_hosts=frozenset({"127.0.0.1"}))
        now = utcnow()
        due = db.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.case_id.in_(cases), OutboxMessage.status == "pending")
        )
        assert due == 6
        second: list[Claimed] = []
        finished = threading.Event()

        def second_run() -> None:
            with unit_of_work(sessions) as session:
                second.extend(notifications.claim_due(session, now, policy))
            finished.set()

        with unit_of_work(sessions) as session:
            first = notifications.claim_due(session, now, policy)
            thread = threading.Thread(target=second_run)
            thread.start()
            postgres = session.get_bind().dialect.name == "postgresql"
            # PostgreSQL: done while the first still holds its locks; SQLite: still waiting
            assert finished.wait(5 if postgres else 0.5) is postgres
        thread.join(30)
        assert finished.is_set()
        first_ids = {c.message_id for c in first}
        second_ids = {c.message_id for c in second}
        assert len(first_ids) == len(second_ids) == 3
        assert not first_ids & second_ids


def test_a_run_near_the_end_of_its_lease_leaves_the_rest_due_without_a_failure(
    client: FlaskClient,
    admin: dict[str, str],
    sessions: sessionmaker[Session],
    db: Session,
    policy: RelayPolicy,
) -> None:
    with WebhookReceiver() as first, WebhookReceiver() as second:
        first_sub, second_sub = subscribe(
            client,
            admin,
            hook(first.url, recipients=["office:*"]),
            hook(second.url, recipients=["office:*"]),
        )
        case = make_case(sessions)
        now = utcnow()
        with unit_of_work(sessions) as session:
            batch = notifications.claim_due(session, now, policy)
        # the run's clock: the lease is as good as over once the first POST is made
        ticks = iter([0.0] + [policy.lease_seconds] * 10)
        outcomes = notifications.deliver(batch, policy, clock=lambda: next(ticks))
        assert [(o.delivered, o.errors, o.unfinished) for o in outcomes] == [
            ([first_sub["id"]], [], True)
        ]
        with unit_of_work(sessions) as session:
            notifications.record_outcomes(session, outcomes, now, policy)
        row = office_row(db, case.id)
        assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 0, now)
        assert row.delivered_to == [first_sub["id"]]
        assert second.received == []

        relay_round(sessions, policy, now)
        row = office_row(db, case.id)
        assert row.status == "delivered" and row.attempts == 0
        assert sorted(row.delivered_to) == sorted([first_sub["id"], second_sub["id"]])
        assert len(first.received) == len(second.received) == 1
