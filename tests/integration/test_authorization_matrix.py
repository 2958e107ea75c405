"""Who gets past authorisation, on every route of the app: each rule of ``app.url_map``, with
each of its methods, is called by every role, and the status must be the one the table below
expects for that role. A route added without a line in the table fails
``test_every_route_has_a_line``; no combination may answer 5xx.

The roles: anonymous (no key, no console session), the reporter of the report the URLs name,
another reporter, staff of the office its case is routed to, staff of a sibling office (the
same street), a supervisor of the street above, and an admin. There is no partner role
(``models.entities.KEY_ROLES`` and ``cityrelay create-key`` know reporter, office, supervisor
and admin), so none is tried. Under /console and /dashboard the office-side roles are console
users of the same role and office, signed in (the console knows no keys); every console POST
carries its session's CSRF token, so what answers is the authorisation, not the CSRF check.

Every request runs inside a savepoint rolled back after it: each role finds the same rows, so an
accept that succeeded for one role does not make the next one's a 409. Bodies are empty (or
minimal): an authorised role may be refused for the body (400, 415 or 422), an unauthorised
one gets 401, 403 or 404 (a console redirect to the login page), never 2xx."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from models.base import utcnow
from models.entities import (
    KEY_ROLES,
    CategorySettingsVersion,
    Export,
    ExportChunk,
    OutboxMessage,
    Photo,
    RuleVersion,
)
from models.session import unit_of_work
from services import users
from services.accounts import find_key
from services.photo_store import DatabasePhotoStore
from tests.factories import make_case, make_key, make_reporter
from tests.helpers import sample_point, tiny_png

POINT = sample_point()
OFFICE = POINT["office"]  # a community of street PD-CJ
SIBLING = "PD-CJ-02"  # another community of that street
STREET = "PD-CJ"
# The stored file of the matrix's finished export.
EXPORTED = b"id\r\n1\r\n"
PASSWORD = "a-good-long-password"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

ANON = "anonymous"
OWN = "reporter"
OTHER = "other reporter"
STAFF = "staff"
SIB = "sibling staff"
SUP = "supervisor above"
ADMIN = "admin"
ROLES = (ANON, OWN, OTHER, STAFF, SIB, SUP, ADMIN)
OFFICE_SIDE = {STAFF: ("office", "staff", OFFICE), SIB: ("office", "staff", SIBLING)}
OFFICE_SIDE |= {SUP: ("supervisor", "supervisor", STREET), ADMIN: ("admin", "admin", STREET)}

# What a role may get. "2xx" is any success; "login" a redirect to the console's login page;
# "body" an authorised role refused for the empty body (400, 415 or 422).
OK = "2xx"
LOGIN = "login"
BODY = "body"
# A readiness probe answers on the state of the machine (200, or 503 without a worker's
# heartbeat), whoever asks.
READINESS = "200 or 503"


def row(default: str | int, **by_role: str | int) -> dict[str, str | int]:
    """One line of the table: ``default`` for every role, ``by_role`` (keys as in ``ROLE_ARGS``)
    where it differs."""
    line: dict[str, str | int] = dict.fromkeys(ROLES, default)
    for name, expected in by_role.items():
        line[ROLE_ARGS[name]] = expected
    return line


ROLE_ARGS = {
    "anon": ANON,
    "own": OWN,
    "other": OTHER,
    "staff": STAFF,
    "sib": SIB,
    "sup": SUP,
    "admin": ADMIN,
}
PUBLIC = row(OK)
ADMIN_ONLY = row(403, anon=401, admin=OK)
ADMIN_BODY = row(403, anon=401, admin=BODY)
REPORTER_ONLY = row(403, anon=401, own=OK, other=OK)
# The case's office-side actions: its staff and the supervisor above, or only one of them.
CASE_ACTION = row(403, anon=401, staff=OK, sib=404, sup=OK, admin=403)
CASE_ACTION_BODY = row(403, anon=401, staff=BODY, sib=BODY, sup=BODY, admin=BODY)
STATS_READERS = row(403, anon=401, sup=OK, admin=OK)
CONSOLE_PAGE = row(LOGIN, staff=OK, sib=OK, sup=OK, admin=OK)

CASE = "/api/v1/cases/<id:case_id>"
REPORT = "/api/v1/reports/<id:report_id>"
ADMIN_API = "/api/v1/admin"
OPEN311 = "/open311/v2"

# Every route and method: what each role gets. The case is routed to the staff's office.
TABLE: dict[tuple[str, str], dict[str, str | int]] = {
    # ---- the admin's
    (f"{ADMIN_API}/calendars", "GET"): ADMIN_ONLY,
    (f"{ADMIN_API}/calendars/<name>", "PUT"): ADMIN_BODY,
    (f"{ADMIN_API}/categories/<code>/attributes", "PUT"): ADMIN_BODY,
    (f"{ADMIN_API}/categories/<code>/keywords", "PUT"): ADMIN_BODY,
    (f"{ADMIN_API}/categories/<code>/merge", "PUT"): ADMIN_BODY,
    (f"{ADMIN_API}/categories/<code>/settings", "GET"): ADMIN_ONLY,
    (f"{ADMIN_API}/categories/versions", "GET"): ADMIN_ONLY,
    (f"{ADMIN_API}/categories/versions/<id:version>", "GET"): ADMIN_ONLY,
    (f"{ADMIN_API}/offices/<code>/calendar", "PUT"): ADMIN_BODY,
    (f"{ADMIN_API}/offices/<code>/categories", "PUT"): ADMIN_BODY,
    (f"{ADMIN_API}/outbox", "GET"): ADMIN_ONLY,
    # the message was delivered, not dead: nothing to replay
    (f"{ADMIN_API}/outbox/<id:message_id>/replay", "POST"): row(403, anon=401, admin=409),
    (f"{ADMIN_API}/overrides", "PUT"): ADMIN_BODY,
    (f"{ADMIN_API}/rules", "GET"): ADMIN_ONLY,
    (f"{ADMIN_API}/rules/versions", "GET"): ADMIN_ONLY,
    (f"{ADMIN_API}/rules/versions/<id:version>", "GET"): ADMIN_ONLY,
    (f"{ADMIN_API}/webhooks", "GET"): ADMIN_ONLY,
    (f"{ADMIN_API}/webhooks", "PUT"): ADMIN_BODY,
    # ---- the case, by the office-side keys; the sibling office finds no such case
    (CASE, "GET"): row(403, anon=401, staff=OK, sib=404, sup=OK, admin=OK),
    (f"{CASE}/accept", "POST"): row(403, anon=401, staff=OK, sib=404, sup=OK),
    (f"{CASE}/start", "POST"): row(403, anon=401, staff=409, sib=404, sup=409),
    (f"{CASE}/ask", "POST"): row(403, anon=401, staff=409, sib=404, sup=409),
    (f"{CASE}/resolve", "POST"): row(403, anon=401, staff=409, sib=404, sup=409),
    # the admin places triage cases, not routed ones
    (f"{CASE}/transfer", "POST"): row(403, anon=401, staff=OK, sib=404, sup=OK, admin=409),
    (f"{CASE}/extend", "POST"): row(403, anon=401, staff=409, sib=404, sup=409),
    (f"{CASE}/approve-extension", "POST"): row(403, anon=401, sib=404, sup=409),
    (f"{CASE}/deny-extension", "POST"): row(403, anon=401, sib=404, sup=409),
    (f"{CASE}/close", "POST"): row(403, anon=401, sib=404, sup=OK, admin=409),
    (f"{CASE}/rework", "POST"): row(403, anon=401, sib=404, sup=409),
    (f"{CASE}/reject", "POST"): row(403, anon=401, staff=OK, sib=404, sup=OK),
    # staff keys only; the case's only report cannot leave it
    (f"{CASE}/split", "POST"): row(403, anon=401, staff=409, sib=404),
    # reporters near a case closed as fixed; this one is open
    (f"{CASE}/recheck", "POST"): row(403, anon=401),
    # ---- the reports, by reporters; another's report is public, so 403 names no secret
    ("/api/v1/reports", "POST"): row(403, anon=401, own=OK, other=OK),
    (REPORT, "GET"): PUBLIC,
    (f"{REPORT}/answer", "POST"): row(403, anon=401, own=409),
    (f"{REPORT}/confirm", "POST"): row(403, anon=401, own=409),
    (f"{REPORT}/reopen", "POST"): row(403, anon=401, own=409),
    ("/api/v1/reporters", "POST"): PUBLIC,
    ("/api/v1/reporters/me", "GET"): REPORTER_ONLY,
    ("/api/v1/reporters/me/reports", "GET"): REPORTER_ONLY,
    # ---- offices' work and statistics
    ("/api/v1/offices/<code>/queue", "GET"): row(403, anon=401, staff=OK, sup=OK),
    ("/api/v1/cases.csv", "GET"): STATS_READERS,
    ("/api/v1/stats", "GET"): STATS_READERS,
    ("/api/v1/stats.csv", "GET"): STATS_READERS,
    ("/api/v1/spikes", "GET"): STATS_READERS,
    # the supervisor asked for it; the admin reads every export
    ("/api/v1/exports/<id:export_id>", "GET"): STATS_READERS,
    ("/api/v1/exports/<id:export_id>/download", "GET"): STATS_READERS,
    # ---- public reads
    ("/api/v1/categories", "GET"): PUBLIC,
    ("/api/v1/offices", "GET"): PUBLIC,
    ("/api/v1/health", "GET"): PUBLIC,
    ("/healthz", "GET"): PUBLIC,
    ("/readyz", "GET"): row(READINESS),
    ("/metrics", "GET"): PUBLIC,
    ("/api/v1/openapi.json", "GET"): PUBLIC,
    ("/api/v1/public/stats", "GET"): PUBLIC,
    ("/media/<name>", "GET"): PUBLIC,
    ("/docs", "GET"): PUBLIC,
    ("/public", "GET"): PUBLIC,
    ("/report", "GET"): PUBLIC,
    ("/report/<id:report_id>", "GET"): PUBLIC,
    ("/report/strings.js", "GET"): PUBLIC,
    # static files, grouped: anyone
    **{
        (path, "GET"): PUBLIC
        for path in (
            "/static/<path:filename>",
            "/console/static/<path:filename>",
            "/dashboard/static/<path:filename>",
            "/docs/assets/<path:filename>",
        )
    },
    # ---- Open311 (GeoReport v2): reads are public; a POST without api_key is 403 for all
    (f"{OPEN311}/discovery.<fmt>", "GET"): PUBLIC,
    (f"{OPEN311}/services.<fmt>", "GET"): PUBLIC,
    (f"{OPEN311}/services/<code>.<fmt>", "GET"): PUBLIC,
    (f"{OPEN311}/requests.<fmt>", "GET"): PUBLIC,
    (f"{OPEN311}/requests.<fmt>", "POST"): row(403),
    (f"{OPEN311}/requests/<request_id>.<fmt>", "GET"): PUBLIC,
    (f"{OPEN311}/tokens/<token>.<fmt>", "GET"): PUBLIC,
    # ---- the console, by its signed-in users; the others are sent to the login page
    ("/console", "GET"): CONSOLE_PAGE,
    ("/console/", "GET"): CONSOLE_PAGE,
    ("/console/cases/<id:case_id>", "GET"): row(LOGIN, staff=OK, sib=404, sup=OK, admin=OK),
    # accept: done (303 back to the case); the admin may not accept a routed case
    ("/console/cases/<id:case_id>/<action>", "POST"): row(
        LOGIN, staff=303, sib=404, sup=303, admin=403
    ),
    # the form is anyone's; a signed-in user is sent on to the queue
    ("/console/login", "GET"): row(OK, staff=302, sib=302, sup=302, admin=302),
    ("/console/login", "POST"): row(401),
    ("/console/logout", "POST"): row(LOGIN, staff=303, sib=303, sup=303, admin=303),
    ("/console/password", "GET"): CONSOLE_PAGE,
    ("/console/password", "POST"): row(LOGIN, staff=422, sib=422, sup=422, admin=422),
    ("/dashboard", "GET"): row(LOGIN, staff=403, sib=403, sup=OK, admin=OK),
}

# Minimal valid bodies, so that the answer is about who calls, not about the body.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    (f"{CASE}/ask", "POST"): {"question": "哪个门口？"},
    (f"{CASE}/resolve", "POST"): {"note": "已清运"},
    (f"{CASE}/transfer", "POST"): {"office": SIBLING, "reason": "隔壁的"},
    (f"{CASE}/extend", "POST"): {"hours": 4, "reason": "等配件"},
    (f"{CASE}/close", "POST"): {"closure": "invalid"},
    (f"{CASE}/rework", "POST"): {"note": "再来"},
    (f"{CASE}/reject", "POST"): {"reason": "不是我们的"},
    (f"{CASE}/split", "POST"): {"report_id": "<report_id>"},
    (f"{CASE}/recheck", "POST"): {"still_fixed": True},
    ("/api/v1/reports", "POST"): {"text": "路灯不亮", "lat": POINT["lat"], "lon": POINT["lon"]},
    (f"{REPORT}/answer", "POST"): {"text": "南门"},
    (f"{REPORT}/reopen", "POST"): {"reason": "又坏了"},
}


# ---------------------------------------------------------------- the rows every URL names


@dataclass
class World:
    """The rows the URLs name, the roles' keys and their console clients."""

    values: dict[str, Any]
    keys: dict[str, str | None]
    consoles: dict[str, FlaskClient] = field(default_factory=dict)


