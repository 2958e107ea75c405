"""/dashboard and /public through the test client: who may open the dashboard, the figures on
both pages equal the API's for the same filters, a filter refused by its name on an escaped
page, the fragment the filters swap in, English after the switch, the public page's
after-photos with no reporter in sight, and the charts: inline SVG of the tables' figures, with
every name escaped, no inline style and no script."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from dashboards.pages import periods
from models.entities import Category
from models.session import unit_of_work
from services import casework
from services.accounts import Caller
from services.photos import check_photos
from tests.factories import make_case, make_key, make_reporter, store_photo
from tests.helpers import sample_point, tiny_png
from tests.integration.test_console import log_in, make_user

POINT = sample_point()
OFFICE = POINT["office"]
STREET = "PD-CJ"
OTHER_STREET = "PD-HG"
FIGURE = re.compile(r'data-figure="(\w+)">(\d+)<')
RATE = re.compile(r'data-rate="(\w+)">([^<]+)<')
ROW = re.compile(r'<tr data-office="([\w-]+)">(.*?)</tr>', re.S)
CELL = re.compile(r'data-value="([^"]*)" data-col="(\w+)"')
REPORTER_NAME = "韩梅梅骑手"
HOSTILE_NAME = '<script>alert(1)</script>"><b onmouseover=x>&amp;'
# The trend chart's periods: "<date>: <received label> N · <closed label> M · …", then the
# period's received and closed bars.
PERIOD = re.compile(
    r'<g class="period"><title>(\d{4}-\d{2}-\d{2}): \D*?(\d+) · \D*?(\d+) · [^<]*</title>'
    r'<rect class="hit"[^>]*/>'
    r'<rect class="bar received" [^>]*height="([\d.]+)"/>'
    r'<rect class="bar closed" [^>]*height="([\d.]+)"/>'
)
TREND_ROW = re.compile(r"<tr><td>([\d-]+)</td><td>(\d+)</td><td>(\d+)</td>")
TOP_TICK = re.compile(r'<text class="tick" x="0" y="[\d.]+">(\d+)</text>')
PLOT_HEIGHT = re.compile(r'<svg class="plot" y="[\d.]+" width="100%" height="([\d.]+)"')
CATEGORY_BAR = re.compile(
    r'<rect class="bar (cases|closed)" x="0" y="[\d.]+" width="([\d.]+)%"[^>]*/>'
    r'<text class="value" [^>]*>(\d+)</text>'
)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def signed_in(app: Flask, sessions: sessionmaker[Session], role: str, office: str) -> FlaskClient:
    client = app.test_client()
    assert log_in(client, *make_user(sessions, role, office)).status_code == 303
    return client


def page_figures(html: str) -> dict[str, Any]:
    figures: dict[str, Any] = {name: int(value) for name, value in FIGURE.findall(html)}
    for name, shown in RATE.findall(html):
        figures[f"rates.{name}"] = None if shown == "—" else float(shown.removesuffix(" %"))
    return figures


def api_figures(body: dict[str, Any], names: list[str]) -> dict[str, Any]:
    answer: dict[str, Any] = {}
    for name in names:
        if name.startswith("rates."):
            answer[name] = body["rates"][name.removeprefix("rates.")]
        else:
            answer[name] = body[name]
    return answer


def office_rows(html: str) -> dict[str, dict[str, str]]:
    return {
        code: dict((col, value) for value, col in CELL.findall(row))
        for code, row in ROW.findall(html)
    }


@pytest.fixture
def history(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """Three cases in the first community: one fixed with an after-photo, one closed invalid,
    one still open, all first reported by a named reporter."""
    reporter_id, _key = make_reporter(sessions, display_name=REPORTER_NAME)
    cases = [make_case(sessions, reporter_id=reporter_id) for _ in range(3)]
    office = cases[0].office_id
    staff = Caller(None, role="office", reporter_id=None, office_id=office, office_code=OFFICE)
    boss = Caller(None, role="supervisor", reporter_id=None, office_id=office, office_code=OFFICE)
    photo = check_photos([tiny_png(7)], 5, 10 * 1024 * 1024)[0]
    store_photo(sessions, photo)
    with unit_of_work(sessions) as session:
        fixed, invalid = cases[0].id, cases[1].id
        casework.accept(session, fixed, staff)
        casework.start(session, fixed, staff)
        casework.resolve(session, fixed, staff, "已清运", photos=[photo])
        casework.close(session, fixed, boss, "fixed", "结案")
        casework.accept(session, invalid, staff)
        casework.close(session, invalid, boss, "invalid", "不是问题")
    return {"cases": cases, "photo": photo.filename}


def test_the_dashboard_is_for_supervisors_and_admins_signed_in(
    app: Flask, client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    anonymous = client.get("/dashboard?office=PD-CJ")
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].startswith("/console/login?next=/dashboard")
    staff = signed_in(app, sessions, "staff", OFFICE)
    refused = staff.get("/dashboard")
    assert refused.status_code == 403
    assert "统计看板仅供督办人员和管理员查看" in refused.get_data(as_text=True)
    supervisor = signed_in(app, sessions, "supervisor", STREET)
    outside = supervisor.get(f"/dashboard?office={OTHER_STREET}-01")
    assert outside.status_code == 403
    assert "不在您的辖区内" in outside.get_data(as_text=True)


def test_dashboard_figures_equal_the_api_s(
    app: Flask, client: FlaskClient, sessions: sessionmaker[Session], history: dict[str, Any]
) -> None:
    supervisor = signed_in(app, sessions, "supervisor", STREET)
    key = bearer(make_key(sessions, role="supervisor", office_code=STREET))
    page = supervisor.get("/dashboard")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    shown = page_figures(html)
    assert {"received", "cases", "closed", "closed_fixed", "rates.closure_rate"} <= set(shown)
    api = client.get("/api/v1/stats", headers=key, query_string={"group_by": "office"}).get_json()
    assert shown == api_figures(api, list(shown))
    assert shown["closed"] == 2 and shown["closed_fixed"] == 1
    assert 'data-backlog="overdue_now">{}<'.format(api["backlog"]["overdue_now"]) in html
    rows = office_rows(html)
    for row in api["rows"]:
        assert rows[row["key"] if "key" in row else row["office"]]["closed"] == str(row["closed"])
    assert "样本太少" in html  # two closed cases: too few to rank
    # the page names no reporter and loads nothing from another host
    assert REPORTER_NAME not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    # a filter narrows both alike; the fragment is the body alone
    category = history["cases"][0].category_code
    fragment = supervisor.get(f"/dashboard?office={OFFICE}&category={category}&fragment=1")
    assert fragment.status_code == 200
    part = fragment.get_data(as_text=True)
    assert "<html" not in part
    assert 'id="trend-chart"' in part and 'id="category-chart"' in part
    narrowed = client.get(
        "/api/v1/stats", headers=key, query_string={"office": OFFICE, "category": category}
    ).get_json()
    assert page_figures(part) == api_figures(narrowed, list(page_figures(part)))


def test_a_bad_filter_is_named_on_an_escaped_page(
    app: Flask, sessions: sessionmaker[Session]
) -> None:
    supervisor = signed_in(app, sessions, "supervisor", STREET)
    bad_date = supervisor.get("/dashboard?from=2026-13-01")
    assert bad_date.status_code == 400
    assert "“from”" in bad_date.get_data(as_text=True)
    script = supervisor.get("/dashboard?office=<script>alert(1)</script>")
    assert script.status_code == 400
    text = script.get_data(as_text=True)
    assert "<script>alert(1)" not in text and "&lt;script&gt;" in text
    public = supervisor.get("/public?category=<b>x</b>")
    assert public.status_code == 400 and "<b>x</b>" not in public.get_data(as_text=True)


def test_english_after_the_switch(app: Flask, sessions: sessionmaker[Session]) -> None:
    supervisor = signed_in(app, sessions, "supervisor", STREET)
    chinese = supervisor.get("/dashboard").get_data(as_text=True)
    assert "处置统计看板" in chinese and 'lang="zh-Hans"' in chinese
    english = supervisor.get("/dashboard?lang=en").get_data(as_text=True)
    assert "Resolution dashboard" in english and 'lang="en"' in english
    # the choice is kept for the next page
    assert "City problems: the public figures" in supervisor.get("/public").get_data(as_text=True)


def test_public_page_equals_the_public_api_and_shows_after_photos(
    client: FlaskClient, history: dict[str, Any]
) -> None:
    page = client.get(f"/public?office={STREET}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    api = client.get("/api/v1/public/stats", query_string={"office": STREET}).get_json()
    rows = office_rows(html)
    assert set(rows) == {row["office"] for row in api["communities"]}
    for row in api["communities"]:
        for name in ("received", "cases", "closed", "closed_fixed"):
            assert rows[row["office"]][name] == str(row[name])
    received = sum(row["received"] for row in api["communities"])
    fixed = sum(row["closed_fixed"] for row in api["communities"])
    assert f"收到上报 {received} 件，已解决 {fixed} 件" in html
    # the office's after-photo, and nothing of the reporter
    assert f"/media/{history['photo']}" in html
    assert REPORTER_NAME not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_a_spike_shows_on_the_dashboard(
    app: Flask, sessions: sessionmaker[Session], client: FlaskClient
) -> None:
    storm = [make_case(sessions, text="路面积水很深，电动车过不去") for _ in range(6)]
    category = storm[0].category_code
    admin = signed_in(app, sessions, "admin", STREET)
    html = admin.get("/dashboard").get_data(as_text=True)
    key = bearer(make_key(sessions, role="admin"))
    spikes = client.get("/api/v1/spikes", headers=key).get_json()["spikes"]
    assert [(s["office"], s["category"]) for s in spikes] == [(OFFICE, category)]
    assert f'data-spike="{OFFICE}:{category}"' in html
    assert "过去 24 小时 6 件" in html
    # a supervisor elsewhere sees no spike of this community
    other = signed_in(app, sessions, "supervisor", OTHER_STREET)
    assert 'id="spikes"' not in other.get("/dashboard").get_data(as_text=True)


def test_the_trend_has_every_period_of_the_window() -> None:
    days = periods(date(2026, 11, 8), date(2026, 12, 7), "day")
    assert len(days) == 30 and days[0] == date(2026, 11, 8) and days[-1] == date(2026, 12, 7)
    weeks = periods(date(2026, 11, 8), date(2026, 12, 7), "week")
    assert weeks[0] == date(2026, 11, 2) and all(w.weekday() == 0 for w in weeks)
    assert weeks[-1] == date(2026, 12, 7) and len(weeks) == 6
    months = periods(date(2025, 11, 20), date(2026, 2, 1), "month")
    assert months == [date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)]


def chart_periods(html: str) -> list[tuple[str, int, int]]:
    return [
        (day, int(received), int(closed)) for day, received, closed, _, _ in PERIOD.findall(html)
    ]


def assert_the_trend_chart_draws_the_trend_table(html: str) -> None:
    """Every period of the trend table is a period of the chart, its bars as high as its
    figures on the chart's scale."""
    table = [(day, int(received), int(closed)) for day, received, closed in TREND_ROW.findall(html)]
    assert len(table) >= 28 and chart_periods(html) == table
    top = int(TOP_TICK.findall(html)[-1])
    plot_height = PLOT_HEIGHT.search(html)
    assert plot_height is not None
    plot = float(plot_height.group(1))
    assert top >= max(max(received, closed) for _, received, closed in table)
    for _, received, closed, received_px, closed_px in PERIOD.findall(html):
        assert float(received_px) == pytest.approx(plot * int(received) / top, abs=0.01)
        assert float(closed_px) == pytest.approx(plot * int(closed) / top, abs=0.01)


