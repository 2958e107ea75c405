"""Two supervisors close two cases of one reporter at the same moment: the daily cap still
holds. Real parallel HTTP requests against a live `cityrelay web` (two gunicorn worker
processes), on the run's database: SQLite (one writer at a time), or PostgreSQL when
DATABASE_URL names one, where the awarding locks the reporter's row before it reads the day's
awards."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.entities import PointsEntry
from models.session import unit_of_work
from tests.factories import make_case, make_key, make_reporter
from tests.helpers import sample_point
from tests.live_server import running_web

ROUNDS = 4
REQUEST_TIMEOUT_S = 30
DAILY_CAP = 30  # the default: three first reports
COMMUNITIES = ("PD-CJ-01", "PD-CJ-02", "PD-CJ-03", "PD-HG-02")


@pytest.fixture(scope="module")
def web(test_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_web(test_settings, tmp_path_factory.mktemp("web-points") / "web.log") as base:
        yield base


def post(url: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def close_at_once(web: str, cases: list[int], keys: list[str]) -> list[int]:
    barrier = threading.Barrier(len(cases))
    statuses: list[int] = [0] * len(cases)

    def close(index: int) -> None:
        barrier.wait()
        url = f"{web}/api/v1/cases/{cases[index]}/close"
        statuses[index] = post(url, keys[index], {"closure": "fixed"})[0]

    threads = [threading.Thread(target=close, args=(i,)) for i in range(len(cases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(REQUEST_TIMEOUT_S * 2)
    return statuses


@pytest.mark.committed
def test_closing_two_cases_of_one_reporter_at_once_keeps_the_daily_cap(
    web: str, sessions: sessionmaker[Session]
) -> None:
    keys = [make_key(sessions, role="supervisor", office_code="PD") for _ in range(2)]
    for _round in range(ROUNDS):
        reporter_id, _key = make_reporter(sessions)
        cases = []
        for community in COMMUNITIES:
            point = sample_point(community)
            case = make_case(sessions, reporter_id=reporter_id, lat=point["lat"], lon=point["lon"])
            for action, body in (("accept", {}), ("resolve", {"note": "已处理"})):
                status, answer = post(f"{web}/api/v1/cases/{case.id}/{action}", keys[0], body)
                assert status == 200, answer
            cases.append(case.id)
        # Two closings one after the other leave room for one more award today...
        for case_id in cases[:2]:
            status, answer = post(
                f"{web}/api/v1/cases/{case_id}/close", keys[0], {"closure": "fixed"}
            )
            assert status == 200, answer
        # ...and two at once must share it.
        assert close_at_once(web, cases[2:], keys) == [200, 200]
        with unit_of_work(sessions) as session:
            by_day = session.execute(
                select(PointsEntry.day, func.sum(PointsEntry.points), func.count())
                .where(PointsEntry.reporter_id == reporter_id)
                .group_by(PointsEntry.day)
            ).all()
        assert all(total <= DAILY_CAP for _day, total, _count in by_day), by_day
        if len(by_day) == 1:  # all four closings on one local day: three awards fill the cap
            assert [(total, count) for _day, total, count in by_day] == [(DAILY_CAP, 3)]
