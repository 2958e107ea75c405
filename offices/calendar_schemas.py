"""What admins send and get back under /api/v1/admin/calendars and
/api/v1/admin/offices/<code>/calendar. Output fields marked ``required`` are always present."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from models.entities import CALENDAR_DAY_KINDS
from models.limits import (
    MAX_CALENDAR_DAY_NAME_CHARS,
    MAX_CALENDAR_DAYS,
    MAX_CALENDAR_NAME_CHARS,
    MAX_CALENDAR_PERIODS_PER_DAY,
    MAX_CALENDAR_TIMEZONE_CHARS,
)

CLOCK_TIME = validate.Regexp(
    r"^([01][0-9]|2[0-3]):[0-5][0-9]$", error="A local time of day as HH:MM, 00:00 to 23:59."
)


class PeriodIn(Schema):
    class Meta:
        unknown = RAISE

    start = fields.String(required=True, validate=CLOCK_TIME, metadata={"example": "08:30"})
    end = fields.String(
        required=True,
        validate=CLOCK_TIME,
        metadata={"example": "12:00", "description": "After start, on the same day."},
    )


def _day_in(weekday: str) -> fields.List:
    return fields.List(
        fields.Nested(PeriodIn),
        required=True,
        validate=validate.Length(max=MAX_CALENDAR_PERIODS_PER_DAY),
        metadata={"description": f"Working periods on {weekday}, in order; [] for a day off."},
    )


class WeeklyHoursIn(Schema):
    class Meta:
        unknown = RAISE

    mon = _day_in("Mondays")
    tue = _day_in("Tuesdays")
    wed = _day_in("Wednesdays")
    thu = _day_in("Thursdays")
    fri = _day_in("Fridays")
    sat = _day_in("Saturdays")
    sun = _day_in("Sundays")


class CalendarDayIn(Schema):
    class Meta:
        unknown = RAISE

    date = fields.Date(required=True)
    kind = fields.String(
        required=True,
        validate=validate.OneOf(CALENDAR_DAY_KINDS),
        metadata={
            "description": "holiday: no working hours that day; workday: an adjusted working "
            "day (调休) that works the calendar's standard day, its first weekday with hours."
        },
    )
    name = fields.String(
        load_default="",
        validate=validate.Length(max=MAX_CALENDAR_DAY_NAME_CHARS),
        metadata={"example": "国庆节"},
    )


class CalendarIn(Schema):
    class Meta:
        unknown = RAISE

    timezone = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_CALENDAR_TIMEZONE_CHARS),
        metadata={"description": "An IANA time zone; the hours and dates are local to it."},
    )
    weekly_hours = fields.Nested(WeeklyHoursIn, required=True)
    days = fields.List(
        fields.Nested(CalendarDayIn),
        load_default=list,
        validate=validate.Length(max=MAX_CALENDAR_DAYS),
        metadata={"description": "Every exceptional day of the calendar; each date once."},
    )


class PeriodOut(Schema):
    start = fields.String(required=True)
    end = fields.String(required=True)


def _day_out() -> fields.List:
    return fields.List(fields.Nested(PeriodOut), required=True)


class WeeklyHoursOut(Schema):
    mon = _day_out()
    tue = _day_out()
    wed = _day_out()
    thu = _day_out()
    fri = _day_out()
    sat = _day_out()
    sun = _day_out()


class CalendarDayOut(Schema):
    date = fields.String(required=True, metadata={"format": "date"})
    kind = fields.String(required=True, validate=validate.OneOf(CALENDAR_DAY_KINDS))
    name = fields.String(required=True)


class CalendarOut(Schema):
    name = fields.String(required=True)
    timezone = fields.String(required=True)
    weekly_hours = fields.Nested(WeeklyHoursOut, required=True)
    days = fields.List(fields.Nested(CalendarDayOut), required=True)
    offices = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "Offices that chose this calendar (their children inherit it)."},
    )
    updated_at = fields.AwareDateTime(required=True)


class OfficeCalendarIn(Schema):
    class Meta:
        unknown = RAISE

    calendar = fields.String(
        required=True,
        allow_none=True,
        validate=validate.Length(min=1, max=MAX_CALENDAR_NAME_CHARS),
        metadata={"description": "A calendar's name; null inherits the parent office's."},
    )


class OfficeCalendarOut(Schema):
    office = fields.String(required=True)
    calendar = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The calendar the office chose; null when it inherits."},
    )
    effective = fields.String(
        required=True,
        metadata={"description": "The calendar its cases count working time on."},
    )
