"""Working-hour calendars are data: every database has the default calendar with the published
2026 holidays and adjusted working days, a case's due time counts on the calendar of the office
it goes to (its own, else its parent's, else the default), an urgent category counts a 24-hour
clock, and admins change calendars and offices' choices through the API, taking effect for the
next case."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.calendars import DEFAULT_CALENDAR, calendar_named, load_seed_calendars
from models.entities import Calendar, Case, Category
from models.session import unit_of_work
from routing.sla import parse_time_limit
from tests.factories import make_case, make_key
from tests.helpers import sample_point

SH = ZoneInfo("Asia/Shanghai")
COMMUNITY = sample_point()["office"]  # PD-CJ-01
STREET = "PD-CJ"
WORKDAY = [{"start": "08:30", "end": "12:00"}, {"start": "13:30", "end": "17:30"}]
MON_TO_SAT = {
    **{day: WORKDAY for day in ("mon", "tue", "wed", "thu", "fri", "sat")},
    "sun": [],
}


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


@pytest.fixture
def admin(sessions: sessionmaker[Session]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(sessions, role='admin')}"}


def bin_case(sessions: sessionmaker[Session], received_at: datetime, **fields: Any) -> Any:
    """A bin overflowing at the community's sample point (4 working hours, not urgent)."""
    case = make_case(sessions, requested_category="bin_overflow", received_at=received_at, **fields)
    assert case.office is not None and case.office.code == COMMUNITY
    return case


def calendars_by_name(client: FlaskClient, admin: dict[str, str]) -> dict[str, Any]:
    response = client.get("/api/v1/admin/calendars", headers=admin)
    assert response.status_code == 200
    return {c["name"]: c for c in response.get_json()}


# ---------- the seeded default calendar ----------


