"""Points through the real API: closing a case as fixed awards its reporters (the first 10, me
too 3, once per reporter and case), other closures award nothing, an invalidated case takes its
awards back with reversing entries, a re-closed case never pays twice, the daily cap trims and
stops awards, one problem split into several reports pays once; and the reporter's own view,
/api/v1/reporters/me and /me/reports, with its pages and its refusals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cityrelay.app import create_app
from models.entities import CaseEvent, PointsEntry, Report
from tests.factories import make_case, make_key, make_report, make_reporter, process
from tests.helpers import sample_point

ME = "/api/v1/reporters/me"
MY_REPORTS = "/api/v1/reporters/me/reports"
# Communities of the demo district, each far from the others; all under the district PD.
COMMUNITIES = ("PD-CJ-01", "PD-CJ-02", "PD-CJ-03", "PD-HG-02")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Reporter:
    id: int
    headers: dict[str, str]


@pytest.fixture
def supervisor(sessions: sessionmaker[Session]) -> dict[str, str]:
    """The district's supervisor: may accept, resolve and close every case of the district."""
    return bearer(make_key(sessions, role="supervisor", office_code="PD"))


def new_reporter(sessions: sessionmaker[Session]) -> Reporter:
    reporter_id, key = make_reporter(sessions)
    return Reporter(reporter_id, bearer(key))


