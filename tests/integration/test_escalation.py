"""Overdue cases: beat's escalation flags a late case once, escalates it to the office above with
one event and notifications for both offices, and does nothing on a rerun; the flag freezes as
the case leaves the office's hands (resolved on time: never overdue; resolved late: overdue for
good), and a transfer or a rejection starts the new office's clock afresh. On the real database
(SQLite, or PostgreSQL when DATABASE_URL names one)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.entities import Case, CaseEvent, Office, OutboxMessage
from models.session import pending_tasks, unit_of_work
from services import casework, escalation
from services.accounts import Caller, find_key
from tests.factories import make_case, make_key
from tests.helpers import sample_point
from workers.tasks import escalate_overdue as escalate_overdue_task

POINT = sample_point()
OFFICE = POINT["office"]  # a community of street PD-CJ, in district PD
STREET = "PD-CJ"
NEIGHBOUR = "PD-CJ-02"
HOUR = timedelta(hours=1)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def caller(sessions: sessionmaker[Session], role: str, office: str) -> tuple[Caller, str]:
    key = make_key(sessions, role=role, office_code=office)
    with sessions() as session:
        found = find_key(session, key)
    assert found is not None
    return found, key


def late_case(sessions: sessionmaker[Session], **columns: Any) -> int:
    """A case of OFFICE with ``columns`` set (by default: accepted, due an hour ago)."""
    case_id = make_case(sessions).id
    values = {"status": "accepted", "due_at": utcnow() - HOUR} | columns
    with unit_of_work(sessions) as session:
        session.execute(update(Case).where(Case.id == case_id).values(**values))
    return case_id


def escalate(sessions: sessionmaker[Session], now: datetime, batch: int = 100) -> list[int]:
    with unit_of_work(sessions) as session:
        return [e.case_id for e in escalation.escalate_overdue(session, now, batch=batch)]


def the_case(sessions: sessionmaker[Session], case_id: int) -> Case:
    with sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None
        _ = case.escalated_office, case.events
        return case


def escalate_events(sessions: sessionmaker[Session], case_id: int) -> list[CaseEvent]:
    with sessions() as session:
        return list(
            session.scalars(
                select(CaseEvent).where(
                    CaseEvent.case_id == case_id, CaseEvent.action == escalation.ESCALATE
                )
            )
        )


def overdue_rows(sessions: sessionmaker[Session], case_id: int) -> list[tuple[str, str]]:
    with sessions() as session:
        rows = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.case_id == case_id, OutboxMessage.topic == "case.overdue")
            .order_by(OutboxMessage.id)
        )
        return [(row.recipient, row.payload["escalated_to"]) for row in rows]


def office_id(sessions: sessionmaker[Session], code: str) -> int:
    with sessions() as session:
        found = session.scalar(select(Office.id).where(Office.code == code))
    assert found is not None
    return found


def test_a_late_case_is_flagged_and_escalated_once(
    sessions: sessionmaker[Session], client: FlaskClient
) -> None:
    case_id = late_case(sessions)
    before = the_case(sessions, case_id)
    now = utcnow()

    assert escalate(sessions, now) == [case_id]

    case = the_case(sessions, case_id)
    assert case.version == before.version + 1
    assert case.status == "accepted"
    assert (case.overdue_at, case.escalated_at) == (now, now)
    assert case.escalated_office is not None and case.escalated_office.code == STREET
    (event,) = escalate_events(sessions, case_id)
    assert (event.from_status, event.to_status, event.actor) == ("accepted", "accepted", "system")
    assert event.office_id == office_id(sessions, OFFICE)
    assert event.detail == {
        "due_at": before.due_at.isoformat() if before.due_at else None,
        "office": OFFICE,
        "parent_office": STREET,
    }
    assert overdue_rows(sessions, case_id) == [
        (f"office:{OFFICE}", STREET),
        (f"office:{STREET}", STREET),
    ]

    # a rerun, later, changes nothing
    assert escalate(sessions, now + HOUR) == []
    assert the_case(sessions, case_id).version == before.version + 1
    assert len(escalate_events(sessions, case_id)) == 1
    assert len(overdue_rows(sessions, case_id)) == 2

    # the office sees it: the full case and its queue
    key = bearer(make_key(sessions, role="office", office_code=OFFICE))
    body = client.get(f"/api/v1/cases/{case_id}", headers=key).get_json()
    assert (body["overdue"], body["escalated_to"]) == (True, STREET)
    assert datetime.fromisoformat(body["overdue_at"]) == now
    assert body["timeline"][-1]["action"] == "escalate"
    queue = client.get(f"/api/v1/offices/{OFFICE}/queue", headers=key).get_json()
    (item,) = [c for c in queue["cases"] if c["id"] == case_id]
    assert (item["overdue"], item["escalated_to"]) == (True, STREET)
    assert datetime.fromisoformat(item["overdue_at"]) == now


def test_the_task_flags_through_its_own_unit_of_work(sessions: sessionmaker[Session]) -> None:
    case_id = late_case(sessions, status="routed")
    assert escalate_overdue_task() == "1 cases escalated"
    assert escalate_overdue_task() == "0 cases escalated"
    assert the_case(sessions, case_id).overdue_at is not None
    assert len(escalate_events(sessions, case_id)) == 1


def test_at_the_top_it_is_flagged_without_escalation(sessions: sessionmaker[Session]) -> None:
    case_id = late_case(sessions, status="in_progress", office_id=office_id(sessions, "PD"))
    now = utcnow()
    assert escalate(sessions, now) == [case_id]
    case = the_case(sessions, case_id)
    assert case.overdue_at == now
    assert (case.escalated_office_id, case.escalated_at) == (None, None)
    (event,) = escalate_events(sessions, case_id)
    assert event.detail["parent_office"] is None
    assert overdue_rows(sessions, case_id) == [("office:PD", None)]


@pytest.mark.parametrize(
    "columns",
    [
        {"status": "waiting"},  # the clock is paused
        {"status": "triage", "office_id": None},
        {"status": "resolved"},
        {"status": "closed", "closure": "fixed"},
        {"status": "accepted", "due_at": None},  # no time limit
    ],
    ids=["waiting", "triage", "resolved", "closed", "untimed"],
)
def test_cases_out_of_a_running_clock_are_not_flagged(
    sessions: sessionmaker[Session], columns: dict[str, Any]
) -> None:
    case_id = late_case(sessions, **columns)
    version = the_case(sessions, case_id).version
    assert escalate(sessions, utcnow()) == []
    case = the_case(sessions, case_id)
    assert (case.overdue_at, case.version) == (None, version)
    assert escalate_events(sessions, case_id) == []


def test_a_case_not_yet_due_is_not_flagged(sessions: sessionmaker[Session]) -> None:
    case_id = late_case(sessions, due_at=utcnow() + HOUR)
    assert escalate(sessions, utcnow()) == []
    assert escalate(sessions, utcnow() + 2 * HOUR) == [case_id]


def test_a_full_batch_asks_for_another_run(sessions: sessionmaker[Session]) -> None:
    now = utcnow()
    first = late_case(sessions, due_at=now - 3 * HOUR)
    second = late_case(sessions, due_at=now - 2 * HOUR)
    third = late_case(sessions, due_at=now - HOUR)
    with unit_of_work(sessions) as session:
        flagged = escalation.escalate_overdue(session, now, batch=2)
        asked = (escalation.ESCALATE_OVERDUE, ()) in pending_tasks(session)
    assert [e.case_id for e in flagged] == [first, second]  # the longest overdue first
    assert asked
    with unit_of_work(sessions) as session:
        assert [e.case_id for e in escalation.escalate_overdue(session, now, batch=2)] == [third]
        assert (escalation.ESCALATE_OVERDUE, ()) not in pending_tasks(session)


def test_resolved_on_time_stays_not_overdue_however_long_it_waits(
    sessions: sessionmaker[Session], client: FlaskClient
) -> None:
    staff, staff_key = caller(sessions, "office", OFFICE)
    t0 = utcnow()
    case_id = late_case(sessions, status="routed", due_at=t0 - HOUR)
    with unit_of_work(sessions) as session:
        casework.accept(session, case_id, staff, now=t0 - 3 * HOUR)
        casework.resolve(session, case_id, staff, "已清理", now=t0 - 2 * HOUR)

    assert escalate(sessions, t0) == []
    case = the_case(sessions, case_id)
    assert (case.status, case.overdue_at) == ("resolved", None)
    body = client.get(f"/api/v1/cases/{case_id}", headers=bearer(staff_key)).get_json()
    assert (body["overdue"], body["overdue_at"], body["escalated_to"]) == (False, None, None)

    # sent back to work after its due time: in the office's hands again, and late now
    supervisor, _ = caller(sessions, "supervisor", STREET)
    with unit_of_work(sessions) as session:
        casework.rework(session, case_id, supervisor, "还有垃圾", now=t0)
    assert escalate(sessions, t0) == [case_id]


def test_resolved_late_is_overdue_for_good_even_before_beat_ran(
    sessions: sessionmaker[Session], client: FlaskClient
) -> None:
    staff, staff_key = caller(sessions, "office", OFFICE)
    supervisor, _ = caller(sessions, "supervisor", STREET)
    t0 = utcnow()
    due = t0 - 2 * HOUR
    case_id = late_case(sessions, status="routed", due_at=due)
    with unit_of_work(sessions) as session:
        casework.accept(session, case_id, staff, now=t0 - 3 * HOUR)
        casework.resolve(session, case_id, staff, "已清理", now=t0 - HOUR)

    case = the_case(sessions, case_id)
    assert (case.status, case.overdue_at, case.escalated_office_id) == ("resolved", due, None)
    body = client.get(f"/api/v1/cases/{case_id}", headers=bearer(staff_key)).get_json()
    assert (body["overdue"], body["escalated_to"]) == (True, None)
    assert datetime.fromisoformat(body["overdue_at"]) == due
    assert escalate(sessions, t0) == []

    # rework and closing keep the frozen flag
    with unit_of_work(sessions) as session:
        casework.rework(session, case_id, supervisor, "还有垃圾", now=t0)
    assert the_case(sessions, case_id).overdue_at == due
    assert escalate(sessions, t0) == []
    with unit_of_work(sessions) as session:
        casework.close(session, case_id, supervisor, "no_further_action", now=t0 + HOUR)
    assert the_case(sessions, case_id).overdue_at == due


def test_closing_a_flagged_case_keeps_when_it_was_flagged(sessions: sessionmaker[Session]) -> None:
    supervisor, _ = caller(sessions, "supervisor", STREET)
    case_id = late_case(sessions)
    flagged_at = utcnow()
    assert escalate(sessions, flagged_at) == [case_id]
    with unit_of_work(sessions) as session:
        casework.close(session, case_id, supervisor, "invalid", now=flagged_at + HOUR)
    case = the_case(sessions, case_id)
    assert (case.status, case.overdue_at) == ("closed", flagged_at)
    assert case.escalated_office is not None and case.escalated_office.code == STREET


@pytest.mark.parametrize(("asked_before_due", "overdue"), [(True, False), (False, True)])
def test_closing_a_waiting_case_counts_only_until_the_question(
    sessions: sessionmaker[Session], asked_before_due: bool, overdue: bool
) -> None:
    staff, _ = caller(sessions, "office", OFFICE)
    supervisor, _ = caller(sessions, "supervisor", STREET)
    t0 = utcnow()
    due = t0 - 2 * HOUR
    case_id = late_case(sessions, status="routed", due_at=due)
    asked_at = due - HOUR if asked_before_due else due + HOUR
    with unit_of_work(sessions) as session:
        casework.accept(session, case_id, staff, now=due - 2 * HOUR)
        casework.ask(session, case_id, staff, "具体位置在哪?", now=asked_at)
    assert escalate(sessions, t0) == []  # waiting: the clock is paused
    with unit_of_work(sessions) as session:
        casework.close(session, case_id, supervisor, "invalid", now=t0)
    assert the_case(sessions, case_id).overdue_at == (due if overdue else None)


def test_a_transfer_starts_the_new_office_clock_afresh(
    sessions: sessionmaker[Session], client: FlaskClient
) -> None:
    staff, _ = caller(sessions, "office", OFFICE)
    case_id = late_case(sessions)
    assert escalate(sessions, utcnow()) == [case_id]
    with unit_of_work(sessions) as session:
        casework.transfer(session, case_id, staff, NEIGHBOUR, "不在本社区")
    case = the_case(sessions, case_id)
    assert case.office_id == office_id(sessions, NEIGHBOUR)
    assert (case.overdue_at, case.escalated_at, case.escalated_office_id) == (None, None, None)
    # the timeline keeps the history
    assert [e.action for e in case.events][-2:] == ["escalate", "transfer"]
    neighbour = bearer(make_key(sessions, role="office", office_code=NEIGHBOUR))
    body = client.get(f"/api/v1/cases/{case_id}", headers=neighbour).get_json()
    assert (body["overdue_at"], body["escalated_to"]) == (None, None)


def test_a_rejection_clears_the_flag_too(sessions: sessionmaker[Session]) -> None:
    staff, _ = caller(sessions, "office", OFFICE)
    case_id = late_case(sessions, status="routed")
    assert escalate(sessions, utcnow()) == [case_id]
    with unit_of_work(sessions) as session:
        casework.reject_and_reroute(session, case_id, staff, "不归我们管")
    case = the_case(sessions, case_id)
    assert case.office_id != office_id(sessions, OFFICE)
    assert (case.overdue_at, case.escalated_at, case.escalated_office_id) == (None, None, None)


def test_an_escalation_that_read_an_older_version_changes_nothing(
    sessions: sessionmaker[Session],
) -> None:
    """The conditional update itself: staff acted between the escalation's read and its write."""
    staff, _ = caller(sessions, "office", OFFICE)
    case_id = late_case(sessions)
    with unit_of_work(sessions) as session:
        stale = session.get(Case, case_id)
        assert stale is not None
        _ = stale.office
        with unit_of_work(sessions) as staff_session:
            casework.start(staff_session, case_id, staff)
        assert escalation._escalate(session, stale, utcnow()) is None
    case = the_case(sessions, case_id)
    assert (case.status, case.overdue_at) == ("in_progress", None)
    assert escalate_events(sessions, case_id) == []
    assert overdue_rows(sessions, case_id) == []


