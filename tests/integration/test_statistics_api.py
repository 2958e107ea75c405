"""GET /api/v1/stats and /api/v1/stats.csv: who may read which figures, every bad parameter
named, `received` moving by exactly the reports posted, a case's life showing in the counts,
rates and times, groups with the office league table's "too few to rank", and the CSV saying
what the JSON says."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.entities import CaseStat
from models.session import unit_of_work
from tests.factories import make_case, make_key, make_reporter
from tests.helpers import sample_point

POINT = sample_point()
OFFICE = POINT["office"]
STREET = "PD-CJ"
OTHER_STREET = "PD-HG"
STATS = "/api/v1/stats"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def admin(sessions: sessionmaker[Session]) -> dict[str, str]:
    return bearer(make_key(sessions, role="admin"))


@pytest.fixture
def supervisor(sessions: sessionmaker[Session]) -> dict[str, str]:
    return bearer(make_key(sessions, role="supervisor", office_code=STREET))


@pytest.fixture
def staff(sessions: sessionmaker[Session]) -> dict[str, str]:
    return bearer(make_key(sessions, role="office", office_code=OFFICE))


def stats(client: FlaskClient, key: dict[str, str], **params: Any) -> dict[str, Any]:
    response = client.get(STATS, query_string=params, headers=key)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def act(client: FlaskClient, case_id: int, action: str, key: dict[str, str], **body: Any) -> None:
    response = client.post(f"/api/v1/cases/{case_id}/{action}", json=body, headers=key)
    assert response.status_code == 200, response.get_json()


def test_received_moves_by_exactly_the_reports_posted(
    client: FlaskClient, admin: dict[str, str], auth: dict[str, str]
) -> None:
    before = stats(client, admin)["received"]
    for n in range(3):
        response = client.post(
            "/api/v1/reports",
            json={"text": f"井盖丢了 {n}", "lat": POINT["lat"], "lon": POINT["lon"]},
            headers={**auth, "Idempotency-Key": f"stats-{n}"},
        )
        assert response.status_code == 202
    # a retry is the same report: it must not count twice
    again = client.post(
        "/api/v1/reports",
        json={"text": "井盖丢了 0", "lat": POINT["lat"], "lon": POINT["lon"]},
        headers={**auth, "Idempotency-Key": "stats-0"},
    )
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert stats(client, admin)["received"] == before + 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "from"),
        ({"from": "2000-01-01", "to": "2026-01-01"}, "from"),
        ({"group_by": "street"}, "group_by"),
        ({"occupation": "pilot"}, "occupation"),
        ({"channel": "fax"}, "channel"),
        ({"office": "NOPE"}, "office"),
        ({"category": "no_such_category"}, "category"),
        ({"group": "没有这个大类"}, "group"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_parameter_is_named(
    client: FlaskClient, admin: dict[str, str], params: dict[str, str], field: str
) -> None:
    for path in (STATS, STATS + ".csv"):
        response = client.get(path, query_string=params, headers=admin)
        assert response.status_code == 422, (path, response.get_data(as_text=True))
        body = response.get_json()
        assert body["error"]["code"] == "validation_failed"
        assert field in body["error"]["fields"]


def test_who_may_read_which_figures(
    client: FlaskClient,
    sessions: sessionmaker[Session],
    admin: dict[str, str],
    supervisor: dict[str, str],
    staff: dict[str, str],
    auth: dict[str, str],
) -> None:
    assert client.get(STATS).status_code == 401
    assert client.get(STATS, headers=bearer("nonsense-key")).status_code == 401
    assert client.get(STATS, headers=auth).status_code == 403  # a reporter
    assert client.get(STATS, headers=staff).status_code == 403  # staff run a queue, not a league
    # a supervisor sees its own subtree by default, and parts of it
    assert stats(client, supervisor)["window"]["office"] == STREET
    assert stats(client, supervisor, office=OFFICE)["window"]["office"] == OFFICE
    outside = client.get(STATS, query_string={"office": OTHER_STREET}, headers=supervisor)
    assert outside.status_code == 403
    above = client.get(STATS, query_string={"office": "PD"}, headers=supervisor)
    assert above.status_code == 403
    # an admin the whole city, or any subtree
    assert stats(client, admin)["window"]["office"] is None
    assert stats(client, admin, office=OTHER_STREET)["window"]["office"] == OTHER_STREET


def test_a_case_s_life_shows_in_the_counts_rates_and_times(
    client: FlaskClient,
    sessions: sessionmaker[Session],
    admin: dict[str, str],
    supervisor: dict[str, str],
    staff: dict[str, str],
) -> None:
    case = make_case(sessions)
    other = make_case(sessions)  # stays routed, not yet due: not "due to close"
    with unit_of_work(sessions) as session:
        row = session.scalar(select(CaseStat).where(CaseStat.case_id == case.id))
        assert row is not None and row.status == "routed" and row.accepted_at is None
    act(client, case.id, "accept", staff)
    act(client, case.id, "start", staff)
    act(client, case.id, "resolve", staff, note="已清运")
    act(client, case.id, "rework", supervisor, note="没扫干净")
    act(client, case.id, "resolve", staff, note="已清扫")
    act(client, case.id, "close", supervisor, closure="fixed", note="结案")

    figures = stats(client, admin, office=OFFICE)
    assert figures["cases"] == 2
    assert (figures["routed"], figures["accepted"], figures["resolved"]) == (2, 1, 1)
    assert (figures["closed"], figures["closed_fixed"], figures["rework"]) == (1, 1, 1)
    assert figures["due_to_close"] == 1  # the other case is open and not yet due
    assert figures["rates"]["closure_rate"] == 100.0
    assert figures["rates"]["on_time_closure_rate"] == 100.0
    assert figures["rates"]["rework_rate"] == 100.0
    assert figures["rates"]["confirmation_rate"] == 0.0
    assert figures["first_reported_by"]["rider"] == 2
    assert figures["times"]["to_close"]["count"] == 1
    assert figures["times"]["to_accept"]["count"] == 1
    assert figures["times"]["to_close"]["median_hours"] >= 0
    assert figures["backlog"]["by_status"]["routed"] >= 1
    assert figures["backlog"]["oldest_open"]["case_id"] <= other.id
    # a filter that matches nothing counts nothing
    empty = stats(client, admin, office=OFFICE, occupation="driver")
    assert empty["cases"] == 0 and empty["rates"]["closure_rate"] is None


def test_figures_by_office_say_too_few_to_rank(
    client: FlaskClient, sessions: sessionmaker[Session], admin: dict[str, str]
) -> None:
    make_case(sessions)
    figures = stats(client, admin, group_by="office")
    row = next(r for r in figures["rows"] if r["office"] == OFFICE)
    assert row["cases"] >= 1
    assert row["rank"] is None and row["rank_note"] == "too few to rank"
    assert row["office_name"]["zh"]
    assert sum(r["cases"] for r in figures["rows"]) == figures["cases"]
    by_day = stats(client, admin, group_by="day")
    today = utcnow().astimezone().date()
    assert {r["day"] for r in by_day["rows"]} <= {
        (today + timedelta(days=d)).isoformat() for d in (-1, 0, 1)
    }
    assert sum(r["received"] for r in by_day["rows"]) == by_day["received"]


def test_the_csv_says_what_the_json_says(
    client: FlaskClient, sessions: sessionmaker[Session], admin: dict[str, str]
) -> None:
    make_case(sessions)
    figures = stats(client, admin, group_by="category")
    response = client.get(STATS + ".csv", query_string={"group_by": "category"}, headers=admin)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["category"] for r in rows] == [r["category"] for r in figures["rows"]]
    for line, row in zip(rows, figures["rows"], strict=True):
        assert int(line["cases"]) == row["cases"]
        assert int(line["received"]) == row["received"]
        rate = row["rates"]["closure_rate"]
        assert line["rates.closure_rate"] == ("" if rate is None else str(rate))
        assert "times.to_close.median_hours" in line


def test_the_leaderboard_names_reporters_by_display_name_only(
    client: FlaskClient,
    sessions: sessionmaker[Session],
    admin: dict[str, str],
    supervisor: dict[str, str],
    staff: dict[str, str],
) -> None:
    reporter_id, _key = make_reporter(sessions, display_name="闪送李师傅", occupation="courier")
    case = make_case(sessions, reporter_id=reporter_id)
    act(client, case.id, "accept", staff)
    act(client, case.id, "resolve", staff, note="已清运")
    act(client, case.id, "close", supervisor, closure="fixed", note="结案")
    board = stats(client, admin)["leaderboard"]
    top = next(row for row in board if row["display_name"] == "闪送李师傅")
    assert top == {
        "place": top["place"],
        "display_name": "闪送李师傅",
        "occupation": "courier",
        "points": 10,
        "valid_reports": 1,
    }
    assert [row["place"] for row in board] == list(range(1, len(board) + 1))
    points = [row["points"] for row in board]
    assert points == sorted(points, reverse=True)
    # a case closed as invalid is no valid report, and takes the points back
    other = make_case(sessions, reporter_id=reporter_id)
    act(client, other.id, "close", supervisor, closure="invalid", note="不是问题")
    again = next(
        r for r in stats(client, admin)["leaderboard"] if r["display_name"] == "闪送李师傅"
    )
    assert again["valid_reports"] == 1 and again["points"] == 10
    # another street's figures do not carry this street's reporters
    elsewhere = stats(client, admin, office=OTHER_STREET)["leaderboard"]
    assert all(row["display_name"] != "闪送李师傅" for row in elsewhere)


def test_public_figures_per_community_without_people(
    client: FlaskClient,
    sessions: sessionmaker[Session],
    supervisor: dict[str, str],
    staff: dict[str, str],
) -> None:
    case = make_case(sessions)
    act(client, case.id, "accept", staff)
    act(client, case.id, "resolve", staff, note="已清运")
    act(client, case.id, "close", supervisor, closure="fixed", note="结案")
    response = client.get("/api/v1/public/stats")  # no key
    assert response.status_code == 200
    body = response.get_json()
    codes = [row["office"] for row in body["communities"]]
    assert OFFICE in codes and STREET not in codes  # communities only
    mine = next(row for row in body["communities"] if row["office"] == OFFICE)
    assert mine["cases"] >= 1 and mine["closed"] >= 1 and mine["closed_fixed"] >= 1
    assert mine["ranked"] is False  # fewer than 20 closed
    assert body["window"]["trend"] == "day"
    assert sum(row["cases"] for row in body["trend"]) == sum(
        r["cases"] for r in body["communities"]
    )
    assert any(row["category"] == case.category_code for row in body["categories"])

    def keys_of(value: Any) -> set[str]:
        if isinstance(value, dict):
            return set(value) | {k for v in value.values() for k in keys_of(v)}
        if isinstance(value, list):
            return {k for v in value for k in keys_of(v)}
        return set()

    assert not keys_of(body) & {
        "display_name",
        "reporter",
        "reporter_id",
        "text",
        "leaderboard",
        "occupation",
        "photos",
    }
    street = client.get("/api/v1/public/stats", query_string={"office": STREET}).get_json()
    assert {row["office"] for row in street["communities"]} < set(codes)
    assert all(code.startswith(STREET) for code in (r["office"] for r in street["communities"]))
    for params, field in (
        ({"office": "NOPE"}, "office"),
        ({"occupation": "rider"}, "occupation"),
        ({"from": "2026-02-30"}, "from"),
    ):
        bad = client.get("/api/v1/public/stats", query_string=params)
        assert bad.status_code == 422 and field in bad.get_json()["error"]["fields"]
