"""The database unreachable: every request answers 503 with Retry-After in its door's error
shape (Open311's under /open311/), never a 500, and nothing is half written."""

from __future__ import annotations

from collections.abc import Callable
from xml.etree import ElementTree as ET

import pytest
from flask import Flask

from cityrelay.embedded import free_port
from tests.helpers import sample_point
from web.errors import DATABASE_RETRY_AFTER_SECONDS


@pytest.fixture
def no_database(make_app: Callable[..., Flask]) -> Flask:
    # Nothing listens on this port: every connection to PostgreSQL is refused, as when the
    # server is down or restarting.
    return make_app(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/cityrelay")


def assert_unavailable(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == str(DATABASE_RETRY_AFTER_SECONDS)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/health"),
        ("GET", "/api/v1/offices"),
        ("GET", "/api/v1/reports/1"),
        ("POST", "/api/v1/reports"),
        ("GET", "/api/v1/public/stats"),
    ],
)
def test_the_api_answers_503_with_retry_after(no_database: Flask, method: str, path: str) -> None:
    point = sample_point()
    response = no_database.test_client().open(
        path,
        method=method,
        json={"text": "路灯不亮", "lat": point["lat"], "lon": point["lon"]},
        headers={"Authorization": "Bearer some-reporter-key"},
    )
    assert_unavailable(response)
    assert response.get_json()["error"]["code"] == "service_unavailable"
    assert set(response.get_json()["error"]) == {"code", "message"}


def test_open311_answers_503_in_its_own_shape(no_database: Flask) -> None:
    client = no_database.test_client()

    as_json = client.get("/open311/v2/requests.json")
    assert_unavailable(as_json)
    [error] = as_json.get_json()
    assert error["code"] == 503 and error["description"]

    as_xml = client.get("/open311/v2/requests/1.xml")
    assert_unavailable(as_xml)
    root = ET.fromstring(as_xml.get_data())
    assert root.tag == "errors"
    assert root.find("error/code").text == "503"  # type: ignore[union-attr]
