""" "Still fixed?" checks: reporters filing near a case recently closed as fixed are offered a
check in the answer of their report; two different reporters' "no" about the same closing
sends the case back to its office as a rework, and every refusal says why."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.entities import Case, CaseEvent, OutboxMessage, Recheck, Report
from models.session import unit_of_work
from services.rechecks import RecheckCounts, recheck_counts
from tests.factories import make_case, make_key, make_reporter
from tests.helpers import sample_point

POINT = sample_point()
OFFICE = POINT["office"]
STREET = "PD-CJ"
METRES_PER_DEGREE_LAT = 111_195.0


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def north_of_case(metres: float) -> dict[str, float]:
    return {"lat": POINT["lat"] + metres / METRES_PER_DEGREE_LAT, "lon": POINT["lon"]}


def east_of_case(metres: float) -> dict[str, float]:
    per_degree = METRES_PER_DEGREE_LAT * math.cos(math.radians(POINT["lat"]))
    return {"lat": POINT["lat"], "lon": POINT["lon"] + metres / per_degree}


def file_report(
    client: FlaskClient, reporter: dict[str, str], where: dict[str, Any], **headers: str
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/reports",
        json={"text": "垃圾桶又满了", **where},
        headers={**reporter, **headers},
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert isinstance(body, dict)
    return body


def recheck(
    client: FlaskClient, case_id: int, reporter: dict[str, str], body: Any, expect: int = 200
) -> dict[str, Any]:
    response = client.post(f"/api/v1/cases/{case_id}/recheck", json=body, headers=reporter)
    assert response.status_code == expect, response.get_data(as_text=True)
    answer = response.get_json()
    assert isinstance(answer, dict)
    return answer


def close_case(client: FlaskClient, case_id: int, closure: str, staff: str, boss: str) -> None:
    """The office's way to a closing: fixed goes through resolve; any other straight away."""
    if closure == "fixed":
        for action, body in (("accept", {}), ("resolve", {"note": "已清运"})):
            answer = client.post(f"/api/v1/cases/{case_id}/{action}", json=body, headers=staff)
            assert answer.status_code == 200, answer.get_data(as_text=True)
    answer = client.post(f"/api/v1/cases/{case_id}/close", json={"closure": closure}, headers=boss)
    assert answer.status_code == 200, answer.get_data(as_text=True)


def closed_ago(sessions: sessionmaker[Session], case_id: int, age: timedelta) -> None:
    """Move the case's closing back in time (the case's other events are older still)."""
    with unit_of_work(sessions) as session:
        session.execute(
            update(CaseEvent)
            .where(CaseEvent.case_id == case_id, CaseEvent.action == "close")
            .values(at=utcnow() - age)
        )


def received_ago(sessions: sessionmaker[Session], report_id: int, age: timedelta) -> None:
    with unit_of_work(sessions) as session:
        session.execute(
            update(Report).where(Report.id == report_id).values(received_at=utcnow() - age)
        )


class World:
    """A case at the sample point, its office's staff and supervisor keys, and riders."""

    def __init__(self, client: FlaskClient, sessions: sessionmaker[Session]) -> None:
        self.client = client
        self.sessions = sessions
        self.original_reporter_id, self.original_key = make_reporter(sessions)
        self.case_id = make_case(sessions, reporter_id=self.original_reporter_id).id
        self.staff = bearer(make_key(sessions, "office", OFFICE))
        self.boss = bearer(make_key(sessions, "supervisor", STREET))

    def close(self, closure: str = "fixed") -> None:
        close_case(self.client, self.case_id, closure, self.staff, self.boss)

    def rider(self) -> dict[str, str]:
        return bearer(make_reporter(self.sessions)[1])

    def rider_nearby(self, metres: float = 40.0) -> tuple[dict[str, str], dict[str, Any]]:
        """A rider who filed a report ``metres`` from the case: their key and the answer."""
        rider = self.rider()
        return rider, file_report(self.client, rider, north_of_case(metres))


