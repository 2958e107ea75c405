"""What the public may read of a report (docs/privacy.md): a point rounded to about 100 m, no
address, and no reporter anywhere, nor the ids of the other reports of its case; the reporter's
own key, the responsible office's keys and the admin read the exact point. The public pages
escape what reporters wrote and name none of them. A key of another office gets the same 404
for a case as for a missing one, on every case endpoint."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import make_case, make_key, make_report, make_reporter, process
from tests.helpers import sample_point

POINT = sample_point()
OFFICE = POINT["office"]  # a community of street PD-CJ
STREET = "PD-CJ"
NEIGHBOUR = "PD-CJ-02"
# Six decimals, none of them zero, so that rounding to three changes both.
LAT = round(POINT["lat"], 3) + 0.000417
LON = round(POINT["lon"], 3) + 0.000283
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
NAME = "王师傅_PRIVATE_NAME"
PLATFORM = "PRIVATE_PLATFORM"
ADDRESS = "春江路8号3号楼402室"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, value) of a JSON document, keys included."""
    yield path, value
    if isinstance(value, dict):
        for key, inner in value.items():
            yield f"{path}.{key}", key
            yield from walk(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from walk(inner, f"{path}[{index}]")


@dataclass
class Story:
    """A case with two reporters' reports, driven through every step that writes a reporter's
    id somewhere: an answer, a closing with points, a confirmation."""

    case_id: int
    first_report: int
    second_report: int
    first_reporter: int
    second_reporter: int
    first_key: dict[str, str]
    second_key: dict[str, str]
    staff: dict[str, str]
    supervisor: dict[str, str]


def post(client: FlaskClient, path: str, headers: dict[str, str], body: Any = None) -> Any:
    response = client.post(f"/api/v1{path}", json=body or {}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


@pytest.fixture
def story(client: FlaskClient, sessions: sessionmaker[Session]) -> Story:
    first_reporter, first_key = make_reporter(sessions, display_name=NAME, platform=PLATFORM)
    second_reporter, second_key = make_reporter(sessions, display_name=NAME, platform=PLATFORM)
    case = make_case(
        sessions,
        reporter_id=first_reporter,
        lat=LAT,
        lon=LON,
        address=ADDRESS,
        text=f"垃圾桶满了 {HOSTILE}",
        no_merge=False,
    )
    second = make_report(
        sessions, reporter_id=second_reporter, lat=LAT, lon=LON, address=ADDRESS, no_merge=False
    )
    joined = process(sessions, second)
    assert joined is not None and joined.id == case.id, "the second report is a 'me too'"
    staff = bearer(make_key(sessions, role="office", office_code=OFFICE))
    supervisor = bearer(make_key(sessions, role="supervisor", office_code=STREET))
    first = case.reports[0].id
    post(client, f"/cases/{case.id}/accept", staff)
    post(client, f"/cases/{case.id}/ask", staff, {"question": "哪个门？"})
    post(client, f"/reports/{first}/answer", bearer(first_key), {"text": "南门"})
    post(client, f"/cases/{case.id}/resolve", staff, {"note": "已清运"})
    post(client, f"/reports/{second}/confirm", bearer(second_key))
    post(client, f"/cases/{case.id}/close", supervisor, {"closure": "fixed"})
    return Story(
        case.id,
        first,
        second,
        first_reporter,
        second_reporter,
        bearer(first_key),
        bearer(second_key),
        staff,
        supervisor,
    )


def read(client: FlaskClient, report_id: int, headers: dict[str, str] | None = None) -> Any:
    response = client.get(f"/api/v1/reports/{report_id}", headers=headers or {})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def assert_names_no_reporter(body: Any, story: Story, other_report: int) -> None:
    text = json.dumps(body, ensure_ascii=False)
    assert "reporter:" not in text
    assert NAME not in text and PLATFORM not in text and "rider" not in text
    for path, value in walk(body):
        assert value not in ("reporter_id", "reporter_ids", "points", "occupation", "platform"), (
            path
        )
        assert value not in ("report_id", "report_ids", "recheck_id", "recheck_ids"), path
        if path.endswith(".note"):
            # no other report of the case is named, so none can be followed from here
            assert not re.search(rf"(?i)\breport\W{{0,2}}{other_report}\b", value), (path, value)


def test_the_public_reads_a_rounded_point_and_no_reporter(
    client: FlaskClient, sessions: sessionmaker[Session], story: Story
) -> None:
    stranger = bearer(make_key(sessions))
    neighbour_staff = bearer(make_key(sessions, role="office", office_code=NEIGHBOUR))
    for who in ({}, stranger, story.second_key, neighbour_staff):
        public = read(client, story.first_report, who)
        assert (public["lat"], public["lon"]) == (round(LAT, 3), round(LON, 3)), who
        assert public["address"] == ""
        assert public["text"] == f"垃圾桶满了 {HOSTILE}"
        assert public["office"]["code"] == OFFICE and public["status"] == "closed"
        assert {e["action"] for e in public["events"]} >= {"received", "merged", "answer"}
        assert_names_no_reporter(public, story, story.second_report)
    second = read(client, story.second_report)
    assert_names_no_reporter(second, story, story.first_report)


def test_the_reporter_and_the_office_read_the_exact_point(
    client: FlaskClient, sessions: sessionmaker[Session], story: Story
) -> None:
    admin = bearer(make_key(sessions, role="admin"))
    for who in (story.first_key, story.staff, story.supervisor, admin):
        exact = read(client, story.first_report, who)
        assert (exact["lat"], exact["lon"], exact["address"]) == (LAT, LON, ADDRESS), who
        # the exact point, still without anyone's identity: that is the case view's
        assert "reporter:" not in json.dumps(exact)
    own = read(client, story.second_report, story.second_key)
    assert (own["lat"], own["lon"]) == (LAT, LON)


def test_the_full_case_view_still_names_the_reporters(client: FlaskClient, story: Story) -> None:
    full = client.get(f"/api/v1/cases/{story.case_id}", headers=story.staff).get_json()
    assert {r["reporter_id"] for r in full["reports"]} == {
        story.first_reporter,
        story.second_reporter,
    }
    assert f"reporter:{story.first_reporter}" in {e["actor"] for e in full["timeline"]}
    assert (full["location"]["lat"], full["location"]["lon"]) == (LAT, LON)


def test_the_public_pages_escape_what_reporters_wrote_and_name_none(
    client: FlaskClient, story: Story
) -> None:
    for path in (f"/report/{story.first_report}", "/public", "/report"):
        page = client.get(path)
        assert page.status_code == 200, path
        html = page.get_data(as_text=True)
        assert HOSTILE not in html and "<script>alert" not in html, path
        assert NAME not in html and PLATFORM not in html and "reporter:" not in html, path
        assert f"{LAT}" not in html and f"{LON}" not in html, path


# ---------- another office's case answers like a missing one ----------

CASE_POSTS = {
    "accept": {},
    "start": {},
    "ask": {"question": "哪里？"},
    "resolve": {"note": "好了"},
    "transfer": {"office": NEIGHBOUR, "reason": "隔壁"},
    "extend": {"hours": 4, "reason": "等配件"},
    "approve-extension": {},
    "deny-extension": {},
    "close": {"closure": "fixed"},
    "rework": {"note": "再来"},
    "reject": {"reason": "不是我们的"},
    "split": {"report_id": 1},
}
MISSING = 2_000_000_000


def shape(body: dict[str, Any], case_id: int) -> dict[str, Any]:
    """The error with the case's id taken out of its message."""
    error = dict(body["error"])
    error["message"] = re.sub(rf"\b{case_id}\b", "<id>", error["message"])
    return error


@pytest.mark.parametrize("who", ["neighbour staff", "neighbour supervisor"])
def test_another_offices_case_is_404_like_a_missing_one(
    client: FlaskClient, sessions: sessionmaker[Session], who: str
) -> None:
    case = make_case(sessions)
    assert case.office is not None and case.office.code == OFFICE
    role = "office" if who == "neighbour staff" else "supervisor"
    key = bearer(make_key(sessions, role=role, office_code=NEIGHBOUR))
    answers = {}
    for case_id in (case.id, MISSING):
        read = client.get(f"/api/v1/cases/{case_id}", headers=key)
        answers[("GET", case_id)] = (read.status_code, shape(read.get_json(), case_id))
        for action, body in CASE_POSTS.items():
            if action == "split" and role == "supervisor":
                continue  # staff keys only: a supervisor's key is refused for its role
            acted = client.post(f"/api/v1/cases/{case_id}/{action}", json=body, headers=key)
            answers[(action, case_id)] = (acted.status_code, shape(acted.get_json(), case_id))
    for (what, case_id), answer in answers.items():
        if case_id == MISSING:
            continue
        assert answer == answers[(what, MISSING)], what
        assert answer[0] == 404 and answer[1]["code"] == "not_found", what
    assert client.get(f"/api/v1/cases/{case.id}", headers=key).status_code == 404
