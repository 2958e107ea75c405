"""A NUL character (U+0000) in any text is refused up front, naming the field, whichever door it
came through: PostgreSQL cannot store it, and no person types it."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.entities import Report, Reporter
from tests.factories import make_key
from tests.helpers import sample_point

OPEN311 = "/open311/v2"


def test_report_text_with_nul_is_422_naming_the_field(
    client: FlaskClient, auth: dict, db: Session
) -> None:
    point = sample_point()
    body = {"text": "井盖\u0000没了", "lat": point["lat"], "lon": point["lon"]}
    response = client.post("/api/v1/reports", json=body, headers=auth)
    assert response.status_code == 422
    fields = response.get_json()["error"]["fields"]
    assert list(fields) == ["text"] and "NUL" in fields["text"][0]
    assert db.scalar(select(func.count()).select_from(Report)) == 0


def test_multipart_field_with_nul_is_refused(client: FlaskClient, auth: dict, db: Session) -> None:
    response = client.post(
        "/api/v1/reports",
        data={"text": "路灯不亮", "address": "春江路\u0000口"},
        headers=auth,
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["address"]
    assert db.scalar(select(func.count()).select_from(Report)) == 0


def test_registration_with_nul_writes_no_reporter(client: FlaskClient, db: Session) -> None:
    before = db.scalar(select(func.count()).select_from(Reporter))
    response = client.post("/api/v1/reporters", json={"display_name": "王\u0000师傅"})
    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["display_name"]
    assert db.scalar(select(func.count()).select_from(Reporter)) == before


def test_nested_json_names_the_dotted_field(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    admin = {"Authorization": f"Bearer {make_key(sessions, role='admin')}"}
    response = client.put(
        "/api/v1/admin/offices/PD/categories",
        json={"categories": ["noise", "bad\u0000code"]},
        headers=admin,
    )
    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["categories.1"]


def test_nul_in_a_path_names_nothing(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    admin = {"Authorization": f"Bearer {make_key(sessions, role='admin')}"}
    response = client.put(
        "/api/v1/admin/offices/P%00D/categories", json={"categories": []}, headers=admin
    )
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_open311_answers_in_its_own_shape(
    client: FlaskClient, reporter_key: str, db: Session
) -> None:
    point = sample_point()
    response = client.post(
        f"{OPEN311}/requests.json",
        data={
            "api_key": reporter_key,
            "service_code": "street_light",
            "lat": str(point["lat"]),
            "long": str(point["lon"]),
            "description": "灯\u0000不亮",
        },
    )
    assert response.status_code == 400
    (error,) = response.get_json()
    assert error["code"] == 400 and "description" in error["description"]
    assert db.scalar(select(func.count()).select_from(Report)) == 0

    token = client.get(f"{OPEN311}/tokens/abc%00def.json")
    assert token.status_code == 404 and token.get_json()[0]["code"] == 404
    listing = client.get(f"{OPEN311}/requests.json?service_code=noise%00")
    assert listing.status_code == 400 and "service_code" in listing.get_json()[0]["description"]
