"""Builders for the rows tests need. Each opens its own unit of work on the factory it is given
(the ``sessions`` fixture), so in a rolled-back test what it writes is undone at the test's end,
and in a ``committed`` test it is really committed, for other processes to see.

Keys are issued only through ``services.accounts`` (``register_reporter``, ``issue_key``), the
one place the application issues them, so a test key is hashed and looked up like a real one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from models.entities import Case, Report
from models.session import unit_of_work
from routing.classify import default_classifier
from services.accounts import issue_key, register_reporter
from services.photo_store import DatabasePhotoStore
from services.photos import UploadedPhoto
from services.processing import process_report
from tests.helpers import sample_point

DEFAULT_THRESHOLD = 0.45


def make_reporter(
    sessions: sessionmaker[Session],
    *,
    display_name: str = "测试骑手",
    occupation: str = "rider",
    platform: str = "test",
) -> tuple[int, str]:
    """A registered reporter: its id and its key (as ``POST /api/v1/reporters`` gives them)."""
    with unit_of_work(sessions) as session:
        reporter, key = register_reporter(
            session, display_name=display_name, occupation=occupation, platform=platform
        )
        session.flush()
        return reporter.id, key


def make_key(
    sessions: sessionmaker[Session], role: str = "reporter", office_code: str | None = None
) -> str:
    """A working key: a new reporter's, an office's (``office_code``) or an admin's."""
    if role == "reporter":
        return make_reporter(sessions)[1]
    with unit_of_work(sessions) as session:
        _row, key = issue_key(session, role, office_code=office_code)
    return key


def store_photo(sessions: sessionmaker[Session], photo: UploadedPhoto) -> None:
    """``photo`` in the run's photo store (the database, the default), as an upload leaves it."""
    with unit_of_work(sessions) as session:
        DatabasePhotoStore(session).put(photo.sha256, photo.content_type, photo.data)


def make_report(
    sessions: sessionmaker[Session], *, reporter_id: int | None = None, **fields: Any
) -> int:
    """A received report at the first demo community's sample point, about an overflowing bin,
    filed by a new reporter unless ``reporter_id`` is given; ``fields`` override any column.

    Unless a test says so (``no_merge=False``) the report never joins an open case: most tests
    are about routing, not "me too"."""
    point = sample_point()
    values: dict[str, Any] = {
        "text": "垃圾桶满了溢出来了",
        "lat": point["lat"],
        "lon": point["lon"],
        "fingerprint": "x",
        "no_merge": True,
    }
    values.update(fields)
    with unit_of_work(sessions) as session:
        if reporter_id is None:
            reporter, _key = register_reporter(session, display_name="骑手", occupation="rider")
            session.flush()
            reporter_id = reporter.id
        report = Report(reporter_id=reporter_id, **values)
        session.add(report)
        session.flush()
        return report.id


def process(
    sessions: sessionmaker[Session], report_id: int, threshold: float = DEFAULT_THRESHOLD
) -> Case | None:
    """What the worker's task does for one report, in one unit of work, without Celery: the new
    case (with its office, events and reports loaded), or None when there was nothing to do."""
    with unit_of_work(sessions) as session:
        case = process_report(
            session,
            report_id,
            classifier=default_classifier(),
            threshold=threshold,
        )
        if case is not None:
            session.flush()
            session.refresh(case)
            _ = case.office, case.events, case.reports
        return case


def make_case(
    sessions: sessionmaker[Session], *, threshold: float = DEFAULT_THRESHOLD, **report_fields: Any
) -> Case:
    """A report (``make_report`` with ``report_fields``) processed into its case."""
    case = process(sessions, make_report(sessions, **report_fields), threshold)
    assert case is not None, "a new report always makes or joins a case"
    return case
