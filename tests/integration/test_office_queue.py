"""The office queue (GET /api/v1/offices/<code>/queue) and the full case view (GET
/api/v1/cases/<id>): filters, order, cursor pages, who may see what, and what a case shows."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.entities import Case, CaseEvent, Photo
from models.limits import MAX_QUEUE_PAGE
from models.session import unit_of_work
from routing import workflow
from tests.factories import make_case, make_key, make_report, process
from tests.helpers import sample_point
from tests.openapi_contract import Contract

OFFICE = "PD-CJ-01"
POINT = sample_point(OFFICE)
QUEUE = f"/api/v1/offices/{OFFICE}/queue"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_case(sessions: sessionmaker[Session], **columns: Any) -> int:
    """A case routed to OFFICE, then with ``columns`` set as given."""
    case = make_case(sessions, lat=POINT["lat"], lon=POINT["lon"])
    assert case.office is not None and case.office.code == OFFICE
    if columns:
        with unit_of_work(sessions) as session:
            session.execute(update(Case).where(Case.id == case.id).values(**columns))
    return case.id


def queue(client: FlaskClient, key: dict[str, str], **params: Any) -> dict[str, Any]:
    response = client.get(QUEUE, query_string=params, headers=key)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def cursor_of(value: Any) -> str:
    """A cursor made by hand, the way the queue makes its own (base64url of JSON)."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def ids(page: dict[str, Any]) -> list[int]:
    return [case["id"] for case in page["cases"]]


@pytest.fixture
def staff(sessions: sessionmaker[Session]) -> dict[str, str]:
    return bearer(make_key(sessions, role="office", office_code=OFFICE))


# ---------- the queue ----------


def test_open_cases_soonest_due_first_then_by_id_without_due_time_last(
    client: FlaskClient, sessions: sessionmaker[Session], staff: dict[str, str]
) -> None:
    now = utcnow()
    later = new_case(sessions, due_at=now + timedelta(hours=5))
    no_limit = new_case(sessions, due_at=None)
    sooner = new_case(sessions, due_at=now + timedelta(hours=1))
    tie_a = new_case(sessions, due_at=now + timedelta(hours=3))
    tie_b = new_case(sessions, due_at=now + timedelta(hours=3))
    new_case(sessions, status="closed", closure="invalid", due_at=now)
    resolved = new_case(sessions, status="resolved", due_at=now + timedelta(hours=9))

    page = queue(client, staff)

    assert page["office"] == OFFICE
    assert ids(page) == [sooner, tie_a, tie_b, later, resolved, no_limit]
    assert page["next_cursor"] is None
    first = page["cases"][0]
    assert first["status"] == "routed" and first["reports"] == 1
    assert first["url"].endswith(f"/api/v1/cases/{sooner}")


def test_filters_status_category_overdue_and_assignee(
    client: FlaskClient, sessions: sessionmaker[Session], staff: dict[str, str]
) -> None:
    now = utcnow()
    past = now - timedelta(hours=2)
    late = new_case(sessions, due_at=past, status="accepted", assignee="key:7")
    # waiting: the clock is paused, so not overdue unless it was flagged before the question
    late_waiting = new_case(sessions, due_at=past, status="waiting")
    resolved_on_time = new_case(sessions, due_at=past, status="resolved")
    resolved_late = new_case(
        sessions, due_at=past - timedelta(hours=1), status="resolved", overdue_at=past
    )
    on_time = new_case(sessions, due_at=now + timedelta(hours=2), category_code="road_damage")
    closed = new_case(sessions, status="closed", closure="fixed", due_at=past)
    untimed = new_case(sessions, due_at=None, assignee="key:8")

    assert ids(queue(client, staff, status="closed")) == [closed]
    assert ids(queue(client, staff, status="accepted, waiting")) == [late, late_waiting]
    assert ids(queue(client, staff, category="road_damage")) == [on_time]
    assert ids(queue(client, staff, overdue="true")) == [resolved_late, late]
    assert ids(queue(client, staff, overdue="false")) == [
        late_waiting,
        resolved_on_time,
        on_time,
        untimed,
    ]
    assert ids(queue(client, staff, overdue="true", status="closed")) == []
    assert ids(queue(client, staff, assignee="key:8")) == [untimed]
    overdue = {case["id"]: case["overdue"] for case in queue(client, staff)["cases"]}
    assert overdue == {
        late: True,
        late_waiting: False,
        resolved_on_time: False,
        resolved_late: True,
        on_time: False,
        untimed: False,
    }
    clocks = {case["id"]: case["clock"] for case in queue(client, staff)["cases"]}
    assert (clocks[late], clocks[late_waiting], clocks[resolved_on_time]) == (
        "running",
        "paused",
        "stopped",
    )


