"""Whatever a client sends, the answer is a clear 4xx naming what is wrong, never a 500, and
nothing is written: ids no row can have, digits ``int()`` reads but no client means, characters
no text may hold, bodies nested or sized beyond any request, and methods a URL does not take."""

from __future__ import annotations

import io
import json

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.entities import Report, Reporter
from tests.factories import make_key
from tests.helpers import sample_point, tiny_png

POINT = sample_point()
BEYOND_INTEGER = "2147483648"  # one past PostgreSQL's integer column


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def reports_in(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Report)) or 0


@pytest.mark.parametrize("row_id", [BEYOND_INTEGER, "99999999999999999999", "1²", "١", "５", "1_0"])
@pytest.mark.parametrize(
    "method, path, role",
    [
        ("GET", "/api/v1/reports/{}", None),
        ("GET", "/report/{}", None),
        ("POST", "/api/v1/reports/{}/confirm", "reporter"),
        ("POST", "/api/v1/cases/{}/reject", "office"),
        ("POST", "/api/v1/cases/{}/split", "office"),
        ("GET", "/api/v1/cases/{}", "office"),
        ("GET", "/api/v1/admin/rules/versions/{}", "admin"),
    ],
)
def test_ids_no_row_can_have_are_404(
    client: FlaskClient,
    sessions: sessionmaker[Session],
    method: str,
    path: str,
    role: str | None,
    row_id: str,
) -> None:
    headers = (
        bearer(make_key(sessions, role, "PD-CJ-01" if role == "office" else None)) if role else {}
    )
    response = client.open(path.format(row_id), method=method, headers=headers, json={})
    assert response.status_code == 404, response.data
    assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("raw", ["3_1.15", "３1.15", "٣1.15", "31.15²", "nan", "1e400x"])
def test_numbers_in_other_digits_are_refused_naming_the_field(
    client: FlaskClient, auth: dict, db: Session, raw: str
) -> None:
    as_json = client.post(
        "/api/v1/reports",
        json={"text": "垃圾桶满了", "lat": raw, "lon": POINT["lon"]},
        headers=auth,
    )
    as_form = client.post(
        "/api/v1/reports",
        data={"text": "垃圾桶满了", "lat": raw, "lon": str(POINT["lon"])},
        headers=auth,
    )
    for response in (as_json, as_form):
        assert response.status_code == 422, response.data
        assert list(response.get_json()["error"]["fields"]) == ["lat"]
    assert reports_in(db) == 0


def test_plain_ascii_numbers_still_pass(client: FlaskClient, auth: dict, db: Session) -> None:
    response = client.post(
        "/api/v1/reports",
        data={"text": "垃圾桶满了", "lat": f" {POINT['lat']}", "lon": f"+{POINT['lon']}"},
        headers=auth,
    )
    assert response.status_code == 202, response.data
    assert reports_in(db) == 1


@pytest.mark.parametrize("query", ["page_size=５", "page_size=1²", "page_size=1_0"])
def test_paging_in_other_digits_is_refused(
    client: FlaskClient, sessions: sessionmaker[Session], query: str
) -> None:
    staff = bearer(make_key(sessions, "office", "PD-CJ-01"))
    response = client.get(f"/api/v1/offices/PD-CJ-01/queue?{query}", headers=staff)
    assert response.status_code == 422, response.data
    assert list(response.get_json()["error"]["fields"]) == ["page_size"]


@pytest.mark.parametrize(
    "char, named",
    [("\x01", "U+0001"), ("\x0b", "U+000B"), ("\x1f", "U+001F"), ("\ufffe", "U+FFFE")],
)
def test_control_characters_are_refused_through_every_door(
    client: FlaskClient, auth: dict, reporter_key: str, db: Session, char: str, named: str
) -> None:
    text = f"垃圾桶{char}满了"
    answers = [
        client.post(
            "/api/v1/reports",
            json={"text": text, "lat": POINT["lat"], "lon": POINT["lon"]},
            headers=auth,
        ),
        client.post(
            "/api/v1/reports",
            data={"text": text, "lat": str(POINT["lat"]), "lon": str(POINT["lon"])},
            headers=auth,
        ),
    ]
    for response in answers:
        assert response.status_code == 422, response.data
        fields = response.get_json()["error"]["fields"]
        assert list(fields) == ["text"] and named in fields["text"][0]
    open311 = client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": reporter_key,
            "service_code": "bin_overflow",
            "lat": str(POINT["lat"]),
            "long": str(POINT["lon"]),
            "description": text,
        },
    )
    assert 400 <= open311.status_code < 500 and "description" in open311.get_data(as_text=True)
    assert reports_in(db) == 0


