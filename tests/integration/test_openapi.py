"""The OpenAPI document is generated from the routes and what each view declares; here it is held
to the server: every /api/v1 route is in it and nothing else, it is valid OpenAPI 3.1, and every
operation, driven with a good request and with each kind of bad one, answers only with declared
statuses, bodies that validate against the declared schemas, and the declared headers. Each
operation's test also shows every declared status really happens, so none is stale."""

from __future__ import annotations

import io
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from schemathesis.specs.openapi.definitions import OPENAPI_31
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cityrelay import openapi
from models.base import utcnow
from models.entities import Category, OutboxMessage, RuleVersion
from models.session import unit_of_work
from services import exports
from tests.factories import make_case, make_key, make_report, make_reporter, process
from tests.helpers import sample_point, tiny_png
from tests.openapi_contract import Contract
from web.openapi import operation
from web.urls import CONVERTERS, MAX_ROW_ID

POINT = sample_point()
GOOD_REPORT = {"text": "小区门口垃圾桶满了", "lat": POINT["lat"], "lon": POINT["lon"]}
TOO_BIG_ID = MAX_ROW_ID + 1


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.get_json()


@pytest.fixture
def contract(document: dict[str, Any]) -> Contract:
    return Contract(document)


@pytest.fixture
def keys(sessions: sessionmaker[Session]) -> dict[str, dict[str, str]]:
    return {
        "reporter": bearer(make_key(sessions)),
        "office": bearer(make_key(sessions, role="office", office_code=POINT["office"])),
        "supervisor": bearer(make_key(sessions, role="supervisor", office_code=POINT["office"])),
        "other_office": bearer(make_key(sessions, role="office", office_code="PD-SZ")),
        "admin": bearer(make_key(sessions, role="admin")),
        "unknown": bearer("cr_no-such-key"),
    }


# ---------- the document ----------


def test_every_api_route_is_described_and_nothing_else(app: Flask, document: dict) -> None:
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule.rule)
            served |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    described = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert served == described
    assert len(served) >= 15


def test_the_document_is_valid_openapi_3_1(document: dict) -> None:
    assert document["openapi"] == "3.1.0"
    Draft202012Validator(OPENAPI_31).validate(document)
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    # one error shape, one security scheme, every schema under its own name
    assert "Error" in document["components"]["schemas"]
    assert document["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer", "description": "A CityRelay API key."}
    }
    errors = {
        op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        for item in document["paths"].values()
        for op in item.values()
        for status in op["responses"]
        if status.startswith("4")
    }
    assert errors == {"#/components/schemas/Error"}


def test_the_document_is_built_once_per_app(app: Flask, client: FlaskClient) -> None:
    first = openapi.openapi_document(app)
    client.get("/api/v1/openapi.json")
    assert openapi.openapi_document(app) is first