@pytest.fixture
def world(client: FlaskClient, sessions: sessionmaker[Session]) -> World:
    return World(client, sessions)


def case_row(db: Session, case_id: int) -> Case:
    case = db.scalar(
        select(Case).where(Case.id == case_id).execution_options(populate_existing=True)
    )
    assert case is not None
    return case


def events(db: Session, case_id: int) -> list[CaseEvent]:
    return list(
        db.scalars(
            select(CaseEvent)
            .where(CaseEvent.case_id == case_id)
            .order_by(CaseEvent.id)
            .execution_options(populate_existing=True)
        )
    )


# ---------- the offer ----------


def test_a_report_near_a_fresh_fix_is_offered_the_check(world: World) -> None:
    world.close()
    rider = world.rider()
    answer = file_report(world.client, rider, east_of_case(60))
    [offer] = answer["recheck"]
    assert offer["case_id"] == world.case_id
    assert offer["category"] is not None
    assert 59 <= offer["distance_m"] <= 61
    assert offer["closed_at"] is not None
    assert offer["url"].endswith(f"/api/v1/cases/{world.case_id}/recheck")
    # The case's own reporter is asked too, as anyone filing nearby is.
    own = file_report(world.client, bearer(world.original_key), north_of_case(5))
    assert [o["case_id"] for o in own["recheck"]] == [world.case_id]


@pytest.mark.parametrize(
    ("where", "closure", "age"),
    [
        pytest.param(north_of_case(101), "fixed", timedelta(hours=1), id="too-far"),
        pytest.param(east_of_case(130), "fixed", timedelta(hours=1), id="too-far-east"),
        pytest.param(north_of_case(30), "fixed", timedelta(days=14, hours=1), id="too-old"),
        pytest.param(north_of_case(30), "duplicate", timedelta(hours=1), id="not-fixed"),
        pytest.param(north_of_case(30), "invalid", timedelta(hours=1), id="invalid"),
        pytest.param({"address": "浦东新区川沙路 88 号"}, "fixed", timedelta(0), id="no-point"),
    ],
)
def test_no_offer(world: World, where: dict[str, Any], closure: str, age: timedelta) -> None:
    world.close(closure)
    closed_ago(world.sessions, world.case_id, age)
    answer = file_report(world.client, world.rider(), where)
    assert answer["recheck"] == []


def test_no_offer_while_the_case_is_open(world: World) -> None:
    answer = file_report(world.client, world.rider(), north_of_case(10))
    assert answer["recheck"] == []


def test_a_retried_report_answers_with_the_same_offer(world: World, db: Session) -> None:
    world.close()
    rider = world.rider()
    first = file_report(world.client, rider, north_of_case(20), **{"Idempotency-Key": "r-1"})
    assert [o["case_id"] for o in first["recheck"]] == [world.case_id]
    recheck(world.client, world.case_id, rider, {"still_fixed": True})
    again = file_report(world.client, rider, north_of_case(20), **{"Idempotency-Key": "r-1"})
    assert again == first
    # A new report after answering is not asked the same again.
    later = file_report(world.client, rider, north_of_case(20), **{"Idempotency-Key": "r-2"})
    assert later["recheck"] == []


def test_the_radius_and_window_are_settings(make_app: Any, world: World) -> None:
    world.close()
    closed_ago(world.sessions, world.case_id, timedelta(days=3))
    narrow = make_app(RECHECK_RADIUS_M=10.0, RECHECK_WINDOW_DAYS=2).test_client()
    rider = world.rider()
    assert file_report(narrow, rider, north_of_case(5))["recheck"] == []
    wide = make_app(RECHECK_RADIUS_M=10.0, RECHECK_WINDOW_DAYS=4).test_client()
    assert [o["case_id"] for o in file_report(wide, rider, north_of_case(5))["recheck"]] == [
        world.case_id
    ]
    assert file_report(wide, rider, north_of_case(15))["recheck"] == []


