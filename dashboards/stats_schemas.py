"""What the statistics endpoints take and answer (docs/statistics.md defines every figure)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from models.entities import CHANNELS
from models.limits import MAX_CATEGORY_CODE_CHARS, OCCUPATIONS
from services.statistics import GROUP_BY
from web import numbers

# A window longer than this is refused: ten years of daily rows is already more than a page.
MAX_WINDOW_DAYS = 3660
DEFAULT_WINDOW_DAYS = 30
MAX_OFFICE_CODE_CHARS = 40
MAX_GROUP_CHARS = 100


class WindowQuery(Schema):
    """What every statistics query takes: the window and what the figures are of."""

    class Meta:
        unknown = RAISE

    from_ = fields.Date(
        data_key="from",
        load_default=None,
        metadata={
            "description": "First day of the window (YYYY-MM-DD, in the city's time zone); by "
            "default 29 days before `to`."
        },
    )
    to = fields.Date(
        load_default=None,
        metadata={"description": "Last day of the window, included; by default today."},
    )
    category = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=MAX_CATEGORY_CODE_CHARS),
        metadata={"description": "A category code."},
    )
    group = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=MAX_GROUP_CHARS),
        metadata={"description": "A category group, as `/api/v1/categories` names it (市容环境)."},
    )

    @validates_schema
    def _window(self, data: dict[str, Any], **_: Any) -> None:
        start, end = data.get("from_"), data.get("to")
        if start is not None and end is not None and start > end:
            raise ValidationError("`from` must not come after `to`.", "from")
        if start is not None and end is not None and (end - start).days >= MAX_WINDOW_DAYS:
            raise ValidationError(f"A window of at most {MAX_WINDOW_DAYS} days.", "from")


class StatsQuery(WindowQuery):
    office = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=MAX_OFFICE_CODE_CHARS),
        metadata={
            "description": "An office code: the figures of that office and every office under "
            "it. A supervisor key's default is its own office."
        },
    )
    occupation = fields.String(
        load_default=None,
        validate=validate.OneOf(OCCUPATIONS),
        metadata={"description": "Of the first reporter: " + ", ".join(OCCUPATIONS) + "."},
    )
    channel = fields.String(
        load_default=None,
        validate=validate.OneOf(CHANNELS),
        metadata={"description": "How the first report came: " + ", ".join(CHANNELS) + "."},
    )
    group_by = fields.String(
        load_default=None,
        validate=validate.OneOf(GROUP_BY),
        metadata={"description": "One row per " + ", ".join(GROUP_BY) + " under `rows`."},
    )


def window(query: dict[str, Any], today: date) -> tuple[date, date]:
    end = query["to"] or today
    start = query["from_"] or end - timedelta(days=DEFAULT_WINDOW_DAYS - 1)
    if start > end:
        raise ValidationError("`from` must not come after `to` (today by default).", "from")
    return start, end


RATES_DESCRIPTION = (
    "Per cent with two decimals, null when the denominator is 0: closure_rate (结案率), "
    "on_time_closure_rate (按期结案率), on_time_handling_rate (按期处置率), overdue_open_rate "
    "(超期待处置率), extension_rate (延期率), rework_rate (返工率), confirmation_rate, "
    "fixed_share_of_closed, roaming_share."
)
TIMES_DESCRIPTION = (
    "to_accept, to_resolve, to_close: each {count, median_hours, p90_hours, "
    "median_working_hours, p90_working_hours}, nearest-rank, waiting time left out, rounded to "
    "two significant figures (to a tenth of an hour below ten hours)."
)


class FiguresOut(Schema):
    received = numbers.Integer(required=True, metadata={"description": "Reports received."})
    merged = numbers.Integer(
        required=True, metadata={"description": "Of them, reports joined to an existing case."}
    )
    cases = numbers.Integer(required=True, metadata={"description": "Cases opened (立案)."})
    routed = numbers.Integer(required=True, metadata={"description": "Of them, dispatched (派遣)."})
    accepted = numbers.Integer(required=True, metadata={"description": "Of them, accepted (受理)."})
    resolved = numbers.Integer(required=True, metadata={"description": "Of them, resolved."})
    closed = numbers.Integer(required=True, metadata={"description": "Of them, closed (结案)."})
    closed_fixed = numbers.Integer(required=True)
    closed_on_time = numbers.Integer(required=True)
    reopened = numbers.Integer(required=True)
    rework = numbers.Integer(required=True, metadata={"description": "Rework orders given."})
    due_to_close = numbers.Integer(required=True, metadata={"description": "应结案."})
    due_to_handle = numbers.Integer(required=True, metadata={"description": "应处置."})
    handled_on_time = numbers.Integer(required=True)
    overdue_unhandled = numbers.Integer(required=True)
    extended = numbers.Integer(required=True)
    confirmed = numbers.Integer(required=True)
    rates = fields.Dict(
        keys=fields.String(),
        values=numbers.Float(allow_none=True),
        required=True,
        metadata={"description": RATES_DESCRIPTION},
    )
    times = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(),
        required=True,
        metadata={"description": TIMES_DESCRIPTION},
    )
    first_reported_by = fields.Dict(
        keys=fields.String(),
        values=numbers.Integer(),
        required=True,
        metadata={"description": "Cases by the occupation of their first reporter."},
    )


SPIKES_DESCRIPTION = (
    "Spike alerts as of now, whatever the window: the categories whose reports in a community "
    "over the last 24 hours exceed that community's own 28-day baseline (at least 5 reports, "
    "and more than the baseline's daily mean + 3 x sqrt(max(mean, 1))), in the communities "
    "of the selection's offices, of its category or group; the furthest above its threshold "
    'first. docs/statistics.md, "Spikes", explains the rule.'
)


class SpikeOut(Schema):
    office = fields.String(required=True, metadata={"description": "The community's code."})
    office_name = fields.String(required=True)
    category = fields.String(required=True, metadata={"description": "The category code."})
    category_name = fields.String(required=True)
    last_24h = numbers.Integer(
        required=True, metadata={"description": "Reports received in the last 24 hours."}
    )
    baseline_per_day = numbers.Float(
        required=True,
        metadata={"description": "Reports a day in the 28 days before those 24 hours."},
    )
    threshold = numbers.Float(
        required=True, metadata={"description": "The count `last_24h` had to exceed."}
    )
    ratio = numbers.Float(
        required=True,
        allow_none=True,
        metadata={"description": "last_24h / baseline_per_day; null without a baseline."},
    )
    since = fields.DateTime(
        required=True,
        metadata={"description": "When the first of the last 24 hours' reports came in."},
    )


class SpikesQuery(Schema):
    class Meta:
        unknown = RAISE

    office = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=MAX_OFFICE_CODE_CHARS),
        metadata={
            "description": "An office code: the communities under it (or that community). A "
            "supervisor key's default is its own office."
        },
    )
    category = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=MAX_CATEGORY_CODE_CHARS),
        metadata={"description": "A category code."},
    )
    group = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=MAX_GROUP_CHARS),
        metadata={"description": "A category group, as `/api/v1/categories` names it (市容环境)."},
    )


class SpikesOut(Schema):
    spikes = fields.List(
        fields.Nested(SpikeOut), required=True, metadata={"description": SPIKES_DESCRIPTION}
    )
    as_of = fields.DateTime(required=True, metadata={"description": "The moment they are as of."})


class StatsOut(FiguresOut):
    window = fields.Dict(
        required=True,
        metadata={"description": "{from, to, time_zone, as_of, office}: what was counted."},
    )
    backlog = fields.Dict(
        required=True,
        metadata={
            "description": "Now, whatever the window: {by_status, open, overdue_now, oldest_open}."
        },
    )
    leaderboard = fields.List(
        fields.Dict(),
        required=True,
        metadata={
            "description": "The 10 reporters with the most points earned in the window (net of "
            "reversals), then the most valid reports (not in a case closed as invalid or "
            "duplicate): each {place, display_name, occupation, points, valid_reports}; "
            "never a phone or a key."
        },
    )
    spikes = fields.List(
        fields.Nested(SpikeOut), required=True, metadata={"description": SPIKES_DESCRIPTION}
    )
    group_by = fields.String()
    rows = fields.List(
        fields.Dict(),
        metadata={
            "description": "With group_by: one per group, with every figure above and the "
            "group under the group_by name (office code, category code, group, ISO day, week's "
            "Monday, month's first day, occupation). By office also office_name, rank (place by "
            "on-time closure rate, then closure rate) and rank_note: an office with fewer than "
            "20 closed cases has rank null and rank_note `too few to rank`."
        },
    )


class PublicStatsQuery(WindowQuery):
    """No filter that could narrow the public figures down to a person."""

    office = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=MAX_OFFICE_CODE_CHARS),
        metadata={
            "description": "An office code: the communities under it (or that community); by "
            "default every community."
        },
    )


class CommunityFiguresOut(Schema):
    office = fields.String(required=True, metadata={"description": "The community's code."})
    name = fields.String(required=True)
    name_en = fields.String(required=True)
    received = numbers.Integer(required=True, metadata={"description": "Reports received."})
    cases = numbers.Integer(required=True)
    closed = numbers.Integer(required=True)
    closed_fixed = numbers.Integer(required=True)
    closed_on_time = numbers.Integer(required=True)
    due_to_close = numbers.Integer(required=True)
    rates = fields.Dict(
        keys=fields.String(),
        values=numbers.Float(allow_none=True),
        required=True,
        metadata={"description": "closure_rate, on_time_closure_rate, fixed_share_of_closed."},
    )
    median_hours_to_close = numbers.Float(required=True, allow_none=True)
    ranked = fields.Boolean(
        required=True,
        metadata={"description": "False with fewer than 20 closed cases: too few to rank."},
    )


class TrendOut(Schema):
    period = fields.String(required=True, metadata={"description": "The day the period starts."})
    received = numbers.Integer(required=True)
    cases = numbers.Integer(required=True)
    closed = numbers.Integer(required=True)
    on_time_closure_rate = numbers.Float(required=True, allow_none=True)


class CategoryFiguresOut(Schema):
    category = fields.String(required=True, allow_none=True)
    name_zh = fields.String(required=True, allow_none=True)
    name_en = fields.String(required=True, allow_none=True)
    cases = numbers.Integer(required=True)
    closed = numbers.Integer(required=True)
    closed_fixed = numbers.Integer(required=True)


class PublicStatsOut(Schema):
    window = fields.Dict(
        required=True,
        metadata={
            "description": "{from, to, time_zone, as_of, office, trend}: the trend's period."
        },
    )
    communities = fields.List(fields.Nested(CommunityFiguresOut), required=True)
    trend = fields.List(fields.Nested(TrendOut), required=True)
    categories = fields.List(fields.Nested(CategoryFiguresOut), required=True)


class CasesQuery(StatsQuery):
    """The case list takes the statistics' filters; it has no groups."""

    class Meta:
        unknown = RAISE
        exclude = ("group_by",)


class ExportOut(Schema):
    id = numbers.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["pending", "done", "failed"]))
    rows = numbers.Integer(required=True, allow_none=True, metadata={"description": "Once done."})
    created_at = fields.DateTime(required=True)
    finished_at = fields.DateTime(required=True, allow_none=True)
    error = fields.String(required=True, allow_none=True, metadata={"description": "If failed."})
    url = fields.Url(required=True, metadata={"description": "This export, to poll."})
    download_url = fields.Url(
        required=True, allow_none=True, metadata={"description": "The CSV file, once done."}
    )