def test_the_charts_are_svg_of_the_tables_figures_with_every_name_escaped(
    app: Flask, client: FlaskClient, sessions: sessionmaker[Session], history: dict[str, Any]
) -> None:
    category = history["cases"][0].category_code
    with unit_of_work(sessions) as session:
        session.execute(
            update(Category)
            .where(Category.code == category)
            .values(name_zh=HOSTILE_NAME, name_en=HOSTILE_NAME)
        )
    supervisor = signed_in(app, sessions, "supervisor", STREET)
    pages = {
        "/public": client.get("/public").get_data(as_text=True),
        "/public?lang=en": client.get("/public?lang=en").get_data(as_text=True),
        "/dashboard": supervisor.get("/dashboard").get_data(as_text=True),
        "/dashboard?fragment=1": supervisor.get("/dashboard?fragment=1").get_data(as_text=True),
    }
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;b onmouseover=x&gt;&amp;amp;"
    for url, html in pages.items():
        assert_the_trend_chart_draws_the_trend_table(html)
        # the category chart: the hostile name escaped, in its row's title and its label
        chart = html[html.index('id="category-chart"') : html.index('id="category-table"')]
        assert "<script>" not in chart and "<b " not in chart, url
        assert f"<title>{escaped}: " in chart, url
        assert "&lt;script&gt;" in chart.split("<tspan", 1)[1], url
        bars = CATEGORY_BAR.findall(chart)
        assert ("cases", "85.0", "3") in bars, url  # the history's three cases: the longest bar
        # drawn on the server: no data for a script, no chart library, no inline style
        assert 'id="chart-data"' not in html and "echarts" not in html.lower(), url
        assert not re.search(r"\sstyle=", html), url
        assert re.search(r'<svg class="chart trend" id="trend-chart" [^>]*role="img"', html), url
        assert '<title id="trend-chart-title">' in html, url
        assert '<title id="category-chart-title">' in html, url
    assert '<title id="trend-chart-title">收到与结案的柱状图' in pages["/public"]
    english = pages["/public?lang=en"]
    assert '<title id="trend-chart-title">Bars of reports received' in english
    assert ": Reports received " in english and "(right-hand scale)" in english
    # the page's one script is its own, and it is not needed to see a chart
    scripts = re.findall(r"<script[^>]*>", pages["/public"])
    assert len(scripts) == 1 and "/dashboard/static/dashboard.js?v=" in scripts[0]