# ---------- answers ----------


def test_still_fixed_is_counted_and_keeps_the_case_closed(world: World, db: Session) -> None:
    world.close()
    rider, filed = world.rider_nearby()
    version = case_row(db, world.case_id).version
    answer = recheck(world.client, world.case_id, rider, {"still_fixed": True})
    assert answer["status"] == "closed" and answer["closure"] == "fixed"
    assert answer["rechecks"] == {"still_fixed": 1, "not_fixed": 0}
    assert answer["reopened"] is False
    assert "recheck" not in answer["allowed_actions"]
    case = case_row(db, world.case_id)
    assert (case.status, case.version) == ("closed", version + 1)
    event = events(db, world.case_id)[-1]
    assert (event.action, event.from_status, event.to_status) == ("recheck", "closed", "closed")
    assert event.report_id == filed["id"]
    assert event.detail["still_fixed"] is True
    row = db.scalar(select(Recheck).where(Recheck.case_id == world.case_id))
    assert row is not None and row.report_id == filed["id"] and row.still_fixed is True
    view = world.client.get(f"/api/v1/cases/{world.case_id}", headers=world.staff).get_json()
    assert view["rechecks"] == {"still_fixed": 1, "not_fixed": 0}
    # Open311 shows the check in our words, and the case still closed.
    [report_id] = [r.id for r in case.reports]
    public = world.client.get(
        f"/open311/v2/requests/{report_id}.json", query_string={"extensions": "true"}
    ).get_json()[0]
    assert public["status"] == "closed"
    assert public["notes"][-1]["type"] == "recheck"
    assert public["notes"][-1]["description"] == "报告人复查了修复情况。"


def test_two_reporters_saying_not_fixed_send_the_case_back_as_rework(
    world: World, db: Session
) -> None:
    world.close()
    first, first_report = world.rider_nearby(30)
    second, second_report = world.rider_nearby(70)
    answer = recheck(world.client, world.case_id, first, {"still_fixed": False})
    assert (answer["status"], answer["reopened"]) == ("closed", False)
    assert answer["rechecks"] == {"still_fixed": 0, "not_fixed": 1}
    before = case_row(db, world.case_id)
    version, outbox = before.version, _outbox(db, world.case_id)

    answer = recheck(world.client, world.case_id, second, {"still_fixed": False})
    assert answer["reopened"] is True
    assert (answer["status"], answer["closure"]) == ("in_progress", None)
    assert answer["rechecks"] == {"still_fixed": 0, "not_fixed": 2}
    case = case_row(db, world.case_id)
    assert (case.status, case.closure) == ("in_progress", None)
    assert case.version == version + 1
    rework = events(db, world.case_id)[-1]
    assert (rework.action, rework.from_status, rework.to_status) == (
        "rework", "closed", "in_progress"
    )  # fmt: skip
    rows = db.scalars(
        select(Recheck).where(Recheck.case_id == world.case_id).order_by(Recheck.id)
    ).all()
    assert rework.detail["by"] == "recheck"
    assert rework.detail["recheck_ids"] == [r.id for r in rows]
    assert rework.detail["report_ids"] == [first_report["id"], second_report["id"]]
    assert rework.detail["reworks"] == 1
    assert rework.report_id == second_report["id"]
    # The office and the case's reporter hear of it, as of any change of status.
    assert _outbox(db, world.case_id)[len(outbox) :] == [
        ("case.in_progress", f"office:{OFFICE}"),
        ("case.in_progress", f"reporter:{world.original_reporter_id}"),
    ]
    # Back at the office: staff may work it again; a third rider can no longer answer.
    view = world.client.get(f"/api/v1/cases/{world.case_id}", headers=world.staff).get_json()
    assert view["status"] == "in_progress" and "resolve" in view["allowed_actions"]
    assert view["rechecks"] == {"still_fixed": 0, "not_fixed": 2}
    third, _ = world.rider_nearby(10)
    refused = recheck(world.client, world.case_id, third, {"still_fixed": False}, 409)
    assert refused["error"]["code"] == "illegal_transition"
    assert refused["error"]["status"] == "in_progress"
    assert refused["error"]["allowed_actions"] == []


