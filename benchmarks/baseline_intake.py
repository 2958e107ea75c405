"""The bare stack's intake, the yardstick for CityRelay's: a minimal Flask endpoint that validates
a JSON (or multipart) report with marshmallow, inserts one row with the SQLAlchemy ORM, commits,
and calls ``task.delay()`` on Celery with the same broker. No authentication, no idempotency, no
rate limits, no photo checks: what is left when CityRelay's own work is taken away.

Served by gunicorn with the same settings as ``cityrelay web`` (see bench_intake.py):

    BASELINE_DATABASE_URL=postgresql://... BASELINE_REDIS_URL=redis://... \\
        gunicorn --worker-class gthread --threads 8 --workers 2 baseline_intake:app
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from celery import Celery
from flask import Flask, request
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import DateTime, Float, LargeBinary, String, Text, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class BaselineReport(Base):
    __tablename__ = "baseline_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    photo: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    photo_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReportIn(Schema):
    text = fields.String(required=True, validate=validate.Length(max=2000))
    lat = fields.Float(required=True, validate=validate.Range(-90, 90))
    lon = fields.Float(required=True, validate=validate.Range(-180, 180))


engine = create_engine(os.environ["BASELINE_DATABASE_URL"], pool_pre_ping=True)
Sessions = sessionmaker(engine, expire_on_commit=False)
Base.metadata.create_all(engine)

celery = Celery("baseline", broker=os.environ["BASELINE_REDIS_URL"])


@celery.task(name="baseline.process_report")
def process_report(report_id: int) -> None:
    """Never run by the intake benchmark: only sent."""


app = Flask(__name__)


@app.post("/api/v1/reports")
def create_report() -> Any:
    photo = request.files.get("photos")
    payload = request.form.to_dict() if photo is not None else request.get_json(silent=True)
    try:
        data = ReportIn().load(payload or {})
    except ValidationError as error:
        return {"error": "validation_failed", "fields": error.messages}, 422
    with Sessions.begin() as session:
        report = BaselineReport(
            text=data["text"],
            lat=data["lat"],
            lon=data["lon"],
            photo=photo.read() if photo is not None else None,
            photo_type=photo.mimetype if photo is not None else None,
            received_at=datetime.now(UTC),
        )
        session.add(report)
        session.flush()
        report_id = report.id
    process_report.delay(report_id)
    return {"id": report_id, "status": "received"}, 202