@pytest.mark.parametrize("limit", [1, 2, 3, 7])
def test_cursor_pages_cover_the_queue_without_duplicates_or_gaps(
    client: FlaskClient, sessions: sessionmaker[Session], staff: dict[str, str], limit: int
) -> None:
    now = utcnow()
    due_times: list[datetime | None] = [
        now + timedelta(hours=4),
        None,
        now - timedelta(hours=1),
        now + timedelta(hours=4),
        None,
        now + timedelta(hours=4),
        now + timedelta(minutes=30),
        None,
    ]
    for due_at in due_times:
        new_case(sessions, due_at=due_at)
    everything = ids(queue(client, staff, limit=MAX_QUEUE_PAGE))
    assert len(everything) == len(due_times)

    seen: list[int] = []
    params: dict[str, Any] = {"limit": limit}
    pages = 0
    while True:
        page = queue(client, staff, **params)
        pages += 1
        assert len(page["cases"]) <= limit
        seen.extend(ids(page))
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]

    assert seen == everything
    assert pages == -(-len(due_times) // limit)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "open"}, "status"),
        ({"status": ","}, "status"),
        ({"status": "routed,bogus"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": MAX_QUEUE_PAGE + 1}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"overdue": "perhaps"}, "overdue"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "eyJkIjpudWxsfQ"}, "cursor"),  # {"d":null}: no id
        ({"cursor": cursor_of({"d": None, "i": 10**30})}, "cursor"),
        ({"cursor": cursor_of({"d": "2026-01-01T00:00:00", "i": 1})}, "cursor"),  # naive
        ({"cursor": cursor_of({"d": "0001-01-01T00:00:00+14:00", "i": 1})}, "cursor"),
        ({"cursor": cursor_of({"d": 5, "i": 1})}, "cursor"),
        ({"cursor": cursor_of([1, 2])}, "cursor"),
        ({"category": ""}, "category"),
        ({"sort": "id"}, "sort"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(
    client: FlaskClient, staff: dict[str, str], params: dict[str, Any], field: str
) -> None:
    response = client.get(QUEUE, query_string=params, headers=staff)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]


def key_for(sessions: sessionmaker[Session], who: str) -> dict[str, str] | None:
    """A key of one of the callers in the access matrix (OFFICE is PD-CJ-01, under PD-CJ, under
    PD); None: no key at all."""
    match who:
        case "own staff":
            return bearer(make_key(sessions, role="office", office_code=OFFICE))
        case "other office's staff":
            return bearer(make_key(sessions, role="office", office_code="PD-CJ-02"))
        case "supervisor of the office":
            return bearer(make_key(sessions, role="supervisor", office_code=OFFICE))
        case "supervisor of the street":
            return bearer(make_key(sessions, role="supervisor", office_code="PD-CJ"))
        case "supervisor of the district":
            return bearer(make_key(sessions, role="supervisor", office_code="PD"))
        case "supervisor of a sibling":
            return bearer(make_key(sessions, role="supervisor", office_code="PD-CJ-02"))
        case "supervisor of another street":
            return bearer(make_key(sessions, role="supervisor", office_code="PD-HG"))
        case "reporter":
            return bearer(make_key(sessions))
        case "admin":
            return bearer(make_key(sessions, role="admin"))
        case "unknown key":
            return bearer("cr_no-such-key")
    return None


ACCESS = [
    ("own staff", 200),
    ("supervisor of the office", 200),
    ("supervisor of the street", 200),
    ("supervisor of the district", 200),
    ("other office's staff", 403),
    ("supervisor of a sibling", 403),
    ("supervisor of another street", 403),
    ("reporter", 403),
    ("admin", 403),
    ("unknown key", 401),
    ("no key", 401),
]


@pytest.mark.parametrize(("who", "status"), ACCESS)
def test_who_may_read_the_queue(
    client: FlaskClient, sessions: sessionmaker[Session], who: str, status: int
) -> None:
    case_id = new_case(sessions)
    response = client.get(QUEUE, headers=key_for(sessions, who))
    assert response.status_code == status, response.get_json()
    if status == 200:
        assert ids(response.get_json()) == [case_id]
    else:
        assert "cases" not in response.get_json()


def test_an_unknown_office_is_404(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    supervisor = bearer(make_key(sessions, role="supervisor", office_code="PD"))
    response = client.get("/api/v1/offices/NO-SUCH/queue", headers=supervisor)
    assert response.status_code == 404
    assert "NO-SUCH" in response.get_json()["error"]["message"]


# ---------- a case in full ----------


def test_a_case_in_full(
    client: FlaskClient, sessions: sessionmaker[Session], staff: dict[str, str]
) -> None:
    first = make_case(sessions, lat=POINT["lat"], lon=POINT["lon"], no_merge=False)
    second_report = make_report(sessions, lat=POINT["lat"], lon=POINT["lon"], no_merge=False)
    assert process(sessions, second_report).id == first.id
    due = utcnow() + timedelta(hours=6)
    with unit_of_work(sessions) as session:
        session.add(
            Photo(
                report_id=second_report,
                position=0,
                filename="abc123.png",
                content_type="image/png",
                size_bytes=68,
            )
        )
        session.execute(
            update(Case).where(Case.id == first.id).values(due_at=due, address="春江一村")
        )

    response = client.get(f"/api/v1/cases/{first.id}", headers=staff)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["id"] == first.id
    assert (body["status"], body["closure"], body["office"]) == ("routed", None, OFFICE)
    assert body["location"] == {"lat": POINT["lat"], "lon": POINT["lon"], "address": "春江一村"}
    assert [r["id"] for r in body["reports"]] == [first.reports[0].id, second_report]
    assert body["reports"][0]["photos"] == []
    assert body["reports"][1]["photos"][0]["url"].endswith("/media/abc123.png")
    assert all(r["reporter_id"] and r["received_at"] and r["text"] for r in body["reports"])
    assert [e["to_status"] for e in body["timeline"]][-1] == "routed"
    assert body["timeline"][0]["at"] <= body["timeline"][-1]["at"]
    assert any(e["office"] == OFFICE for e in body["timeline"])
    assert datetime.fromisoformat(body["due_at"]) == due
    assert (body["clock"], body["overdue"]) == ("running", False)
    assert body["allowed_actions"] == workflow.allowed_actions("routed", workflow.STAFF)
    assert "accept" in body["allowed_actions"] and "close" not in body["allowed_actions"]


def test_what_a_supervisor_may_do_differs_from_staff(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    case_id = new_case(sessions, status="resolved")
    supervisor = bearer(make_key(sessions, role="supervisor", office_code="PD-CJ"))
    staff = bearer(make_key(sessions, role="office", office_code=OFFICE))

    by_supervisor = client.get(f"/api/v1/cases/{case_id}", headers=supervisor).get_json()
    by_staff = client.get(f"/api/v1/cases/{case_id}", headers=staff).get_json()

    assert "close" in by_supervisor["allowed_actions"]
    assert "rework" in by_supervisor["allowed_actions"]
    assert "close" not in by_staff["allowed_actions"]
    assert by_staff["clock"] == "stopped"


@pytest.mark.parametrize(
    ("status", "due_in_hours", "clock", "overdue"),
    [
        ("accepted", -1, "running", True),
        ("waiting", -1, "paused", False),
        ("resolved", -1, "stopped", False),
        ("in_progress", 1, "running", False),
    ],
)
def test_clock_and_overdue_of_a_case(
    client: FlaskClient,
    sessions: sessionmaker[Session],
    staff: dict[str, str],
    status: str,
    due_in_hours: int,
    clock: str,
    overdue: bool,
) -> None:
    case_id = new_case(sessions, status=status, due_at=utcnow() + timedelta(hours=due_in_hours))
    body = client.get(f"/api/v1/cases/{case_id}", headers=staff).get_json()
    assert (body["status"], body["clock"], body["overdue"]) == (status, clock, overdue)


def test_a_closed_case_shows_its_closure_and_its_closing_event(
    client: FlaskClient, sessions: sessionmaker[Session], staff: dict[str, str]
) -> None:
    case_id = new_case(sessions, status="closed", closure="duplicate")
    with unit_of_work(sessions) as session:
        session.add(
            CaseEvent(
                case_id=case_id,
                actor="supervisor:PD-CJ",
                action="close",
                from_status="routed",
                to_status="closed",
                note="与 #1 重复",
            )
        )
    body = client.get(f"/api/v1/cases/{case_id}", headers=staff).get_json()
    assert (body["closure"], body["clock"], body["overdue"]) == ("duplicate", "stopped", False)
    last = body["timeline"][-1]
    assert (last["action"], last["from_status"], last["to_status"], last["note"]) == (
        "close",
        "routed",
        "closed",
        "与 #1 重复",
    )
    assert last["actor"] == "supervisor:PD-CJ" and last["office"] is None


# A case outside the key's scope is 404, like a missing one; the admin reads any case.
CASE_ACCESS = [
    (who, 404 if status == 403 and who != "reporter" else status) for who, status in ACCESS
]
CASE_ACCESS = [(who, 200 if who == "admin" else status) for who, status in CASE_ACCESS]


@pytest.mark.parametrize(("who", "status"), CASE_ACCESS)
def test_who_may_read_a_case(
    client: FlaskClient, sessions: sessionmaker[Session], who: str, status: int
) -> None:
    case_id = new_case(sessions)
    response = client.get(f"/api/v1/cases/{case_id}", headers=key_for(sessions, who))
    assert response.status_code == status, response.get_json()
    assert ("timeline" in response.get_json()) == (status == 200)


def test_an_unknown_case_is_404(client: FlaskClient, staff: dict[str, str]) -> None:
    response = client.get("/api/v1/cases/999999", headers=staff)
    assert response.status_code == 404


# ---------- held to the OpenAPI document ----------


@pytest.fixture
def contract(client: FlaskClient) -> Contract:
    return Contract(client.get("/api/v1/openapi.json").get_json())


def test_the_queue_answers_as_documented(
    contract: Contract, client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    op = contract["get", "/api/v1/offices/{code}/queue"]
    new_case(sessions, due_at=utcnow())
    new_case(sessions)
    staff = key_for(sessions, "own staff")
    office = {"code": OFFICE}
    page = op.call(client, office, query_string={"limit": 1}, headers=staff, expect=200)
    cursor = page.get_json()["next_cursor"]
    op.call(client, office, query_string={"cursor": cursor}, headers=staff, expect=200)
    op.call(client, office, query_string={"limit": 0}, headers=staff, expect=422)
    op.call(client, {"code": "NO-SUCH"}, headers=staff, expect=404)
    op.call(client, office, headers=key_for(sessions, "reporter"), expect=403)
    op.call(client, office, expect=401)
    op.assert_every_declared_status_seen()


def test_a_case_answers_as_documented(
    contract: Contract, client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    op = contract["get", "/api/v1/cases/{case_id}"]
    case = {"case_id": new_case(sessions, status="waiting", due_at=utcnow())}
    op.call(client, case, headers=key_for(sessions, "supervisor of the district"), expect=200)
    op.call(client, case, headers=key_for(sessions, "other office's staff"), expect=404)
    op.call(client, case, headers=key_for(sessions, "reporter"), expect=403)
    op.call(client, {"case_id": 999_999}, headers=key_for(sessions, "own staff"), expect=404)
    op.call(client, case, expect=401)
    op.assert_every_declared_status_seen()


def test_the_full_case_follows_real_actions(
    client: FlaskClient, sessions: sessionmaker[Session], staff: dict[str, str]
) -> None:
    case_id = new_case(sessions)
    supervisor = bearer(make_key(sessions, role="supervisor", office_code="PD-CJ"))
    url = f"/api/v1/cases/{case_id}"
    accepted = client.post(f"{url}/accept", json={}, headers=staff)
    assert accepted.status_code == 200, accepted.get_json()
    extended = client.post(f"{url}/extend", json={"hours": 4, "reason": "等配件"}, headers=staff)
    assert extended.status_code == 200, extended.get_json()

    by_staff = client.get(url, headers=staff).get_json()
    by_supervisor = client.get(url, headers=supervisor).get_json()

    assert by_staff["status"] == "accepted" and by_staff["assignee"]
    assert [e["action"] for e in by_staff["timeline"]][-2:] == ["accept", "extend"]
    assert by_staff["timeline"][-1]["note"] == "等配件"
    # An extension is waiting for a supervisor: staff may not ask again, the supervisor answers.
    assert "extend" not in by_staff["allowed_actions"]
    assert {"approve-extension", "deny-extension"} <= set(by_supervisor["allowed_actions"])
    mine = queue(client, staff, assignee=by_staff["assignee"])
    assert ids(mine) == [case_id]