def bearer(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


@pytest.fixture
def world(app: Flask, sessions: sessionmaker[Session]) -> World:
    own_id, own_key = make_reporter(sessions)
    _other_id, other_key = make_reporter(sessions)
    token = f"matrix-{uuid.uuid4().hex}"
    case = make_case(sessions, reporter_id=own_id, token=token)
    assert case.status == "routed" and case.office is not None and case.office.code == OFFICE
    report_id = case.reports[0].id
    keys: dict[str, str | None] = {ANON: None, OWN: own_key, OTHER: other_key}
    for role, (key_role, _user_role, office) in OFFICE_SIDE.items():
        keys[role] = make_key(sessions, role=key_role, office_code=office)
    photo = tiny_png(7)
    photo_hash = hashlib.sha256(photo).hexdigest()
    photo_name = f"{photo_hash}.png"
    with unit_of_work(sessions) as session:
        supervisor = find_key(session, keys[SUP] or "")
        assert supervisor is not None
        DatabasePhotoStore(session).put(photo_hash, "image/png", photo)
        session.add(
            Photo(
                report_id=report_id,
                position=0,
                filename=photo_name,
                content_type="image/png",
                size_bytes=len(photo),
            )
        )
        export = Export(
            kind="cases",
            params={},
            requested_by=supervisor.assignee,
            status="done",
            rows=1,
            size_bytes=len(EXPORTED),
            finished_at=utcnow(),
        )
        session.add(export)
        session.flush()
        session.add(ExportChunk(export_id=export.id, start=0, data=EXPORTED))
        message_id = session.scalar(
            select(func.max(OutboxMessage.id)).where(OutboxMessage.case_id == case.id)
        )
        values = {
            "case_id": case.id,
            "report_id": report_id,
            "request_id": str(report_id),
            "token": token,
            "export_id": export.id,
            "message_id": message_id,
            "rule_version": session.scalar(select(func.max(RuleVersion.id))) or 1,
            "settings_version": session.scalar(select(func.max(CategorySettingsVersion.id))) or 1,
            "category": case.category_code,
            "photo": photo_name,
        }
    return World(values, keys)


def console_client(app: Flask, sessions: sessionmaker[Session], role: str) -> FlaskClient:
    """A console session: signed in for an office-side role, a visitor's for the others; it
    holds a CSRF token either way."""
    client = app.test_client()
    if role in OFFICE_SIDE:
        _key_role, user_role, office = OFFICE_SIDE[role]
        username = f"matrix-{user_role}-{uuid.uuid4().hex[:8]}"
        with unit_of_work(sessions) as session:
            user, one_time = users.create_user(
                session, username=username, office_code=office, role=user_role
            )
            users.change_password(session, user.id, one_time, PASSWORD)
        signed = client.post(
            "/console/login",
            data={"username": username, "password": PASSWORD, "csrf_token": _csrf(client)},
        )
        assert signed.status_code == 303, signed.get_data(as_text=True)
    else:
        _csrf(client)
    return client


def _csrf(client: FlaskClient) -> str:
    client.get("/console/login")
    with client.session_transaction() as session:
        token: str = session["csrf_token"]
    return token


# ---------------------------------------------------------------- building the requests


def url_values(rule: Rule, values: dict[str, Any]) -> dict[str, Any]:
    """Concrete values for each argument of ``rule``, from the seeded rows."""
    path = rule.rule
    chosen: dict[str, Any] = {}
    for name in rule.arguments:
        if name in ("case_id", "report_id", "request_id", "token", "export_id", "message_id"):
            chosen[name] = values[name]
        elif name == "version":
            key = "settings_version" if "/categories/" in path else "rule_version"
            chosen[name] = values[key]
        elif name == "code":
            chosen[name] = values["category"] if "categor" in path or "services" in path else OFFICE
        elif name == "fmt":
            chosen[name] = "json"
        elif name == "name":
            chosen[name] = values["photo"] if path.startswith("/media") else "matrix-calendar"
        elif name == "action":
            chosen[name] = "accept"
        elif name == "filename":
            chosen[name] = STATIC_FILES[rule.endpoint]
        else:
            raise AssertionError(f"no value for <{name}> of {path}: add one")
    return chosen


def build(rule: Rule, values: dict[str, Any]) -> str:
    """The path of ``rule`` itself with ``values`` (``url_for`` might pick a sibling rule)."""
    built = rule.build(values, append_unknown=False)
    assert built is not None, rule.rule
    return built[1]


STATIC_FILES = {
    "console.static": "console.css",
    "dashboard_pages.static": "dashboard.js",
    "openapi.static": "docs.css",
    "pages.static": "report.js",
}


def methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


def every_route(app: Flask) -> set[tuple[str, str]]:
    return {(rule.rule, method) for rule in app.url_map.iter_rules() for method in methods(rule)}


@contextmanager
def undone(connection: Connection | None) -> Iterator[None]:
    """What the block writes is rolled back after it."""
    assert connection is not None, "the matrix runs in the test's transaction"
    savepoint = connection.begin_nested()
    try:
        yield
    finally:
        if savepoint.is_active:
            savepoint.rollback()


def call(
    client: FlaskClient,
    method: str,
    url: str,
    headers: dict[str, str],
    console: bool,
    body: dict[str, Any],
) -> TestResponse:
    if method == "GET":
        return client.get(url, headers=headers)
    if console:
        with client.session_transaction() as session:
            token = session.get("csrf_token", "")
        return client.open(url, method=method, data={"csrf_token": token}, headers=headers)
    return client.open(url, method=method, json=body, headers=headers)


def body_for(path: str, method: str, values: dict[str, Any]) -> dict[str, Any]:
    body = BODIES.get((path, method), {})
    return {k: values["report_id"] if v == "<report_id>" else v for k, v in body.items()}


def matches(expected: str | int, response: TestResponse) -> bool:
    status = response.status_code
    if expected == OK:
        return 200 <= status < 300
    if expected == LOGIN:
        location = response.headers.get("Location", "")
        return status in (302, 303) and location.startswith("/console/login")
    if expected == BODY:
        return status in (400, 415, 422)
    if expected == READINESS:
        return status in (200, 503)
    return status == expected


# ---------------------------------------------------------------- the tests


def test_every_route_has_a_line(app: Flask) -> None:
    routes = every_route(app)
    assert routes - set(TABLE) == set(), "a route without a line in TABLE: add one"
    assert set(TABLE) - routes == set(), "a line in TABLE for a route that is gone"


def test_there_is_no_partner_role() -> None:
    assert "partner" not in KEY_ROLES and "partner" not in users.USER_ROLES


@pytest.mark.parametrize(("path", "method"), sorted(TABLE))
def test_who_gets_past_authorisation(
    app: Flask,
    sessions: sessionmaker[Session],
    database_isolation: Connection | None,
    world: World,
    path: str,
    method: str,
) -> None:
    rule = next(r for r in app.url_map.iter_rules() if r.rule == path and method in r.methods)
    console = path.startswith(("/console", "/dashboard"))
    url = build(rule, url_values(rule, world.values))
    wrong = []
    for role in ROLES:
        if console:
            client = world.consoles.get(role) or console_client(app, sessions, role)
            world.consoles[role] = client
        else:
            client = app.test_client()
        with undone(database_isolation):
            body = body_for(path, method, world.values)
            response = call(client, method, url, bearer(world.keys[role]), console, body)
        expected = TABLE[(path, method)][role]
        assert response.status_code < 500 or expected == READINESS, (
            role,
            method,
            url,
            response.get_data(as_text=True),
        )
        if not matches(expected, response):
            wrong.append((role, expected, response.status_code, response.get_data(as_text=True)))
    assert not wrong, f"{method} {url}: " + "; ".join(
        f"{role}: expected {expected}, got {got} {body[:200]}"
        for role, expected, got, body in wrong
    )