def test_one_no_and_one_yes_keep_the_case_closed(world: World, db: Session) -> None:
    world.close()
    no, _ = world.rider_nearby()
    yes, _ = world.rider_nearby()
    recheck(world.client, world.case_id, no, {"still_fixed": False})
    answer = recheck(world.client, world.case_id, yes, {"still_fixed": True})
    assert answer["reopened"] is False and answer["status"] == "closed"
    assert answer["rechecks"] == {"still_fixed": 1, "not_fixed": 1}
    assert case_row(db, world.case_id).status == "closed"


def test_one_reporter_says_no_once(world: World, db: Session) -> None:
    world.close()
    rider, _ = world.rider_nearby()
    file_report(world.client, rider, north_of_case(10))  # a second report nearby
    recheck(world.client, world.case_id, rider, {"still_fixed": False})
    snapshot = (case_row(db, world.case_id).version, len(events(db, world.case_id)))
    refused = recheck(world.client, world.case_id, rider, {"still_fixed": False}, 409)
    assert refused["error"]["code"] == "already_rechecked"
    assert refused["error"]["status"] == "closed"
    assert "recheck" not in refused["error"]["allowed_actions"]
    assert (case_row(db, world.case_id).version, len(events(db, world.case_id))) == snapshot
    assert recheck_counts(db, world.case_id) == RecheckCounts(0, 1, 0, 1)


