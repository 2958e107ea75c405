"""Filing a report, whichever door it came through (JSON API, Open311, the reporter page):
the report and its photos' rows in the caller's transaction, processing asked for after commit,
retries answered with the first report. The photo files are stored before the transaction
opens (``services.photos.store_photos``), so no write lock is held while bytes are written."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from models.base import utcnow
from models.entities import Category, Photo, Report
from models.session import enqueue_after_commit, on_conflict_insert
from routing.classify import detect_language
from services.errors import InvalidField
from services.photos import UploadedPhoto

PROCESS_REPORT = "cityrelay.process_report"


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
    # What an Open311 client sent as attributes the category does not ask (kept, not checked).
    extra_attributes: dict[str, Any] | None = None
    media_urls: list[str] = field(default_factory=list)
    contact: dict[str, str] = field(default_factory=dict)
    photos: list[UploadedPhoto] = field(default_factory=list)
    idempotency_key: str | None = None
    with_token: bool = False
    # When it arrived; now unless told (the demo city's history files reports in its past).
    received_at: datetime | None = None

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
    def __init__(self, earlier_id: int) -> None:
        super().__init__(f"idempotency key already used for report {earlier_id}")
        self.earlier_id = earlier_id


def file_report(session: Session, new: NewReport) -> tuple[Report, bool]:
    """The stored report and whether it is an earlier one returned for a retry. Never commits;
    processing is asked for after the caller's commit.

    One INSERT ... ON CONFLICT DO NOTHING RETURNING stores the report or finds that a retry's
    first copy is already there: no look-up before it and no savepoint around it, which were
    three round trips on every report for the rare retry. Two retries racing are decided by the
    unique index: the second waits for the first's commit and then reads its report."""
    fingerprint = new.fingerprint()
    check_content(session, new)
    report = session.scalar(
        _report_insert(session),
        {
            "reporter_id": new.reporter_id,
            "channel": new.channel,
            "text": new.text,
            "language": new.lang or detect_language(new.text),
            "lat": new.lat,
            "lon": new.lon,
            "address": new.address,
            "address_id": new.address_id,
            "requested_category": new.category,
            "attributes": new.attributes,
            "extra_attributes": new.extra_attributes or None,
            "media_urls": new.media_urls,
            "contact": new.contact,
            "token": secrets.token_urlsafe(16) if new.with_token else None,
            "idempotency_key": new.idempotency_key,
            "fingerprint": fingerprint,
            "received_at": new.received_at or utcnow(),
        },
    )
    if report is None:  # the unique index says: a retry of a report already stored
        earlier = _earlier(session, new.reporter_id, new.idempotency_key or "")
        if earlier is None:
            raise RuntimeError("a conflicting report that cannot be read")
        return _replay(earlier, fingerprint), True
    session.add_all(
        Photo(
            report_id=report.id,
            position=i,
            filename=p.filename,
            content_type=p.content_type,
            size_bytes=len(p.data),
        )
        for i, p in enumerate(new.photos)
    )
    enqueue_after_commit(session, PROCESS_REPORT, report.id)
    return report, False


# The columns a filed report is given; the rest take their defaults.
_FILED_COLUMNS = (
    "reporter_id",
    "channel",
    "text",
    "language",
    "lat",
    "lon",
    "address",
    "address_id",
    "requested_category",
    "attributes",
    "extra_attributes",
    "media_urls",
    "contact",
    "token",
    "idempotency_key",
    "fingerprint",
    "received_at",
)
# Built once per dialect: building the INSERT (a coerced value and a cache key for each of its
# columns) for every report cost a fifth of intake's CPU. Statements are immutable.
_REPORT_INSERTS: dict[str, Any] = {}


def _report_insert(session: Session) -> Any:
    """INSERT … ON CONFLICT (reporter, Idempotency-Key) DO NOTHING RETURNING the report, its
    values bound by column name."""
    dialect = session.get_bind().dialect.name
    statement = _REPORT_INSERTS.get(dialect)
    if statement is None:
        statement = (
            on_conflict_insert(session, Report)
            .values({name: bindparam(name) for name in _FILED_COLUMNS})
            .on_conflict_do_nothing(index_elements=["reporter_id", "idempotency_key"])
            .returning(Report)
        )
        _REPORT_INSERTS[dialect] = statement
    return statement


def check_content(session: Session, new: NewReport) -> None:
    if new.category is not None and session.get(Category, new.category) is None:
        raise InvalidField(
            "category", f"Unknown category '{new.category}'; see /api/v1/categories."
        )
    if not (new.text.strip() or new.category or new.photos):
        raise InvalidField("text", "Describe the problem, pick a category or attach a photo.")


def _earlier(session: Session, reporter_id: int, key: str) -> Report | None:
    return session.scalar(
        select(Report).where(Report.reporter_id == reporter_id, Report.idempotency_key == key)
    )


def _replay(earlier: Report, fingerprint: str) -> Report:
    if earlier.fingerprint != fingerprint:
        raise IdempotencyConflict(earlier.id)
    return earlier