def test_every_database_has_the_default_calendar_with_the_2026_arrangement(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    default = calendars_by_name(client, admin)[DEFAULT_CALENDAR]
    assert default["timezone"] == "Asia/Shanghai"
    assert default["weekly_hours"]["mon"] == WORKDAY and default["weekly_hours"]["sun"] == []
    kinds: dict[str, list[str]] = {"holiday": [], "workday": []}
    for day in default["days"]:
        kinds[day["kind"]].append(day["date"])
    assert len(kinds["holiday"]) == 33
    assert kinds["workday"] == [
        "2026-01-04",
        "2026-02-14",
        "2026-02-28",
        "2026-05-09",
        "2026-09-20",
        "2026-10-10",
    ]
    national_day = [d for d in default["days"] if d["name"] == "国庆节" and d["kind"] == "holiday"]
    assert [d["date"] for d in national_day] == [f"2026-10-0{n}" for n in range(1, 8)]
    # no office chose a calendar: all inherit the default
    assert default["offices"] == []


def test_the_seed_leaves_a_calendar_admins_changed_alone(
    client: FlaskClient, admin: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    response = client.put(
        f"/api/v1/admin/calendars/{DEFAULT_CALENDAR}",
        json={"timezone": "Asia/Shanghai", "weekly_hours": MON_TO_SAT, "days": []},
        headers=admin,
    )
    assert response.status_code == 200
    with unit_of_work(sessions) as session:
        assert load_seed_calendars(session) == 0
        kept = calendar_named(session, DEFAULT_CALENDAR)
        assert kept is not None and kept.days == [] and kept.weekly_hours["sat"] == WORKDAY


# ---------- due times on the office's calendar ----------


def test_a_case_counts_its_working_hours_past_national_day(sessions) -> None:
    # Wednesday 30 Sep 2026 16:30 + 4 working hours: 1 h that day, 1-7 Oct are holidays, the
    # other 3 h run on Thursday 8 Oct. On a calendar without holidays it was 1 Oct 11:30.
    case = bin_case(sessions, local(2026, 9, 30, 16, 30))
    assert case.due_at == local(2026, 10, 8, 11, 30)
    # Friday 9 Oct 16:30 + 4 working hours: 1 h that day, 3 h on adjusted Saturday 10 Oct
    assert bin_case(sessions, local(2026, 10, 9, 16, 30)).due_at == local(2026, 10, 10, 11, 30)


def test_an_urgent_category_counts_a_24_hour_clock(sessions, db: Session) -> None:
    category = db.get(Category, "blocked_passage")
    assert category is not None and category.urgent
    assert parse_time_limit(category.time_limit) is not None
    assert category.time_limit == "1 working day"
    received = local(2026, 9, 30, 16, 30)
    case = make_case(sessions, requested_category="blocked_passage", received_at=received)
    assert case.office is not None and case.office.code == COMMUNITY
    # a day is 24 hours, National Day or not
    assert case.due_at == local(2026, 10, 1, 16, 30)


def test_an_office_counts_on_its_own_calendar_else_its_parents(
    client: FlaskClient, admin: dict[str, str], sessions
) -> None:
    friday = local(2026, 11, 27, 16, 30)  # + 4 working hours: 1 h Friday, 3 h next day worked
    monday_due, saturday_due = local(2026, 11, 30, 11, 30), local(2026, 11, 28, 11, 30)
    assert bin_case(sessions, friday).due_at == monday_due

    created = client.put(
        "/api/v1/admin/calendars/six-day-week",
        json={"timezone": "Asia/Shanghai", "weekly_hours": MON_TO_SAT},
        headers=admin,
    )
    assert created.status_code == 201
    assert created.get_json()["weekly_hours"]["sat"] == WORKDAY
    assert created.get_json()["days"] == [] and created.get_json()["offices"] == []

    # the street chooses it: the community, which names none, inherits it
    chosen = client.put(
        f"/api/v1/admin/offices/{STREET}/calendar", json={"calendar": "six-day-week"}, headers=admin
    )
    assert chosen.status_code == 200
    assert chosen.get_json() == {
        "office": STREET,
        "calendar": "six-day-week",
        "effective": "six-day-week",
    }
    assert bin_case(sessions, friday).due_at == saturday_due

    # the community chooses the default for itself
    own = client.put(
        f"/api/v1/admin/offices/{COMMUNITY}/calendar",
        json={"calendar": DEFAULT_CALENDAR},
        headers=admin,
    )
    assert own.get_json() == {
        "office": COMMUNITY,
        "calendar": DEFAULT_CALENDAR,
        "effective": DEFAULT_CALENDAR,
    }
    assert bin_case(sessions, friday).due_at == monday_due
    listed = calendars_by_name(client, admin)
    assert listed["six-day-week"]["offices"] == [STREET]
    assert listed[DEFAULT_CALENDAR]["offices"] == [COMMUNITY]

    # and null makes it inherit the street's again
    inherited = client.put(
        f"/api/v1/admin/offices/{COMMUNITY}/calendar", json={"calendar": None}, headers=admin
    )
    assert inherited.get_json() == {
        "office": COMMUNITY,
        "calendar": None,
        "effective": "six-day-week",
    }
    assert bin_case(sessions, friday).due_at == saturday_due


def test_a_changed_calendar_counts_from_the_next_case(
    client: FlaskClient, admin: dict[str, str], sessions, db: Session
) -> None:
    friday = local(2026, 12, 4, 16, 30)
    first = bin_case(sessions, friday)
    assert first.due_at == local(2026, 12, 7, 11, 30)

    default = calendars_by_name(client, admin)[DEFAULT_CALENDAR]
    days = [*default["days"], {"date": "2026-12-07", "kind": "holiday", "name": "测试假日"}]
    body = {"timezone": default["timezone"], "weekly_hours": default["weekly_hours"], "days": days}
    replaced = client.put(f"/api/v1/admin/calendars/{DEFAULT_CALENDAR}", json=body, headers=admin)
    assert replaced.status_code == 200
    assert {"date": "2026-12-07", "kind": "holiday", "name": "测试假日"} in replaced.get_json()[
        "days"
    ]

    # Monday 7 Dec is now a holiday: the next case's 3 h run on Tuesday
    assert bin_case(sessions, friday).due_at == local(2026, 12, 8, 11, 30)
    # a case already opened keeps its due time
    db.expire_all()
    kept = db.get(Case, first.id)
    assert kept is not None and kept.due_at == local(2026, 12, 7, 11, 30)


def test_a_calendar_in_another_zone_counts_local_hours(
    client: FlaskClient, admin: dict[str, str], sessions
) -> None:
    urumqi = {"timezone": "Asia/Urumqi", "weekly_hours": {**MON_TO_SAT, "sat": []}, "days": []}
    assert client.put("/api/v1/admin/calendars/urumqi", json=urumqi, headers=admin).status_code == (
        201
    )
    client.put(
        f"/api/v1/admin/offices/{COMMUNITY}/calendar", json={"calendar": "urumqi"}, headers=admin
    )
    # 09:00 in Shanghai is 07:00 in Urumqi: the office opens at 08:30 its time (10:30 here)
    case = bin_case(sessions, local(2026, 11, 23, 9, 0))
    assert case.due_at == local(2026, 11, 23, 16, 0)


# ---------- refusals ----------


def test_calendars_need_an_admin_key(client: FlaskClient, sessions) -> None:
    reporter = {"Authorization": f"Bearer {make_key(sessions)}"}
    office = {"Authorization": f"Bearer {make_key(sessions, role='office', office_code=COMMUNITY)}"}
    for headers, status in (({}, 401), (reporter, 403), (office, 403)):
        assert client.get("/api/v1/admin/calendars", headers=headers).status_code == status
        put = client.put("/api/v1/admin/calendars/x", json={"timezone": "UTC"}, headers=headers)
        assert put.status_code == status
        choice = client.put(
            f"/api/v1/admin/offices/{COMMUNITY}/calendar", json={"calendar": None}, headers=headers
        )
        assert choice.status_code == status


def calendar_body(**changes: Any) -> dict[str, Any]:
    return {"timezone": "Asia/Shanghai", "weekly_hours": dict(MON_TO_SAT), "days": [], **changes}


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("good", calendar_body(timezone="Mars/Olympus_Mons"), "timezone"),
        ("good", calendar_body(timezone=""), "timezone"),
        ("good", {"weekly_hours": MON_TO_SAT}, "timezone"),
        ("good", calendar_body(weekly_hours={**MON_TO_SAT, "sun": None}), "weekly_hours.sun"),
        (
            "good",
            calendar_body(weekly_hours={k: v for k, v in MON_TO_SAT.items() if k != "sun"}),
            "weekly_hours.sun",
        ),
        ("good", calendar_body(weekly_hours={**MON_TO_SAT, "hol": []}), "weekly_hours.hol"),
        (
            "good",
            calendar_body(weekly_hours={**MON_TO_SAT, "mon": [{"start": "8:30", "end": "12:00"}]}),
            "weekly_hours.mon.0.start",
        ),
        (
            "good",
            calendar_body(weekly_hours={**MON_TO_SAT, "tue": [{"start": "08:30", "end": "24:00"}]}),
            "weekly_hours.tue.0.end",
        ),
        (
            "good",
            calendar_body(weekly_hours={**MON_TO_SAT, "wed": [{"start": "12:00", "end": "08:30"}]}),
            "weekly_hours.wed.0",
        ),
        (
            "good",
            calendar_body(
                weekly_hours={
                    **MON_TO_SAT,
                    "thu": [
                        {"start": "08:30", "end": "12:00"},
                        {"start": "11:00", "end": "17:30"},
                    ],
                }
            ),
            "weekly_hours.thu.1",
        ),
        ("good", calendar_body(weekly_hours={d: [] for d in MON_TO_SAT}), "weekly_hours"),
        ("good", calendar_body(days=[{"date": "2026-02-30", "kind": "holiday"}]), "days.0.date"),
        ("good", calendar_body(days=[{"date": "2026-10-01", "kind": "off"}]), "days.0.kind"),
        (
            "good",
            calendar_body(
                days=[
                    {"date": "2026-10-01", "kind": "holiday"},
                    {"date": "2026-10-01", "kind": "workday"},
                ]
            ),
            "days.1.date",
        ),
        (
            "good",
            calendar_body(days=[{"date": "2026-10-01", "kind": "holiday", "x": 1}]),
            "days.0.x",
        ),
        ("-leading-dash", calendar_body(), "name"),
        ("x" * 41, calendar_body(), "name"),
    ],
)
def test_a_broken_calendar_is_refused_naming_the_field_and_changes_nothing(
    client: FlaskClient, admin: dict[str, str], db: Session, name: str, body: Any, field: str
) -> None:
    response = client.put(f"/api/v1/admin/calendars/{name}", json=body, headers=admin)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed" and field in error["fields"], error
    assert db.scalar(select(Calendar).where(Calendar.name == name)) is None


