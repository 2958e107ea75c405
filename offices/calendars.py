"""Administration of working-hour calendars under /api/v1/admin: the calendars (weekly hours,
public holidays, adjusted working days) and which one each office counts on. Admin keys only.
A change counts for the cases opened after it; due times already set stay as they were."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask.typing import ResponseReturnValue

from offices.calendar_schemas import CalendarIn, CalendarOut, OfficeCalendarIn, OfficeCalendarOut
from services import calendars
from web.auth import authenticate
from web.db import read_session, unit_of_work
from web.errors import json_object_body
from web.openapi import ERROR, error, operation

bp = Blueprint("calendars", __name__, url_prefix="/api/v1/admin")

NOT_ADMIN = error("Not an admin key.")

WORKDAY = [{"start": "08:30", "end": "12:00"}, {"start": "13:30", "end": "17:30"}]
CALENDAR_EXAMPLE: dict[str, Any] = {
    "timezone": "Asia/Shanghai",
    "weekly_hours": {
        **{day: WORKDAY for day in ("mon", "tue", "wed", "thu", "fri")},
        "sat": [],
        "sun": [],
    },
    "days": [
        {"date": "2026-10-01", "kind": "holiday", "name": "国庆节"},
        {"date": "2026-10-10", "kind": "workday", "name": "国庆节调休上班"},
    ],
}


def _calendar_view(view: calendars.CalendarView) -> dict[str, Any]:
    return CalendarOut().dump({**view.spec, "offices": view.offices, "updated_at": view.updated_at})


@bp.get("/calendars")
@operation(
    summary="Every working-hour calendar: weekly hours, holidays and adjusted working days",
    description=(
        "An office counts its cases' working hours on the calendar it chose, else on its "
        "parent's, and at the top on the calendar named `default`."
    ),
    responses={200: CalendarOut(many=True), 401: ERROR, 403: NOT_ADMIN},
    security="bearer",
    tags=["admin"],
)
def list_calendars() -> ResponseReturnValue:
    authenticate("admin")
    return [_calendar_view(view) for view in calendars.list_calendars(read_session())]


@bp.put("/calendars/<name>")
@operation(
    summary="Create a calendar, or replace its time zone, weekly hours and exceptional days",
    description=(
        "Every weekday is named (`[]` for a day off). A `holiday` stops the working clock; a "
        "`workday` runs it on a day otherwise off, with the hours of the calendar's first "
        "weekday that has any. Cases opened from the next one count on the new calendar. "
        "**201** when created, **200** when replaced."
    ),
    body=CalendarIn,
    body_example=CALENDAR_EXAMPLE,
    responses={
        200: CalendarOut,
        201: CalendarOut,
        400: ERROR,
        401: ERROR,
        403: NOT_ADMIN,
        404: error("The name holds a control character: it names no calendar, nor can it."),
        422: error(
            "Invalid fields, named like `weekly_hours.mon.1` (periods out of order or "
            "overlapping), `timezone`, `days.3.date` or `name`; nothing is changed."
        ),
    },
    security="bearer",
    tags=["admin"],
)
def put_calendar(name: str) -> ResponseReturnValue:
    authenticate("admin")
    data = CalendarIn().load(json_object_body())
    with unit_of_work() as session:
        view, created = calendars.put_calendar(
            session, name, data["timezone"], data["weekly_hours"], data["days"]
        )
        body = _calendar_view(view)
    return body, 201 if created else 200


@bp.put("/offices/<code>/calendar")
@operation(
    summary="Choose the calendar an office counts working hours on (null: its parent's)",
    body=OfficeCalendarIn,
    body_example={"calendar": "default"},
    responses={
        200: OfficeCalendarOut,
        400: ERROR,
        401: ERROR,
        403: NOT_ADMIN,
        404: error("No such office."),
        422: error("Invalid fields, or no calendar of that name (`fields.calendar`)."),
    },
    security="bearer",
    tags=["admin"],
)
def put_office_calendar(code: str) -> ResponseReturnValue:
    authenticate("admin")
    data = OfficeCalendarIn().load(json_object_body())
    with unit_of_work() as session:
        chosen = calendars.set_office_calendar(session, code, data["calendar"])
    return OfficeCalendarOut().dump(
        {"office": chosen.office, "calendar": chosen.calendar, "effective": chosen.effective}
    )
