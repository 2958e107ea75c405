"""Open311 answers every input in its own shape, never 500, always well-formed and labelled UTF-8:
numbers only in ASCII, a body that is not UTF-8 refused by name, an unexpected fault in the
requested format, stored control characters kept out of the XML, no empty ``media_url``,
FixMyStreet's own attributes kept, and only what the public may see, at about 100 m."""

from __future__ import annotations

import json
import logging
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from intake import open311
from models.entities import Report
from models.session import unit_of_work
from services import casework
from services.accounts import Caller, find_key
from tests.factories import make_case, make_key, make_report, process
from tests.helpers import OPEN311, from_xml, open311_errors, open311_post, sample_point

JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "text/xml; charset=utf-8"


def _descriptions(response: Any, status: int) -> str:
    return " | ".join(str(e["description"]) for e in open311_errors(response, status))


# ---------------------------------------------------------------- 1. numbers in ASCII only


def test_page_page_size_and_ids_take_ascii_digits_only(client: FlaskClient) -> None:
    refused = [
        ("page", "²"),
        ("page", "١"),
        ("page", "５"),
        ("page", "1_0"),
        ("page", " 2"),
        ("page", "9" * 5000),
        ("page_size", "²"),
        ("page_size", "٣"),
        ("page_size", "１0"),
        ("page_size", "1_0"),
        ("service_request_id", "²"),
        ("service_request_id", "１"),
        ("service_request_id", "1,١"),
        ("service_request_id", "3_1"),
        ("service_request_id", "1,abc"),
    ]
    for name, value in refused:
        for fmt in ("json", "xml"):
            response = client.get(f"{OPEN311}/requests.{fmt}", query_string={name: value})
            assert name in _descriptions(response, 400), (name, value, fmt)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_ids_past_the_integer_column_name_no_request(
    client: FlaskClient, sessions: sessionmaker[Session], fmt: str
) -> None:
    report_id = make_report(sessions)
    for path_id in ("2147483648", "²", "١٢", "1_0", "9" * 5000):
        open311_errors(client.get(f"{OPEN311}/requests/{path_id}.{fmt}"), 404)
    listed = client.get(
        f"{OPEN311}/requests.json",
        query_string={"service_request_id": f"2147483648,{report_id},{'9' * 5000}"},
    )
    assert listed.status_code == 200
    assert [r["service_request_id"] for r in listed.get_json()] == [str(report_id)]


def test_coordinates_and_number_answers_take_ascii_only(
    client: FlaskClient, reporter_key: str, db: Session
) -> None:
    flood = {"service_code": "waterlogging", "attribute[cover_state]": None}
    refused = [
        ({"lat": "3_1.15"}, "lat"),
        ({"lat": "３1.15"}, "lat"),
        ({"long": "１２１.73"}, "long"),
        ({"lat": "٣١.١٥"}, "lat"),
        ({**flood, "attribute[depth_cm]": "３0"}, "attribute[depth_cm]"),
        ({**flood, "attribute[depth_cm]": "3_0"}, "attribute[depth_cm]"),
    ]
    for form, named in refused:
        response = open311_post(client, reporter_key, **form)
        assert named in _descriptions(response, 400), form
    assert db.scalar(select(Report.id)) is None
    point = sample_point()
    accepted = [
        {"lat": f"+{point['lat']}"},
        {"lat": f"{point['lat']}e0", "long": f" {point['lon']} "},
        {"lat": f"{point['lat'] * 10}E-1"},
        {**flood, "attribute[depth_cm]": "3.5e1"},
    ]
    for form in accepted:
        response = open311_post(client, reporter_key, **form)
        assert response.status_code == 201, (form, response.get_data(as_text=True))


# ---------------------------------------------------------------- 2. a fault, in Open311's shape


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_unexpected_fault_answers_500_in_open311_shape(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, caplog: Any, fmt: str
) -> None:
    def broken() -> Any:
        raise RuntimeError("the query broke")

    monkeypatch.setattr(open311.queries, "report_with_case", broken)
    with caplog.at_level(logging.ERROR):
        response = client.get(f"{OPEN311}/requests.{fmt}")
    errors = open311_errors(response, 500)
    assert response.content_type == (XML_TYPE if fmt == "xml" else JSON_TYPE)
    assert str(errors[0]["code"]) == "500"
    assert "the query broke" not in response.get_data(as_text=True)
    assert any("the query broke" in (r.exc_text or "") for r in caplog.records)


# ---------------------------------------------------------------- 3. a body that is not UTF-8


