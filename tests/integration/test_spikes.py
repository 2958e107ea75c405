"""Spike alerts on the real database: a storm's waterlogging reports in a community against a
quiet four weeks show in /api/v1/spikes and /api/v1/stats, an ordinary day does not, a
supervisor elsewhere does not see it, bad parameters are named, and the beat task announces a
spike once on stats.spike, not on every run."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.entities import OutboxMessage, Report, SpikeAlert
from models.session import unit_of_work
from routing.spikes import MIN_REPORTS
from services import spikes
from tests.factories import make_case, make_key, make_reporter
from tests.helpers import sample_point
from workers.tasks import detect_spikes

POINT = sample_point()
COMMUNITY = POINT["office"]
STREET = "PD-CJ"
OTHER_STREET = "PD-HG"
SPIKES = "/api/v1/spikes"
STATS = "/api/v1/stats"
TIME_ZONE = "Asia/Shanghai"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def admin(sessions: sessionmaker[Session]) -> dict[str, str]:
    return bearer(make_key(sessions, role="admin"))


def reports(
    sessions: sessionmaker[Session], category: str, times: list[datetime], point: dict[str, Any]
) -> int:
    """Reports of ``category`` at ``point`` received at ``times``: the first opens a case (routed
    as the pipeline routes it), the others join it as "me too" reports. Answers the case id."""
    case = make_case(
        sessions,
        requested_category=category,
        received_at=times[0],
        lat=point["lat"],
        lon=point["lon"],
    )
    reporter_id, _key = make_reporter(sessions)
    with unit_of_work(sessions) as session:
        for n, at in enumerate(times[1:]):
            session.add(
                Report(
                    reporter_id=reporter_id,
                    text=f"又积水了 {n}",
                    lat=point["lat"],
                    lon=point["lon"],
                    fingerprint="x",
                    requested_category=category,
                    received_at=at,
                    state="processed",
                    processed_at=at,
                    case_id=case.id,
                )
            )
    return case.id


def quiet_weeks(now: datetime, every_days: int = 4) -> list[datetime]:
    """One report every few days over the 28 days before the last 24 hours."""
    return [now - timedelta(days=1, hours=3) - timedelta(days=d) for d in range(0, 27, every_days)]


def storm(now: datetime, count: int = 12) -> list[datetime]:
    return [now - timedelta(hours=20) + timedelta(minutes=90 * n) for n in range(count)]


def get(client: FlaskClient, path: str, key: dict[str, str], **params: Any) -> dict[str, Any]:
    response = client.get(path, query_string=params, headers=key)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_storm_shows_as_a_spike(
    client: FlaskClient, sessions: sessionmaker[Session], admin: dict[str, str]
) -> None:
    now = utcnow()
    reports(sessions, "waterlogging", quiet_weeks(now), POINT)
    reports(sessions, "waterlogging", storm(now), POINT)
    # another category in the same community, ordinary: 1 a day, 2 today
    reports(
        sessions, "bin_overflow", [now - timedelta(days=d, hours=2) for d in range(1, 29)], POINT
    )
    reports(sessions, "bin_overflow", [now - timedelta(hours=h) for h in (3, 9)], POINT)

    body = get(client, SPIKES, admin)
    assert datetime.fromisoformat(body["as_of"]) >= now
    (spike,) = body["spikes"]
    assert spike == {
        "office": COMMUNITY,
        "office_name": "春江一村居委会",
        "category": "waterlogging",
        "category_name": "道路积水",
        "last_24h": 12,
        # 7 reports over 28 days
        "baseline_per_day": 0.25,
        # 0.25 + 3 * sqrt(1) is below the floor of MIN_REPORTS - 1
        "threshold": float(MIN_REPORTS - 1),
        "ratio": 48.0,
        "since": spike["since"],
    }
    assert datetime.fromisoformat(spike["since"]) == storm(now)[0]

    # /api/v1/stats shows the same spike, and narrows it like its figures
    assert get(client, STATS, admin)["spikes"] == body["spikes"]
    assert get(client, STATS, admin, office=STREET)["spikes"] == body["spikes"]
    assert get(client, STATS, admin, category="waterlogging")["spikes"] == body["spikes"]
    assert get(client, STATS, admin, group="突发事件 (older lists)")["spikes"] == body["spikes"]
    assert get(client, STATS, admin, category="bin_overflow")["spikes"] == []
    assert get(client, STATS, admin, office=OTHER_STREET)["spikes"] == []
    # the window does not matter: spikes are as of now
    assert (
        get(client, STATS, admin, **{"from": "2025-01-01", "to": "2025-01-31"})["spikes"]
        == (body["spikes"])
    )
    # the CSV has no place for them, and still answers
    assert client.get(STATS + ".csv", headers=admin).status_code == 200


def test_an_ordinary_day_is_no_spike(
    client: FlaskClient, sessions: sessionmaker[Session], admin: dict[str, str]
) -> None:
    now = utcnow()
    # 2 a day for four weeks, 4 today
    reports(
        sessions,
        "waterlogging",
        [now - timedelta(days=1 + d / 2, hours=1) for d in range(56)],
        POINT,
    )
    reports(sessions, "waterlogging", [now - timedelta(hours=h) for h in (1, 5, 9, 13)], POINT)
    assert get(client, SPIKES, admin)["spikes"] == []
    assert get(client, STATS, admin)["spikes"] == []


def test_a_busy_community_needs_more_than_its_usual(
    client: FlaskClient, sessions: sessionmaker[Session], admin: dict[str, str]
) -> None:
    now = utcnow()
    # 6 a day usual: the bar is 6 + 3 * sqrt(6) = 13.35
    reports(
        sessions,
        "waterlogging",
        [now - timedelta(days=1, minutes=30) - timedelta(hours=4 * n) for n in range(6 * 28)],
        POINT,
    )
    reports(sessions, "waterlogging", [now - timedelta(minutes=50 * n) for n in range(13)], POINT)
    assert get(client, SPIKES, admin)["spikes"] == []
    reports(sessions, "waterlogging", [now - timedelta(minutes=5)], POINT)
    (spike,) = get(client, SPIKES, admin)["spikes"]
    assert (spike["last_24h"], spike["baseline_per_day"], spike["threshold"]) == (14, 6.0, 13.35)


def test_reports_older_than_the_baseline_and_elsewhere_do_not_count(
    client: FlaskClient, sessions: sessionmaker[Session], admin: dict[str, str]
) -> None:
    now = utcnow()
    # a storm long ago, out of the 29 days
    reports(sessions, "waterlogging", [now - timedelta(days=40, hours=h) for h in range(20)], POINT)
    # today's reports spread over two communities: 3 and 3, neither reaches MIN_REPORTS
    reports(sessions, "waterlogging", storm(now, 3), POINT)
    other = sample_point("PD-HG-02")
    reports(sessions, "waterlogging", storm(now, 3), other)
    assert get(client, SPIKES, admin)["spikes"] == []


def test_who_sees_which_spikes(
    client: FlaskClient, sessions: sessionmaker[Session], admin: dict[str, str]
) -> None:
    now = utcnow()
    reports(sessions, "waterlogging", storm(now), POINT)
    own = bearer(make_key(sessions, role="supervisor", office_code=STREET))
    elsewhere = bearer(make_key(sessions, role="supervisor", office_code=OTHER_STREET))
    staff = bearer(make_key(sessions, role="office", office_code=COMMUNITY))

    assert [s["office"] for s in get(client, SPIKES, own)["spikes"]] == [COMMUNITY]
    assert [s["office"] for s in get(client, SPIKES, own, office=COMMUNITY)["spikes"]] == [
        COMMUNITY
    ]
    assert get(client, SPIKES, admin, office=COMMUNITY)["spikes"] != []
    assert get(client, SPIKES, elsewhere)["spikes"] == []
    assert get(client, STATS, elsewhere)["spikes"] == []
    assert client.get(SPIKES, query_string={"office": STREET}, headers=elsewhere).status_code == (
        403
    )
    assert client.get(SPIKES).status_code == 401
    assert client.get(SPIKES, headers=staff).status_code == 403
    reporter = bearer(make_key(sessions))
    assert client.get(SPIKES, headers=reporter).status_code == 403


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"office": "NOPE"}, "office"),
        ({"office": ""}, "office"),
        ({"office": "X" * 41}, "office"),
        ({"category": "no_such_category"}, "category"),
        ({"group": "没有这个大类"}, "group"),
        ({"colour": "red"}, "colour"),
        ({"from": "2026-01-01"}, "from"),
    ],
)
def test_a_bad_parameter_is_named(
    client: FlaskClient, admin: dict[str, str], params: dict[str, str], field: str
) -> None:
    response = client.get(SPIKES, query_string=params, headers=admin)
    assert response.status_code == 422, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"]["code"] == "validation_failed"
    assert field in body["error"]["fields"]


def spike_notifications(sessions: sessionmaker[Session]) -> list[OutboxMessage]:
    with unit_of_work(sessions) as session:
        return list(
            session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.topic == spikes.SPIKE_TOPIC)
                .order_by(OutboxMessage.id)
            )
        )


def test_the_task_announces_a_new_spike_once(sessions: sessionmaker[Session]) -> None:
    now = utcnow()
    reports(sessions, "waterlogging", quiet_weeks(now), POINT)
    reports(sessions, "waterlogging", storm(now), POINT)
    assert detect_spikes() == "1 spikes announced"
    (message,) = spike_notifications(sessions)
    assert (message.recipient, message.case_id, message.status) == (
        f"office:{COMMUNITY}",
        None,
        "pending",
    )
    payload = message.payload
    assert {k: payload[k] for k in ("office", "category", "last_24h", "baseline_per_day")} == {
        "office": COMMUNITY,
        "category": "waterlogging",
        "last_24h": 12,
        "baseline_per_day": 0.25,
    }
    assert set(payload) == {
        "office",
        "office_name",
        "category",
        "category_name",
        "last_24h",
        "baseline_per_day",
        "threshold",
        "ratio",
        "since",
        "detected_at",
    }

    # the next run, and the next, find it announced
    assert detect_spikes() == "0 spikes announced"
    assert detect_spikes() == "0 spikes announced"
    assert len(spike_notifications(sessions)) == 1
    with unit_of_work(sessions) as session:
        assert session.scalar(select(func.count()).select_from(SpikeAlert)) == 1


def test_a_spike_is_announced_again_only_after_24_hours(sessions: sessionmaker[Session]) -> None:
    now = utcnow()
    reports(sessions, "waterlogging", storm(now), POINT)
    # the storm goes on: later reports keep it a spike for days
    later = now + timedelta(hours=23)
    reports(sessions, "waterlogging", storm(later), POINT)
    next_day = now + timedelta(hours=24, minutes=5)
    reports(sessions, "waterlogging", storm(next_day, 20), POINT)

    def announce(at: datetime) -> list[str]:
        with unit_of_work(sessions) as session:
            return [s.office for s in spikes.announce_spikes(session, at, TIME_ZONE)]

    assert announce(now) == [COMMUNITY]
    # 23 hours on, past midnight or not, still within the 24 hours
    assert announce(later) == []
    assert announce(next_day) == [COMMUNITY]
    assert announce(next_day + timedelta(minutes=15)) == []
    assert len(spike_notifications(sessions)) == 2


def test_two_runs_at_once_announce_once(sessions: sessionmaker[Session]) -> None:
    """The unique community, category and day keeps a second run that did not see the first
    one's row (it read before the first committed) from announcing again."""
    now = utcnow()
    reports(sessions, "waterlogging", storm(now), POINT)
    with unit_of_work(sessions) as session:
        first = spikes.announce_spikes(session, now, TIME_ZONE)
        # as if this run had looked before the first run's row existed: its row is refused
        alert = session.scalars(select(SpikeAlert)).one()
        alert.announced_at = now - timedelta(hours=25)
        session.flush()
        second = spikes.announce_spikes(session, now, TIME_ZONE)
    assert [s.office for s in first] == [COMMUNITY]
    assert second == []
    assert len(spike_notifications(sessions)) == 1