def act(
    client: FlaskClient,
    case_id: int,
    action: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    response = client.post(f"/api/v1/cases/{case_id}/{action}", json=body or {}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def close_fixed(client: FlaskClient, case_id: int, supervisor: dict[str, str]) -> None:
    act(client, case_id, "accept", supervisor)
    act(client, case_id, "resolve", supervisor, {"note": "已清理"})
    assert act(client, case_id, "close", supervisor, {"closure": "fixed"})["closure"] == "fixed"


def reopen(client: FlaskClient, report_id: int, reporter: Reporter) -> None:
    response = client.post(
        f"/api/v1/reports/{report_id}/reopen", json={"reason": "又满了"}, headers=reporter.headers
    )
    assert response.status_code == 200, response.get_data(as_text=True)


def me(client: FlaskClient, reporter: Reporter, **query: Any) -> dict[str, Any]:
    response = client.get(ME, headers=reporter.headers, query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def balance(client: FlaskClient, reporter: Reporter) -> int:
    return me(client, reporter)["balance"]


def close_points(db: Session, case_id: int) -> dict[str, Any]:
    """The points part of the case's last close event."""
    event = db.scalar(
        select(CaseEvent)
        .where(CaseEvent.case_id == case_id, CaseEvent.action == "close")
        .order_by(CaseEvent.id.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )
    assert event is not None
    return event.detail["points"]


@dataclass
class MeToo:
    case_id: int
    first: Reporter
    first_report_id: int
    first_again_report_id: int
    second: Reporter
    second_report_id: int


@pytest.fixture
def me_too(sessions: sessionmaker[Session]) -> MeToo:
    """A routed case of three reports: two by its first reporter, one by a second reporter."""
    first, second = new_reporter(sessions), new_reporter(sessions)
    case = make_case(sessions, reporter_id=first.id, no_merge=False)
    again = make_report(sessions, reporter_id=first.id, no_merge=False)
    other = make_report(sessions, reporter_id=second.id, no_merge=False)
    for report_id in (other, again):
        joined = process(sessions, report_id)
        assert joined is not None and joined.id == case.id
    return MeToo(case.id, first, case.reports[0].id, again, second, other)


# ---------- awards ----------


def test_closing_fixed_awards_the_first_reporter_10_and_me_too_3_once_each(
    client: FlaskClient, db: Session, me_too: MeToo, supervisor: dict[str, str]
) -> None:
    assert balance(client, me_too.first) == balance(client, me_too.second) == 0
    close_fixed(client, me_too.case_id, supervisor)

    first = me(client, me_too.first)
    assert first["balance"] == 10
    [entry] = first["entries"]  # two reports in the case, one award
    assert (entry["kind"], entry["points"], entry["reason"]) == ("award", 10, "first_report")
    assert (entry["case_id"], entry["report_id"], entry["reverses_id"]) == (
        me_too.case_id, me_too.first_report_id, None
    )  # fmt: skip
    second = me(client, me_too.second)
    assert second["balance"] == 3
    assert [(e["points"], e["reason"], e["report_id"]) for e in second["entries"]] == [
        (3, "me_too", me_too.second_report_id)
    ]
    points = close_points(db, me_too.case_id)
    assert sorted((a["reporter_id"], a["points"]) for a in points["awarded"]) == sorted(
        [(me_too.first.id, 10), (me_too.second.id, 3)]
    )
    assert points["skipped"] == [] and points["reversed"] == []
    entries = db.scalars(select(PointsEntry).where(PointsEntry.case_id == me_too.case_id)).all()
    assert {e.actor for e in entries} == {"supervisor:PD"}


@pytest.mark.parametrize(
    "closure", ["invalid", "duplicate", "not_responsible", "no_further_action"]
)
def test_other_closures_award_nothing(
    client: FlaskClient, db: Session, me_too: MeToo, supervisor: dict[str, str], closure: str
) -> None:
    act(client, me_too.case_id, "close", supervisor, {"closure": closure})
    first = me(client, me_too.first)
    assert (first["balance"], first["entries"]) == (0, [])
    assert balance(client, me_too.second) == 0
    count = db.scalars(select(PointsEntry).where(PointsEntry.case_id == me_too.case_id)).all()
    assert count == []


@pytest.mark.parametrize("closure", ["invalid", "duplicate"])
def test_reopened_and_invalidated_case_reverses_each_award(
    client: FlaskClient, db: Session, me_too: MeToo, supervisor: dict[str, str], closure: str
) -> None:
    close_fixed(client, me_too.case_id, supervisor)
    reopen(client, me_too.second_report_id, me_too.second)
    act(client, me_too.case_id, "close", supervisor, {"closure": closure})

    for reporter, points in ((me_too.first, 10), (me_too.second, 3)):
        view = me(client, reporter)
        assert view["balance"] == 0
        reversal, award = view["entries"]  # newest first
        assert (award["kind"], award["points"]) == ("award", points)
        assert (reversal["kind"], reversal["points"], reversal["reason"]) == (
            "reversal", -points, f"closed_{closure}"
        )  # fmt: skip
        assert reversal["reverses_id"] == award["id"]
        assert reversal["case_id"] == award["case_id"] == me_too.case_id
    assert len(close_points(db, me_too.case_id)["reversed"]) == 2

    # Fixed again after all: the awards come back once, and only once.
    reopen(client, me_too.first_report_id, me_too.first)
    close_fixed(client, me_too.case_id, supervisor)
    assert (balance(client, me_too.first), balance(client, me_too.second)) == (10, 3)
    # Invalidated again: only the standing awards are reversed, each once.
    reopen(client, me_too.first_report_id, me_too.first)
    act(client, me_too.case_id, "close", supervisor, {"closure": closure})
    assert (balance(client, me_too.first), balance(client, me_too.second)) == (0, 0)
    assert len(me(client, me_too.first)["entries"]) == 4


def test_closed_fixed_again_after_a_reopen_does_not_pay_twice(
    client: FlaskClient, db: Session, me_too: MeToo, supervisor: dict[str, str]
) -> None:
    close_fixed(client, me_too.case_id, supervisor)
    reopen(client, me_too.first_report_id, me_too.first)
    close_fixed(client, me_too.case_id, supervisor)
    assert (balance(client, me_too.first), balance(client, me_too.second)) == (10, 3)
    points = close_points(db, me_too.case_id)
    assert points["awarded"] == []
    assert sorted((s["reporter_id"], s["reason"]) for s in points["skipped"]) == sorted(
        [(me_too.first.id, "already_awarded"), (me_too.second.id, "already_awarded")]
    )


def test_a_closure_other_than_invalid_or_duplicate_leaves_standing_awards_alone(
    client: FlaskClient, me_too: MeToo, supervisor: dict[str, str]
) -> None:
    close_fixed(client, me_too.case_id, supervisor)
    reopen(client, me_too.first_report_id, me_too.first)
    act(client, me_too.case_id, "close", supervisor, {"closure": "not_responsible"})
    assert (balance(client, me_too.first), balance(client, me_too.second)) == (10, 3)


def test_the_daily_cap_trims_then_stops_awards(
    make_app: Any, sessions: sessionmaker[Session], db: Session, supervisor: dict[str, str]
) -> None:
    capped: Flask = make_app(POINTS_DAILY_CAP=25)
    client = capped.test_client()
    reporter = new_reporter(sessions)
    cases = [
        make_case(sessions, reporter_id=reporter.id, **_at(community)).id
        for community in COMMUNITIES
    ]
    earned = []
    for case_id in cases:
        close_fixed(client, case_id, supervisor)
        earned.append(balance(client, reporter))
    assert earned == [10, 20, 25, 25]
    trimmed = close_points(db, cases[2])["awarded"]
    assert [(a["points"], a["reason"]) for a in trimmed] == [(5, "first_report")]
    entries = me(client, reporter)["entries"]
    assert "daily cap" in entries[0]["note"]
    assert close_points(db, cases[3]) == {
        "awarded": [],
        "skipped": [
            {
                "reporter_id": reporter.id,
                "report_id": _first_report(db, cases[3]),
                "reason": "daily_cap",
            }
        ],
        "reversed": [],
    }


def test_one_problem_split_into_several_reports_pays_once(
    client: FlaskClient, sessions: sessionmaker[Session], db: Session, supervisor: dict[str, str]
) -> None:
    splitter, honest = new_reporter(sessions), new_reporter(sessions)
    here = sample_point()
    # The same overflowing bin, reported three times as three cases, 30 m apart at most.
    cases = [
        make_case(
            sessions, reporter_id=splitter.id, lat=here["lat"] + 0.0001 * i, lon=here["lon"]
        ).id
        for i in range(3)
    ]
    # Another reporter's report of a bin in another community the same day is not a split.
    elsewhere = make_case(sessions, reporter_id=splitter.id, **_at("PD-CJ-03")).id
    honest_case = make_case(sessions, reporter_id=honest.id, lat=here["lat"], lon=here["lon"]).id
    for case_id in (*cases, elsewhere, honest_case):
        close_fixed(client, case_id, supervisor)
    assert balance(client, splitter) == 20
    assert balance(client, honest) == 10
    for case_id in cases[1:]:
        skipped = close_points(db, case_id)["skipped"]
        assert [(s["reporter_id"], s["reason"]) for s in skipped] == [
            (splitter.id, "split_problem")
        ]


def _at(community: str) -> dict[str, float]:
    point = sample_point(community)
    return {"lat": point["lat"], "lon": point["lon"]}


def _first_report(db: Session, case_id: int) -> int:
    report_id = db.scalar(select(Report.id).where(Report.case_id == case_id).order_by(Report.id))
    assert report_id is not None
    return report_id


# ---------- the reporter's own view ----------


def test_my_reports_show_their_case_status_office_and_points(
    client: FlaskClient, sessions: sessionmaker[Session], me_too: MeToo, supervisor: dict[str, str]
) -> None:
    unprocessed = make_report(sessions, reporter_id=me_too.first.id, text="路灯不亮了")
    close_fixed(client, me_too.case_id, supervisor)
    response = client.get(MY_REPORTS, headers=me_too.first.headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["next_cursor"] is None
    listed = body["reports"]
    assert [r["id"] for r in listed] == [
        unprocessed,
        me_too.first_again_report_id,
        me_too.first_report_id,
    ]
    waiting, again, first = listed
    assert (waiting["status"], waiting["case_id"], waiting["office"], waiting["points"]) == (
        "received", None, None, 0
    )  # fmt: skip
    assert waiting["text"] == "路灯不亮了" and waiting["closure"] is None
    assert (first["status"], first["closure"], first["case_id"], first["points"]) == (
        "closed", "fixed", me_too.case_id, 10
    )  # fmt: skip
    assert first["office"]["code"] == sample_point()["office"] and first["category"]
    assert again["points"] == 0  # one award per reporter and case, on the earliest report
    # Another reporter's reports never show.
    theirs = client.get(MY_REPORTS, headers=me_too.second.headers).get_json()["reports"]
    assert [(r["id"], r["points"]) for r in theirs] == [(me_too.second_report_id, 3)]


def test_pages_follow_the_cursor_newest_first(
    client: FlaskClient, sessions: sessionmaker[Session], me_too: MeToo, supervisor: dict[str, str]
) -> None:
    close_fixed(client, me_too.case_id, supervisor)
    reopen(client, me_too.first_report_id, me_too.first)
    act(client, me_too.case_id, "close", supervisor, {"closure": "invalid"})
    reopen(client, me_too.first_report_id, me_too.first)
    close_fixed(client, me_too.case_id, supervisor)
    everything = me(client, me_too.first, limit=200)["entries"]
    assert [e["kind"] for e in everything] == ["award", "reversal", "award"]
    assert [e["id"] for e in everything] == sorted((e["id"] for e in everything), reverse=True)

    seen, cursor = [], None
    while True:
        page = me(client, me_too.first, limit=1, **({"cursor": cursor} if cursor else {}))
        assert len(page["entries"]) == 1 and page["balance"] == 10
        seen += page["entries"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything

    reports_seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(MY_REPORTS, headers=me_too.first.headers, query_string=query).get_json()
        reports_seen += [r["id"] for r in page["reports"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert reports_seen == [me_too.first_again_report_id, me_too.first_report_id]


@pytest.mark.parametrize("path", [ME, MY_REPORTS])
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": ""}, "cursor"),
        ({"cursor": "cG9pbnRzOjA"}, "cursor"),  # "points:0"
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_page_parameters_are_400_naming_the_field(
    client: FlaskClient, auth: dict[str, str], path: str, query: dict[str, str], field: str
) -> None:
    response = client.get(path, headers=auth, query_string=query)
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "bad_request" and list(error["fields"]) == [field]


def test_a_cursor_of_one_list_is_refused_by_the_other(
    client: FlaskClient, me_too: MeToo, supervisor: dict[str, str]
) -> None:
    close_fixed(client, me_too.case_id, supervisor)
    cursor = client.get(
        MY_REPORTS, headers=me_too.first.headers, query_string={"limit": 1}
    ).get_json()["next_cursor"]
    assert cursor
    refused = client.get(ME, headers=me_too.first.headers, query_string={"cursor": cursor})
    assert refused.status_code == 400 and "cursor" in refused.get_json()["error"]["fields"]


@pytest.mark.parametrize("path", [ME, MY_REPORTS])
def test_only_the_reporters_own_key(
    client: FlaskClient, sessions: sessionmaker[Session], path: str
) -> None:
    assert client.get(path).status_code == 401
    assert client.get(path, headers=bearer("cr_no-such-key")).status_code == 401
    for role, office in (("office", "PD-CJ-01"), ("supervisor", "PD"), ("admin", None)):
        key = make_key(sessions, role=role, office_code=office)
        refused = client.get(path, headers=bearer(key))
        assert refused.status_code == 403, (role, refused.get_data(as_text=True))
        assert refused.get_json()["error"]["code"] == "forbidden"


def test_a_new_reporter_has_an_empty_ledger(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    reporter_id, key = make_reporter(sessions, display_name="李师傅", occupation="courier")
    body = client.get(ME, headers=bearer(key)).get_json()
    assert body == {
        "reporter_id": reporter_id,
        "display_name": "李师傅",
        "occupation": "courier",
        "balance": 0,
        "entries": [],
        "next_cursor": None,
    }


@pytest.mark.parametrize(
    "changes",
    [{"POINTS_DAILY_CAP": -1}, {"POINTS_ME_TOO": -3}, {"TIMEZONE": "Mars/Olympus_Mons"}],
)
def test_unusable_points_settings_stop_the_app_from_starting(
    test_settings: dict[str, Any], changes: dict[str, Any]
) -> None:
    with pytest.raises(RuntimeError, match="points settings"):
        create_app({**test_settings, **changes})