def test_replacing_the_default_with_a_broken_calendar_keeps_the_old_one(
    client: FlaskClient, admin: dict[str, str], db: Session
) -> None:
    before = calendars_by_name(client, admin)[DEFAULT_CALENDAR]
    broken = calendar_body(days=[{"date": "2026-10-01", "kind": "holiday"}] * 2)
    response = client.put(f"/api/v1/admin/calendars/{DEFAULT_CALENDAR}", json=broken, headers=admin)
    assert response.status_code == 422
    assert calendars_by_name(client, admin)[DEFAULT_CALENDAR] == before


def test_choosing_an_unknown_calendar_or_office_is_refused(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    unknown = client.put(
        f"/api/v1/admin/offices/{COMMUNITY}/calendar", json={"calendar": "nope"}, headers=admin
    )
    assert unknown.status_code == 422 and "calendar" in unknown.get_json()["error"]["fields"]
    office = client.put(
        "/api/v1/admin/offices/NO-SUCH/calendar", json={"calendar": None}, headers=admin
    )
    assert office.status_code == 404
    for body in ({}, {"calendar": 3}, {"calendar": "default", "extra": 1}):
        refused = client.put(
            f"/api/v1/admin/offices/{COMMUNITY}/calendar", json=body, headers=admin
        )
        assert refused.status_code == 422, body
    not_json = client.put(
        f"/api/v1/admin/offices/{COMMUNITY}/calendar",
        data="x",
        headers=admin,
        content_type="application/json",
    )
    assert not_json.status_code == 400


def test_the_seed_file_and_the_stored_default_agree(db: Session) -> None:
    from models.calendars import seed_calendars

    (seed,) = [c for c in seed_calendars() if c["name"] == DEFAULT_CALENDAR]
    stored = calendar_named(db, DEFAULT_CALENDAR)
    assert stored is not None
    assert [(d.day, d.kind, d.name) for d in stored.days] == [
        (date.fromisoformat(d["date"]), d["kind"], d["name"]) for d in seed["days"]
    ]
    assert stored.weekly_hours == seed["weekly_hours"]
