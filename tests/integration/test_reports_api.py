from __future__ import annotations

import io
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.entities import Report
from tests.factories import make_key
from tests.helpers import sample_point, tiny_png


def report_body(**overrides: Any) -> dict[str, Any]:
    point = sample_point()
    body = {"text": "垃圾桶满了 溢出来好多", "lat": point["lat"], "lon": point["lon"]}
    body.update(overrides)
    return body


def count_reports(db: Session) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Report)) or 0


def assert_error(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert set(error) <= {"code", "message", "fields"}
    assert error["code"] and error["message"]
    if field is not None:
        assert field in error["fields"], error
    return error


def test_post_commits_then_answers_202(client: FlaskClient, auth: dict, db: Session) -> None:
    response = client.post("/api/v1/reports", json=report_body(address="春江路8号"), headers=auth)
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "received"
    assert body["status_url"].endswith(f"/api/v1/reports/{body['id']}")
    assert response.headers["Location"] == body["status_url"]
    stored = db.get(Report, body["id"])
    assert stored is not None and stored.address == "春江路8号" and stored.channel == "api"
    assert stored.language == "zh-Hans"


def test_get_shows_a_received_report(client: FlaskClient, auth: dict) -> None:
    created = client.post(
        "/api/v1/reports", json=report_body(lang="en", text="bin overflowing"), headers=auth
    )
    report = client.get(f"/api/v1/reports/{created.get_json()['id']}").get_json()
    assert report["status"] == "received"
    assert report["lang"] == "en"
    assert report["category"] is None and report["office"] is None and report["events"] == []


def test_idempotency_key_returns_the_first_report(
    client: FlaskClient, auth: dict, db: Session
) -> None:
    headers = {**auth, "Idempotency-Key": "tap-7f3a"}
    first = client.post("/api/v1/reports", json=report_body(), headers=headers)
    again = client.post("/api/v1/reports", json=report_body(), headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.get_json()["id"] == again.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count_reports(db) == 1


def test_idempotency_key_with_another_body_is_refused(
    client: FlaskClient, auth: dict, db: Session
) -> None:
    headers = {**auth, "Idempotency-Key": "tap-1"}
    client.post("/api/v1/reports", json=report_body(), headers=headers)
    response = client.post("/api/v1/reports", json=report_body(text="路灯不亮"), headers=headers)
    error = assert_error(response, 422, "Idempotency-Key")
    assert error["code"] == "idempotency_key_reused"
    assert count_reports(db) == 1


def test_idempotency_keys_are_per_reporter(
    client: FlaskClient, auth: dict, sessions, db: Session
) -> None:
    other = {"Authorization": f"Bearer {make_key(sessions)}", "Idempotency-Key": "same"}
    a = client.post(
        "/api/v1/reports", json=report_body(), headers={**auth, "Idempotency-Key": "same"}
    )
    b = client.post("/api/v1/reports", json=report_body(), headers=other)
    assert a.get_json()["id"] != b.get_json()["id"]
    assert count_reports(db) == 2


def test_without_a_key_no_report_is_taken(client: FlaskClient, db: Session) -> None:
    response = client.post("/api/v1/reports", json=report_body())
    assert_error(response, 401, "Authorization")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_error(
        client.post(
            "/api/v1/reports", json=report_body(), headers={"Authorization": "Bearer cr_nope"}
        ),
        401,
        "Authorization",
    )
    assert count_reports(db) == 0


def test_office_key_cannot_file_reports(client: FlaskClient, sessions) -> None:
    key = make_key(sessions, role="office", office_code=sample_point()["office"])
    response = client.post(
        "/api/v1/reports", json=report_body(), headers={"Authorization": f"Bearer {key}"}
    )
    assert_error(response, 403)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"lat": None}, "lat"),
        ({"lat": 91}, "lat"),
        ({"lon": -181}, "lon"),
        ({"lat": "north"}, "lat"),
        ({"lat": 0, "lon": 0}, "lat"),
        ({"text": "x" * 4001}, "text"),
        ({"category": "no_such_code"}, "category"),
        ({"lang": "fr"}, "lang"),
        ({"address": "a" * 501}, "address"),
        ({"colour": "red"}, "colour"),
        ({"text": "   "}, "text"),
    ],
)
def test_bad_fields_are_named(
    client: FlaskClient, auth: dict, db: Session, overrides: dict, field: str
) -> None:
    body = report_body(**overrides)
    body = {k: v for k, v in body.items() if v is not None}
    response = client.post("/api/v1/reports", json=body, headers=auth)
    error = assert_error(response, 422, field)
    assert error["code"] == "validation_failed"
    assert count_reports(db) == 0


def test_missing_location_names_both_fields(client: FlaskClient, auth: dict) -> None:
    error = assert_error(
        client.post("/api/v1/reports", json={"text": "井盖没了"}, headers=auth), 422
    )
    assert {"lat", "lon"} <= set(error["fields"])


def test_body_must_be_an_object(client: FlaskClient, auth: dict) -> None:
    assert_error(client.post("/api/v1/reports", json=[1, 2], headers=auth), 400, "_body")
    assert_error(
        client.post(
            "/api/v1/reports",
            data="{not json",
            headers={**auth, "Content-Type": "application/json"},
        ),
        400,
    )


def test_unsupported_content_type(client: FlaskClient, auth: dict) -> None:
    response = client.post(
        "/api/v1/reports", data="hello", headers={**auth, "Content-Type": "text/plain"}
    )
    assert_error(response, 415, "Content-Type")


def test_bad_idempotency_key(client: FlaskClient, auth: dict, db: Session) -> None:
    response = client.post(
        "/api/v1/reports", json=report_body(), headers={**auth, "Idempotency-Key": "k" * 201}
    )
    assert_error(response, 400, "Idempotency-Key")
    assert count_reports(db) == 0


