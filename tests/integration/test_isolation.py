"""The suite's own isolation: what a test writes, through the app or the factories, is seen by
the test and never committed; a ``committed`` test's writes are seen by other connections."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from models.entities import Report
from tests.factories import make_report
from tests.helpers import sample_point


def committed_reports(engine: Engine, *report_ids: int) -> int:
    """How many of these reports another connection sees: only committed rows."""
    with engine.connect() as other:
        query = select(func.count()).select_from(Report).where(Report.id.in_(report_ids))
        return int(other.scalar(query) or 0)


def test_a_tests_writes_are_seen_by_it_and_never_committed(
    client: FlaskClient, auth: dict, sessions: sessionmaker[Session], db: Session, engine: Engine
) -> None:
    point = sample_point()
    posted = client.post(
        "/api/v1/reports",
        json={"text": "路灯不亮", "lat": point["lat"], "lon": point["lon"]},
        headers=auth,
    )
    assert posted.status_code == 202
    through_the_app = posted.get_json()["id"]
    from_a_factory = make_report(sessions)

    # the app's unit of work committed (a savepoint): the test, the app and the factories see it
    assert db.get(Report, through_the_app) is not None and db.get(Report, from_a_factory)
    assert client.get(f"/api/v1/reports/{from_a_factory}").status_code == 200
    # but nothing reached the database for anyone else
    assert committed_reports(engine, through_the_app, from_a_factory) == 0


@pytest.mark.committed
def test_a_committed_tests_writes_are_seen_by_other_connections(
    sessions: sessionmaker[Session], engine: Engine
) -> None:
    report_id = make_report(sessions)
    assert committed_reports(engine, report_id) == 1
