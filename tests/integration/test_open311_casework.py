"""Open311 follows the case through its life: open until it is closed, the latest note staff
wrote for the reporter as status_notes, the last change as updated_datetime, and every event
in the extensions' notes without the notes that stay inside CityRelay."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.session import unit_of_work
from services import casework
from services.accounts import Caller, find_key
from tests.factories import make_case, make_key
from tests.helpers import OPEN311, from_xml, loosely, open311_get_both, sample_point

OFFICE = sample_point()["office"]  # where the factories' cases go: a community of street PD-CJ
STREET = "PD-CJ"


def _caller(sessions: sessionmaker[Session], role: str, office: str) -> Caller:
    key = make_key(sessions, role=role, office_code=office)
    with unit_of_work(sessions) as session:
        caller = find_key(session, key)
    assert caller is not None
    return caller


def _one(client: FlaskClient, report_id: int, **query: str) -> dict[str, Any]:
    (one,), root = open311_get_both(
        client, f"requests/{report_id}", query_string={"extensions": "true", **query}
    )
    assert loosely([one]) == from_xml(root)
    assert root.find("request/status").text == one["status"]
    return one


def _ids(client: FlaskClient, status: str) -> list[str]:
    response = client.get(f"{OPEN311}/requests.json", query_string={"status": status})
    assert response.status_code == 200
    return [r["service_request_id"] for r in response.get_json()]


def test_accept_resolve_close_moves_status_notes_and_updated_datetime(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    case = make_case(sessions)
    other = make_case(sessions, text="路灯不亮了")
    report_id, case_id = case.reports[0].id, case.id
    staff = _caller(sessions, "office", OFFICE)
    supervisor = _caller(sessions, "supervisor", STREET)
    start = utcnow()

    def act(after_hours: int, step: Any, *args: Any, **kwargs: Any) -> datetime:
        moment = start + timedelta(hours=after_hours)
        with unit_of_work(sessions) as session:
            step(session, case_id, *args, now=moment, **kwargs)
        return moment

    routed = _one(client, report_id)
    assert routed["status"] == "open" and routed["status_notes"].startswith("已派给")

    act(1, casework.accept, staff)  # no note: our words for the step, in the asker's language
    accepted = _one(client, report_id)
    assert accepted["status"] == "open" and accepted["status_notes"] == "已受理。"
    english = _one(client, report_id, locale="en")
    assert english["status_notes"] == "Accepted by the office."
    assert accepted["updated_datetime"] > routed["updated_datetime"]

    act(2, casework.extend, staff, hours=24, reason="工人请假")  # internal: stays inside
    act(3, casework.resolve, staff, note="已更换新井盖")
    resolved = _one(client, report_id)
    assert (resolved["status"], resolved["status_notes"]) == ("open", "已更换新井盖")
    assert resolved["updated_datetime"] > accepted["updated_datetime"]
    assert _ids(client, "closed") == []

    act(4, casework.close, supervisor, closure="fixed", note="现场核查，已修好")
    closed = _one(client, report_id)
    assert (closed["status"], closed["status_notes"]) == ("closed", "现场核查，已修好")
    assert closed["updated_datetime"] > resolved["updated_datetime"]
    assert closed["updated_datetime"].endswith("+08:00")
    assert closed["extended_attributes"]["case_status"] == "closed"

    notes = closed["notes"]
    assert [n["type"] for n in notes] == [
        "received", "classified", "routed", "accept", "extend", "resolve", "close"
    ]  # fmt: skip
    descriptions = {n["type"]: n["description"] for n in notes}
    assert descriptions["extend"] == "申请延期。"  # the reason stays inside CityRelay
    assert "工人请假" not in str(closed)
    assert descriptions["resolve"] == "已更换新井盖"
    assert descriptions["close"] == "现场核查，已修好"
    assert all(n["description"] and n["datetime"] for n in notes)

    still_open = str(other.reports[0].id)
    assert _ids(client, "closed") == [str(report_id)]
    assert _ids(client, "open") == [still_open]
    assert _ids(client, "open,closed") == [still_open, str(report_id)]
    xml_closed = client.get(f"{OPEN311}/requests.xml", query_string={"status": "closed"})
    assert xml_closed.status_code == 200
    assert b"<status>closed</status>" in xml_closed.data


def test_a_note_written_for_the_reporter_outlives_later_internal_steps(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    case = make_case(sessions)
    staff = _caller(sessions, "office", OFFICE)
    with unit_of_work(sessions) as session:
        casework.accept(session, case.id, staff, note="已受理，明天派人")
        casework.extend(session, case.id, staff, hours=24, reason="材料未到")
    one = _one(client, case.reports[0].id)
    assert (one["status"], one["status_notes"]) == ("open", "已受理，明天派人")
    english = _one(client, case.reports[0].id, locale="en")
    assert english["notes"][-1]["description"] == "The office asked for more time."
