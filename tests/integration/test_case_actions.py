"""The actions of a case's life through the API: staff, supervisors, the admin and reporters
drive a case from routed to closed and back; every refusal names the case's status and the
actions the caller may do instead, and leaves nothing behind; keys act only on their own
cases; bad bodies name the field."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from models.entities import Case, CaseEvent, OutboxMessage
from models.session import unit_of_work
from routing.sla import due_at, parse_time_limit
from services import casework
from services.accounts import find_key
from services.calendars import office_calendar
from services.errors import Conflict
from tests.factories import make_case, make_key, make_report, make_reporter, process
from tests.helpers import sample_point, tiny_png

POINT = sample_point()
OFFICE = POINT["office"]  # where the factories' cases go: a community of street PD-CJ
STREET = "PD-CJ"
NEIGHBOUR = "PD-CJ-02"  # another community of that street
OTHER_STREET = "PD-HG"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Keys:
    staff: dict[str, str]
    neighbour_staff: dict[str, str]
    street_supervisor: dict[str, str]
    district_supervisor: dict[str, str]
    other_street_supervisor: dict[str, str]
    neighbour_supervisor: dict[str, str]
    admin: dict[str, str]
    stranger: dict[str, str]


@pytest.fixture
def keys(sessions: sessionmaker[Session]) -> Keys:
    def key(role: str, office: str | None = None) -> dict[str, str]:
        return bearer(make_key(sessions, role=role, office_code=office))

    return Keys(
        staff=key("office", OFFICE),
        neighbour_staff=key("office", NEIGHBOUR),
        street_supervisor=key("supervisor", STREET),
        district_supervisor=key("supervisor", "PD"),
        other_street_supervisor=key("supervisor", OTHER_STREET),
        neighbour_supervisor=key("supervisor", NEIGHBOUR),
        admin=key("admin"),
        stranger=key("reporter"),
    )


@dataclass
class Filed:
    """A routed case of two reports by two reporters ("me too")."""

    case_id: int
    report_id: int
    reporter: dict[str, str]
    second_report_id: int
    second_reporter: dict[str, str]
    reporter_ids: tuple[int, int]


@pytest.fixture
def filed(sessions: sessionmaker[Session]) -> Filed:
    first_id, first_key = make_reporter(sessions)
    second_id, second_key = make_reporter(sessions)
    case = make_case(sessions, reporter_id=first_id, no_merge=False)
    assert case.status == "routed" and case.office is not None and case.office.code == OFFICE
    second = make_report(sessions, reporter_id=second_id, no_merge=False)
    joined = process(sessions, second)
    assert joined is not None and joined.id == case.id
    return Filed(
        case.id,
        case.reports[0].id,
        bearer(first_key),
        second,
        bearer(second_key),
        (first_id, second_id),
    )


def act(
    client: FlaskClient,
    case_id: int,
    action: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
    expect: int = 200,
) -> dict[str, Any]:
    response = client.post(f"/api/v1/cases/{case_id}/{action}", json=body or {}, headers=headers)
    return checked(response, expect)


def as_reporter(
    client: FlaskClient,
    report_id: int,
    action: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
    expect: int = 200,
) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/reports/{report_id}/{action}", json=body or {}, headers=headers
    )
    return checked(response, expect)


def checked(response: TestResponse, expect: int) -> dict[str, Any]:
    assert response.status_code == expect, response.get_data(as_text=True)
    body = response.get_json()
    assert isinstance(body, dict)
    return body


@dataclass(frozen=True)
class Snapshot:
    status: str
    closure: str | None
    version: int
    assignee: str | None
    events: int
    outbox: int


def snapshot(db: Session, case_id: int) -> Snapshot:
    row = db.execute(
        select(Case.status, Case.closure, Case.version, Case.assignee).where(Case.id == case_id)
    ).one()
    events = db.scalar(select(func.count()).where(CaseEvent.case_id == case_id)) or 0
    outbox = db.scalar(select(func.count()).where(OutboxMessage.case_id == case_id)) or 0
    return Snapshot(*row, events, outbox)


def last_event(db: Session, case_id: int) -> CaseEvent:
    event = db.scalar(
        select(CaseEvent)
        .where(CaseEvent.case_id == case_id)
        .order_by(CaseEvent.id.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )
    assert event is not None
    return event


def outbox_since(db: Session, case_id: int, after: int) -> list[tuple[str, str]]:
    rows = db.execute(
        select(OutboxMessage.topic, OutboxMessage.recipient)
        .where(OutboxMessage.case_id == case_id)
        .order_by(OutboxMessage.id)
    ).all()
    return [tuple(row) for row in rows[after:]]  # type: ignore[misc]


# ---------- a whole life ----------


def test_a_case_from_routed_to_closed_and_reopened(
    client: FlaskClient, app: Flask, db: Session, filed: Filed, keys: Keys
) -> None:
    case_id = filed.case_id
    reporters = [f"reporter:{rid}" for rid in filed.reporter_ids]
    everyone = [f"office:{OFFICE}", *reporters]
    start = snapshot(db, case_id)
    assert (start.status, start.closure, start.version, start.assignee) == (
        "routed", None, 1, None
    )  # fmt: skip
    due = client.get(f"/api/v1/reports/{filed.report_id}").get_json()["due_at"]

    def step(
        response: dict[str, Any], action: str, before: Snapshot, to: str, actor: str
    ) -> Snapshot:
        after = snapshot(db, case_id)
        assert response["case_id"] == case_id and response["status"] == to == after.status
        assert after.version == before.version + 1
        assert after.events == before.events + 1  # exactly one event per action
        event = last_event(db, case_id)
        assert (event.action, event.from_status, event.to_status, event.actor) == (
            action, before.status, to, actor
        )  # fmt: skip
        changed = before.status != to
        rows = outbox_since(db, case_id, before.outbox)
        assert rows == ([(f"case.{to}", r) for r in everyone] if changed else [])
        return after

    accepted = act(client, case_id, "accept", keys.staff, {"note": "已受理"})
    assert accepted == {
        "case_id": case_id,
        "status": "accepted",
        "closure": None,
        "office": OFFICE,
        "allowed_actions": ["start", "ask", "resolve", "transfer", "extend"],
        "due_at": due,
    }
    now = step(accepted, "accept", start, "accepted", f"office:{OFFICE}")
    assert now.assignee is not None and now.assignee.startswith("key:")
    assert last_event(db, case_id).note == "已受理"

    started = act(client, case_id, "start", keys.staff)
    now = step(started, "start", now, "in_progress", f"office:{OFFICE}")

    asked = act(client, case_id, "ask", keys.staff, {"question": "具体在哪个门口？"})
    assert asked["allowed_actions"] == []
    now = step(asked, "ask", now, "waiting", f"office:{OFFICE}")
    assert last_event(db, case_id).detail["question"] == "具体在哪个门口？"

    # the second reporter of the merged case answers, on their own report
    answered = as_reporter(
        client, filed.second_report_id, "answer", filed.second_reporter, {"text": "南门"}
    )
    assert answered["allowed_actions"] == []
    now = step(answered, "answer", now, "in_progress", f"reporter:{filed.reporter_ids[1]}")
    assert last_event(db, case_id).report_id == filed.second_report_id

    extended = act(client, case_id, "extend", keys.staff, {"hours": 24, "reason": "等物业"})
    assert extended["allowed_actions"] == ["ask", "resolve", "transfer"]
    now = step(extended, "extend", now, "in_progress", f"office:{OFFICE}")
    approved = act(client, case_id, "approve-extension", keys.street_supervisor)
    assert "approve-extension" not in approved["allowed_actions"]
    now = step(approved, "approve-extension", now, "in_progress", f"supervisor:{STREET}")
    moved = client.get(f"/api/v1/reports/{filed.report_id}").get_json()["due_at"]
    assert approved["due_at"] == moved and moved > due  # later, by 24 working hours
    assert last_event(db, case_id).detail["hours"] == 24

    photo = (io.BytesIO(tiny_png(7)), "after.png")
    resolved = checked(
        client.post(
            f"/api/v1/cases/{case_id}/resolve",
            data={"note": "已清运", "photos": [photo]},
            headers=keys.staff,
        ),
        200,
    )
    now = step(resolved, "resolve", now, "resolved", f"office:{OFFICE}")
    (after_photo,) = last_event(db, case_id).detail["photos"]
    assert after_photo["content_type"] == "image/png"
    served = client.get(f"/media/{after_photo['filename']}")
    assert served.status_code == 200 and served.data == tiny_png(7)
    served.close()

    confirmed = as_reporter(client, filed.report_id, "confirm", filed.reporter)
    assert confirmed["allowed_actions"] == []  # confirmed once per resolution
    now = step(confirmed, "confirm", now, "resolved", f"reporter:{filed.reporter_ids[0]}")

    closed = act(
        client, case_id, "close", keys.district_supervisor, {"closure": "fixed", "note": "核查"}
    )
    assert (closed["status"], closed["closure"], closed["allowed_actions"]) == (
        "closed", "fixed", []
    )  # fmt: skip
    now = step(closed, "close", now, "closed", "supervisor:PD")
    assert now.closure == "fixed"

    # the second reporter may still confirm the fix of the closed case, and reopen it
    second = as_reporter(client, filed.second_report_id, "confirm", filed.second_reporter)
    assert second["allowed_actions"] == ["reopen"]
    now = step(second, "confirm", now, "closed", f"reporter:{filed.reporter_ids[1]}")

    reopened = as_reporter(client, filed.report_id, "reopen", filed.reporter, {"reason": "又满了"})
    assert (reopened["status"], reopened["closure"], reopened["office"]) == (
        "routed", None, OFFICE
    )  # fmt: skip
    now = step(reopened, "reopen", now, "routed", f"reporter:{filed.reporter_ids[0]}")
    assert now.assignee is None and now.closure is None
    assert last_event(db, case_id).detail["closure_before"] == "fixed"

    # the reporter's view follows the case; Open311 says open again
    report = client.get(f"/api/v1/reports/{filed.report_id}").get_json()
    assert report["status"] == "routed"
    actions = [e["action"] for e in report["events"]]
    assert actions[-11:] == [
        "accept", "start", "ask", "answer", "extend", "approve-extension", "resolve",
        "confirm", "close", "confirm", "reopen",
    ]  # fmt: skip


def test_rework_and_closing_without_a_fix(
    client: FlaskClient, db: Session, filed: Filed, keys: Keys
) -> None:
    case_id = filed.case_id
    act(client, case_id, "accept", keys.staff)
    act(client, case_id, "resolve", keys.staff, {"note": "已处理"})
    reworked = act(client, case_id, "rework", keys.street_supervisor, {"note": "还有垃圾"})
    assert reworked["status"] == "in_progress"
    assert last_event(db, case_id).detail["rework"] == 1
    act(client, case_id, "resolve", keys.staff, {"note": "再次处理"})
    act(client, case_id, "rework", keys.street_supervisor, {"note": "仍然没好"})
    assert last_event(db, case_id).detail["rework"] == 2

    act(client, case_id, "extend", keys.staff, {"hours": 8, "reason": "需要设备"})
    denied = act(client, case_id, "deny-extension", keys.street_supervisor, {"note": "按期完成"})
    assert denied["status"] == "in_progress"
    assert denied["allowed_actions"] == ["ask", "resolve", "transfer", "extend", "close"]
    assert last_event(db, case_id).detail["hours"] == 8
    # the denied extension is no longer pending: staff may ask again
    staff_view = act(client, case_id, "extend", keys.staff, {"hours": 4, "reason": "再申请"})
    assert staff_view["allowed_actions"] == ["ask", "resolve", "transfer"]

    closed = act(client, case_id, "close", keys.street_supervisor, {"closure": "no_further_action"})
    assert (closed["status"], closed["closure"]) == ("closed", "no_further_action")
    refused = as_reporter(client, filed.report_id, "confirm", filed.reporter, expect=409)
    assert refused["error"]["code"] == "not_fixed"
    assert refused["error"]["allowed_actions"] == ["reopen"]


def test_transfer_routes_the_case_to_the_other_office(
    client: FlaskClient, db: Session, filed: Filed, keys: Keys
) -> None:
    act(client, filed.case_id, "accept", keys.staff)
    moved = act(
        client, filed.case_id, "transfer", keys.staff, {"office": NEIGHBOUR, "reason": "隔壁的"}
    )
    assert (moved["status"], moved["office"], moved["allowed_actions"]) == ("routed", NEIGHBOUR, [])
    event = last_event(db, filed.case_id)
    assert event.detail["from_office"] == OFFICE and event.detail["to_office"] == NEIGHBOUR
    assert snapshot(db, filed.case_id).assignee is None
    assert outbox_since(db, filed.case_id, 0)[-3:] == [
        ("case.routed", f"office:{NEIGHBOUR}"),
        *[("case.routed", f"reporter:{rid}") for rid in filed.reporter_ids],
    ]
    # now it is the neighbour's case, not this office's: as if there were none
    act(client, filed.case_id, "accept", keys.staff, expect=404)
    taken = act(client, filed.case_id, "accept", keys.neighbour_staff)
    assert taken["status"] == "accepted"


def test_the_admin_places_and_closes_triage_cases(
    client: FlaskClient, sessions: sessionmaker[Session], db: Session, keys: Keys
) -> None:
    triaged = make_case(sessions, text="", lat=None, lon=None, address="南门")
    assert triaged.status == "triage"
    refused = act(client, triaged.id, "accept", keys.admin, expect=403)
    assert refused["error"]["code"] == "role_not_allowed"
    assert refused["error"]["allowed_actions"] == ["transfer", "close"]
    act(client, triaged.id, "accept", keys.staff, expect=404)  # no office's case yet
    placed = act(client, triaged.id, "transfer", keys.admin, {"office": OFFICE, "reason": "南门"})
    assert (placed["status"], placed["office"]) == ("routed", OFFICE)
    assert last_event(db, triaged.id).actor == "admin"

    spam = make_case(sessions, text="", lat=None, lon=None, address="不知道")
    closed = act(client, spam.id, "close", keys.admin, {"closure": "invalid", "note": "无效"})
    assert (closed["status"], closed["closure"], closed["office"]) == ("closed", "invalid", None)
    fixed = make_case(sessions, text="", lat=None, lon=None, address="东门")
    refused = act(client, fixed.id, "close", keys.admin, {"closure": "fixed"}, expect=409)
    assert refused["error"]["code"] == "closure_not_allowed"

    # a case closed from triage reopens to triage
    reporter = make_reporter(sessions)
    mine = make_case(sessions, reporter_id=reporter[0], text="", lat=None, lon=None, address="北")
    act(client, mine.id, "close", keys.admin, {"closure": "duplicate"})
    back = as_reporter(
        client, mine.reports[0].id, "reopen", bearer(reporter[1]), {"reason": "不是重复"}
    )
    assert (back["status"], back["office"]) == ("triage", None)


# ---------- refusals: the status and the allowed actions, and nothing written ----------


def drive(client: FlaskClient, case_id: int, status: str, keys: Keys) -> None:
    steps = {
        "routed": [],
        "accepted": [("accept", {})],
        "in_progress": [("accept", {}), ("start", {})],
        "waiting": [("accept", {}), ("ask", {"question": "哪里？"})],
        "resolved": [("accept", {}), ("resolve", {"note": "好了"})],
        "closed": [("accept", {}), ("resolve", {"note": "好了"})],
    }[status]
    for action, body in steps:
        act(client, case_id, action, keys.staff, body)
    if status == "closed":
        act(client, case_id, "close", keys.street_supervisor, {"closure": "fixed"})


GOOD_BODIES: dict[str, dict[str, Any]] = {
    "accept": {},
    "start": {},
    "ask": {"question": "哪里？"},
    "resolve": {"note": "好了"},
    "transfer": {"office": NEIGHBOUR, "reason": "隔壁"},
    "extend": {"hours": 2, "reason": "等"},
    "approve-extension": {},
    "deny-extension": {},
    "close": {"closure": "fixed"},
    "rework": {"note": "返工"},
    "answer": {"text": "南门"},
    "confirm": {},
    "reopen": {"reason": "没修好"},
}

# (status the case is in, action, who tries, the refusal's code, what that key may do instead)
OFFICE_REFUSALS = [
    ("routed", "start", "staff", "illegal_transition", ["accept", "transfer", "reject"]),
    ("routed", "ask", "staff", "illegal_transition", ["accept", "transfer", "reject"]),
    ("routed", "resolve", "staff", "illegal_transition", ["accept", "transfer", "reject"]),
    ("routed", "extend", "staff", "illegal_transition", ["accept", "transfer", "reject"]),
    ("routed", "close", "street_supervisor", "closure_not_allowed",
     ["accept", "transfer", "reject", "close"]),
    ("accepted", "accept", "staff", "illegal_transition",
     ["start", "ask", "resolve", "transfer", "extend"]),
    ("accepted", "approve-extension", "street_supervisor", "no_extension_pending",
     ["start", "ask", "resolve", "transfer", "extend", "close"]),
    ("accepted", "deny-extension", "street_supervisor", "no_extension_pending",
     ["start", "ask", "resolve", "transfer", "extend", "close"]),
    ("in_progress", "start", "staff", "illegal_transition",
     ["ask", "resolve", "transfer", "extend"]),
    ("in_progress", "rework", "street_supervisor", "illegal_transition",
     ["ask", "resolve", "transfer", "extend", "close"]),
    ("waiting", "resolve", "staff", "illegal_transition", []),
    ("waiting", "transfer", "staff", "illegal_transition", []),
    ("resolved", "resolve", "staff", "illegal_transition", []),
    ("resolved", "accept", "district_supervisor", "illegal_transition", ["close", "rework"]),
    ("closed", "close", "street_supervisor", "illegal_transition", []),
    ("closed", "accept", "staff", "illegal_transition", []),
    ("closed", "transfer", "staff", "illegal_transition", []),
]  # fmt: skip
REPORTER_REFUSALS = [
    ("routed", "answer", "illegal_transition", []),
    ("routed", "confirm", "illegal_transition", []),
    ("routed", "reopen", "illegal_transition", []),
    ("in_progress", "answer", "illegal_transition", []),
    ("waiting", "confirm", "illegal_transition", ["answer"]),
    ("resolved", "reopen", "illegal_transition", ["confirm"]),
    ("closed", "answer", "illegal_transition", ["confirm", "reopen"]),
]
ROLE_REFUSALS = [
    ("resolved", "close", "staff", []),
    ("resolved", "rework", "staff", []),
    ("in_progress", "approve-extension", "staff", ["ask", "resolve", "transfer", "extend"]),
    ("routed", "close", "staff", ["accept", "transfer", "reject"]),
    ("routed", "accept", "admin", []),
]


def test_every_office_action_is_refused_somewhere() -> None:
    refused = {action for _s, action, *_rest in OFFICE_REFUSALS}
    assert refused | {"transfer", "reject"} >= set(GOOD_BODIES) - {"answer", "confirm", "reopen"}
    assert {action for _s, action, *_rest in REPORTER_REFUSALS} == {"answer", "confirm", "reopen"}


@pytest.mark.parametrize(("status", "action", "who", "code", "allowed"), OFFICE_REFUSALS)
def test_office_refusals_name_the_status_and_the_allowed_actions(
    client: FlaskClient,
    db: Session,
    filed: Filed,
    keys: Keys,
    status: str,
    action: str,
    who: str,
    code: str,
    allowed: list[str],
) -> None:
    drive(client, filed.case_id, status, keys)
    before = snapshot(db, filed.case_id)
    refused = act(client, filed.case_id, action, getattr(keys, who), GOOD_BODIES[action], 409)
    error = refused["error"]
    assert error["code"] == code
    assert (error["status"], error["allowed_actions"]) == (status, allowed)
    assert f"is {status}" in error["message"]
    for name in allowed:
        assert name in error["message"]
    assert snapshot(db, filed.case_id) == before  # nothing half-written


@pytest.mark.parametrize(("status", "action", "code", "allowed"), REPORTER_REFUSALS)
def test_reporter_refusals_name_the_status_and_the_allowed_actions(
    client: FlaskClient,
    db: Session,
    filed: Filed,
    keys: Keys,
    status: str,
    action: str,
    code: str,
    allowed: list[str],
) -> None:
    drive(client, filed.case_id, status, keys)
    before = snapshot(db, filed.case_id)
    refused = as_reporter(client, filed.report_id, action, filed.reporter, GOOD_BODIES[action], 409)
    assert refused["error"]["code"] == code
    assert (refused["error"]["status"], refused["error"]["allowed_actions"]) == (status, allowed)
    assert snapshot(db, filed.case_id) == before


@pytest.mark.parametrize(("status", "action", "who", "allowed"), ROLE_REFUSALS)
def test_a_role_that_may_never_do_an_action_is_forbidden(
    client: FlaskClient,
    db: Session,
    filed: Filed,
    keys: Keys,
    status: str,
    action: str,
    who: str,
    allowed: list[str],
) -> None:
    drive(client, filed.case_id, status, keys)
    before = snapshot(db, filed.case_id)
    refused = act(client, filed.case_id, action, getattr(keys, who), GOOD_BODIES[action], 403)
    assert refused["error"]["code"] == "role_not_allowed"
    assert (refused["error"]["status"], refused["error"]["allowed_actions"]) == (status, allowed)
    assert snapshot(db, filed.case_id) == before


def test_condition_refusals(client: FlaskClient, db: Session, filed: Filed, keys: Keys) -> None:
    case_id = filed.case_id
    act(client, case_id, "accept", keys.staff)
    act(client, case_id, "extend", keys.staff, {"hours": 4, "reason": "等"})
    again = act(client, case_id, "extend", keys.staff, {"hours": 4, "reason": "等"}, 409)
    assert again["error"]["code"] == "extension_pending"
    assert again["error"]["allowed_actions"] == ["start", "ask", "resolve", "transfer"]
    act(client, case_id, "resolve", keys.staff, {"note": "好了"})  # the extension lapses
    act(client, case_id, "approve-extension", keys.street_supervisor, expect=409)
    as_reporter(client, filed.report_id, "confirm", filed.reporter)
    twice = as_reporter(client, filed.report_id, "confirm", filed.reporter, expect=409)
    assert twice["error"]["code"] == "already_confirmed"
    # the other reporter of the case has not confirmed yet
    as_reporter(client, filed.second_report_id, "confirm", filed.second_reporter)


def test_reopen_only_within_seven_days_of_closing(
    client: FlaskClient, db: Session, filed: Filed, keys: Keys, sessions: sessionmaker[Session]
) -> None:
    drive(client, filed.case_id, "closed", keys)
    close_event = last_event(db, filed.case_id)
    assert close_event.action == "close"
    with sessions.begin() as session:
        session.execute(
            update(CaseEvent)
            .where(CaseEvent.id == close_event.id)
            .values(at=close_event.at - timedelta(days=7, minutes=1))
        )
    before = snapshot(db, filed.case_id)
    late = as_reporter(client, filed.report_id, "reopen", filed.reporter, {"reason": "坏了"}, 409)
    assert late["error"]["code"] == "reopen_window_passed"
    assert "7 days" in late["error"]["message"]
    assert late["error"]["allowed_actions"] == ["confirm"]
    assert snapshot(db, filed.case_id) == before


# ---------- whose case: keys act only on their own ----------


def test_keys_act_only_on_their_own_cases(
    client: FlaskClient, db: Session, filed: Filed, keys: Keys, sessions: sessionmaker[Session]
) -> None:
    case_id = filed.case_id
    before = snapshot(db, case_id)
    missing = act(client, 999_999, "accept", keys.staff, expect=404)["error"]
    for other in (keys.neighbour_staff, keys.other_street_supervisor, keys.neighbour_supervisor):
        refused = act(client, case_id, "accept", other, expect=404)["error"]
        # another office's case answers like a missing one: it does not even exist for them
        assert refused == {**missing, "message": f"No case {case_id}."}
    refused = act(client, case_id, "accept", keys.stranger, expect=403)  # a reporter's key
    assert refused["error"]["code"] == "forbidden"
    assert snapshot(db, case_id) == before

    # a supervisor of the office itself, of its street or of its district may act
    self_supervisor = bearer(make_key(sessions, role="supervisor", office_code=OFFICE))
    assert act(client, case_id, "accept", self_supervisor)["allowed_actions"][-1] == "close"
    act(client, case_id, "start", keys.street_supervisor)
    act(client, case_id, "ask", keys.district_supervisor, {"question": "在哪？"})

    # reporters: only the case's own, on their own report, with a reporter key
    answer = {"text": "南门"}
    stranger = as_reporter(client, filed.report_id, "answer", keys.stranger, answer, 403)
    assert stranger["error"]["code"] == "not_your_report"
    # the second reporter's key on the first reporter's report
    crossed = as_reporter(client, filed.report_id, "answer", filed.second_reporter, answer, 403)
    assert crossed["error"]["code"] == "not_your_report"
    as_reporter(client, filed.report_id, "answer", keys.staff, answer, 403)  # an office key
    as_reporter(client, 999_999, "answer", filed.reporter, answer, 404)
    act(client, 999_999, "accept", keys.staff, expect=404)
    checked(client.post(f"/api/v1/cases/{case_id}/start"), 401)
    checked(client.post(f"/api/v1/reports/{filed.report_id}/answer", json=answer), 401)


def test_a_report_not_yet_a_case(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    reporter_id, key = make_reporter(sessions)
    report_id = make_report(sessions, reporter_id=reporter_id)
    refused = as_reporter(client, report_id, "confirm", bearer(key), expect=409)
    assert (refused["error"]["status"], refused["error"]["allowed_actions"]) == ("received", [])


# ---------- bad bodies name the field ----------

BAD_BODIES = [
    ("accepted", "ask", {}, "question"),
    ("accepted", "ask", {"question": "   "}, "question"),
    ("accepted", "ask", {"question": "x" * 1001}, "question"),
    ("accepted", "resolve", {"note": ""}, "note"),
    ("accepted", "transfer", {"office": "NO-SUCH", "reason": "r"}, "office"),
    ("accepted", "transfer", {"office": OFFICE, "reason": "r"}, "office"),
    ("accepted", "transfer", {"office": NEIGHBOUR}, "reason"),
    ("accepted", "extend", {"hours": 0, "reason": "r"}, "hours"),
    ("accepted", "extend", {"hours": "24", "reason": "r"}, "hours"),
    ("accepted", "extend", {"hours": 24 * 30 + 1, "reason": "r"}, "hours"),
    ("resolved", "close", {"closure": "solved"}, "closure"),
    ("resolved", "close", {}, "closure"),
    ("resolved", "rework", {"note": " "}, "note"),
    ("routed", "accept", {"note": "x", "assignee": "me"}, "assignee"),
]


@pytest.mark.parametrize(("status", "action", "body", "field"), BAD_BODIES)
def test_bad_bodies_name_the_field(
    client: FlaskClient,
    db: Session,
    filed: Filed,
    keys: Keys,
    status: str,
    action: str,
    body: dict[str, Any],
    field: str,
) -> None:
    drive(client, filed.case_id, status, keys)
    before = snapshot(db, filed.case_id)
    who = keys.street_supervisor if action in ("close", "rework") else keys.staff
    refused = act(client, filed.case_id, action, who, body, 422)
    assert field in refused["error"]["fields"], refused
    assert snapshot(db, filed.case_id) == before


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [("answer", {}, "text"), ("reopen", {"reason": ""}, "reason"), ("confirm", {"x": 1}, "x")],
)
def test_bad_reporter_bodies_name_the_field(
    client: FlaskClient, filed: Filed, action: str, body: dict[str, Any], field: str
) -> None:
    refused = as_reporter(client, filed.report_id, action, filed.reporter, body, 422)
    assert field in refused["error"]["fields"]


def test_bodies_that_are_not_objects(client: FlaskClient, filed: Filed, keys: Keys) -> None:
    url = f"/api/v1/cases/{filed.case_id}"
    not_object = {"data": "[1]", "content_type": "application/json", "headers": keys.staff}
    assert client.post(f"{url}/ask", **not_object).status_code == 400
    assert client.post(f"{url}/accept", **not_object).status_code == 400
    # a note-only action needs no body at all
    assert client.post(f"{url}/accept", headers=keys.staff).status_code == 200
    plain = client.post(
        f"{url}/resolve", data="done", content_type="text/plain", headers=keys.staff
    )
    assert plain.status_code == 415
    reports = f"/api/v1/reports/{filed.report_id}"
    assert client.post(f"{reports}/answer", data="x", headers=filed.reporter).status_code == 400


# ---------- reject keeps working, for supervisors too ----------


def test_reject_by_a_supervisor_reroutes_and_raises_the_version(
    client: FlaskClient, db: Session, filed: Filed, keys: Keys, sessions: sessionmaker[Session]
) -> None:
    before = snapshot(db, filed.case_id)
    response = client.post(
        f"/api/v1/cases/{filed.case_id}/reject",
        json={"reason": "不归本社区"},
        headers=keys.street_supervisor,
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    # nobody else handles overflowing bins there: the case goes to triage
    assert (body["status"], body["office"]) == ("triage", None)
    assert OFFICE in body["routing"]["excluded"]
    after = snapshot(db, filed.case_id)
    assert after.version == before.version + 1 and after.events == before.events + 2
    rejected = db.scalars(
        select(CaseEvent).where(CaseEvent.case_id == filed.case_id, CaseEvent.action == "rejected")
    ).one()
    assert rejected.actor == f"supervisor:{STREET}"

    # an accepted case cannot be rejected any more: it can be transferred instead
    accepted = make_case(sessions)
    act(client, accepted.id, "accept", keys.staff)
    before = snapshot(db, accepted.id)
    refused = client.post(
        f"/api/v1/cases/{accepted.id}/reject",
        json={"reason": "不归我们"},
        headers=keys.district_supervisor,
    )
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert (error["code"], error["status"]) == ("illegal_transition", "accepted")
    assert error["allowed_actions"] == ["start", "ask", "resolve", "transfer", "extend", "close"]
    assert snapshot(db, accepted.id) == before


# ---------- the conditional update ----------


def test_an_action_on_a_case_changed_since_it_was_read_is_refused(
    sessions: sessionmaker[Session], db: Session, filed: Filed
) -> None:
    """What the loser of a race meets on PostgreSQL: it read the case, someone else's action
    raised the version before its update, so the update matches nothing; it is refused with the
    status the case has now, and writes nothing."""
    with unit_of_work(sessions) as session:
        staff = find_key(session, make_key(sessions, role="office", office_code=OFFICE))
        assert staff is not None
        work = casework._begin(session, filed.case_id, staff, None)
        transition = casework._decide(work, "accept")
        # another transaction's accept, committed in between
        session.execute(
            update(Case)
            .where(Case.id == filed.case_id)
            .values(status="accepted", version=Case.version + 1)
        )
        before = snapshot(db, filed.case_id)
        with pytest.raises(Conflict) as refused:
            casework._record(work, transition, changes={"assignee": "key:0"})
    assert refused.value.code == "case_changed"
    assert refused.value.details == {
        "status": "accepted",
        "allowed_actions": ["start", "ask", "resolve", "transfer", "extend"],
    }
    assert "it is accepted now" in refused.value.message
    after = snapshot(db, filed.case_id)
    assert (after.events, after.outbox, after.assignee) == (before.events, before.outbox, None)


# ---------- "me too" follows the case's life ----------


@pytest.mark.parametrize(
    ("steps", "joins"),
    [
        ([("accept", {})], True),
        ([("accept", {}), ("start", {})], True),
        ([("accept", {}), ("ask", {"question": "哪里？"})], True),
        ([("accept", {}), ("resolve", {"note": "好了"})], False),
    ],
)
def test_a_me_too_report_joins_a_case_in_the_offices_hands_until_it_is_resolved(
    client: FlaskClient,
    sessions: sessionmaker[Session],
    keys: Keys,
    steps: list[tuple[str, dict[str, Any]]],
    joins: bool,
) -> None:
    case = make_case(sessions, no_merge=False)
    for action, body in steps:
        act(client, case.id, action, keys.staff, body)
    later = process(sessions, make_report(sessions, no_merge=False))
    assert later is not None
    assert (later.id == case.id) is joins


# ---------- the due time: waits stop the clock, approved extensions move it ----------


def test_the_due_time_follows_waits_and_extensions(
    client: FlaskClient, db: Session, filed: Filed, keys: Keys, sessions: sessionmaker[Session]
) -> None:
    case_id = filed.case_id
    act(client, case_id, "accept", keys.staff)
    act(client, case_id, "ask", keys.staff, {"question": "哪里？"})
    # received ten days ago, asked nine days ago: a long wait to take off the clock
    received, asked = last_event(db, case_id).at - timedelta(days=10), None
    with sessions.begin() as session:
        events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id)).all()
        for event in events:
            if event.action == "received":
                event.at = received
            if event.action == "ask":
                event.at = asked = received + timedelta(days=1)
    assert asked is not None
    case = db.scalars(select(Case).where(Case.id == case_id)).one()
    assert case.category is not None
    limit, calendar = (
        parse_time_limit(case.category.time_limit),
        office_calendar(db, case.office_id),
    )

    def expected(pauses: list, hours: int = 0) -> str:
        due = due_at(received, limit, calendar, pauses=pauses, extension_hours=hours)
        assert due is not None
        return due.isoformat()

    answered = as_reporter(client, filed.report_id, "answer", filed.reporter, {"text": "南门"})
    answered_at = last_event(db, case_id).at
    assert answered["due_at"] == expected([(asked, answered_at)])

    act(client, case_id, "extend", keys.staff, {"hours": 16, "reason": "等物业"})
    approved = act(client, case_id, "approve-extension", keys.street_supervisor)
    assert approved["due_at"] == expected([(asked, answered_at)], 16)
    assert approved["due_at"] > answered["due_at"]
    detail = last_event(db, case_id).detail
    assert (detail["due_at_before"], detail["due_at"]) == (answered["due_at"], approved["due_at"])

    # a transfer keeps counting from the first report, on the new office's calendar
    moved = act(client, case_id, "transfer", keys.staff, {"office": NEIGHBOUR, "reason": "隔壁"})
    neighbour = db.execute(select(Case.office_id).where(Case.id == case_id)).scalar_one()
    again = due_at(
        received,
        limit,
        office_calendar(db, neighbour),
        pauses=[(asked, answered_at)],
        extension_hours=16,
    )
    assert again is not None and moved["due_at"] == again.isoformat()
