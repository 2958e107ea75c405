"""'Me too': a second report of the same problem joins the open case; an office can split a
wrong one back out."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from models.entities import Case, Category, Report
from models.session import unit_of_work
from routing.classify import default_classifier
from routing.merge import distance_m
from services.casework import split_report
from services.processing import process_report
from tests.factories import make_case, make_key, make_report, process
from tests.helpers import sample_point

POINT = sample_point()


def nearby(metres_north: float) -> dict[str, float]:
    return {"lat": POINT["lat"] + metres_north / 111_195, "lon": POINT["lon"]}


def test_same_problem_nearby_joins_the_case(client: FlaskClient, sessions) -> None:
    first = make_case(sessions, no_merge=False)
    second_id = make_report(sessions, no_merge=False, text="这里垃圾桶满了", **nearby(30))
    joined = process(sessions, second_id)
    assert joined is not None and joined.id == first.id
    assert [e.action for e in joined.events][-1] == "merged"
    assert joined.events[-1].to_status == joined.status == "routed"

    # both reporters see the same case and its progress
    view = client.get(f"/api/v1/reports/{second_id}").get_json()
    assert view["case_id"] == first.id and view["status"] == "routed"
    assert view["reports_in_case"] == 2 and view["reporters_in_case"] == 2
    assert view["office"]["code"] == POINT["office"]
    assert abs(view["events"][-1]["detail"]["distance_m"] - 30) < 1


def test_too_far_too_late_or_another_problem_opens_a_new_case(sessions) -> None:
    first = make_case(sessions, no_merge=False)
    far = make_case(sessions, no_merge=False, **nearby(80))
    late = process(
        sessions,
        make_report(sessions, no_merge=False, received_at=first.opened_at + timedelta(hours=25)),
    )
    other = make_case(sessions, no_merge=False, requested_category="noise")
    assert len({first.id, far.id, late.id, other.id}) == 4


def test_radius_and_window_are_set_per_category(sessions) -> None:
    with unit_of_work(sessions) as session:
        session.execute(
            update(Category).where(Category.code == "bin_overflow").values(merge_radius_m=100)
        )
    first = make_case(sessions, no_merge=False)
    assert make_case(sessions, no_merge=False, **nearby(80)).id == first.id


@pytest.mark.committed  # two workers are two connections: each must see the other's commit
def test_two_reports_of_one_spot_at_the_same_moment_open_one_case(sessions) -> None:
    # Two workers, one report each: the second starts while the first worker's new case is not
    # yet committed. It must wait for that commit and join the case, not open a second one.
    first_id = make_report(sessions, no_merge=False)
    second_id = make_report(sessions, no_merge=False, text="这里垃圾桶满了", **nearby(20))
    second: list[Case | None] = []
    with unit_of_work(sessions) as session:
        first = process_report(
            session,
            first_id,
            classifier=default_classifier(),
            threshold=0.45,
        )
        assert first is not None
        session.flush()
        first_case_id = first.id
        other_worker = threading.Thread(target=lambda: second.append(process(sessions, second_id)))
        other_worker.start()
        other_worker.join(timeout=0.5)
        assert other_worker.is_alive(), "the second report did not wait for the first case"
    other_worker.join(timeout=60)
    assert not other_worker.is_alive()
    assert second and second[0] is not None and second[0].id == first_case_id
    assert second[0].events[-1].action == "merged"


def test_office_splits_a_wrongly_merged_report(client: FlaskClient, sessions, db: Session) -> None:
    first = make_case(sessions, no_merge=False)
    wrong_id = make_report(sessions, no_merge=False, **nearby(10))
    assert process(sessions, wrong_id).id == first.id
    office = {
        "Authorization": f"Bearer {make_key(sessions, role='office', office_code=POINT['office'])}"
    }

    response = client.post(
        f"/api/v1/cases/{first.id}/split", json={"report_id": wrong_id}, headers=office
    )
    assert response.status_code == 202, response.get_json()
    report = db.get(Report, wrong_id)
    assert report.state == "received" and report.case_id is None and report.no_merge

    # processed again on its own (as the enqueued task will): a new case, never the old one
    own = process(sessions, wrong_id)
    assert own is not None and own.id != first.id
    history = client.get(f"/api/v1/reports/{first.reports[0].id}").get_json()
    assert [e["action"] for e in history["events"]][-2:] == ["merged", "split"]
    assert history["reports_in_case"] == 1

    # the last report cannot be split out, and only the case's office may split
    assert (
        client.post(
            f"/api/v1/cases/{first.id}/split",
            json={"report_id": first.reports[0].id},
            headers=office,
        ).status_code
        == 409
    )
    other = {"Authorization": f"Bearer {make_key(sessions, role='office', office_code='PD-SZ')}"}
    assert (
        client.post(
            f"/api/v1/cases/{own.id}/split", json={"report_id": wrong_id}, headers=other
        ).status_code
        == 404  # another office's case is no case for this key
    )
    assert (
        client.post(
            f"/api/v1/cases/{own.id}/split", json={"report_id": "x"}, headers=office
        ).status_code
        == 422
    )


def test_test_offsets_are_metres() -> None:
    point = nearby(30)
    assert abs(distance_m(POINT["lat"], POINT["lon"], point["lat"], point["lon"]) - 30) < 0.5


def test_admin_sets_merge_radius_and_window(client: FlaskClient, sessions) -> None:
    admin = {"Authorization": f"Bearer {make_key(sessions, role='admin')}"}
    url = "/api/v1/admin/categories/bin_overflow/merge"
    response = client.put(url, json={"radius_m": 100, "window_hours": 72}, headers=admin)
    assert response.get_json() == {
        "code": "bin_overflow",
        "radius_m": 100.0,
        "window_hours": 72.0,
    }
    first = make_case(sessions, no_merge=False)
    assert make_case(sessions, no_merge=False, **nearby(80)).id == first.id
    listed = {c["code"]: c for c in client.get("/api/v1/categories").get_json()}
    assert listed["bin_overflow"]["merge_radius_m"] == 100.0
    bad = client.put(url, json={"radius_m": 0, "window_hours": 72}, headers=admin)
    assert bad.status_code == 422 and "radius_m" in bad.get_json()["error"]["fields"]
    missing = client.put(
        "/api/v1/admin/categories/nope/merge",
        json={"radius_m": 5, "window_hours": 1},
        headers=admin,
    )
    assert missing.status_code == 404


def test_the_case_keeps_when_its_first_report_arrived(sessions, db: Session) -> None:
    # A case keeps the time its earliest report was received, which the window counts from:
    # a report a busy queue reached late moves it back, and splitting that report out moves it
    # forward again.
    first = make_case(sessions, no_merge=False)
    opened_from = first.reports[0].received_at
    assert first.first_received_at == opened_from
    earlier_id = make_report(
        sessions, no_merge=False, received_at=opened_from - timedelta(hours=3), **nearby(10)
    )
    later_id = make_report(
        sessions, no_merge=False, received_at=opened_from + timedelta(hours=1), **nearby(-10)
    )
    assert process(sessions, later_id).id == first.id
    assert db.get(Case, first.id).first_received_at == opened_from
    assert process(sessions, earlier_id).id == first.id
    db.expire_all()
    assert db.get(Case, first.id).first_received_at == opened_from - timedelta(hours=3)

    # 22 h after the case's own first report, 25 h after the late one: joins only once the
    # late one is out of the case (the window is 24 h)
    with unit_of_work(sessions) as session:
        split_report(session, first.id, earlier_id, POINT["office"])
    db.expire_all()
    assert db.get(Case, first.id).first_received_at == opened_from
    at_22h = make_report(
        sessions, no_merge=False, received_at=opened_from + timedelta(hours=22), **nearby(5)
    )
    assert process(sessions, at_22h).id == first.id


def test_a_case_outside_the_window_of_its_first_report_is_not_joined(sessions) -> None:
    first = make_case(sessions, no_merge=False)
    received = first.first_received_at
    # the window (24 h) runs both ways from the case's first report, to the second
    inside = make_report(
        sessions, no_merge=False, received_at=received - timedelta(hours=23), **nearby(5)
    )
    outside = make_report(
        sessions, no_merge=False, received_at=received + timedelta(hours=24, seconds=1), **nearby(5)
    )
    assert process(sessions, outside).id != first.id
    assert process(sessions, inside).id == first.id