def test_tab_and_line_breaks_are_text(client: FlaskClient, auth: dict, db: Session) -> None:
    body = {"text": "垃圾桶满了\t溢出\r\n门口", "lat": POINT["lat"], "lon": POINT["lon"]}
    assert client.post("/api/v1/reports", json=body, headers=auth).status_code == 202
    assert reports_in(db) == 1


def test_a_lone_surrogate_is_refused(client: FlaskClient, auth: dict, db: Session) -> None:
    raw = json.dumps({"text": "\ud800 垃圾桶满了", "lat": POINT["lat"], "lon": POINT["lon"]})
    response = client.post(
        "/api/v1/reports", data=raw, content_type="application/json", headers=auth
    )
    assert response.status_code == 422
    assert "surrogate" in response.get_json()["error"]["fields"]["text"][0]
    assert reports_in(db) == 0


def test_a_control_character_in_a_key_name_is_named_printably(
    client: FlaskClient, auth: dict
) -> None:
    body = {"text": "路灯不亮", "lat": POINT["lat"], "lon": POINT["lon"], "a\x07b": "x"}
    response = client.post("/api/v1/reports", json=body, headers=auth)
    assert response.status_code == 422
    assert "a\\u0007b" in response.get_json()["error"]["fields"]


@pytest.mark.parametrize("depth", [100_000, 33])
def test_json_nested_too_deep_is_400_even_anonymously(
    client: FlaskClient, db: Session, depth: int
) -> None:
    before = db.scalar(select(func.count()).select_from(Reporter))
    deep = "[" * depth + "]" * depth
    response = client.post("/api/v1/reporters", data=deep, content_type="application/json")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "bad_request" and "32 levels" in error["fields"]["_body"][0]
    assert db.scalar(select(func.count()).select_from(Reporter)) == before


def test_invalid_json_says_why(client: FlaskClient, auth: dict) -> None:
    response = client.post(
        "/api/v1/reports", data=b'{"text": "x",', content_type="application/json", headers=auth
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["fields"]["_body"][0] != "Not valid JSON."


def test_a_huge_json_body_is_413(client: FlaskClient, auth: dict, db: Session) -> None:
    body = json.dumps({"text": "满" * (2 * 1024 * 1024), "lat": 31.1, "lon": 121.7})
    response = client.post(
        "/api/v1/reports", data=body, content_type="application/json", headers=auth
    )
    assert response.status_code == 413
    error = response.get_json()["error"]
    assert error["code"] == "request_entity_too_large" and "_body" in error["fields"]
    assert reports_in(db) == 0


def test_a_multipart_with_a_hundred_photos_is_413(
    client: FlaskClient, auth: dict, db: Session
) -> None:
    photos = [(io.BytesIO(tiny_png(seed)), f"p{seed}.png") for seed in range(100)]
    response = client.post(
        "/api/v1/reports",
        data={
            "text": "路灯不亮",
            "lat": str(POINT["lat"]),
            "lon": str(POINT["lon"]),
            "photos": photos,
        },
        headers=auth,
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert response.get_json()["error"]["fields"]["_body"]
    assert reports_in(db) == 0


def test_405_names_the_allowed_methods(client: FlaskClient) -> None:
    api = client.delete("/api/v1/reports")
    assert api.status_code == 405
    assert set(api.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    assert api.get_json()["error"]["code"] == "method_not_allowed"
    open311 = client.delete("/open311/v2/requests.xml")
    assert open311.status_code == 405
    assert {"GET", "POST"} <= set(open311.headers["Allow"].split(", "))


def test_a_control_character_in_a_name_to_create_names_nothing(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    admin = bearer(make_key(sessions, "admin"))
    body = {"timezone": "Asia/Shanghai", "weekly_hours": {}}
    response = client.put("/api/v1/admin/calendars/%1Bhq", json=body, headers=admin)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
