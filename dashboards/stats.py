"""Resolution statistics: /api/v1/stats as JSON and as CSV and the case list as CSV (at once,
or as an export a task writes) for supervisors and admins; /api/v1/public/stats for anyone.
docs/statistics.md defines every figure: numerator, denominator and time anchor."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, request, send_file, stream_with_context, url_for
from flask.typing import ResponseReturnValue

from dashboards.stats_schemas import (
    CasesQuery,
    ExportOut,
    PublicStatsOut,
    PublicStatsQuery,
    SpikesOut,
    SpikesQuery,
    StatsOut,
    StatsQuery,
    window,
)
from models.base import utcnow
from services import exports, spikes, statistics
from services.accounts import Caller
from web.auth import authenticate
from web.db import database, read_session, unit_of_work
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


def selection_for(
    caller: Caller, query: dict[str, Any], now: datetime
) -> tuple[statistics.StatsQuery, str | None]:
    """What a caller's query selects (its window, the office subtree it may see, its
    filters) and the office code the figures are named by."""
    return _selection(caller.role, caller.office_id, query, now)


def public_selection(
    query: dict[str, Any], now: datetime
) -> tuple[statistics.StatsQuery, str | None]:
    """What a public query selects: the communities under ``office`` (every one by default),
    never narrowed to a person (the public query has no occupation or channel)."""
    return _selection(statistics.PUBLIC, None, query, now)


def _selection(
    role: str, own_office_id: int | None, query: dict[str, Any], now: datetime
) -> tuple[statistics.StatsQuery, str | None]:
    time_zone = current_app.config["TIMEZONE"]
    start, end = window(query, now.astimezone(ZoneInfo(time_zone)).date())
    office_ids, office_code = statistics.resolve_scope(
        read_session(),
        role=role,
        own_office_id=own_office_id,
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
        occupation=query.get("occupation"),
        channel=query.get("channel"),
        group_by=query.get("group_by"),
    )
    return selection, office_code


def _compute() -> tuple[dict[str, Any], dict[str, Any], statistics.StatsQuery, datetime]:
    caller = authenticate(*READERS)
    query = StatsQuery().load(request.args.to_dict())
    now = utcnow()
    selection, office_code = selection_for(caller, query, now)
    session = read_session()
    body = statistics.figures(session, selection, now)
    body["backlog"] = statistics.backlog(session, selection, now)
    body["leaderboard"] = statistics.leaderboard(session, selection)
    body["window"] = {
        "from": selection.date_from.isoformat(),
        "to": selection.date_to.isoformat(),
        "time_zone": selection.time_zone,
        "as_of": now.isoformat(),
        "office": office_code,
    }
    return body, query, selection, now


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
    body, _query, selection, now = _compute()
    # Spikes are as of now whatever the window, like the backlog; the CSV has no place for them.
    found = spikes.current_spikes(
        read_session(),
        now,
        office_ids=selection.office_ids,
        category=selection.category,
        group=selection.group,
    )
    body["spikes"] = spikes.as_json(found)
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
    body, query, _selection, _now = _compute()
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


@bp.get("/spikes")
@operation(
    summary="Spike alerts: categories out of line in a community over the last 24 hours",
    description=(
        "As of now: per community and category, the reports received in the last 24 hours "
        "against that community's own baseline, the 28 days before them. A spike is at least "
        "5 reports and more than the baseline's daily mean + 3 x sqrt(max(mean, 1)). A report "
        "counts in the community its case's location lies in. An admin key sees the city or "
        "any office's subtree; a supervisor key its own office's subtree (the default) or a "
        'part of it. docs/statistics.md, "Spikes", explains the rule.'
    ),
    query=SpikesQuery,
    responses={200: SpikesOut, **RESPONSES},
    security="bearer",
    tags=["statistics"],
)
def spike_alerts() -> ResponseReturnValue:
    caller = authenticate(*READERS)
    query = SpikesQuery().load(request.args.to_dict())
    now = utcnow()
    session = read_session()
    office_ids, _office_code = statistics.resolve_scope(
        session,
        role=caller.role,
        own_office_id=caller.office_id,
        office_code=query["office"],
        category=query["category"],
        group=query["group"],
    )
    found = spikes.current_spikes(
        session, now, office_ids=office_ids, category=query["category"], group=query["group"]
    )
    return SpikesOut().dump({"spikes": spikes.as_json(found), "as_of": now})


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
    selection, office_code = public_selection(query, now)
    session = read_session()
    start, end, time_zone = selection.date_from, selection.date_to, selection.time_zone
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


def _export_answer(export: Any) -> dict[str, Any]:
    done = export.status == "done"
    return {
        "id": export.id,
        "status": export.status,
        "rows": export.rows,
        "created_at": export.created_at,
        "finished_at": export.finished_at,
        "error": export.error or None,
        "url": url_for("stats.get_export", export_id=export.id, _external=True),
        "download_url": (
            url_for("stats.download_export", export_id=export.id, _external=True) if done else None
        ),
    }


@bp.get("/cases.csv")
@operation(
    summary="The case list as CSV",
    description=(
        "One line per case reported in the window (the same filters as /api/v1/stats), "
        "oldest first, with the columns " + ", ".join(exports.CASES_CSV_COLUMNS) + ": times "
        "in ISO 8601 in the city's time zone, `on_time` true or false once closed, the first "
        "reporter by occupation only (never a name). Up to 50,000 lines "
        "(CITYRELAY_EXPORT_SYNC_MAX_ROWS) it answers at once; beyond, a task writes the file "
        "and the answer is **202** with the export to poll (`Location`, `url`), whose "
        "`download_url` appears once it is done. The same request again within 10 minutes "
        "gets the same export."
    ),
    query=CasesQuery,
    responses={
        200: Answer(
            {"type": "string"},
            "CSV, UTF-8, a header line first.",
            {"Content-Disposition": Header('attachment; filename="cityrelay-cases-<day>.csv"')},
            media_type="text/csv",
        ),
        202: Answer(
            ExportOut,
            "Too many lines to answer at once: the export is being written.",
            {"Location": Header("The export to poll.", required=True)},
        ),
        **RESPONSES,
    },
    security="bearer",
    tags=["statistics"],
)
def cases_csv() -> ResponseReturnValue:
    caller = authenticate(*READERS)
    query = CasesQuery().load(request.args.to_dict())
    now = utcnow()
    selection, _office = selection_for(caller, query, now)
    if exports.count_cases(read_session(), selection) > current_app.config["EXPORT_SYNC_MAX_ROWS"]:
        with unit_of_work() as session:
            export = exports.request_export(session, selection, caller.assignee, now)
            body = _export_answer(export)
        return ExportOut().dump(body), 202, {"Location": body["url"]}
    lines = exports.case_lines(read_session(), selection)
    stamp = now.strftime("%Y%m%d")
    return Response(
        stream_with_context(lines),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="cityrelay-cases-{stamp}.csv"'},
    )


@bp.get("/exports/<id:export_id>")
@operation(
    summary="A case-list export: pending, done (with its download URL) or failed",
    responses={
        200: ExportOut,
        401: ERROR,
        403: error("Not a supervisor or admin key."),
        404: error("No such export, or another caller's."),
    },
    security="bearer",
    tags=["statistics"],
)
def get_export(export_id: int) -> ResponseReturnValue:
    caller = authenticate(*READERS)
    export = exports.export_for(
        read_session(), export_id, caller.assignee, admin=caller.role == "admin"
    )
    return ExportOut().dump(_export_answer(export))


@bp.get("/exports/<id:export_id>/download")
@operation(
    summary="The CSV file of a finished export",
    responses={
        200: Answer(
            {"type": "string"},
            "CSV, UTF-8, a header line first.",
            media_type="text/csv",
        ),
        401: ERROR,
        403: error("Not a supervisor or admin key."),
        404: error("No such export, another caller's, or its file is gone."),
        409: error("The export is not done yet (`export_not_ready`, with its `status`)."),
    },
    security="bearer",
    tags=["statistics"],
)
def download_export(export_id: int) -> ResponseReturnValue:
    caller = authenticate(*READERS)
    session = read_session()
    export = exports.export_for(session, export_id, caller.assignee, admin=caller.role == "admin")
    size = exports.ready_export(session, export)
    reading = database().sessions

    def read_chunk(offset: int) -> tuple[int, bytes] | None:
        # A session of its own per piece: the file is sent after the request's session is
        # closed, and a slow download holds no transaction or connection between pieces.
        with reading() as piece_session:
            return exports.chunk_at(piece_session, export.id, offset)

    finished = export.finished_at
    response = send_file(
        exports.ExportFile(read_chunk, size),
        mimetype="text/csv",
        as_attachment=True,
        download_name=f"cityrelay-cases-export-{export.id}.csv",
        # What a done export stores never changes.
        etag=f"export-{export.id}-{size}-{finished.timestamp() if finished else ''}",
        last_modified=finished,
        conditional=False,
    )
    # send_file knows the length of files on disk and in memory only: given it, the answer says
    # its Content-Length, and answers Range requests (206) and revalidations (304) as it did
    # when exports were files.
    response.content_length = size
    return response.make_conditional(request, accept_ranges=True, complete_length=size)