def test_urlencoded_body_not_utf8_is_400_naming_the_parameter(
    client: FlaskClient, reporter_key: str, db: Session
) -> None:
    def post(body: bytes) -> Any:
        return client.post(
            f"{OPEN311}/requests.json",
            data=body,
            content_type="application/x-www-form-urlencoded",
        )

    assert "api_key" in _descriptions(post(b"api_key=\xff\xfe&service_code=x"), 400)
    assert "api_key" in _descriptions(post(b"api_key=%FF%FE&service_code=x"), 400)
    point = sample_point()
    good = (
        f"api_key={reporter_key}&service_code=bin_overflow"
        f"&lat={point['lat']}&long={point['lon']}&description="
    ).encode()
    text = _descriptions(post(good + b"%E4%BA%95%FF"), 400)
    assert "description" in text and "UTF-8" in text
    assert "description" in _descriptions(post(good + b"\xe4\xba"), 400)
    assert db.scalar(select(Report.id)) is None


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_multipart_field_not_utf8_is_400_naming_it(
    client: FlaskClient, reporter_key: str, db: Session, fmt: str
) -> None:
    point = sample_point()
    fields = [
        (b"api_key", reporter_key.encode()),
        (b"service_code", b"bin_overflow"),
        (b"lat", str(point["lat"]).encode()),
        (b"long", str(point["lon"]).encode()),
        (b"description", b"\xe4\xba\x95\xff\xfe"),
    ]
    boundary = b"cityrelay-boundary"
    body = b"".join(
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + name + b'"\r\n\r\n'
        b"" + value + b"\r\n"
        for name, value in fields
    )
    body += b"--" + boundary + b"--\r\n"
    response = client.post(
        f"{OPEN311}/requests.{fmt}",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary.decode()}",
    )
    text = _descriptions(response, 400)
    assert "description" in text and "UTF-8" in text
    bad_key = body.replace(reporter_key.encode(), b"\xff\xfe")
    response = client.post(
        f"{OPEN311}/requests.{fmt}",
        data=bad_key,
        content_type=f"multipart/form-data; boundary={boundary.decode()}",
    )
    assert "api_key" in _descriptions(response, 400)
    assert db.scalar(select(Report.id)) is None


# ---------------------------------------------------------------- 4. control characters


