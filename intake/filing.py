"""Filing a report, whichever door it came through (JSON API, Open311, the reporter page):
photos stored, one transaction, processing enqueued after commit, retries answered with the
first report."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from intake.photos import UploadedPhoto, store_photo
from models.entities import Photo, Report
from models.session import run_after_commit
from routing.classify import detect_language


@dataclass
class NewReport:
    reporter_id: int
    channel: str
    text: str = ""
    lang: str | None = None
    lat: float | None = None
    lon: float | None = None
    address: str = ""
    address_id: str = ""
    category: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    media_urls: list[str] = field(default_factory=list)
    contact: dict[str, str] = field(default_factory=dict)
    photos: list[UploadedPhoto] = field(default_factory=list)
    idempotency_key: str | None = None
    with_token: bool = False

    def fingerprint(self) -> str:
        """What makes two submissions the same report (the reporter and key aside)."""
        content = {
            "text": self.text,
            "lang": self.lang,
            "lat": self.lat,
            "lon": self.lon,
            "address": self.address,
            "address_id": self.address_id,
            "category": self.category,
            "attributes": self.attributes,
            "media_urls": self.media_urls,
            "photos": [p.sha256 for p in self.photos],
        }
        canonical = json.dumps(content, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyConflict(Exception):
    def __init__(self, earlier: Report) -> None:
        super().__init__(f"idempotency key already used for report {earlier.id}")
        self.earlier = earlier


def file_report(session: Session, new: NewReport) -> tuple[Report, bool]:
    """The stored report and whether it is an earlier one returned for a retry. Commits."""
    fingerprint = new.fingerprint()
    if new.idempotency_key:
        earlier = _earlier(session, new.reporter_id, new.idempotency_key)
        if earlier is not None:
            return _replay(earlier, fingerprint), True

    for photo in new.photos:
        store_photo(current_app.config["MEDIA_DIR"], photo)
    report = Report(
        reporter_id=new.reporter_id,
        channel=new.channel,
        text=new.text,
        language=new.lang or detect_language(new.text),
        lat=new.lat,
        lon=new.lon,
        address=new.address,
        address_id=new.address_id,
        requested_category=new.category,
        attributes=new.attributes,
        media_urls=new.media_urls,
        contact=new.contact,
        token=secrets.token_urlsafe(16) if new.with_token else None,
        idempotency_key=new.idempotency_key,
        fingerprint=fingerprint,
        photos=[
            Photo(
                position=i, filename=p.filename, content_type=p.content_type, size_bytes=len(p.data)
            )
            for i, p in enumerate(new.photos)
        ],
    )
    session.add(report)
    try:
        session.flush()
    except IntegrityError:
        # Two retries of one submission raced; the other one won and its report stands.
        session.rollback()
        earlier = _earlier(session, new.reporter_id, new.idempotency_key or "")
        if earlier is None:
            raise
        return _replay(earlier, fingerprint), True
    report_id = report.id
    run_after_commit(session, lambda: enqueue_processing(report_id))
    session.commit()
    return report, False


def enqueue_processing(report_id: int) -> None:
    """Hand the report to the workers. A broker outage must not fail the request: the report
    is committed, and the periodic sweep enqueues it again."""
    from workers.tasks import process_report

    try:
        process_report.delay(report_id)
    except Exception:
        current_app.logger.warning(
            "could not enqueue report %s; the sweep will retry", report_id, exc_info=True
        )


def _earlier(session: Session, reporter_id: int, key: str) -> Report | None:
    return session.scalar(
        select(Report).where(Report.reporter_id == reporter_id, Report.idempotency_key == key)
    )


def _replay(earlier: Report, fingerprint: str) -> Report:
    if earlier.fingerprint != fingerprint:
        raise IdempotencyConflict(earlier)
    return earlier
