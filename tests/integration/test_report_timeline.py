"""What GET /api/v1/reports/<id> tells a reporter about the case of their report: the timeline
as reporters may see it (the notes written for them, the after-photos; never which key acted,
nor an office's internal business), and, for the filing reporter's own key only, what they may
do now."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import make_case, make_key, make_reporter
from tests.helpers import sample_point, tiny_png

OFFICE = sample_point()["office"]
STREET = "PD-CJ"  # the street above OFFICE; its supervisor may close OFFICE's cases


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def post(client: FlaskClient, path: str, headers: dict[str, str], **kwargs: Any) -> Any:
    response = client.post(f"/api/v1{path}", headers=headers, **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def read(client: FlaskClient, report_id: int, headers: dict[str, str] | None = None) -> Any:
    response = client.get(f"/api/v1/reports/{report_id}", headers=headers or {})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


@pytest.fixture
def keys(sessions: sessionmaker[Session]) -> dict[str, dict[str, str]]:
    return {
        "staff": bearer(make_key(sessions, role="office", office_code=OFFICE)),
        "supervisor": bearer(make_key(sessions, role="supervisor", office_code=STREET)),
        "stranger": bearer(make_key(sessions)),
    }


def test_the_timeline_shows_what_reporters_may_see_and_what_they_may_do(
    client: FlaskClient, sessions: sessionmaker[Session], keys: dict[str, dict[str, str]]
) -> None:
    reporter_id, reporter_key = make_reporter(sessions)
    mine = bearer(reporter_key)
    case = make_case(sessions, reporter_id=reporter_id)
    report_id = case.reports[0].id
    staff = keys["staff"]

    routed = read(client, report_id, mine)
    assert [e["action"] for e in routed["timeline"]] == ["received", "classified", "routed"]
    assert routed["allowed_actions"] == [] and routed["after_photos"] == []
    assert routed["closure"] is None and routed["reopen_until"] is None
    assert routed["timeline"][2]["office"]["code"] == OFFICE
    assert routed["timeline"][2]["note"] == ""  # the system's own words stay out
    assert routed["timeline"][2]["by"] == "system"

    post(client, f"/cases/{case.id}/accept", staff, json={"note": "张三接单"})
    post(client, f"/cases/{case.id}/extend", staff, json={"hours": 8, "reason": "内部人手不够"})
    post(client, f"/cases/{case.id}/ask", staff, json={"question": "哪个门口？"})
    waiting = read(client, report_id, mine)
    assert waiting["allowed_actions"] == ["answer"]
    assert read(client, report_id)["allowed_actions"] == []  # no key: the public report
    asked = waiting["timeline"][-1]
    assert (asked["action"], asked["status"], asked["by"]) == ("ask", "waiting", "office")
    assert asked["note"] == "哪个门口？"
    post(client, f"/reports/{report_id}/answer", mine, json={"text": "南门"})

    photo = tiny_png(3)
    post(
        client,
        f"/cases/{case.id}/resolve",
        staff,
        data={"note": "<b>已清运</b> {max}", "photos": [(io.BytesIO(photo), "after.png")]},
    )
    resolved = read(client, report_id, mine)
    actions = [e["action"] for e in resolved["timeline"]]
    # an office's request for more time is its own business
    assert actions[3:] == ["accept", "ask", "answer", "resolve"]
    accepted, _, answered, done = resolved["timeline"][3:]
    assert accepted["note"] == "" and accepted["by"] == "office"
    assert (answered["note"], answered["by"], answered["status"]) == (
        "南门",
        "reporter",
        "accepted",
    )
    assert done["note"] == "<b>已清运</b> {max}"  # as written: the page escapes it
    assert done["photos"] == resolved["after_photos"] and len(done["photos"]) == 1
    served = client.get(done["photos"][0]["url"].removeprefix("http://localhost"))
    assert served.status_code == 200 and served.data == photo
    assert resolved["allowed_actions"] == ["confirm"]
    # whose key acted, or staff's words meant for the office, are nowhere in the answer
    assert "key_id" not in json.dumps(resolved) and "user_id" not in json.dumps(resolved)
    timeline_text = json.dumps(resolved["timeline"], ensure_ascii=False)
    assert "张三" not in timeline_text and "人手不够" not in timeline_text
    assert all(
        set(e["detail"])
        <= {
            "category",
            "method",
            "confidence",
            "due_at",
            "hours",
            "triage_reason",
            "closure",
            "closure_before",
            "from_office",
            "to_office",
            "rework",
        }
        for e in resolved["timeline"]
    )

    # another reporter, an office key, an unknown key: the same public report, nothing to do
    for headers in (keys["stranger"], staff, bearer("cr_unknown")):
        other = read(client, report_id, headers)
        assert other["allowed_actions"] == [] and other["timeline"] == resolved["timeline"]

    post(client, f"/reports/{report_id}/confirm", mine)
    assert read(client, report_id, mine)["allowed_actions"] == []  # confirmed once
    closed = post(client, f"/cases/{case.id}/close", keys["supervisor"], json={"closure": "fixed"})
    assert closed["status"] == "closed"
    after_close = read(client, report_id, mine)
    assert after_close["closure"] == "fixed" and after_close["allowed_actions"] == ["reopen"]
    closed_at = datetime.fromisoformat(after_close["timeline"][-1]["at"])
    until = datetime.fromisoformat(after_close["reopen_until"])
    assert until - closed_at == timedelta(days=7)
    assert after_close["after_photos"] == resolved["after_photos"]

    post(client, f"/reports/{report_id}/reopen", mine, json={"reason": "又满了"})
    reopened = read(client, report_id, mine)
    assert reopened["status"] == "routed" and reopened["closure"] is None
    assert reopened["after_photos"] == [] and reopened["reopen_until"] is None
    last = reopened["timeline"][-1]
    assert (last["action"], last["note"], last["detail"]) == (
        "reopen",
        "又满了",
        {"closure_before": "fixed"},
    )


def test_a_report_not_yet_a_case_has_an_empty_timeline(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    point = sample_point()
    filed = client.post(
        "/api/v1/reports",
        json={"text": "路灯不亮", "lat": point["lat"], "lon": point["lon"]},
        headers=auth,
    )
    assert filed.status_code == 202
    report = read(client, filed.get_json()["id"], auth)
    assert report["status"] == "received"
    assert report["timeline"] == [] and report["allowed_actions"] == []
    assert report["after_photos"] == [] and report["reopen_until"] is None


def test_the_public_events_name_no_reporter_nor_points_nor_internal_notes(
    client: FlaskClient, sessions: sessionmaker[Session], keys: dict[str, dict[str, str]]
) -> None:
    reporter_id, reporter_key = make_reporter(sessions)
    case = make_case(sessions, reporter_id=reporter_id)
    report_id = case.reports[0].id
    staff, supervisor = keys["staff"], keys["supervisor"]
    post(client, f"/cases/{case.id}/accept", staff, json={"note": "张三接单"})
    post(client, f"/cases/{case.id}/extend", staff, json={"hours": 8, "reason": "内部人手不够"})
    post(client, f"/cases/{case.id}/resolve", staff, json={"note": "已清运"})
    post(client, f"/cases/{case.id}/rework", supervisor, json={"note": "地面没扫干净"})
    post(client, f"/cases/{case.id}/resolve", staff, json={"note": "已清扫"})
    post(client, f"/cases/{case.id}/close", supervisor, json={"closure": "fixed", "note": "结案"})

    public = read(client, report_id)  # anyone, no key
    own = read(client, report_id, bearer(reporter_key))
    assert own["timeline"], "the reporter's own view has a timeline"
    for view in (public["events"], own["events"], own["timeline"]):
        text = json.dumps(view, ensure_ascii=False)
        for private in ("reporter_id", "points", "key_id", "user_id", f"reporter:{reporter_id}"):
            assert private not in text
        for internal in ("张三接单", "内部人手不够", "地面没扫干净"):
            assert internal not in text
    notes = {e["action"]: e["note"] for e in public["events"]}
    assert notes["close"] == "结案" and notes["resolve"] == "已清扫"
    assert notes["routed"]  # the pipeline's explanation stays public
    assert public["events"][0]["actor"] == "reporter"
    # the supervisor's full view still has it all
    full = client.get(f"/api/v1/cases/{case.id}", headers=supervisor).get_json()
    assert "地面没扫干净" in json.dumps(full["timeline"], ensure_ascii=False)
