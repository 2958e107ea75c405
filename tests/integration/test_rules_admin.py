"""Routing rules are data: admins change them through the API, every change is a version, and
a case records the version that routed it."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.entities import RuleVersion
from tests.factories import make_case, make_key
from tests.helpers import sample_point

COMMUNITY = sample_point()["office"]


@pytest.fixture
def admin(sessions: sessionmaker[Session]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(sessions, role='admin')}"}


def office_of(case: Any) -> str | None:
    return case.routing.get("office")


def test_rules_need_an_admin_key(client: FlaskClient, sessions) -> None:
    assert client.get("/api/v1/admin/rules").status_code == 401
    reporter = {"Authorization": f"Bearer {make_key(sessions)}"}
    assert client.get("/api/v1/admin/rules", headers=reporter).status_code == 403


def test_override_changes_routing_and_is_versioned(client: FlaskClient, admin, sessions) -> None:
    before = client.get("/api/v1/admin/rules", headers=admin).get_json()
    assert before["rules"]["handles"][COMMUNITY]
    first = make_case(sessions)
    assert office_of(first) == COMMUNITY and first.rule_version == before["version"]

    response = client.put(
        "/api/v1/admin/overrides",
        json={"area": COMMUNITY, "category": "bin_overflow", "office": "PD-SZ", "note": "trial"},
        headers=admin,
    )
    assert response.status_code == 200
    changed = response.get_json()
    assert changed["version"] > before["version"] and changed["note"] == "trial"
    assert {"area": COMMUNITY, "category": "bin_overflow", "office": "PD-SZ"} in changed["rules"][
        "overrides"
    ]

    second = make_case(sessions)
    assert office_of(second) == "PD-SZ" and second.routing["rule"] == "override"
    assert second.rule_version == changed["version"]
    # the earlier case keeps the version that routed it, and that version is still readable
    old = client.get(f"/api/v1/admin/rules/versions/{before['version']}", headers=admin).get_json()
    assert old["rules"]["overrides"] == before["rules"]["overrides"]

    removed = client.put(
        "/api/v1/admin/overrides",
        json={"area": COMMUNITY, "category": "bin_overflow", "office": None},
        headers=admin,
    ).get_json()
    assert removed["rules"]["overrides"] == before["rules"]["overrides"]
    assert office_of(make_case(sessions)) == COMMUNITY
    listed = client.get("/api/v1/admin/rules/versions", headers=admin).get_json()
    assert [v["version"] for v in listed[:3]] == [
        removed["version"],
        changed["version"],
        before["version"],
    ]


def test_office_categories_change(client: FlaskClient, admin, sessions) -> None:
    response = client.put(
        f"/api/v1/admin/offices/{COMMUNITY}/categories",
        json={"categories": ["noise", "other"], "note": "bins moved to the street"},
        headers=admin,
    )
    assert response.status_code == 200
    assert response.get_json()["rules"]["handles"][COMMUNITY] == ["noise", "other"]
    case = make_case(sessions)
    assert case.status == "triage" and case.routing["triage_reason"] == "no_office_handles"
    offices = {o["code"]: o for o in client.get("/api/v1/offices").get_json()}
    assert offices[COMMUNITY]["categories"] == ["noise", "other"]


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        (
            "/api/v1/admin/overrides",
            {"area": "NOPE", "category": "noise", "office": "PD"},
            422,
            "area",
        ),
        (
            "/api/v1/admin/overrides",
            {"area": "PD-SZ", "category": "noise", "office": "PD"},
            422,
            "area",
        ),
        (
            "/api/v1/admin/overrides",
            {"area": "PD", "category": "nope", "office": "PD"},
            422,
            "category",
        ),
        (
            "/api/v1/admin/overrides",
            {"area": "PD", "category": "noise", "office": "X"},
            422,
            "office",
        ),
        ("/api/v1/admin/overrides", {"area": "PD", "category": "noise"}, 422, "office"),
        ("/api/v1/admin/offices/PD/categories", {"categories": ["nope"]}, 422, "categories"),
        ("/api/v1/admin/offices/PD/categories", {"categories": "noise"}, 422, "categories"),
        ("/api/v1/admin/offices/NOPE/categories", {"categories": []}, 404, "code"),
    ],
)
def test_bad_rule_changes_are_refused(
    client: FlaskClient, admin, db: Session, path: str, body: dict, status: int, field: str
) -> None:
    versions = db.scalar(select(RuleVersion.id).order_by(RuleVersion.id.desc()).limit(1))
    response = client.put(path, json=body, headers=admin)
    assert response.status_code == status, response.get_json()
    assert field in response.get_json()["error"]["fields"]
    db.expire_all()
    assert db.scalar(select(RuleVersion.id).order_by(RuleVersion.id.desc()).limit(1)) == versions


def test_reject_reroutes_and_never_bounces(client: FlaskClient, admin, sessions) -> None:
    # the community and its street both take parking, so a rejection has somewhere to go
    client.put(
        f"/api/v1/admin/offices/{COMMUNITY}/categories",
        json={"categories": ["illegal_parking", "bin_overflow"]},
        headers=admin,
    )
    case = make_case(sessions, requested_category="illegal_parking")
    assert office_of(case) == COMMUNITY
    community_key = {
        "Authorization": f"Bearer {make_key(sessions, role='office', office_code=COMMUNITY)}"
    }
    answer = client.post(
        f"/api/v1/cases/{case.id}/reject", json={"reason": "不归我们管"}, headers=community_key
    )
    assert answer.status_code == 200, answer.get_json()
    street = answer.get_json()["office"]
    assert (
        street and street != COMMUNITY and answer.get_json()["routing"]["excluded"] == [COMMUNITY]
    )

    # the community cannot reject what is no longer its case: to it, there is no such case
    again = client.post(
        f"/api/v1/cases/{case.id}/reject", json={"reason": "再退"}, headers=community_key
    )
    assert again.status_code == 404

    street_key = {
        "Authorization": f"Bearer {make_key(sessions, role='office', office_code=street)}"
    }
    final = client.post(
        f"/api/v1/cases/{case.id}/reject", json={"reason": "也不是我们"}, headers=street_key
    )
    body = final.get_json()
    # nobody left who has not rejected it: triage, not back to the community
    assert body["status"] == "triage" and body["office"] is None
    assert body["routing"]["excluded"] == sorted([COMMUNITY, street])

    report = client.get(f"/api/v1/reports/{case.reports[0].id}").get_json()
    actions = [e["action"] for e in report["events"]]
    assert actions == [
        "received",
        "classified",
        "routed",
        "rejected",
        "routed",
        "rejected",
        "triaged",
    ]
    assert report["events"][-1]["to_status"] == report["status"] == "triage"


def test_reject_needs_the_right_key_and_a_reason(client: FlaskClient, sessions) -> None:
    case = make_case(sessions)
    key = {"Authorization": f"Bearer {make_key(sessions, role='office', office_code=COMMUNITY)}"}
    assert client.post(f"/api/v1/cases/{case.id}/reject", json={}, headers=key).status_code == 422
    assert (
        client.post("/api/v1/cases/999999/reject", json={"reason": "no"}, headers=key).status_code
        == 404
    )
    reporter = {"Authorization": f"Bearer {make_key(sessions)}"}
    assert (
        client.post(
            f"/api/v1/cases/{case.id}/reject", json={"reason": "xx"}, headers=reporter
        ).status_code
        == 403
    )