def test_overdue_filter_follows_the_flag(
    sessions: sessionmaker[Session], client: FlaskClient
) -> None:
    staff_key = bearer(make_key(sessions, role="office", office_code=OFFICE))
    flagged = late_case(sessions)
    assert escalate(sessions, utcnow()) == [flagged]
    # flagged, then the office asked the reporters: still overdue while the clock pauses
    with unit_of_work(sessions) as session:
        session.execute(update(Case).where(Case.id == flagged).values(status="waiting"))
    late_unflagged = late_case(sessions, status="in_progress")
    waiting = late_case(sessions, status="waiting")
    url = f"/api/v1/offices/{OFFICE}/queue"
    listed = client.get(url, query_string={"overdue": "true"}, headers=staff_key).get_json()
    assert {c["id"] for c in listed["cases"]} == {flagged, late_unflagged}
    others = client.get(url, query_string={"overdue": "false"}, headers=staff_key).get_json()
    assert {c["id"] for c in others["cases"]} == {waiting}
    count = select(func.count()).select_from(Case).where(Case.overdue_at.is_not(None))
    with sessions() as session:
        assert session.scalar(count) == 1


@pytest.mark.parametrize("granted_ahead", [True, False])
def test_an_approved_extension_lifts_the_flag_only_when_its_due_time_lies_ahead(
    sessions: sessionmaker[Session], granted_ahead: bool
) -> None:
    staff, _ = caller(sessions, "office", OFFICE)
    supervisor, _ = caller(sessions, "supervisor", STREET)
    case_id = late_case(sessions)
    assert escalate(sessions, utcnow()) == [case_id]
    # Approved a month later, the granted hours are long past as well.
    approved_at = utcnow() if granted_ahead else utcnow() + timedelta(days=30)
    with unit_of_work(sessions) as session:
        casework.extend(session, case_id, staff, 16, "等材料", now=approved_at)
    with unit_of_work(sessions) as session:
        casework.approve_extension(session, case_id, supervisor, now=approved_at)
    case = the_case(sessions, case_id)
    assert case.due_at is not None
    assert (case.overdue_at is None) is granted_ahead
    assert (case.escalated_office_id is None) is granted_ahead
    assert case.events[-1].detail.get("overdue_lifted", False) is granted_ahead
    assert [e.action for e in case.events].count("escalate") == 1