def test_stored_control_characters_never_break_the_xml(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    report_id = make_report(
        sessions, text="井盖\x01没了\x0b很危险\x1f\ttab\nline", address="春江路\x08口"
    )
    for path in ("requests", f"requests/{report_id}"):
        response = client.get(f"{OPEN311}/{path}.xml")
        assert response.status_code == 200
        root = ET.fromstring(response.data)  # well-formed
        mine = next(
            r for r in root.iter("request") if r.findtext("service_request_id") == str(report_id)
        )
        assert mine.findtext("description") == "井盖没了很危险\ttab\nline"
        assert mine.findtext("address") == "春江路口"
        as_json = client.get(f"{OPEN311}/{path}.json")
        (one,) = [r for r in json.loads(as_json.data) if r["service_request_id"] == str(report_id)]
        assert one["description"] == "井盖没了很危险\ttab\nline"


def test_errors_echoing_control_characters_stay_well_formed(client: FlaskClient) -> None:
    response = client.get(f"{OPEN311}/services/bad%01code.xml")
    assert response.status_code == 404
    root = ET.fromstring(response.data)
    # Refused before the view, by the check every request passes; whatever an error echoes,
    # the XML stays well-formed.
    assert "control character" in root.findtext("error/description")
    assert b"\x01" not in response.data


# ---------------------------------------------------------------- 5. charset


def test_answers_and_errors_say_utf8(client: FlaskClient, reporter_key: str) -> None:
    for fmt, expected in (("json", JSON_TYPE), ("xml", XML_TYPE)):
        for path, status in (
            (f"discovery.{fmt}", 200),
            (f"services.{fmt}", 200),
            (f"requests.{fmt}", 200),
            (f"requests/999999.{fmt}", 404),
            (f"requests.{fmt}?page=x", 400),
            (f"nothing/here.{fmt}", 404),
        ):
            response = client.get(f"{OPEN311}/{path}")
            assert (response.status_code, response.content_type) == (status, expected), path
        created = open311_post(client, reporter_key, fmt=fmt)
        assert (created.status_code, created.content_type) == (201, expected)
        refused = open311_post(client, None, fmt=fmt)
        assert (refused.status_code, refused.content_type) == (403, expected)
    xml = client.get(f"{OPEN311}/services.xml", headers={"Accept-Language": "zh"})
    assert "井盖" in xml.get_data(as_text=True)


# ---------------------------------------------------------------- 6. no empty media_url


def test_media_url_is_absent_without_a_photo(client: FlaskClient, reporter_key: str) -> None:
    request_id = open311_post(client, reporter_key).get_json()[0]["service_request_id"]
    for extensions in ("false", "true"):
        query = {"extensions": extensions}
        for path in (f"requests/{request_id}", "requests"):
            listed = client.get(f"{OPEN311}/{path}.json", query_string=query).get_json()
            one = next(r for r in listed if r["service_request_id"] == request_id)
            assert "media_url" not in one
            root = ET.fromstring(client.get(f"{OPEN311}/{path}.xml", query_string=query).data)
            mine = next(
                r for r in root.iter("request") if r.findtext("service_request_id") == request_id
            )
            assert mine.find("media_url") is None


# ---------------------------------------------------------------- 7. FixMyStreet's attributes


def test_unknown_attributes_are_kept_as_extra_data(
    client: FlaskClient, reporter_key: str, db: Session
) -> None:
    response = open311_post(
        client,
        reporter_key,
        **{
            "attribute[report_url]": "https://www.fixmystreet.com/report/123",
            "attribute[fixmystreet_id]": "123",
            "attribute[tags][]": ["a", "b"],
        },
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    request_id = int(response.get_json()[0]["service_request_id"])
    report = db.get(Report, request_id)
    assert report is not None
    assert report.attributes == {"cover_state": "missing"}
    assert report.extra_attributes == {
        "report_url": "https://www.fixmystreet.com/report/123",
        "fixmystreet_id": "123",
        "tags": ["a", "b"],
    }
    capped = [
        ({f"attribute[x{i}]": "1" for i in range(21)}, "attribute[x"),
        ({f"attribute[{'k' * 65}]": "1"}, "attribute[kkk"),
        ({"attribute[report_url]": "u" * 501}, "attribute[report_url]"),
        ({"attribute[cover_state]": "stolen", "attribute[report_url]": "x"}, "cover_state"),
    ]
    for extra, named in capped:
        assert named in _descriptions(open311_post(client, reporter_key, **extra), 400)
    widest = {f"attribute[{str(i).zfill(64)}]": "v" * 500 for i in range(20)}
    assert open311_post(client, reporter_key, **widest).status_code == 201
    plain = open311_post(client, reporter_key)
    assert plain.status_code == 201
    assert db.get(Report, int(plain.get_json()[0]["service_request_id"])).extra_attributes is None


# ---------------------------------------------------------------- 8. what the public may see


def _caller(sessions: sessionmaker[Session], role: str, office: str) -> Caller:
    key = make_key(sessions, role=role, office_code=office)
    with unit_of_work(sessions) as session:
        caller = find_key(session, key)
    assert caller is not None
    return caller


PEOPLE_WORDS = ("reporter", "contact", "email", "phone", "name", "account", "device", "actor")


def _names_about_people(value: Any) -> list[str]:
    """Every key in ``value`` that names a person or their contact (service_name aside)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key != "service_name" and any(word in key for word in PEOPLE_WORDS):
                found.append(key)
            found += _names_about_people(inner)
    elif isinstance(value, list):
        for inner in value:
            found += _names_about_people(inner)
    return found


def test_extensions_show_no_reporter_and_only_public_notes(
    client: FlaskClient, reporter_key: str, sessions: sessionmaker[Session], db: Session
) -> None:
    contact = {
        "email": "wang.rider@example.com",
        "first_name": "Shifu",
        "last_name": "Wang",
        "phone": "13800138000",
        "device_id": "device-7f3a",
        "account_id": "acct-991",
    }
    created = open311_post(client, reporter_key, service_code="bin_overflow", **contact)
    request_id = int(created.get_json()[0]["service_request_id"])
    process(sessions, request_id)
    report = db.get(Report, request_id)
    assert report is not None and report.case_id is not None
    office = report.case.office.code
    staff = _caller(sessions, "office", office)
    with unit_of_work(sessions) as session:
        casework.reject_and_reroute(session, report.case_id, staff, "不归我们管，骑手王师傅说过")

    for fmt in ("json", "xml"):
        for path in ("requests", f"requests/{request_id}"):
            response = client.get(
                f"{OPEN311}/{path}.{fmt}", query_string={"extensions": "true", "page_size": "100"}
            )
            assert response.status_code == 200
            text = response.get_data(as_text=True)
            for value in contact.values():
                assert value not in text
            assert "王师傅" not in text  # the office's reason for rejecting stays inside
            assert not _names_about_people(
                json.loads(text) if fmt == "json" else from_xml(ET.fromstring(response.data))
            )


def test_lat_long_rounded_to_about_100_m_everywhere(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    point = sample_point()
    lat, lon = point["lat"] + 0.0000049, point["lon"] + 0.0000049
    case = make_case(sessions, lat=lat, lon=lon)
    report_id = str(case.reports[0].id)
    rounded = (round(lat, 3), round(lon, 3))
    assert rounded != (lat, lon)
    for extensions in ("false", "true"):
        query = {"extensions": extensions}
        for path in ("requests", f"requests/{report_id}"):
            listed = client.get(f"{OPEN311}/{path}.json", query_string=query).get_json()
            one = next(r for r in listed if r["service_request_id"] == report_id)
            assert (one["lat"], one["long"]) == rounded
            root = ET.fromstring(client.get(f"{OPEN311}/{path}.xml", query_string=query).data)
            mine = next(
                r for r in root.iter("request") if r.findtext("service_request_id") == report_id
            )
            assert (mine.findtext("lat"), mine.findtext("long")) == tuple(map(str, rounded))
            assert str(lat) not in json.dumps(listed)


def test_extensions_page_size_is_at_most_100(client: FlaskClient) -> None:
    response = client.get(f"{OPEN311}/requests.json?extensions=true&page_size=101")
    assert "page_size" in _descriptions(response, 400)
    assert client.get(f"{OPEN311}/requests.json?extensions=true&page_size=100").status_code == 200
    assert client.get(f"{OPEN311}/requests.json?page_size=1000").status_code == 200
