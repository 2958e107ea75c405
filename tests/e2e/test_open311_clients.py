"""Two independent Open311 clients from PyPI against a live `cityrelay up`, over real HTTP."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest
import requests
from civicbot import Endpoint, HttpError, HttpTransport, Open311Client, ValidationError
from civicbot.http import RateLimiter
from georeport import GeoReport

from tests.factories import make_key
from tests.helpers import sample_point

pytestmark = pytest.mark.e2e


def as_list(value: Any) -> list[Any]:
    """xmltodict turns a one-item XML list into the item itself."""
    return value if isinstance(value, list) else [value]


def report_when_processed(base: str, report_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"{base}/api/v1/reports/{report_id}", timeout=5) as response:
            report = json.loads(response.read())
        if report["status"] != "received" or time.monotonic() > deadline:
            return report
        time.sleep(0.1)


@pytest.fixture
def civicbot(live_up: str) -> Open311Client:
    endpoint = Endpoint(
        id="cityrelay", name="CityRelay", base_url=f"{live_up}/open311/v2/", write=True
    )
    return Open311Client(
        endpoint, HttpTransport(rate_limiter=RateLimiter(min_interval=0), timeout=10)
    )


def test_civicbot_reads_and_posts_with_attributes(
    live_up: str, civicbot: Open311Client, sessions
) -> None:
    key = make_key(sessions)
    point = sample_point("PD-HX-02")
    services = civicbot.list_services()
    assert "access_restriction" in [s["service_code"] for s in services]
    definition = civicbot.get_service_definition("access_restriction")
    assert {a["code"] for a in definition["attributes"]} == {"blocked_who", "gate_name"}

    # the client checks required attributes and allowed values against our definition
    with pytest.raises(ValidationError):
        civicbot.create_request(
            "access_restriction", validate_remote=True, lat=point["lat"], lng=point["lon"]
        )
    with pytest.raises(ValidationError):
        civicbot.create_request(
            "access_restriction",
            validate_remote=True,
            lat=point["lat"],
            lng=point["lon"],
            attributes={"blocked_who": ["boat"]},
        )

    sent = civicbot.create_request(
        "access_restriction",
        dry_run=False,
        confirm="SEND",
        api_key=key,
        validate_remote=True,
        lat=point["lat"],
        lng=point["lon"],
        description="北门不让外卖骑手进 gate closed to riders",
        attributes={"blocked_who": ["couriers", "food_riders"], "gate_name": "北门"},
        media_url="https://example.org/gate.jpg",
    )
    assert sent.form["attribute[blocked_who][]"] == ["couriers", "food_riders"]
    (created,) = sent.response
    request_id, token = created["service_request_id"], created["token"]
    assert isinstance(request_id, str)
    assert civicbot.get_token(token)[0]["service_request_id"] == request_id

    report = report_when_processed(live_up, request_id)
    assert report["status"] == "routed" and report["channel"] == "open311"
    assert report["office"]["code"] == "PD-HX-02"

    got = civicbot.get_request(request_id)
    assert got["service_code"] == "access_restriction"
    assert got["agency_responsible"] == report["office"]["name"]
    assert got["expected_datetime"]
    listed = civicbot.list_requests(service_request_ids=[request_id])
    assert [r["service_request_id"] for r in listed] == [request_id]

    with pytest.raises(HttpError) as missing:
        civicbot.get_request("999999")
    assert missing.value.status == 404
    assert json.loads(missing.value.body)[0]["code"] == 404
    with pytest.raises(HttpError) as forbidden:
        civicbot.create_request(
            "bin_overflow",
            dry_run=False,
            confirm="SEND",
            api_key="cr_not_a_key",
            lat=point["lat"],
            lng=point["lon"],
        )
    assert forbidden.value.status == 403
    with pytest.raises(HttpError) as bad_value:
        civicbot.create_request(
            "waterlogging",
            dry_run=False,
            confirm="SEND",
            api_key=key,
            lat=point["lat"],
            lng=point["lon"],
            attributes={"depth_cm": "knee-deep"},
        )
    assert bad_value.value.status == 400


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_georeport_reads(live_up: str, sessions, civicbot: Open311Client, fmt: str) -> None:
    point = sample_point()
    sent = civicbot.create_request(
        "manhole_cover",
        dry_run=False,
        confirm="SEND",
        api_key=make_key(sessions),
        lat=point["lat"],
        lng=point["lon"],
        description="井盖碎了",
        attributes={"cover_state": "broken"},
    )
    request_id = sent.response[0]["service_request_id"]
    report_when_processed(live_up, request_id)

    client = GeoReport(f"{live_up}/open311/v2/", output_format=fmt)
    services = as_list(client.get_service_list())
    assert len(services) == 19 and services[0]["service_code"] == "manhole_cover"
    definition = client.get_service_definition("manhole_cover")
    attributes = (
        definition["attributes"] if fmt == "json" else definition["attributes"]["attribute"]
    )
    (attribute,) = as_list(attributes)
    assert attribute["code"] == "cover_state" and attribute["required"] in (True, "true")

    listed = as_list(client.get_service_requests(status="open", service_code="manhole_cover"))
    assert request_id in [r["service_request_id"] for r in listed]
    one = client.get_service_request(request_id)
    assert one["service_request_id"] == request_id and one["status"] == "open"
    assert one["description"] == "井盖碎了"
    assert one["agency_responsible"] == "区市政设施管理所"
    assert str(one["lat"]) == str(round(point["lat"], 3))  # about 100 m: Open311 is public

    with pytest.raises(requests.HTTPError) as missing:
        client.get_service_request("999999")
    assert missing.value.response.status_code == 404
