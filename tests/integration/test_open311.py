"""GeoReport v2 conformance, endpoint by endpoint, in JSON and XML."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from xml.etree import ElementTree as ET

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from models.base import utcnow
from models.entities import Report
from tests.factories import make_report, process
from tests.helpers import (
    OPEN311,
    from_xml,
    loosely,
    open311_errors,
    open311_get_both,
    open311_post,
    sample_point,
    tiny_png,
)


def test_discovery(client: FlaskClient) -> None:
    document, root = open311_get_both(client, "discovery")
    assert root.tag == "discovery"
    assert len(document["endpoints"]) >= 2
    assert {e["type"] for e in document["endpoints"]} == {"production", "test"}
    for endpoint in document["endpoints"]:
        assert endpoint["url"].endswith("/open311/v2/")
        assert set(endpoint["formats"]) == {"application/json", "text/xml"}
    assert loosely(document) == from_xml(root)


def test_services_same_in_json_and_xml(client: FlaskClient) -> None:
    services, root = open311_get_both(client, "services")
    assert root.tag == "services" and len(services) == 19
    manhole = services[0]
    assert manhole["service_code"] == "manhole_cover" and manhole["metadata"] is True
    assert manhole["type"] == "realtime" and manhole["group"] == "市政公用设施"
    assert "井盖" in manhole["keywords"] and "manhole" in manhole["keywords"]
    assert next(s for s in services if s["service_code"] == "other")["metadata"] is False
    assert loosely(services) == from_xml(root)


def test_services_in_english(client: FlaskClient) -> None:
    services = client.get(f"{OPEN311}/services.json", headers={"Accept-Language": "en"}).get_json()
    assert services[0]["service_name"] == "Missing or broken manhole cover"


def test_service_definition(client: FlaskClient) -> None:
    definition, root = open311_get_both(client, "services/manhole_cover")
    assert root.tag == "service_definition"
    (attribute,) = definition["attributes"]
    assert attribute["code"] == "cover_state" and attribute["required"] is True
    assert [v["key"] for v in attribute["values"]] == ["missing", "broken", "sunk", "noisy"]
    assert loosely(definition) == from_xml(root)
    errors = open311_errors(client.get(f"{OPEN311}/services/no_such.json"), 404)
    assert errors[0]["code"] == 404


@pytest.mark.parametrize("path", ["requests.0", "services.html", "requests/1.yaml"])
def test_unknown_format_is_404(client: FlaskClient, path: str) -> None:
    open311_errors(client.get(f"{OPEN311}/{path}"), 404)


def test_unknown_jurisdiction_is_404(client: FlaskClient) -> None:
    open311_errors(client.get(f"{OPEN311}/services.json?jurisdiction_id=elsewhere.gov"), 404)
    assert client.get(f"{OPEN311}/services.json?jurisdiction_id=cityrelay").status_code == 200


def test_post_then_read_it_back(client: FlaskClient, reporter_key: str) -> None:
    response = open311_post(client, reporter_key, email="rider@example.com", account_id="A-77")
    assert response.status_code == 201
    (answer,) = response.get_json()
    assert isinstance(answer["service_request_id"], str) and answer["account_id"] == "A-77"
    request_id = answer["service_request_id"]

    token = client.get(f"{OPEN311}/tokens/{answer['token']}.json").get_json()
    assert token == [{"service_request_id": request_id, "token": answer["token"]}]

    (one,), root = open311_get_both(client, f"requests/{request_id}")
    assert root.tag == "service_requests" and root[0].tag == "request"
    assert one["service_request_id"] == request_id and one["status"] == "open"
    assert one["service_code"] == "manhole_cover" and one["description"] == "井盖没了\n很危险"
    assert isinstance(one["lat"], float) and isinstance(one["long"], float)
    assert one["requested_datetime"].endswith("+08:00")
    assert loosely([one]) == from_xml(root)

    report = client.get(f"/api/v1/reports/{request_id}").get_json()
    assert report["channel"] == "open311" and report["status"] == "received"


def test_post_reads_api_key_and_jurisdiction_from_the_query(
    client: FlaskClient, reporter_key: str
) -> None:
    point = sample_point()
    response = client.post(
        f"{OPEN311}/requests.xml?api_key={reporter_key}&jurisdiction_id=cityrelay",
        data={"service_code": "bin_overflow", "lat": point["lat"], "long": point["lon"]},
    )
    assert response.status_code == 201
    root = ET.fromstring(response.data)
    assert root.tag == "service_requests" and root.find("request/service_request_id").text.isdigit()


def test_routed_request_carries_agency_due_time_and_notes(
    client: FlaskClient, reporter_key: str, sessions
) -> None:
    request_id = open311_post(client, reporter_key).get_json()[0]["service_request_id"]
    process(sessions, int(request_id))
    (one,), root = open311_get_both(
        client, f"requests/{request_id}", query_string={"extensions": "true"}
    )
    assert one["agency_responsible"] == "区市政设施管理所"
    assert one["expected_datetime"] and one["updated_datetime"]
    assert one["status_notes"] == "已派给区市政设施管理所。"
    english = client.get(f"{OPEN311}/requests/{request_id}.json", headers={"Accept-Language": "en"})
    assert (
        english.get_json()[0]["status_notes"] == "Routed to District Municipal Facilities Office."
    )
    assert [n["type"] for n in one["notes"]] == ["received", "classified", "routed"]
    assert one["attributes"] == [{"code": "cover_state", "value": "missing"}]
    assert one["extended_attributes"]["office_code"] == "PD-SZ"
    assert loosely([one]) == from_xml(root)


def test_media_file_and_urls(client: FlaskClient, reporter_key: str) -> None:
    point = sample_point()
    response = client.post(
        f"{OPEN311}/requests.json",
        data={
            "api_key": reporter_key,
            "service_code": "bin_overflow",
            "lat": str(point["lat"]),
            "long": str(point["lon"]),
            "media": (io.BytesIO(tiny_png(9)), "bin.png"),
            "media_url": ["https://img.example.org/a.jpg", "https://img.example.org/b.jpg"],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    request_id = response.get_json()[0]["service_request_id"]
    (one,) = client.get(f"{OPEN311}/requests/{request_id}.json?extensions=true").get_json()
    assert one["media_url"].endswith(".png")
    assert one["extended_attributes"]["media_urls"][1:] == [
        "https://img.example.org/a.jpg",
        "https://img.example.org/b.jpg",
    ]


@pytest.mark.parametrize(
    ("form", "status", "mentions"),
    [
        ({"service_code": None}, 400, "service_code"),
        ({"service_code": "no_such"}, 404, "service_code"),
        ({"lat": None, "long": None}, 400, "location"),
        ({"long": None}, 400, "lat and long"),
        ({"lat": "north"}, 400, "lat"),
        ({"attribute[cover_state]": None}, 400, "attribute[cover_state]"),
        ({"attribute[cover_state]": "stolen"}, 400, "attribute[cover_state]"),
        ({"description": "x" * 4001}, 400, "description"),
        ({"media_url": "ftp://files/x.jpg"}, 400, "media_url"),
        ({"jurisdiction_id": "elsewhere"}, 404, "jurisdiction"),
    ],
)
def test_post_errors(
    client: FlaskClient, reporter_key: str, db: Session, form: dict, status: int, mentions: str
) -> None:
    errors = open311_errors(open311_post(client, reporter_key, **form), status)
    assert any(mentions in e["description"] for e in errors), errors
    assert db.query(Report).count() == 0


def test_post_without_or_with_a_bad_key_is_403(client: FlaskClient, db: Session) -> None:
    open311_errors(open311_post(client, None), 403)
    open311_errors(open311_post(client, "cr_unknown"), 403)
    errors = open311_errors(open311_post(client, None, fmt="xml"), 403)
    assert errors[0]["code"] == "403"
    assert db.query(Report).count() == 0


def test_address_string_is_a_location(client: FlaskClient, reporter_key: str) -> None:
    response = open311_post(
        client, reporter_key, lat=None, long=None, address_string="合庆骑手之家门口"
    )
    assert response.status_code == 201
    request_id = response.get_json()[0]["service_request_id"]
    (one,) = client.get(f"{OPEN311}/requests/{request_id}.json").get_json()
    assert one["address"] == "合庆骑手之家门口" and one["lat"] is None


def test_list_filters(client: FlaskClient, reporter_key: str, sessions) -> None:
    manhole = open311_post(client, reporter_key).get_json()[0]["service_request_id"]
    bins = open311_post(
        client, reporter_key, service_code="bin_overflow", **{"attribute[cover_state]": None}
    )
    bin_id = bins.get_json()[0]["service_request_id"]
    old = make_report(sessions, received_at=utcnow() - timedelta(days=120))

    def ids(**query: str) -> list[str]:
        response = client.get(f"{OPEN311}/requests.json", query_string=query)
        assert response.status_code == 200
        return [r["service_request_id"] for r in response.get_json()]

    assert ids() == [bin_id, manhole]  # newest first; the 120-day-old one is outside 90 days
    assert ids(service_code="manhole_cover") == [manhole]
    assert ids(service_code="bin_overflow,manhole_cover") == [bin_id, manhole]
    assert ids(status="open") == [bin_id, manhole] and ids(status="closed") == []
    assert ids(service_request_id=f"{old},{manhole}") == [manhole, str(old)]
    long_ago = (utcnow() - timedelta(days=200)).isoformat()
    assert str(old) in ids(start_date=long_ago)
    assert ids(end_date=long_ago) == []
    assert ids(page_size="1") == [bin_id] and ids(page_size="1", page="2") == [manhole]
    open311_errors(client.get(f"{OPEN311}/requests.json?page_size=1001"), 400)
    open311_errors(client.get(f"{OPEN311}/requests.json?start_date=yesterday"), 400)
    open311_errors(client.get(f"{OPEN311}/requests.json?service_code=nope"), 404)
    open311_errors(client.get(f"{OPEN311}/requests/999999.json"), 404)
    # past any id a row can have: still Open311's 404 (or an empty list), never a database error
    open311_errors(client.get(f"{OPEN311}/requests/99999999999999999999.json"), 404)
    assert ids(service_request_id="99999999999999999999") == []
    open311_errors(client.get(f"{OPEN311}/tokens/nope.xml"), 404)


def test_chinese_round_trips(client: FlaskClient, reporter_key: str) -> None:
    text = "繁體：井蓋沒了；简体：井盖没了 🚧"
    request_id = open311_post(client, reporter_key, description=text).get_json()[0][
        "service_request_id"
    ]
    as_json = client.get(f"{OPEN311}/requests/{request_id}.json")
    assert json.loads(as_json.data.decode("utf-8"))[0]["description"] == text
    as_xml = ET.fromstring(client.get(f"{OPEN311}/requests/{request_id}.xml").data)
    assert as_xml.find("request/description").text == text
