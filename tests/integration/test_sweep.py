"""The sweep finds reports whose message was lost and puts a new one on the real broker."""

from __future__ import annotations

import json
from datetime import timedelta

import redis
from flask import Flask
from sqlalchemy.orm import Session

from models.base import utcnow
from models.entities import Report
from tests.factories import make_report
from workers.tasks import sweep_stuck_reports


def queued_report_ids(redis_client: redis.Redis, queue: str) -> list[int]:
    ids = []
    for raw in redis_client.lrange(queue, 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] == "cityrelay.process_report":
            ids.append(json.loads(__import__("base64").b64decode(message["body"]))[0][0])
    return ids


def test_sweep_enqueues_stale_reports_once(app: Flask, sessions, db: Session, redis_client) -> None:
    queue = app.config["CELERY_QUEUE"]
    redis_client.delete(queue)
    stale = make_report(sessions, received_at=utcnow() - timedelta(minutes=10))
    fresh = make_report(sessions)
    done = make_report(sessions, received_at=utcnow() - timedelta(minutes=10), state="processed")

    assert sweep_stuck_reports() == 1
    assert queued_report_ids(redis_client, queue) == [stale]
    assert db.get(Report, stale).last_enqueued_at is not None
    assert fresh not in queued_report_ids(redis_client, queue)
    assert done not in queued_report_ids(redis_client, queue)

    # enqueued just now: the next sweep leaves it alone instead of flooding the queue
    assert sweep_stuck_reports() == 0
    redis_client.delete(queue)