def multipart(photos: list[bytes], **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {k: str(v) for k, v in report_body(**fields).items()}
    data["photos"] = [(io.BytesIO(p), f"p{i}.png") for i, p in enumerate(photos)]
    return data


def test_multipart_with_photos(client: FlaskClient, auth: dict, db: Session) -> None:
    response = client.post(
        "/api/v1/reports",
        data=multipart([tiny_png(1), tiny_png(2)]),
        headers=auth,
        content_type="multipart/form-data",
    )
    assert response.status_code == 202, response.get_json()
    report = client.get(f"/api/v1/reports/{response.get_json()['id']}").get_json()
    assert [p["content_type"] for p in report["photos"]] == ["image/png", "image/png"]
    photo = client.get(report["photos"][0]["url"].replace("http://localhost", ""))
    assert photo.status_code == 200 and photo.data == tiny_png(1)


def test_photo_only_report_is_accepted(client: FlaskClient, auth: dict) -> None:
    response = client.post(
        "/api/v1/reports",
        data=multipart([tiny_png()], text=""),
        headers=auth,
        content_type="multipart/form-data",
    )
    assert response.status_code == 202


def test_too_many_photos(client: FlaskClient, auth: dict, db: Session) -> None:
    response = client.post(
        "/api/v1/reports",
        data=multipart([tiny_png(i) for i in range(6)]),
        headers=auth,
        content_type="multipart/form-data",
    )
    assert_error(response, 422, "photos")
    assert count_reports(db) == 0


def test_not_an_image(client: FlaskClient, auth: dict, db: Session) -> None:
    response = client.post(
        "/api/v1/reports",
        data=multipart([b"%PDF-1.4 not a photo"]),
        headers=auth,
        content_type="multipart/form-data",
    )
    assert_error(response, 422, "photos.0")
    assert count_reports(db) == 0


def test_multipart_bad_field_is_named(client: FlaskClient, auth: dict) -> None:
    response = client.post(
        "/api/v1/reports",
        data=multipart([], lat="abc"),
        headers=auth,
        content_type="multipart/form-data",
    )
    assert_error(response, 422, "lat")


def test_unknown_report_is_404_in_the_error_shape(client: FlaskClient) -> None:
    assert_error(client.get("/api/v1/reports/999999"), 404)
    assert_error(client.get("/api/v1/nothing-here"), 404)
    assert_error(client.delete("/api/v1/reports/1"), 405)


def test_offices_are_public(client: FlaskClient) -> None:
    offices = client.get("/api/v1/offices").get_json()
    by_code = {o["code"]: o for o in offices}
    kinds = [o["kind"] for o in offices]
    assert kinds.count("district") == 1
    assert kinds.count("street") >= 4
    assert kinds.count("community") >= 12
    community = by_code[sample_point()["office"]]
    assert community["jurisdiction"]["type"] in {"Polygon", "MultiPolygon"}
    assert by_code[community["parent"]]["kind"] == "street"
    departments = [o for o in offices if o["kind"] == "department"]
    assert departments and all(d["jurisdiction"] is None for d in departments)
    assert set(community) >= {"code", "name", "kind", "parent", "jurisdiction"}


def test_categories_are_the_taxonomy(client: FlaskClient) -> None:
    categories = client.get("/api/v1/categories").get_json()
    codes = [c["code"] for c in categories]
    assert codes[0] == "manhole_cover" and "access_restriction" in codes and len(codes) == 19
    manhole = categories[0]
    assert manhole["name_zh"] == "井盖缺失或破损" and manhole["time_limit"] == "6 hours"
    assert manhole["urgent"] is True and "01001" in manhole["standard_codes"]
    light = next(c for c in categories if c["code"] == "street_light")
    assert light["time_limit"] and "CityRelay default" in light["time_limit_source"]


def test_address_alone_is_a_location(client: FlaskClient, auth: dict, db: Session) -> None:
    response = client.post(
        "/api/v1/reports", json={"text": "路灯不亮", "address": "合庆骑手之家对面"}, headers=auth
    )
    assert response.status_code == 202
    path = f"/api/v1/reports/{response.get_json()['id']}"
    report = client.get(path, headers=auth).get_json()
    assert report["lat"] is None and report["address"] == "合庆骑手之家对面"
    # the place the reporter typed is theirs and the office's, not the public's
    assert client.get(path).get_json()["address"] == ""


def test_half_a_coordinate_is_refused(client: FlaskClient, auth: dict) -> None:
    point = sample_point()
    error = assert_error(
        client.post("/api/v1/reports", json={"text": "x", "lat": point["lat"]}, headers=auth), 422
    )
    assert list(error["fields"]) == ["lon"]


def test_self_registration_gives_a_working_key(client: FlaskClient, db: Session) -> None:
    created = client.post(
        "/api/v1/reporters", json={"display_name": "李师傅", "occupation": "courier"}
    )
    assert created.status_code == 201
    body = created.get_json()
    assert body["display_name"] == "李师傅" and body["key"].startswith("cr_")
    response = client.post(
        "/api/v1/reports", json=report_body(), headers={"Authorization": f"Bearer {body['key']}"}
    )
    assert response.status_code == 202
    assert db.get(Report, response.get_json()["id"]).reporter_id == body["id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"occupation": "pilot"}, "occupation"),
        ({"display_name": "x" * 101}, "display_name"),
        ({"age": 3}, "age"),
    ],
)
def test_self_registration_bad_fields(client: FlaskClient, body: dict, field: str) -> None:
    assert_error(client.post("/api/v1/reporters", json=body), 422, field)