def test_a_route_without_a_description_stops_the_build() -> None:
    app = Flask(__name__)
    app.url_map.converters.update(CONVERTERS)
    app.register_blueprint(openapi.bp)

    @app.get("/api/v1/described/<id:thing_id>")
    @operation(summary="Described", responses={200: {"type": "object"}})
    def described(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    assert "/api/v1/described/{thing_id}" in openapi.build_document(app)["paths"]

    app.add_url_rule("/api/v1/forgotten", "forgotten", lambda: {})
    with pytest.raises(openapi.UndescribedRoute, match="/api/v1/forgotten"):
        openapi.build_document(app)


def test_path_parameters_are_typed_from_the_url_converters(document: dict) -> None:
    def parameter(path: str, method: str) -> dict[str, Any]:
        (only,) = document["paths"][path][method]["parameters"]
        return only["schema"]

    row_id = {"type": "integer", "minimum": 1, "maximum": MAX_ROW_ID}
    assert parameter("/api/v1/reports/{report_id}", "get") == row_id
    assert parameter("/api/v1/cases/{case_id}/reject", "post") == row_id
    assert parameter("/api/v1/admin/rules/versions/{version}", "get") == row_id
    code = parameter("/api/v1/admin/offices/{code}/categories", "put")
    assert code["type"] == "string" and re.fullmatch(code["pattern"], "PD-HG-02")
    assert not re.fullmatch(code["pattern"], "a/b")


def test_filing_is_described_with_its_forms_headers_and_the_0_0_refusal(document: dict) -> None:
    post = document["paths"]["/api/v1/reports"]["post"]
    assert post["security"] == [{"bearer": []}]
    assert post["requestBody"]["required"] is True
    content = post["requestBody"]["content"]
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/ReportIn"}
    report_in = document["components"]["schemas"]["ReportIn"]["properties"]
    multipart = content["multipart/form-data"]["schema"]["properties"]
    assert set(multipart) == set(report_in) | {"photos"}
    assert multipart["photos"] == {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
        "description": multipart["photos"]["description"],
    }
    assert set(content["application/x-www-form-urlencoded"]["schema"]["properties"]) == set(
        report_in
    )
    assert "0,0" in post["description"] and "0,0" in report_in["lat"]["description"]
    (header,) = post["parameters"]
    assert header["name"] == "Idempotency-Key" and header["in"] == "header"
    accepted = post["responses"]["202"]["headers"]
    assert accepted["Location"]["required"] is True
    assert accepted["Idempotent-Replayed"]["schema"] == {"type": "string", "enum": ["true"]}
    assert set(post["responses"]) == {"202", "400", "401", "403", "413", "415", "422", "429"}
    assert post["responses"]["429"]["headers"]["Retry-After"]["required"] is True


def test_admin_operations_declare_401_and_403(document: dict) -> None:
    for path, item in document["paths"].items():
        for method, op in item.items():
            protected = "security" in op
            assert protected == (
                path.startswith(
                    ("/api/v1/admin/", "/api/v1/cases/", "/api/v1/reporters/me", "/api/v1/exports/")
                )
                or path
                in (
                    "/api/v1/reports",
                    "/api/v1/stats",
                    "/api/v1/stats.csv",
                    "/api/v1/spikes",
                    "/api/v1/cases.csv",
                )
                or path.endswith(("/answer", "/confirm", "/reopen", "/queue"))
            ), (method, path)
            if protected:
                assert {"401", "403"} <= set(op["responses"]), (method, path)
                assert op["responses"]["401"]["headers"]["WWW-Authenticate"]["required"]


def test_the_docs_page_loads_swagger_ui_from_this_server(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    assert 'data-spec-url="/api/v1/openapi.json"' in html
    assert "<script>" not in html and not re.search(r'(?:src|href)="(?:https?:)?//', html)
    for asset in re.findall(r'(?:src|href)="([^"]+)"', html):
        served = client.get(asset)
        assert served.status_code == 200, asset
        served.close()


# ---------- every operation, good and bad requests ----------


def over_the_limit(
    monkeypatch: pytest.MonkeyPatch, app: Flask, setting: str, client: FlaskClient
) -> FlaskClient:
    """``client`` at an address of its own, with ``setting`` lowered to one request an hour."""
    monkeypatch.setitem(app.config, setting, "1/hour")
    client.environ_base["REMOTE_ADDR"] = f"10.9.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    return client


def test_register_reporter(
    contract: Contract, client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    op = contract["post", "/api/v1/reporters"]
    created = op.call(client, json={"display_name": "王师傅", "platform": "美团"}, expect=201)
    assert created.get_json()["key"].startswith("cr_")
    op.call(client, json={}, expect=201)
    op.call(client, data="[]", content_type="application/json", expect=400)
    op.call(client, json={"occupation": "pilot"}, expect=422)
    op.call(client, json={"unknown": 1}, expect=422)
    limited = over_the_limit(monkeypatch, app, "RATE_LIMIT_REGISTRATIONS_PER_IP", client)
    op.call(limited, json={}, expect=201)
    op.call(limited, json={}, expect=429)
    op.assert_every_declared_status_seen()


def test_file_report(
    contract: Contract, client: FlaskClient, keys: dict, app: Flask, monkeypatch
) -> None:
    op = contract["post", "/api/v1/reports"]
    headers = {**keys["reporter"], "Idempotency-Key": "contract-1"}
    first = op.call(client, json=GOOD_REPORT, headers=headers, expect=202)
    assert "Idempotent-Replayed" not in first.headers
    again = op.call(client, json=GOOD_REPORT, headers=headers, expect=202)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    op.call(client, json={**GOOD_REPORT, "text": "另一件事"}, headers=headers, expect=422)
    form = {"text": "井盖丢了", "address": "临港家园南门", "lang": "zh"}
    op.call(
        client,
        data={**form, "photos": [(_png(), "a.png")]},
        headers=keys["reporter"],
        expect=202,
    )
    op.call(client, data=form, headers=keys["reporter"], expect=202)  # urlencoded

    op.call(client, json=GOOD_REPORT, expect=401)
    op.call(client, json=GOOD_REPORT, headers=keys["unknown"], expect=401)
    op.call(client, json=GOOD_REPORT, headers=keys["office"], expect=403)
    op.call(client, data="[1]", content_type="application/json", headers=keys["reporter"],
            expect=400)  # fmt: skip
    bad_key = {**keys["reporter"], "Idempotency-Key": "k" * 201}
    op.call(client, json=GOOD_REPORT, headers=bad_key, expect=400)
    op.call(client, data="text", content_type="text/plain", headers=keys["reporter"], expect=415)
    no_fix = op.call(
        client, json={**GOOD_REPORT, "lat": 0, "lon": 0}, headers=keys["reporter"], expect=422
    )
    assert "lat" in no_fix.get_json()["error"]["fields"]
    op.call(client, json={"text": "x"}, headers=keys["reporter"], expect=422)
    op.call(client, json={**GOOD_REPORT, "lat": 91}, headers=keys["reporter"], expect=422)
    op.call(
        client,
        data={**form, "photos": [(io.BytesIO(b"not an image"), "a.png")]},
        headers=keys["reporter"],
        expect=422,
    )
    monkeypatch.setitem(app.config, "MAX_PHOTO_BYTES", 100)
    op.call(
        client,
        data={**form, "photos": [(_png(b"\0" * 200), "big.png")]},
        headers=keys["reporter"],
        expect=413,
    )
    monkeypatch.setitem(app.config, "RATE_LIMIT_REPORTS_PER_KEY", "1/hour")
    op.call(client, json=GOOD_REPORT, headers=keys["reporter"], expect=202)
    op.call(client, json=GOOD_REPORT, headers=keys["reporter"], expect=429)
    op.assert_every_declared_status_seen()


def test_get_report(contract: Contract, client: FlaskClient, sessions, keys: dict) -> None:
    op = contract["get", "/api/v1/reports/{report_id}"]
    received = make_report(sessions)
    op.call(client, {"report_id": received}, expect=200)
    routed = make_report(sessions)
    case = process(sessions, routed)
    assert case is not None and case.status == "routed"
    body = op.call(client, {"report_id": routed}, expect=200).get_json()
    assert body["office"]["code"] == POINT["office"] and body["events"]
    triaged = make_case(sessions, text="", lat=None, lon=None, address="南门")
    assert triaged.status == "triage"
    op.call(client, {"report_id": triaged.reports[0].id}, expect=200)
    op.call(client, {"report_id": 999_999}, expect=404)
    op.call(client, {"report_id": TOO_BIG_ID}, expect=404)  # no row, and no database error
    op.call(client, {"report_id": 0}, expect=404)
    op.assert_every_declared_status_seen()


def test_split(contract: Contract, client: FlaskClient, sessions, keys: dict) -> None:
    op = contract["post", "/api/v1/cases/{case_id}/split"]
    first = make_case(sessions, no_merge=False)
    joined = make_report(sessions, no_merge=False)
    assert process(sessions, joined).id == first.id
    case = {"case_id": first.id}
    office = keys["office"]

    op.call(client, case, json={"report_id": joined}, headers=office, expect=202)
    only = first.reports[0].id
    op.call(client, case, json={"report_id": only}, headers=office, expect=409)
    # another office's case answers like a missing one
    op.call(client, case, json={"report_id": only}, headers=keys["other_office"], expect=404)
    op.call(client, case, json={"report_id": joined}, headers=office, expect=422)
    op.call(client, case, json={"report_id": "x"}, headers=office, expect=422)
    op.call(client, case, data="1", content_type="application/json", headers=office, expect=400)
    op.call(client, {"case_id": 999_999}, json={"report_id": 1}, headers=office, expect=404)
    op.call(client, {"case_id": TOO_BIG_ID}, json={"report_id": 1}, headers=office, expect=404)
    op.call(client, case, json={"report_id": only}, expect=401)
    op.call(client, case, json={"report_id": only}, headers=keys["reporter"], expect=403)
    op.assert_every_declared_status_seen()


def test_reject(contract: Contract, client: FlaskClient, sessions, keys: dict) -> None:
    op = contract["post", "/api/v1/cases/{case_id}/reject"]
    routed = make_case(sessions)
    assert routed.status == "routed"
    case = {"case_id": routed.id}
    reason = {"reason": "不是我们社区的"}

    op.call(client, case, json={"reason": "x"}, headers=keys["office"], expect=422)
    op.call(client, case, json=[], headers=keys["office"], expect=400)
    op.call(client, case, json=reason, headers=keys["office"], expect=200)
    # no longer its own: as if there were no such case
    op.call(client, case, json=reason, headers=keys["office"], expect=404)
    accepted = make_case(sessions)
    client.post(f"/api/v1/cases/{accepted.id}/accept", headers=keys["office"])
    # its own, but no longer routed
    op.call(client, {"case_id": accepted.id}, json=reason, headers=keys["office"], expect=409)
    op.call(client, {"case_id": 999_999}, json=reason, headers=keys["office"], expect=404)
    op.call(client, case, json=reason, headers=keys["unknown"], expect=401)
    op.call(client, case, json=reason, headers=keys["admin"], expect=403)
    op.assert_every_declared_status_seen()


# What each case action needs: the office-side steps that make it allowed, who does it (key),
# a good body and a bad one (422).
CASE_ACTIONS: dict[str, tuple[list[tuple[str, dict[str, Any]]], str, dict, dict]] = {
    "accept": ([], "office", {"note": "已受理"}, {"note": 1}),
    "start": ([("accept", {})], "office", {}, {"note": ["x"]}),
    "ask": ([("accept", {})], "office", {"question": "在哪个门口？"}, {}),
    "transfer": (
        [("accept", {})],
        "office",
        {"office": "PD-CJ-02", "reason": "隔壁社区"},
        {"office": "NO-SUCH", "reason": "r"},
    ),
    "extend": ([("accept", {})], "office", {"hours": 4, "reason": "等"}, {"hours": 0}),
    "approve-extension": (
        [("accept", {}), ("extend", {"hours": 4, "reason": "等"})],
        "supervisor",
        {},
        {"note": 1},
    ),
    "deny-extension": (
        [("accept", {}), ("extend", {"hours": 4, "reason": "等"})],
        "supervisor",
        {"note": "按期完成"},
        {"note": 1},
    ),
    "close": (
        [("accept", {}), ("resolve", {"note": "好了"})],
        "supervisor",
        {"closure": "fixed"},
        {"closure": "solved"},
    ),
    "rework": (
        [("accept", {}), ("resolve", {"note": "好了"})],
        "supervisor",
        {"note": "返工"},
        {"note": " "},
    ),
}
TO_CLOSED = [("accept", {}), ("resolve", {"note": "好了"}), ("close", {"closure": "fixed"})]


def _drive(client: FlaskClient, case_id: int, keys: dict, steps: list) -> None:
    for action, body in steps:
        who = keys["supervisor"] if action in ("close", "approve-extension") else keys["office"]
        response = client.post(f"/api/v1/cases/{case_id}/{action}", json=body, headers=who)
        assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize("action", sorted(CASE_ACTIONS))
def test_case_actions(
    contract: Contract, client: FlaskClient, sessions, keys: dict, action: str
) -> None:
    op = contract["post", f"/api/v1/cases/{{case_id}}/{action}"]
    steps, who, good, bad = CASE_ACTIONS[action]
    case = make_case(sessions)
    _drive(client, case.id, keys, steps)
    params, key = {"case_id": case.id}, keys[who]
    op.call(client, params, json=bad, headers=key, expect=422)
    op.call(client, params, json=[good], headers=key, expect=400)
    op.call(client, params, json=good, expect=401)
    op.call(client, params, json=good, headers=keys["reporter"], expect=403)
    op.call(client, {"case_id": 999_999}, json=good, headers=key, expect=404)
    op.call(client, {"case_id": TOO_BIG_ID}, json=good, headers=key, expect=404)
    answer = op.call(client, params, json=good, headers=key, expect=200).get_json()
    assert answer["case_id"] == case.id
    closed = make_case(sessions)
    _drive(client, closed.id, keys, TO_CLOSED)
    refused = op.call(client, {"case_id": closed.id}, json=good, headers=key, expect=409)
    assert refused.get_json()["error"]["status"] == "closed"
    op.assert_every_declared_status_seen()


def test_resolve(
    contract: Contract, client: FlaskClient, sessions, keys: dict, app: Flask, monkeypatch
) -> None:
    op = contract["post", "/api/v1/cases/{case_id}/resolve"]
    office = keys["office"]
    case = make_case(sessions)
    params = {"case_id": case.id}
    op.call(client, params, json={"note": "好了"}, headers=office, expect=409)  # not accepted
    _drive(client, case.id, keys, [("accept", {})])
    op.call(client, params, json={"note": ""}, headers=office, expect=422)
    op.call(client, params, json="x", headers=office, expect=400)
    op.call(client, params, data="x", content_type="text/plain", headers=office, expect=415)
    op.call(client, params, json={"note": "好了"}, expect=401)
    op.call(client, params, json={"note": "好了"}, headers=keys["reporter"], expect=403)
    op.call(client, {"case_id": 999_999}, json={"note": "好了"}, headers=office, expect=404)
    monkeypatch.setitem(app.config, "MAX_PHOTO_BYTES", 100)
    big = {"note": "好了", "photos": [(_png(b"\0" * 200), "big.png")]}
    op.call(client, params, data=big, headers=office, expect=413)
    monkeypatch.undo()
    done = {"note": "好了", "photos": [(_png(), "after.png")]}
    op.call(client, params, data=done, headers=office, expect=200)
    op.assert_every_declared_status_seen()


# For each reporter action: the steps that make it allowed, a good body and a bad one (422).
REPORTER_ACTIONS: dict[str, tuple[list[tuple[str, dict[str, Any]]], dict, dict]] = {
    "answer": ([("accept", {}), ("ask", {"question": "哪里？"})], {"text": "南门"}, {}),
    "confirm": ([("accept", {}), ("resolve", {"note": "好了"})], {"note": "谢谢"}, {"x": 1}),
    "reopen": (TO_CLOSED, {"reason": "又坏了"}, {"reason": ""}),
}


@pytest.mark.parametrize("action", sorted(REPORTER_ACTIONS))
def test_reporter_case_actions(
    contract: Contract,
    client: FlaskClient,
    sessions,
    keys: dict,
    action: str,
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    op = contract["post", f"/api/v1/reports/{{report_id}}/{action}"]
    steps, good, bad = REPORTER_ACTIONS[action]
    reporter_id, reporter_key = make_reporter(sessions)
    case = make_case(sessions, reporter_id=reporter_id)
    mine = bearer(reporter_key)
    params = {"report_id": case.reports[0].id}
    op.call(client, params, json=good, headers=mine, expect=409)  # the case is only routed
    _drive(client, case.id, keys, steps)
    op.call(client, params, json=bad, headers=mine, expect=422)
    op.call(client, params, data="[]", content_type="application/json", headers=mine,
            expect=400)  # fmt: skip
    op.call(client, params, json=good, expect=401)
    op.call(client, params, json=good, headers=keys["reporter"], expect=403)  # not theirs
    op.call(client, params, json=good, headers=keys["office"], expect=403)
    op.call(client, {"report_id": 999_999}, json=good, headers=mine, expect=404)
    op.call(client, params, json=good, headers=mine, expect=200)
    monkeypatch.setitem(app.config, "RATE_LIMIT_ACTIONS_PER_KEY", "1/hour")
    op.call(client, params, json=good, headers=keys["reporter"], expect=403)
    op.call(client, params, json=good, headers=keys["reporter"], expect=429)
    op.assert_every_declared_status_seen()


def test_admin_reads(contract: Contract, client: FlaskClient, keys: dict, db: Session) -> None:
    newest = db.scalar(select(RuleVersion.id).order_by(RuleVersion.id.desc()).limit(1))
    for path, params in [
        ("/api/v1/admin/rules", {}),
        ("/api/v1/admin/rules/versions", {}),
        ("/api/v1/admin/rules/versions/{version}", {"version": newest}),
    ]:
        op = contract["get", path]
        op.call(client, params, headers=keys["admin"], expect=200)
        op.call(client, params, expect=401)
        op.call(client, params, headers=keys["office"], expect=403)
        if "{version}" in path:
            op.call(client, {"version": 999_999}, headers=keys["admin"], expect=404)
            op.call(client, {"version": TOO_BIG_ID}, headers=keys["admin"], expect=404)
        op.assert_every_declared_status_seen()


def test_admin_office_categories(contract: Contract, client: FlaskClient, keys: dict) -> None:
    op = contract["put", "/api/v1/admin/offices/{code}/categories"]
    rules = client.get("/api/v1/admin/rules", headers=keys["admin"]).get_json()["rules"]
    office = {"code": POINT["office"]}
    same = {"categories": rules["handles"][POINT["office"]], "note": "contract: no change"}
    op.call(client, office, json=same, headers=keys["admin"], expect=200)
    op.call(client, {"code": "NO-SUCH"}, json=same, headers=keys["admin"], expect=404)
    unknown = {"categories": ["no_such_category"]}
    op.call(client, office, json=unknown, headers=keys["admin"], expect=422)
    op.call(client, office, json={}, headers=keys["admin"], expect=422)
    op.call(client, office, data="x", content_type="application/json", headers=keys["admin"],
            expect=400)  # fmt: skip
    op.call(client, office, json=same, expect=401)
    op.call(client, office, json=same, headers=keys["reporter"], expect=403)
    op.assert_every_declared_status_seen()


def test_admin_overrides(contract: Contract, client: FlaskClient, keys: dict) -> None:
    op = contract["put", "/api/v1/admin/overrides"]
    # removing an override that is not there: a version, and no change to routing
    nothing = {"area": POINT["office"], "category": "bin_overflow", "office": None}
    op.call(client, json=nothing, headers=keys["admin"], expect=200)
    op.call(client, json={**nothing, "area": "NO-SUCH"}, headers=keys["admin"], expect=422)
    op.call(client, json={"area": POINT["office"]}, headers=keys["admin"], expect=422)
    op.call(client, json="x", headers=keys["admin"], expect=400)
    op.call(client, json=nothing, expect=401)
    op.call(client, json=nothing, headers=keys["office"], expect=403)
    op.assert_every_declared_status_seen()


def test_admin_merge_settings(
    contract: Contract, client: FlaskClient, keys: dict, db: Session
) -> None:
    op = contract["put", "/api/v1/admin/categories/{code}/merge"]
    category = db.get(Category, "bin_overflow")
    assert category is not None
    code = {"code": category.code}
    same = {"radius_m": category.merge_radius_m, "window_hours": category.merge_window_hours}
    answer = op.call(client, code, json=same, headers=keys["admin"], expect=200).get_json()
    assert answer == {"code": category.code, **same}
    op.call(client, {"code": "no_such_category"}, json=same, headers=keys["admin"], expect=404)
    op.call(client, code, json={"radius_m": 0, "window_hours": 1}, headers=keys["admin"],
            expect=422)  # fmt: skip
    op.call(client, code, json=None, headers=keys["admin"], expect=400)
    op.call(client, code, json=same, headers=keys["unknown"], expect=401)
    op.call(client, code, json=same, headers=keys["reporter"], expect=403)
    op.assert_every_declared_status_seen()


def test_admin_category_settings(contract: Contract, client: FlaskClient, keys: dict) -> None:
    admin, code = keys["admin"], {"code": "bin_overflow"}
    read = contract["get", "/api/v1/admin/categories/{code}/settings"]
    settings = read.call(client, code, headers=admin, expect=200).get_json()
    read.call(client, {"code": "no_such_category"}, headers=admin, expect=404)
    read.call(client, code, expect=401)
    read.call(client, code, headers=keys["office"], expect=403)
    read.assert_every_declared_status_seen()

    # each replaced by what it already is: a new settings version, and nothing else changes
    for what in ("attributes", "keywords"):
        op = contract["put", f"/api/v1/admin/categories/{{code}}/{what}"]
        same = {what: settings[what], "note": "contract: no change"}
        op.call(client, code, json=same, headers=admin, expect=200)
        op.call(client, {"code": "no_such_category"}, json=same, headers=admin, expect=404)
        op.call(client, code, json={what: "x"}, headers=admin, expect=422)
        op.call(client, code, json=[same], headers=admin, expect=400)
        op.call(client, code, json=same, headers=keys["unknown"], expect=401)
        op.call(client, code, json=same, headers=keys["reporter"], expect=403)
        op.assert_every_declared_status_seen()
    assert {**read.call(client, code, headers=admin).get_json(), "version": None} == {
        **settings,
        "version": None,
    }

    versions = contract["get", "/api/v1/admin/categories/versions"]
    newest = versions.call(client, headers=admin, expect=200).get_json()[0]["version"]
    versions.call(client, expect=401)
    versions.call(client, headers=keys["office"], expect=403)
    versions.assert_every_declared_status_seen()
    one = contract["get", "/api/v1/admin/categories/versions/{version}"]
    one.call(client, {"version": newest}, headers=admin, expect=200)
    one.call(client, {"version": 999_999}, headers=admin, expect=404)
    one.call(client, {"version": newest}, expect=401)
    one.call(client, {"version": newest}, headers=keys["reporter"], expect=403)
    one.assert_every_declared_status_seen()


def test_admin_calendars(contract: Contract, client: FlaskClient, keys: dict) -> None:
    admin = keys["admin"]
    listed = contract["get", "/api/v1/admin/calendars"]
    (default,) = [c for c in listed.call(client, headers=admin, expect=200).get_json()
                  if c["name"] == "default"]  # fmt: skip
    listed.call(client, expect=401)
    listed.call(client, headers=keys["office"], expect=403)
    listed.assert_every_declared_status_seen()

    put = contract["put", "/api/v1/admin/calendars/{name}"]
    same = {key: default[key] for key in ("timezone", "weekly_hours", "days")}
    put.call(client, {"name": "default"}, json=same, headers=admin, expect=200)
    put.call(client, {"name": "night-shift"}, json=same, headers=admin, expect=201)
    put.call(client, {"name": "default"}, json={**same, "timezone": "Nowhere/City"},
             headers=admin, expect=422)  # fmt: skip
    put.call(client, {"name": "default"}, json=["x"], headers=admin, expect=400)
    put.call(client, {"name": "default"}, json=same, expect=401)
    put.call(client, {"name": "default"}, json=same, headers=keys["reporter"], expect=403)
    put.call(client, {"name": "night\x1bshift"}, json=same, headers=admin, expect=404)
    put.assert_every_declared_status_seen()

    choose = contract["put", "/api/v1/admin/offices/{code}/calendar"]
    office = {"code": POINT["office"]}
    choose.call(client, office, json={"calendar": "night-shift"}, headers=admin, expect=200)
    choose.call(client, office, json={"calendar": None}, headers=admin, expect=200)
    choose.call(client, {"code": "NO-SUCH"}, json={"calendar": None}, headers=admin, expect=404)
    choose.call(client, office, json={"calendar": "no-such"}, headers=admin, expect=422)
    choose.call(client, office, data="x", content_type="application/json", headers=admin,
                expect=400)  # fmt: skip
    choose.call(client, office, json={"calendar": None}, expect=401)
    choose.call(client, office, json={"calendar": None}, headers=keys["office"], expect=403)
    choose.assert_every_declared_status_seen()


def test_admin_webhooks(contract: Contract, client: FlaskClient, keys: dict) -> None:
    admin = keys["admin"]
    good = {"webhooks": [{"url": "http://127.0.0.1:9/hook", "secret": "s" * 16, "topics": ["*"]}]}
    put = contract["put", "/api/v1/admin/webhooks"]
    put.call(client, json=good, headers=admin, expect=200)
    put.call(client, json={"webhooks": [{"url": "ftp://x", "topics": []}]}, headers=admin,
             expect=422)  # fmt: skip
    put.call(client, json=["x"], headers=admin, expect=400)
    put.call(client, json=good, expect=401)
    put.call(client, json=good, headers=keys["office"], expect=403)
    put.assert_every_declared_status_seen()

    get = contract["get", "/api/v1/admin/webhooks"]
    assert len(get.call(client, headers=admin, expect=200).get_json()) == 1
    get.call(client, headers=keys["unknown"], expect=401)
    get.call(client, headers=keys["reporter"], expect=403)
    get.assert_every_declared_status_seen()


def test_admin_outbox(
    contract: Contract, client: FlaskClient, keys: dict, sessions, db: Session
) -> None:
    admin = keys["admin"]
    case = make_case(sessions)
    row = db.scalar(select(OutboxMessage).where(OutboxMessage.case_id == case.id).limit(1))
    assert row is not None

    listing = contract["get", "/api/v1/admin/outbox"]
    listed = listing.call(client, query_string={"limit": 5}, headers=admin, expect=200)
    assert row.id in {m["id"] for m in listed.get_json()}
    listing.call(client, query_string={"status": "dead"}, headers=admin, expect=200)
    listing.call(client, query_string={"status": "gone"}, headers=admin, expect=422)
    listing.call(client, expect=401)
    listing.call(client, headers=keys["office"], expect=403)
    listing.assert_every_declared_status_seen()

    replay = contract["post", "/api/v1/admin/outbox/{message_id}/replay"]
    message = {"message_id": row.id}
    replay.call(client, message, headers=admin, expect=409)  # pending, not dead
    row.status, row.attempts, row.last_error = "dead", 8, "HTTP 500"
    db.flush()
    body = replay.call(client, message, headers=admin, expect=200).get_json()
    assert (body["status"], body["attempts"], len(body["replays"])) == ("pending", 0, 1)
    replay.call(client, {"message_id": 999_999}, headers=admin, expect=404)
    replay.call(client, {"message_id": TOO_BIG_ID}, headers=admin, expect=404)
    replay.call(client, message, expect=401)
    replay.call(client, message, headers=keys["reporter"], expect=403)
    replay.assert_every_declared_status_seen()


@pytest.mark.parametrize(
    "path", ["/api/v1/offices", "/api/v1/categories", "/api/v1/health", "/api/v1/openapi.json"]
)
def test_directory_reads(contract: Contract, client: FlaskClient, path: str) -> None:
    op = contract["get", path]
    body = op.call(client, expect=200).get_json()
    assert body
    op.assert_every_declared_status_seen()


@pytest.mark.parametrize("path", ["/api/v1/reporters/me", "/api/v1/reporters/me/reports"])
def test_reporter_own_views(
    contract: Contract, client: FlaskClient, sessions, keys: dict, path: str
) -> None:
    op = contract["get", path]
    reporter_id, key = make_reporter(sessions)
    mine = bearer(key)
    make_case(sessions, reporter_id=reporter_id)
    op.call(client, headers=mine, expect=200)
    op.call(client, headers=mine, query_string={"limit": 0}, expect=400)
    op.call(client, headers=mine, query_string={"cursor": "nope"}, expect=400)
    op.call(client, headers=mine, query_string={"cursor": "a\x00b"}, expect=422)
    op.call(client, expect=401)
    op.call(client, headers=keys["office"], expect=403)
    op.assert_every_declared_status_seen()


@pytest.mark.parametrize("path", ["/api/v1/stats", "/api/v1/stats.csv"])
def test_statistics(
    contract: Contract, client: FlaskClient, sessions, keys: dict, path: str
) -> None:
    op = contract["get", path]
    make_case(sessions)
    op.call(client, headers=keys["admin"], expect=200)
    op.call(client, headers=keys["admin"], query_string={"group_by": "office"}, expect=200)
    op.call(client, headers=keys["supervisor"], query_string={"group_by": "day"}, expect=200)
    op.call(client, headers=keys["admin"], query_string={"from": "soon"}, expect=422)
    op.call(client, headers=keys["admin"], query_string={"office": "NOPE"}, expect=422)
    op.call(client, expect=401)
    op.call(client, headers=keys["office"], expect=403)
    op.call(client, headers=keys["supervisor"], query_string={"office": "PD-SZ"}, expect=403)
    op.assert_every_declared_status_seen()


def test_spikes(contract: Contract, client: FlaskClient, sessions, keys: dict) -> None:
    op = contract["get", "/api/v1/spikes"]
    now = utcnow()
    # a storm: enough waterlogging reports in the community today to be a spike
    for minutes in range(0, 60, 10):
        make_case(
            sessions,
            requested_category="waterlogging",
            received_at=now - timedelta(minutes=minutes),
        )
    spikes = op.call(client, headers=keys["admin"], expect=200).get_json()["spikes"]
    assert [s["category"] for s in spikes] == ["waterlogging"]
    op.call(client, headers=keys["supervisor"], expect=200)
    op.call(client, headers=keys["admin"], query_string={"office": "PD-CJ"}, expect=200)
    op.call(client, headers=keys["admin"], query_string={"office": "NOPE"}, expect=422)
    op.call(client, headers=keys["admin"], query_string={"from": "2026-01-01"}, expect=422)
    op.call(client, expect=401)
    op.call(client, headers=keys["office"], expect=403)
    op.call(client, headers=keys["supervisor"], query_string={"office": "PD-SZ"}, expect=403)
    op.assert_every_declared_status_seen()


def test_case_list_and_exports(
    contract: Contract, client: FlaskClient, sessions, keys: dict, make_app
) -> None:
    listing = contract["get", "/api/v1/cases.csv"]
    status = contract["get", "/api/v1/exports/{export_id}"]
    download = contract["get", "/api/v1/exports/{export_id}/download"]
    make_case(sessions)
    make_case(sessions)
    listing.call(client, headers=keys["admin"], expect=200)
    listing.call(client, headers=keys["admin"], query_string={"group_by": "day"}, expect=422)
    listing.call(client, expect=401)
    listing.call(client, headers=keys["office"], expect=403)
    small = make_app(EXPORT_SYNC_MAX_ROWS=1).test_client()
    asked = listing.call(small, headers=keys["supervisor"], expect=202)
    params = {"export_id": asked.get_json()["id"]}
    status.call(small, params, headers=keys["supervisor"], expect=200)
    download.call(small, params, headers=keys["supervisor"], expect=409)
    with unit_of_work(sessions) as session:
        exports.write_export(session, params["export_id"], utcnow())
    download.call(small, params, headers=keys["supervisor"], expect=200).close()
    for op in (status, download):
        op.call(small, params, expect=401)
        op.call(small, params, headers=keys["office"], expect=403)
        op.call(small, {"export_id": 999999}, headers=keys["admin"], expect=404)
        op.call(small, {"export_id": TOO_BIG_ID}, headers=keys["admin"], expect=404)
    for op in (listing, status, download):
        op.assert_every_declared_status_seen()


def test_public_statistics(contract: Contract, client: FlaskClient, sessions) -> None:
    op = contract["get", "/api/v1/public/stats"]
    make_case(sessions)
    op.call(client, expect=200)
    op.call(client, query_string={"office": "PD-CJ", "from": "2025-01-01"}, expect=200)
    op.call(client, query_string={"group_by": "office"}, expect=422)
    op.assert_every_declared_status_seen()


def test_recheck(
    contract: Contract,
    client: FlaskClient,
    sessions,
    keys: dict,
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    op = contract["post", "/api/v1/cases/{case_id}/recheck"]
    case = make_case(sessions)
    params = {"case_id": case.id}
    rider = keys["reporter"]
    nearby = {"text": "又满了", "lat": POINT["lat"], "lon": POINT["lon"]}
    _drive(client, case.id, keys, TO_CLOSED[:2])
    assert client.post("/api/v1/reports", json=nearby, headers=rider).status_code == 202
    # filed before the closing: not offered the check
    op.call(client, params, json={"still_fixed": True}, headers=rider, expect=403)
    _drive(client, case.id, keys, TO_CLOSED[2:])
    assert client.post("/api/v1/reports", json=nearby, headers=rider).status_code == 202
    op.call(client, params, json={"still_fixed": "yes"}, headers=rider, expect=400)
    op.call(client, params, json={"still_fixed": "y\x17"}, headers=rider, expect=422)
    op.call(client, params, json={"still_fixed": True}, expect=401)
    op.call(client, params, json={"still_fixed": True}, headers=keys["office"], expect=403)
    op.call(client, {"case_id": 999_999}, json={"still_fixed": True}, headers=rider, expect=404)
    op.call(client, params, json={"still_fixed": True}, headers=rider, expect=200)
    op.call(client, params, json={"still_fixed": False}, headers=rider, expect=409)
    monkeypatch.setitem(app.config, "RATE_LIMIT_ACTIONS_PER_KEY", "1/hour")
    op.call(client, params, json={"still_fixed": True}, headers=keys["office"], expect=403)
    op.call(client, params, json={"still_fixed": True}, headers=keys["office"], expect=429)
    op.assert_every_declared_status_seen()


def test_every_operation_is_driven_above(contract: Contract) -> None:
    """A new operation needs its good and bad requests in this module."""
    driven = {
        ("post", "/api/v1/reporters"),
        ("post", "/api/v1/reports"),
        ("get", "/api/v1/reports/{report_id}"),
        ("post", "/api/v1/cases/{case_id}/split"),
        ("post", "/api/v1/cases/{case_id}/reject"),
        *(("post", f"/api/v1/cases/{{case_id}}/{action}") for action in CASE_ACTIONS),
        ("post", "/api/v1/cases/{case_id}/resolve"),
        *(("post", f"/api/v1/reports/{{report_id}}/{action}") for action in REPORTER_ACTIONS),
        ("get", "/api/v1/admin/rules"),
        ("get", "/api/v1/admin/rules/versions"),
        ("get", "/api/v1/admin/rules/versions/{version}"),
        ("put", "/api/v1/admin/offices/{code}/categories"),
        ("put", "/api/v1/admin/overrides"),
        ("put", "/api/v1/admin/categories/{code}/merge"),
        ("get", "/api/v1/admin/categories/{code}/settings"),
        ("put", "/api/v1/admin/categories/{code}/attributes"),
        ("put", "/api/v1/admin/categories/{code}/keywords"),
        ("get", "/api/v1/admin/categories/versions"),
        ("get", "/api/v1/admin/categories/versions/{version}"),
        ("get", "/api/v1/admin/webhooks"),
        ("put", "/api/v1/admin/webhooks"),
        ("get", "/api/v1/admin/outbox"),
        ("post", "/api/v1/admin/outbox/{message_id}/replay"),
        ("get", "/api/v1/admin/calendars"),
        ("put", "/api/v1/admin/calendars/{name}"),
        ("put", "/api/v1/admin/offices/{code}/calendar"),
        ("get", "/api/v1/offices/{code}/queue"),
        ("get", "/api/v1/cases/{case_id}"),
        ("post", "/api/v1/cases/{case_id}/recheck"),
        ("get", "/api/v1/offices"),
        ("get", "/api/v1/categories"),
        ("get", "/api/v1/health"),
        ("get", "/api/v1/openapi.json"),
        ("get", "/api/v1/reporters/me"),
        ("get", "/api/v1/reporters/me/reports"),
        ("get", "/api/v1/stats"),
        ("get", "/api/v1/stats.csv"),
        ("get", "/api/v1/spikes"),
        ("get", "/api/v1/public/stats"),
        ("get", "/api/v1/cases.csv"),
        ("get", "/api/v1/exports/{export_id}"),
        ("get", "/api/v1/exports/{export_id}/download"),
    }
    assert set(contract.operations) == driven


def _png(extra: bytes = b"") -> io.BytesIO:
    return io.BytesIO(tiny_png(3) + extra)
