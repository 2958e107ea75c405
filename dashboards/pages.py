"""The pages of the statistics: /dashboard for supervisors and admins signed in through the
office console, scoped to their subtree, and /public for anyone, per community.

Rendered on the server (Jinja, autoescaped) in Chinese, or in English after ``?lang=en`` (kept
in the session), from the same services.statistics functions as /api/v1/stats, so a page and
the API never disagree. Filters are a plain GET form; dashboard.js sends it with fetch and
swaps in the ``fragment=1`` rendering, so the page does not reload. The charts and the map are
inline SVG drawn on the server (web.svg_charts, web.svg_map): they need no script, and come
with the fragment. Nothing is loaded from another host."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import (
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboards.stats import public_selection, selection_for
from dashboards.stats_schemas import PublicStatsQuery, StatsQuery
from models.base import utcnow
from models.entities import Category, Office
from routing.statistics import rate
from services import dashboard, spikes, statistics
from services.errors import Forbidden, InvalidField
from services.users import ConsoleUser
from web.assets import AssetBlueprint
from web.db import read_session
from web.errors import flatten_messages
from web.i18n import HTML_LANG, Strings, remembered_language
from web.page_headers import add_page_headers, content_security_policy
from web.sessions import is_static_request, signed_in_user
from web.svg_charts import draw_categories, draw_trend
from web.svg_map import MapDrawing, draw_map

bp = AssetBlueprint(
    "dashboard_pages",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/dashboard/static",
)

STRINGS = Strings(Path(__file__).with_name("strings.json"))
READER_ROLES = ("supervisor", "admin")
# The rates the office table shows, in its column order.
OFFICE_RATES = (
    "closure_rate",
    "on_time_closure_rate",
    "on_time_handling_rate",
    "overdue_open_rate",
    "extension_rate",
    "rework_rate",
    "confirmation_rate",
    "fixed_share_of_closed",
)
DASHBOARD_FILTERS = ("from", "to", "office", "category")
PUBLIC_FILTERS = ("from", "to", "office", "category")
# Everything comes from this server; the charts are coloured by classes in dashboard.css and
# SVG attributes, never by inline style attributes, which the policy refuses.
CONTENT_SECURITY_POLICY = content_security_policy()


# ---------------------------------------------------------------- every request


def t(key: str, **params: Any) -> str:
    return STRINGS.translate(g.page_lang, key, **params)


@bp.before_app_request
def _language() -> None:
    if request.blueprint != "dashboard_pages" or is_static_request():
        return
    g.page_lang = remembered_language()


@bp.after_request
def _page_headers(response: Response) -> Response:
    return add_page_headers(response, CONTENT_SECURITY_POLICY, "no-store")


@bp.context_processor
def _page_context() -> dict[str, Any]:
    lang = g.get("page_lang", "zh")
    other = "en" if lang == "zh" else "zh"
    args = {k: v for k, v in request.args.items() if k != "fragment"}
    return {
        "t": t,
        "lang": lang,
        "html_lang": HTML_LANG[lang],
        "other_html_lang": HTML_LANG[other],
        "switch_url": f"{request.path}?{urlencode({**args, 'lang': other})}",
        "asset": asset_url,
        "local_time": local_time,
        "named": named,
        "percent": percent,
        "hours": hours,
    }


def asset_url(filename: str) -> str:
    """A static file's URL with its content hash (see web.assets), so
    a browser never runs an old one."""
    return bp.asset_url(filename)


def local_time(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(current_app.config["TIMEZONE"])).strftime("%Y-%m-%d %H:%M")


def named(names: dict[str, str | None] | None) -> str:
    """A {zh, en} name in the page's language."""
    if not names:
        return ""
    return str(names.get(g.page_lang) or names.get("zh") or "")


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} %"


