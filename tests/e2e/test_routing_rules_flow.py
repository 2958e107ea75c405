"""Rule changes made through the admin API steer what the real worker does next."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete

from models.entities import RoutingOverride
from models.routing_rules import record_version
from models.session import unit_of_work
from tests.factories import make_key
from tests.helpers import sample_point, wait_until_processed

pytestmark = pytest.mark.e2e


@pytest.fixture
def admin(sessions) -> dict[str, str]:
    yield {"Authorization": f"Bearer {make_key(sessions, role='admin')}"}
    with unit_of_work(sessions) as session:
        if session.execute(delete(RoutingOverride)).rowcount:
            record_version(session, "test", "overrides removed")


def test_override_then_rejection_through_the_worker(
    worker, client: FlaskClient, auth, admin, sessions
) -> None:
    point = sample_point("PD-DT-03")
    changed = client.put(
        "/api/v1/admin/overrides",
        json={"area": "PD-DT", "category": "street_vending", "office": "PD-DT-03", "note": "pilot"},
        headers=admin,
    ).get_json()
    created = client.post(
        "/api/v1/reports",
        json={
            "text": "路边摆摊卖水果 占了半条路",
            "category": "street_vending",
            "lat": point["lat"],
            "lon": point["lon"],
        },
        headers=auth,
    )
    report = wait_until_processed(client, created.get_json()["id"])
    assert report["office"]["code"] == "PD-DT-03"
    assert report["routing"]["rule"] == "override"
    assert report["routing"]["rule_version"] == changed["version"]
    assert report["routing"]["polygon"] == "PD-DT-03"

    office = {
        "Authorization": f"Bearer {make_key(sessions, role='office', office_code='PD-DT-03')}"
    }
    rejected = client.post(
        f"/api/v1/cases/{report['case_id']}/reject", json={"reason": "占道归街道管"}, headers=office
    ).get_json()
    assert rejected["office"] == "PD-DT" and rejected["status"] == "routed"
    after = client.get(f"/api/v1/reports/{report['id']}").get_json()
    assert after["office"]["code"] == "PD-DT"
    assert [e["action"] for e in after["events"]][-2:] == ["rejected", "routed"]


def test_me_too_and_split_through_the_worker(worker, client: FlaskClient, auth, sessions) -> None:
    point = sample_point("PD-CJ-02")
    body = {"text": "这个垃圾桶又满了", "lat": point["lat"], "lon": point["lon"]}
    first = wait_until_processed(
        client, client.post("/api/v1/reports", json=body, headers=auth).get_json()["id"]
    )
    other = {"Authorization": f"Bearer {make_key(sessions)}"}
    again = client.post(
        "/api/v1/reports",
        json={**body, "text": "垃圾桶满了没人收", "lat": point["lat"] + 0.0002},
        headers=other,
    )
    second = wait_until_processed(client, again.get_json()["id"])
    assert second["case_id"] == first["case_id"]
    assert second["reports_in_case"] == 2 and second["reporters_in_case"] == 2
    assert second["events"][-1]["action"] == "merged"

    office = {
        "Authorization": f"Bearer {make_key(sessions, role='office', office_code='PD-CJ-02')}"
    }
    split = client.post(
        f"/api/v1/cases/{first['case_id']}/split", json={"report_id": second["id"]}, headers=office
    )
    assert split.status_code == 202
    alone = wait_until_processed(client, second["id"])
    assert alone["case_id"] != first["case_id"] and alone["status"] == "routed"
    assert alone["reports_in_case"] == 1


def test_a_burst_of_reports_of_one_spot_makes_one_case(
    worker, client: FlaskClient, sessions
) -> None:
    # Posted back to back, so the two worker processes take them at the same time.
    point = sample_point("PD-HX-01")
    ids = []
    for n in range(8):
        reporter = {"Authorization": f"Bearer {make_key(sessions)}"}
        body = {
            "text": f"路灯不亮 第{n + 1}个人报了",
            "lat": point["lat"] + n * 0.00003,
            "lon": point["lon"],
        }
        ids.append(client.post("/api/v1/reports", json=body, headers=reporter).get_json()["id"])
    reports = [wait_until_processed(client, report_id) for report_id in ids]
    assert {r["case_id"] for r in reports} == {reports[0]["case_id"]}
    assert all(r["category"] == "street_light" for r in reports)
    final = client.get(f"/api/v1/reports/{ids[0]}").get_json()
    assert final["reports_in_case"] == 8 and final["reporters_in_case"] == 8