def test_a_new_closing_asks_again(world: World, db: Session) -> None:
    world.close()
    first, _ = world.rider_nearby()
    second, _ = world.rider_nearby()
    recheck(world.client, world.case_id, first, {"still_fixed": False})
    recheck(world.client, world.case_id, second, {"still_fixed": False})
    # Fixed again and closed again: the earlier answers count in the totals only.
    for action, body in (("resolve", {"note": "重新清运"}),):
        response = world.client.post(
            f"/api/v1/cases/{world.case_id}/{action}", json=body, headers=world.staff
        )
        assert response.status_code == 200, response.get_data(as_text=True)
    response = world.client.post(
        f"/api/v1/cases/{world.case_id}/close", json={"closure": "fixed"}, headers=world.boss
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert recheck_counts(db, world.case_id) == RecheckCounts(0, 0, 0, 2)
    # The first rider's report came before this closing: they must look again to answer.
    refused = recheck(world.client, world.case_id, first, {"still_fixed": True}, 403)
    assert refused["error"]["code"] == "recheck_not_offered"
    file_report(world.client, first, north_of_case(10))
    answer = recheck(world.client, world.case_id, first, {"still_fixed": True})
    assert answer["rechecks"] == {"still_fixed": 1, "not_fixed": 0}
    reworks = [e for e in events(db, world.case_id) if e.action == "rework"]
    assert [e.detail["reworks"] for e in reworks] == [1]


# ---------- refusals ----------


def test_only_a_reporter_who_filed_nearby_since_the_closing(world: World, db: Session) -> None:
    world.close()
    far = world.rider()
    file_report(world.client, far, north_of_case(150))
    silent = world.rider()
    early = world.rider()
    early_report = file_report(world.client, early, north_of_case(10))
    received_ago(world.sessions, early_report["id"], timedelta(days=1))  # before the closing
    version = case_row(db, world.case_id).version
    for rider in (far, silent, early):
        refused = recheck(world.client, world.case_id, rider, {"still_fixed": False}, 403)
        assert refused["error"]["code"] == "recheck_not_offered"
        assert "100 m" in refused["error"]["message"]
    assert case_row(db, world.case_id).version == version
    assert db.scalar(select(func.count()).select_from(Recheck)) == 0


def test_office_keys_cannot_answer(world: World) -> None:
    world.close()
    for key in (world.staff, world.boss):
        refused = recheck(world.client, world.case_id, key, {"still_fixed": True}, 403)
        assert refused["error"]["code"] == "forbidden"


def test_a_case_closed_other_than_fixed(world: World) -> None:
    world.close("duplicate")
    rider, _ = world.rider_nearby()
    refused = recheck(world.client, world.case_id, rider, {"still_fixed": False}, 409)
    assert refused["error"]["code"] == "not_fixed"
    assert refused["error"]["status"] == "closed"
    assert refused["error"]["allowed_actions"] == []


def test_an_answer_after_the_window(world: World, db: Session) -> None:
    world.close()
    rider, filed = world.rider_nearby()
    closed_ago(world.sessions, world.case_id, timedelta(days=15))
    received_ago(world.sessions, filed["id"], timedelta(days=10))  # looked within the window
    refused = recheck(world.client, world.case_id, rider, {"still_fixed": False}, 409)
    assert refused["error"]["code"] == "recheck_window_passed"
    assert "14 days" in refused["error"]["message"]
    assert db.scalar(select(func.count()).select_from(Recheck)) == 0


def test_an_unknown_case(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    rider = bearer(make_reporter(sessions)[1])
    refused = recheck(client, 999_999, rider, {"still_fixed": True}, 404)
    assert refused["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "still_fixed"),
        ({"still_fixed": None}, "still_fixed"),
        ({"still_fixed": "no"}, "still_fixed"),
        ({"still_fixed": 0}, "still_fixed"),
        ({"still_fixed": 1}, "still_fixed"),
        ({"still_fixed": [False]}, "still_fixed"),
        ({"still_fixed": True, "note": "x"}, "note"),
        (["still_fixed"], "_body"),
        ("false", "_body"),
    ],
)
def test_bad_bodies(world: World, db: Session, body: Any, field: str) -> None:
    world.close()
    rider, _ = world.rider_nearby()
    refused = recheck(world.client, world.case_id, rider, body, 400)
    assert field in refused["error"]["fields"]
    assert db.scalar(select(func.count()).select_from(Recheck)) == 0


# ---------- the counts ----------


def _close_event(session: Session, case_id: int, closure: str) -> int:
    event = CaseEvent(
        case_id=case_id,
        actor="test",
        action="close",
        from_status="resolved",
        to_status="closed",
        detail={"closure": closure},
    )
    session.add(event)
    session.flush()
    return event.id


def test_counts_split_the_latest_fixed_closing_from_all_closings(
    sessions: sessionmaker[Session],
) -> None:
    case = make_case(sessions)
    reporters = [make_reporter(sessions)[0] for _ in range(4)]
    with unit_of_work(sessions) as session:
        assert recheck_counts(session, case.id) == RecheckCounts(0, 0, 0, 0)
        first = _close_event(session, case.id, "fixed")
        latest = _close_event(session, case.id, "fixed")
        _close_event(session, case.id, "duplicate")  # not a closing as fixed
        answers = [(first, reporters[0], False), (first, reporters[1], True)]
        answers += [(latest, reporters[0], False), (latest, reporters[2], False)]
        answers += [(latest, reporters[3], True)]
        for closing, reporter_id, still_fixed in answers:
            session.add(
                Recheck(
                    case_id=case.id,
                    reporter_id=reporter_id,
                    closed_event_id=closing,
                    still_fixed=still_fixed,
                )
            )
        session.flush()
        counts = recheck_counts(session, case.id)
    assert (counts.still_fixed, counts.not_fixed) == (1, 2)
    assert (counts.total_still_fixed, counts.total_not_fixed) == (2, 3)


def _outbox(db: Session, case_id: int) -> list[tuple[str, str]]:
    rows = db.execute(
        select(OutboxMessage.topic, OutboxMessage.recipient)
        .where(OutboxMessage.case_id == case_id)
        .order_by(OutboxMessage.id)
    ).all()
    return [(topic, recipient) for topic, recipient in rows]