def hours(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _message(title_key: str, message_key: str, status: int) -> ResponseReturnValue:
    page = render_template("dashboards/message.html", title_key=title_key, message_key=message_key)
    return page, status


def _filters(names: tuple[str, ...]) -> dict[str, str]:
    """The filters as the form sends them; an empty field is no filter."""
    return {name: value for name in names if (value := request.args.get(name, "").strip())}


def _bad_filter(error: ValidationError | InvalidField) -> ResponseReturnValue:
    if isinstance(error, InvalidField):
        field, message = error.field, error.message
    else:
        field, messages = next(iter(flatten_messages(error.messages).items()))
        message = messages[0]
    page = render_template(
        "dashboards/message.html",
        title_key="filter.bad_title",
        message_key="filter.bad_message",
        params={"field": field, "message": message},
    )
    return page, 400


# ---------------------------------------------------------------- the dashboard


@bp.get("/dashboard")
def dashboard_page() -> ResponseReturnValue:
    read = read_session()
    user = signed_in_user(read)
    if user is None:
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    if user.must_change_password:
        return redirect(url_for("console.change_password"))
    if user.role not in READER_ROLES:
        return _message("forbidden.title", "forbidden.message", 403)
    filters = _filters(DASHBOARD_FILTERS)
    now = utcnow()
    try:
        query = StatsQuery().load(filters)
        selection, office_code = selection_for(user.caller, query, now)
    except (ValidationError, InvalidField) as error:
        return _bad_filter(error)
    except Forbidden:
        return _message("forbidden.title", "forbidden_office.message", 403)
    view = _dashboard_view(read, user, selection, office_code, filters, now)
    template = "dashboards/_dashboard_body.html" if request.args.get("fragment") else None
    return render_template(template or "dashboards/dashboard.html", **view)


def _dashboard_view(
    read: Session,
    user: ConsoleUser,
    selection: statistics.StatsQuery,
    office_code: str | None,
    filters: dict[str, str],
    now: datetime,
) -> dict[str, Any]:
    period = statistics.trend_period(selection)
    whole = statistics.figures(read, selection, now)
    trend = statistics.figures(read, replace(selection, group_by=period), now, whole=False)["rows"]
    offices = statistics.figures(read, replace(selection, group_by="office"), now, whole=False)[
        "rows"
    ]
    by_category = statistics.figures(
        read, replace(selection, group_by="category"), now, whole=False
    )["rows"]
    categories = _category_names(read)
    by_category = [row for row in by_category if row["cases"] or row["received"]]
    by_category.sort(key=lambda r: (-r["cases"], str(r["category"])))
    # The user's own subtree lists the offices to filter by, whatever is filtered now.
    scope_ids, _ = statistics.resolve_scope(
        read,
        role=user.role,
        own_office_id=user.office_id,
        office_code=None,
        category=None,
        group=None,
    )
    trend_rows = _every_period(
        [row for row in trend if row[period] is not None], period, selection, period
    )
    choices = _office_choices(read, scope_ids)
    return {
        "user": user,
        "filters": filters,
        "window": {"from": selection.date_from, "to": selection.date_to, "office": office_code},
        "figures": whole,
        "backlog": statistics.backlog(read, selection, now),
        "trend": trend_rows,
        "period": period,
        "offices": offices,
        "office_rates": OFFICE_RATES,
        "categories": by_category,
        "category_names": categories,
        "office_choices": choices,
        "office_names": {office["code"]: office["name"] for office in choices},
        "category_choices": sorted(categories.items()),
        "drawing": _map(read, selection, now),
        "spikes": spikes.current_spikes(
            read, now, office_ids=selection.office_ids, category=selection.category
        ),
        **_charts(trend_rows, period, period, by_category, categories),
        "as_of": now,
    }


def periods(start: date, end: date, period: str) -> list[date]:
    """Every day, week (its Monday) or month (its first day) from ``start`` to ``end``."""
    if period == "week":
        first = start - timedelta(days=start.weekday())
    elif period == "month":
        first = start.replace(day=1)
    else:
        first = start
    found = []
    moment = first
    while moment <= end:
        found.append(moment)
        if period == "day":
            moment += timedelta(days=1)
        elif period == "week":
            moment += timedelta(days=7)
        else:
            moment = (moment.replace(day=28) + timedelta(days=4)).replace(day=1)
    return found


def _every_period(
    rows: list[dict[str, Any]], key: str, selection: statistics.StatsQuery, period: str
) -> list[dict[str, Any]]:
    """The trend with a row for every period of the window, an empty one where nothing was
    reported, so a quiet day shows as a gap at zero instead of vanishing from the chart."""
    by_period = {row[key]: row for row in rows}
    filled = []
    for moment in periods(selection.date_from, selection.date_to, period):
        name = moment.isoformat()
        filled.append(
            by_period.get(name)
            or {
                key: name,
                "received": 0,
                "cases": 0,
                "closed": 0,
                "rates": {"on_time_closure_rate": None},
                "on_time_closure_rate": None,
            }
        )
    return filled


def _category_names(read: Session) -> dict[str, dict[str, str]]:
    return {
        code: {"zh": name_zh, "en": name_en or name_zh}
        for code, name_zh, name_en in read.execute(
            select(Category.code, Category.name_zh, Category.name_en)
        )
    }


def _office_choices(read: Session, office_ids: frozenset[int] | None) -> list[dict[str, Any]]:
    statement = select(Office.code, Office.name, Office.name_en, Office.kind).where(
        Office.active.is_(True)
    )
    if office_ids is not None:
        statement = statement.where(Office.id.in_(sorted(office_ids)))
    return [
        {"code": code, "name": {"zh": name, "en": name_en or name}, "kind": kind}
        for code, name, name_en, kind in read.execute(statement.order_by(Office.code))
    ]


def _map(read: Session, selection: statistics.StatsQuery, now: datetime) -> dict[str, Any] | None:
    areas = dashboard.community_areas(read, selection.office_ids)
    found = dashboard.open_cases(read, selection, now)
    points = found.points
    drawing: MapDrawing | None = draw_map(
        [(office.code, geometry) for office, geometry in areas], points, width=480
    )
    if drawing is None:
        return None
    names = {
        office.code: {"zh": office.name, "en": office.name_en or office.name} for office, _ in areas
    }
    return {
        "drawing": drawing,
        "names": names,
        "open": sum(1 for p in points if p[2] == dashboard.OPEN),
        "overdue": sum(1 for p in points if p[2] == dashboard.OVERDUE),
        "unlocated": found.unlocated,
    }


def _charts(
    trend: list[dict[str, Any]],
    period_key: str,
    period: str,
    categories: list[dict[str, Any]],
    names: dict[str, dict[str, str]],
) -> dict[str, Any]:
    """``trend_chart`` and ``category_chart``, the charts' drawings (web.svg_charts), with the
    category names in the page's language, and ``trend_table``, the trend's numbers as rows:
    from the trend rows (the period under ``period_key``, days, weeks or months as ``period``
    says, the on-time rate at the top or under ``rates``) and the category rows."""

    def on_time(row: dict[str, Any]) -> float | None:
        if "on_time_closure_rate" in row:
            return row["on_time_closure_rate"]
        rate_now: float | None = row["rates"]["on_time_closure_rate"]
        return rate_now

    trend_table = [
        {
            "period": row[period_key],
            "received": row["received"],
            "closed": row["closed"],
            "on_time": on_time(row),
        }
        for row in trend
    ]
    category_bars = [
        (named(names.get(row["category"])) or str(row["category"]), row["cases"], row["closed"])
        for row in categories
    ]
    return {
        "trend_chart": draw_trend(trend_table, period),
        "category_chart": draw_categories(category_bars),
        "trend_table": trend_table,
    }


# ---------------------------------------------------------------- the public page


@bp.get("/public")
def public_page() -> ResponseReturnValue:
    read = read_session()
    filters = _filters(PUBLIC_FILTERS)
    now = utcnow()
    try:
        selection, office_code = public_selection(PublicStatsQuery().load(filters), now)
    except (ValidationError, InvalidField) as error:
        return _bad_filter(error)
    period = statistics.trend_period(selection)
    communities = statistics.public_figures(read, selection, now)
    trend = _every_period(
        statistics.public_trend(read, selection, now), "period", selection, period
    )
    categories = statistics.public_categories(read, selection, now)
    names = _category_names(read)
    view = {
        "filters": filters,
        "window": {"from": selection.date_from, "to": selection.date_to, "office": office_code},
        "communities": communities,
        "totals": _totals(communities),
        "trend": trend,
        "period": period,
        "categories": categories,
        "photos": dashboard.after_photos(read, selection),
        # Departments have no communities under them: nothing public to show.
        "office_choices": [o for o in _office_choices(read, None) if o["kind"] != "department"],
        "category_choices": sorted(names.items()),
        **_charts(trend, "period", period, categories, names),
        "as_of": now,
    }
    template = "dashboards/_public_body.html" if request.args.get("fragment") else None
    return render_template(template or "dashboards/public.html", **view)


def _totals(communities: list[dict[str, Any]]) -> dict[str, Any]:
    """The communities' sums, and the rates from the sums (never an average of rates)."""
    sums = {
        name: sum(row[name] for row in communities)
        for name in (
            "received",
            "cases",
            "closed",
            "closed_fixed",
            "closed_on_time",
            "due_to_close",
        )
    }
    sums["closure_rate"] = rate(sums["closed"], sums["due_to_close"])
    sums["on_time_closure_rate"] = rate(sums["closed_on_time"], sums["due_to_close"])
    return sums
