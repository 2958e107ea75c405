"""Resolution statistics for supervisors and admins: /api/v1/stats as JSON and as CSV.
docs/statistics.md defines every figure: numerator, denominator and time anchor."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, request
from flask.typing import ResponseReturnValue

from dashboards.stats_schemas import (
    PublicStatsOut,
    PublicStatsQuery,
    StatsOut,
    StatsQuery,
    window,
)
from models.base import utcnow
from services import statistics
from web.auth import authenticate
from web.db import read_session
from web.openapi import ERROR, Answer, Header, error, operation

bp = Blueprint("stats", __name__, url_prefix="/api/v1")

READERS = ("supervisor", "admin")
DESCRIPTION = (
    "Cases count by the day their first report came in (the window, in the city's time zone), "
    "as of now; `received` and `merged` count reports by the day they came in. Rates are per "
    "cent with two decimals. docs/statistics.md defines each figure. An admin key sees the "
    "city or any office's subtree; a supervisor key its own office's subtree (the default) "
    "or a part of it."
)
CSV = Answer(
    {"type": "string"},
    "CSV, UTF-8, a header line first.",
    {"Content-Disposition": Header('attachment; filename="cityrelay-stats-<day>.csv"')},
    media_type="text/csv",
)
RESPONSES: dict[int, Any] = {
    401: ERROR,
    403: error("Not a supervisor or admin key, or an office outside the supervisor's."),
    422: error("Invalid query parameters, or an unknown office, category or group, named."),
}


def _compute() -> tuple[dict[str, Any], dict[str, Any]]:
    caller = authenticate(*READERS)
    query = StatsQuery().load(request.args.to_dict())
    now = utcnow()
    time_zone = current_app.config["TIMEZONE"]
    start, end = window(query, now.astimezone(ZoneInfo(time_zone)).date())
    session = read_session()
    office_ids, office_code = statistics.resolve_scope(
        session,
        role=caller.role,
        own_office_id=caller.office_id,
        office_code=query["office"],
        category=query["category"],
        group=query["group"],
    )
    selection = statistics.StatsQuery(
        date_from=start,
        date_to=end,
        time_zone=time_zone,
        office_ids=office_ids,
        category=query["category"],
        group=query["group"],
        occupation=query["occupation"],
        channel=query["channel"],
        group_by=query["group_by"],
    )
    body = statistics.figures(session, selection, now)
    body["backlog"] = statistics.backlog(session, selection, now)
    body["leaderboard"] = statistics.leaderboard(session, selection)
    body["window"] = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "time_zone": time_zone,
        "as_of": now.isoformat(),
        "office": office_code,
    }
    return body, query


@bp.get("/stats")
@operation(
    summary="Resolution statistics: counts, rates, times, backlog, who reports",
    description=DESCRIPTION,
    query=StatsQuery,
    responses={200: StatsOut, **RESPONSES},
    security="bearer",
    tags=["statistics"],
)
def stats() -> ResponseReturnValue:
    body, _query = _compute()
    return StatsOut().dump(body)


# The CSV columns, in order: every figure flattened (rates.x, times.step.x).
def _flatten(figures: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in figures.items():
        if name in ("rows", "backlog", "window", "group_by", "leaderboard"):
            continue
        if isinstance(value, dict):
            for inner, inner_value in _flatten(value).items():
                flat[f"{name}.{inner}"] = inner_value
        else:
            flat[name] = value
    return flat


@bp.get("/stats.csv")
@operation(
    summary="The statistics as CSV: one line for the selection, or one per group",
    description=DESCRIPTION
    + " Columns: the group (with group_by), then every figure of /api/v1/stats, nested ones "
    "named with dots (rates.closure_rate, times.to_close.median_hours). Empty cells are "
    "figures without a value.",
    query=StatsQuery,
    responses={200: CSV, **RESPONSES},
    security="bearer",
    tags=["statistics"],
)
def stats_csv() -> ResponseReturnValue:
    body, query = _compute()
    group_by = query["group_by"]
    lines = body["rows"] if group_by else [body]
    flat = [_flatten(line) for line in lines]
    leading = [group_by] if group_by else []
    extra = ["rank", "rank_note"] if group_by == "office" else []
    columns = leading + list(_flatten(body)) + extra
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for line, row in zip(lines, flat, strict=True):
        values = {**row, **{name: line.get(name) for name in leading + extra}}
        writer.writerow(["" if values.get(c) is None else values.get(c) for c in columns])
    stamp = datetime.fromisoformat(body["window"]["as_of"]).strftime("%Y%m%d")
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="cityrelay-stats-{stamp}.csv"',
        },
    )


@bp.get("/public/stats")
@operation(
    summary="Public figures per community: reported, closed, fixed, on time",
    description=(
        "No key. For every community (under `office` when given): reports received, cases, "
        "closed, closed as fixed, closed on time, the closure and on-time closure rates and "
        "the median hours to close; a community with fewer than 20 closed cases is not "
        "ranked. Also the trend (by day for a window up to a month, by week up to half a "
        "year, by month beyond) and the categories. No names, reporters, texts or photos. "
        "docs/statistics.md defines every figure."
    ),
    query=PublicStatsQuery,
    responses={
        200: PublicStatsOut,
        422: error("Invalid query parameters, or an unknown office, category or group, named."),
    },
    tags=["statistics"],
)
def public_stats() -> ResponseReturnValue:
    query = PublicStatsQuery().load(request.args.to_dict())
    now = utcnow()
    time_zone = current_app.config["TIMEZONE"]
    start, end = window(query, now.astimezone(ZoneInfo(time_zone)).date())
    session = read_session()
    office_ids, office_code = statistics.resolve_scope(
        session,
        role=statistics.PUBLIC,
        own_office_id=None,
        office_code=query["office"],
        category=query["category"],
        group=query["group"],
    )
    selection = statistics.StatsQuery(
        date_from=start,
        date_to=end,
        time_zone=time_zone,
        office_ids=office_ids,
        category=query["category"],
        group=query["group"],
    )
    body = {
        "window": {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "time_zone": time_zone,
            "as_of": now.isoformat(),
            "office": office_code,
            "trend": statistics.trend_period(selection),
        },
        "communities": statistics.public_figures(session, selection, now),
        "trend": statistics.public_trend(session, selection, now),
        "categories": statistics.public_categories(session, selection, now),
    }
    return PublicStatsOut().dump(body)
