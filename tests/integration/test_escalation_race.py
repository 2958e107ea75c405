"""Beat's escalation and staff acting on the same late case at the same moment: exactly one of
them changes the version they both read; the other's change is not lost nor doubled. Committed
transactions on threads of their own, on the run's database (SQLite, or PostgreSQL when
DATABASE_URL names one); on PostgreSQL also the two orders made certain by holding one
transaction open while the other runs into its row lock."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.entities import Case, CaseEvent, OutboxMessage
from models.session import unit_of_work
from services import casework, escalation
from services.accounts import Caller, find_key
from services.errors import Conflict
from tests.factories import make_case, make_key
from tests.helpers import sample_point, wait_for

ROUNDS = 10
OFFICE = sample_point()["office"]
LOCK_WAIT_TIMEOUT_S = 15
THREAD_TIMEOUT_S = 30


def staff_caller(sessions: sessionmaker[Session]) -> Caller:
    key = make_key(sessions, role="office", office_code=OFFICE)
    with sessions() as session:
        found = find_key(session, key)
    assert found is not None
    return found


def accepted_late_case(sessions: sessionmaker[Session], staff: Caller) -> int:
    case_id = make_case(sessions).id
    with unit_of_work(sessions) as session:
        casework.accept(session, case_id, staff)
        session.execute(
            update(Case).where(Case.id == case_id).values(due_at=utcnow() - timedelta(hours=1))
        )
    return case_id


def counts(sessions: sessionmaker[Session], case_id: int) -> dict[str, Any]:
    with sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None
        events = session.scalars(
            select(CaseEvent.action)
            .where(CaseEvent.case_id == case_id, CaseEvent.action.in_(["escalate", "resolve"]))
            .order_by(CaseEvent.id)
        ).all()
        notified = session.scalar(
            select(func.count()).where(
                OutboxMessage.case_id == case_id, OutboxMessage.topic == "case.overdue"
            )
        )
        return {
            "version": case.version,
            "status": case.status,
            "overdue_at": case.overdue_at,
            "due_at": case.due_at,
            "events": list(events),
            "notified": notified,
        }


def resolve(sessions: sessionmaker[Session], case_id: int, staff: Caller) -> str:
    """'resolved', or the code of the refusal."""
    try:
        with unit_of_work(sessions) as session:
            casework.resolve(session, case_id, staff, "已处理")
    except Conflict as refusal:
        return refusal.code
    return "resolved"


def at_once(sessions: sessionmaker[Session], case_id: int, staff: Caller) -> dict[str, Any]:
    """A run of the escalation and a staff "resolve" of the case, released together from a
    barrier on threads of their own (each with its own connection)."""
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def run_escalation() -> None:
        barrier.wait()
        with unit_of_work(sessions) as session:
            flagged = escalation.escalate_overdue(session, utcnow())
            results["escalated"] = [e.case_id for e in flagged]

    def run_staff() -> None:
        barrier.wait()
        results["staff"] = resolve(sessions, case_id, staff)

    threads = [threading.Thread(target=run_escalation), threading.Thread(target=run_staff)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_TIMEOUT_S)
    return results


@pytest.mark.committed
def test_escalation_and_staff_at_once_never_both_change_one_version(
    sessions: sessionmaker[Session],
) -> None:
    staff = staff_caller(sessions)
    outcomes: Counter[tuple[str, bool]] = Counter()
    for _round in range(ROUNDS):
        case_id = accepted_late_case(sessions, staff)
        version = counts(sessions, case_id)["version"]
        results = at_once(sessions, case_id, staff)
        assert set(results) == {"escalated", "staff"}, results

        after = counts(sessions, case_id)
        escalated = results["escalated"] == [case_id]
        resolved = results["staff"] == "resolved"
        # each change raised the version once: none lost, none doubled
        assert after["version"] == version + len(after["events"])
        assert after["events"].count("escalate") == int(escalated)
        assert after["events"].count("resolve") == int(resolved)
        assert after["notified"] == 2 * int(escalated)
        if not resolved:
            # the staff action read the version the escalation changed: the escalation won
            assert results["staff"] == "case_changed" and escalated, results
            assert after["status"] == "accepted"
        elif not escalated:
            # resolved first: late, so the flag froze at the due time, and beat leaves it
            assert after["overdue_at"] == after["due_at"]
        else:
            # both, one after the other: the staff read the escalated case
            assert after["events"] == ["escalate", "resolve"]
            assert after["overdue_at"] != after["due_at"]
        outcomes[results["staff"], escalated] += 1
    print("staff's answer, escalated:", dict(outcomes))


def waiting_on_a_lock(sessions: sessionmaker[Session]) -> bool:
    with sessions() as session:
        waiting = session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


@pytest.fixture
def postgresql_only(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time: one transaction never waits on a row")


@pytest.mark.committed
def test_staff_who_read_the_case_before_the_escalation_committed_lose(
    sessions: sessionmaker[Session], postgresql_only: None
) -> None:
    staff = staff_caller(sessions)
    case_id = accepted_late_case(sessions, staff)
    version = counts(sessions, case_id)["version"]
    results: dict[str, str] = {}
    with unit_of_work(sessions) as session:
        assert [e.case_id for e in escalation.escalate_overdue(session, utcnow())] == [case_id]
        # the staff read the case as it was, and their update waits for this transaction
        thread = threading.Thread(
            target=lambda: results.update(staff=resolve(sessions, case_id, staff))
        )
        thread.start()
        wait_for(lambda: waiting_on_a_lock(sessions), LOCK_WAIT_TIMEOUT_S, "the staff's lock wait")
    thread.join(THREAD_TIMEOUT_S)
    assert results == {"staff": "case_changed"}
    after = counts(sessions, case_id)
    assert (after["version"], after["events"], after["status"]) == (
        version + 1,
        ["escalate"],
        "accepted",
    )
    assert after["notified"] == 2


@pytest.mark.committed
def test_a_case_staff_are_changing_is_left_to_the_next_run(
    sessions: sessionmaker[Session], postgresql_only: None
) -> None:
    staff = staff_caller(sessions)
    case_id = accepted_late_case(sessions, staff)
    version = counts(sessions, case_id)["version"]
    with unit_of_work(sessions) as staff_session:
        casework.resolve(staff_session, case_id, staff, "已处理")
        # the resolving transaction holds the row: the escalation skips it, without waiting
        with unit_of_work(sessions) as beat_session:
            assert escalation.escalate_overdue(beat_session, utcnow()) == []
    after = counts(sessions, case_id)
    assert (after["version"], after["events"], after["status"]) == (
        version + 1,
        ["resolve"],
        "resolved",
    )
    # resolved late: frozen overdue at its due time; the next run has nothing to do
    assert after["overdue_at"] == after["due_at"]
    with unit_of_work(sessions) as session:
        assert escalation.escalate_overdue(session, utcnow()) == []
    assert counts(sessions, case_id)["notified"] == 0
