"""The pipeline's decisions and records, on the real database, without Celery in between."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models.entities import Case, Office, OutboxMessage, Report
from models.session import unit_of_work
from routing.classify import model_id
from tests.factories import make_case, make_report, process
from tests.helpers import sample_point


def office_code(db: Session, office_id: int | None) -> str | None:
    return db.get(Office, office_id).code if office_id else None


def test_routed_to_the_community(sessions, db: Session) -> None:
    report_id = make_report(sessions)
    case = process(sessions, report_id)
    assert case is not None and case.status == "routed"
    assert case.category_code == "bin_overflow"
    assert case.office.code == sample_point()["office"]
    assert case.routing["rule"] == "jurisdiction"
    assert [e.action for e in case.events] == ["received", "classified", "routed"]
    # the case's state is explained by its history
    assert case.events[-1].to_status == case.status
    assert all(
        a.to_status == b.from_status for a, b in zip(case.events, case.events[1:], strict=False)
    )
    report = db.get(Report, report_id)
    assert report.state == "processed" and report.case_id == case.id
    assert case.due_at is not None and case.due_at > report.received_at
    recipients = set(
        db.scalars(select(OutboxMessage.recipient).where(OutboxMessage.case_id == case.id))
    )
    assert recipients == {f"office:{case.office.code}", f"reporter:{report.reporter_id}"}


def test_a_rerun_does_nothing(sessions, db: Session) -> None:
    report_id = make_report(sessions)
    assert process(sessions, report_id) is not None
    assert process(sessions, report_id) is None
    assert db.scalar(select(func.count()).select_from(Case)) == 1
    assert db.scalar(select(func.count()).select_from(OutboxMessage)) == 2


def test_unknown_report_does_nothing(sessions) -> None:
    assert process(sessions, 987654321) is None


def test_reporter_category_is_kept(sessions) -> None:
    case = make_case(sessions, text="门口这个", requested_category="illegal_parking")
    assert case.category_code == "illegal_parking"
    assert case.classification["method"] == "reporter" and case.confidence == 1.0
    # communities do not handle parking; their street does
    assert case.office.kind == "street" and case.routing["rule"] == "parent"


@pytest.mark.parametrize(
    "fields",
    [{}, {"requested_category": "illegal_parking"}, {"text": ""}],
    ids=["classified", "reporter's category", "no text"],
)
def test_every_case_names_the_classifier_model(sessions, client: FlaskClient, fields: dict) -> None:
    report_id = make_report(sessions, **fields)
    case = process(sessions, report_id)
    assert case is not None
    assert case.classifier_model == model_id()
    assert case.classification["model"] == model_id()
    classified = next(event for event in case.events if event.action == "classified")
    assert classified.detail["model"] == model_id()
    assert client.get(f"/api/v1/reports/{report_id}").get_json()["classifier_model"] == model_id()


def test_an_unprocessed_report_names_no_classifier_model(sessions, client: FlaskClient) -> None:
    report_id = make_report(sessions)
    assert client.get(f"/api/v1/reports/{report_id}").get_json()["classifier_model"] is None


def test_department_without_polygon_takes_manholes(sessions) -> None:
    case = make_case(sessions, requested_category="manhole_cover")
    assert case.status == "routed"
    assert case.office.kind == "department" and case.routing["rule"] == "department"
    received = case.reports[0].received_at
    assert case.due_at == received + timedelta(hours=6)


def test_outside_the_district_goes_to_triage(sessions) -> None:
    case = make_case(sessions, lat=39.9, lon=116.4)
    assert case.status == "triage" and case.office_id is None
    assert case.routing["triage_reason"] == "outside_jurisdiction"
    assert [e.action for e in case.events][-1] == "triaged"
    assert case.due_at is None


def test_no_text_no_category_goes_to_triage(sessions) -> None:
    case = make_case(sessions, text="")
    assert case.status == "triage" and case.routing["triage_reason"] == "no_text"


def test_low_confidence_goes_to_triage_keeping_the_guess(sessions) -> None:
    case = make_case(sessions, threshold=1.01)
    assert case.status == "triage" and case.category_code is None
    assert case.routing["triage_reason"] == "low_confidence"
    assert case.classification["alternatives"][0]["category"] == "bin_overflow"


def test_inactive_community_falls_to_triage_when_nobody_above_handles_it(sessions) -> None:
    with unit_of_work(sessions) as session:
        session.execute(
            update(Office).where(Office.code == sample_point()["office"]).values(active=False)
        )
    case = make_case(sessions)
    assert case.status == "triage"
    assert case.routing["triage_reason"] == "no_office_handles"


@pytest.mark.parametrize("text", ["垃圾桶滿了溢出來了", "the trash bin is overflowing"])
def test_traditional_and_english_route_the_same(sessions, text: str) -> None:
    case = make_case(sessions, text=text)
    assert case.category_code == "bin_overflow"
    assert case.office.code == sample_point()["office"]


def test_address_without_coordinates_goes_to_triage(sessions) -> None:
    case = make_case(sessions, lat=None, lon=None, address="合庆骑手之家对面")
    assert case.status == "triage" and case.category_code == "bin_overflow"
    assert case.routing["triage_reason"] == "no_location"
    assert case.address == "合庆骑手之家对面"
