"""/dashboard and /public in a real headless Chromium against `cityrelay web`, on a history of
cases in many states: a supervisor signs in and sees the figures /api/v1/stats gives for the
same filters; a filter changes them without reloading the page, the new charts coming with the
new body; the office table sorts from the keyboard; every control reached with Tab shows its
focus; the charts (inline SVG drawn on the server) show without script, on a phone and a laptop,
their labels apart and inside the chart, under the pages' Content Security Policy; no request
leaves the app's host; on a phone nothing makes the page scroll sideways. Screenshots go to
test-artifacts/ (dashboard-*.png, public-*.png, the phone's as *-phone.png).

Needs Debian's Chromium at /usr/bin/chromium and the Python package playwright."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from itertools import pairwise
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import pytest
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.session import unit_of_work
from services import users
from services.demo_history import seed_demo_history
from services.photo_store import DatabasePhotoStore
from tests.factories import make_key
from tests.live_server import (
    ARTIFACTS,
    assert_no_unfilled_placeholders,
    running_web,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.e2e

LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 360, "height": 740}
STREET = "PD-CJ"
COMMUNITY = "PD-CJ-01"
NEW_PASSWORD = "a-dashboard-password-2026"


@pytest.fixture(scope="module")
def server(
    test_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with running_web(test_settings, tmp_path_factory.mktemp("web-dashboard") / "web.log") as base:
        yield base


def seed_history(sessions: sessionmaker[Session]) -> None:
    """The demo city's history: a few hundred cases over the last months, in every state,
    with the offices' after-photos (in the database, the default photo store)."""
    with unit_of_work(sessions) as session:
        made = seed_demo_history(session, utcnow(), photo_store=DatabasePhotoStore(session))
    assert made.seeded and made.cases >= 250 and made.overdue_now > 0, made


def open_page(
    browser: Browser,
    server: str,
    locale: str = "zh-CN",
    viewport: dict[str, int] = LAPTOP,
    **context_options: Any,
) -> tuple[Page, list[str]]:
    """A page that records every problem: script errors, CSP violations, and any request to a
    host other than the app's."""
    context = browser.new_context(
        base_url=server,
        viewport=viewport,
        locale=locale,
        timezone_id="Asia/Shanghai",
        **context_options,
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    own = urlsplit(server).netloc
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda message: (
            problems.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )

    def check(request: Any) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc != own:
            problems.append(f"request off the app's host: {request.url}")

    page.on("request", check)
    return page, problems


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def api(server: str, path: str, key: str | None = None, **params: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{server}{path}?{urlencode(params)}")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=10) as answer:
        body: dict[str, Any] = json.load(answer)
    return body


def shown_figures(page: Page) -> dict[str, Any]:
    figures = page.eval_on_selector_all(
        "[data-figure]", "els => els.map(e => [e.dataset.figure, e.textContent])"
    )
    rates = page.eval_on_selector_all(
        "[data-rate]", "els => els.map(e => [e.dataset.rate, e.textContent])"
    )
    shown: dict[str, Any] = {name: int(value) for name, value in figures}
    for name, value in rates:
        shown[f"rates.{name}"] = None if value == "—" else float(value.removesuffix(" %"))
    return shown


def expected(body: dict[str, Any], names: list[str]) -> dict[str, Any]:
    return {
        name: body["rates"][name[6:]] if name.startswith("rates.") else body[name] for name in names
    }


def focus_ring(page: Page) -> dict[str, Any]:
    ring: dict[str, Any] = page.evaluate(
        """() => {
            const el = document.activeElement;
            const style = getComputedStyle(el);
            const box = el.getBoundingClientRect();
            return {tag: el.tagName.toLowerCase(), id: el.id, text: el.textContent.trim(),
                    // false while the focus is on a native control's own part (a date
                    // field's calendar button), whose ring the browser draws itself
                    own: el.matches(':focus'),
                    outline: style.outlineStyle, width: parseFloat(style.outlineWidth),
                    visible: box.width > 0 && box.height > 0};
        }"""
    )
    return ring


def assert_the_charts_are_drawn(page: Page, moment: str) -> None:
    """Both charts are on the page with a bar for every row of their tables, as tall or as
    long as a figure makes them; the labels a reader can see are inside their chart and do not
    overlap."""
    drawn: dict[str, Any] = page.evaluate(
        """() => {
            const box = el => { const r = el.getBoundingClientRect();
                return {left: r.left, right: r.right, top: r.top, bottom: r.bottom,
                        width: r.width, height: r.height}; };
            const shown = el => getComputedStyle(el).display !== 'none';
            const trend = document.querySelector('#trend-chart');
            const categories = document.querySelector('#category-chart');
            const frame = trend.parentElement;
            return {
                trend: box(trend), frame: box(frame),
                periods: trend.querySelectorAll('g.period').length,
                trendRows: document.querySelectorAll('#trend-table tbody tr').length,
                tallest: Math.max(...[...trend.querySelectorAll('rect.bar')]
                    .map(r => r.getBoundingClientRect().height)),
                plotHeight: Number(trend.querySelector('svg.plot').getAttribute('height')),
                topTick: Math.max(...[...trend.querySelectorAll('.tick:not(.rate)')]
                    .map(t => Number(t.textContent))),
                largest: Math.max(...[...document.querySelectorAll('#trend-table tbody tr')]
                    .flatMap(tr => [1, 2].map(i => Number(tr.children[i].textContent)))),
                periodLabels: [...trend.querySelectorAll('.period-label')].filter(shown)
                    .map(box),
                ticks: [...trend.querySelectorAll('.tick')].map(box),
                categories: box(categories),
                categoryRows: categories.querySelectorAll('g.category').length,
                categoryTableRows: document.querySelectorAll(
                    '#category-table tbody tr[data-category]').length,
                longest: Math.max(...[...categories.querySelectorAll('rect.bar')]
                    .map(r => r.getBoundingClientRect().width)),
                names: [...categories.querySelectorAll('.name tspan')].map(box),
                values: [...categories.querySelectorAll('.value')].map(box),
            };
        }"""
    )
    trend, frame, categories = drawn["trend"], drawn["frame"], drawn["categories"]
    assert trend["width"] > 200 and trend["height"] > 200, (moment, trend)
    assert drawn["periods"] == drawn["trendRows"] >= 28, moment
    # the largest figure's bar as tall as the scale makes it
    expected_px = drawn["plotHeight"] * drawn["largest"] / drawn["topTick"]
    assert drawn["largest"] > 0 and abs(drawn["tallest"] - expected_px) < 1.5, (moment, drawn)
    labels = drawn["periodLabels"]
    assert len(labels) >= 4, moment
    for label in labels:
        assert frame["left"] <= label["left"] and label["right"] <= frame["right"], moment
    for left, right in pairwise(labels):
        assert left["right"] < right["left"], (moment, left, right)
    for tick in drawn["ticks"]:
        assert trend["left"] <= tick["left"] and tick["right"] <= trend["right"] + 1, moment
    assert drawn["categoryRows"] == drawn["categoryTableRows"] >= 3, moment
    assert drawn["longest"] > categories["width"] * 0.8, moment
    for text in drawn["names"] + drawn["values"]:
        assert text["right"] <= categories["right"] + 1, (moment, text)
    names = sorted(drawn["names"], key=lambda b: b["top"])
    for upper, lower in pairwise(names):
        assert upper["bottom"] <= lower["top"] + 1, (moment, upper, lower)


def assert_no_sideways_scroll(page: Page, moment: str) -> None:
    """The page fits the screen's width: wide tables scroll inside their own box."""
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], (moment, widths)


def sign_in_for_the_first_time(page: Page, username: str, one_time: str) -> None:
    page.goto("/dashboard")
    assert "/console/login" in page.url and "next=" in page.url
    page.fill("#username", username)
    page.fill("#password", one_time)
    page.click("#login")
    page.wait_for_load_state()
    page.fill("#old_password", one_time)
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm_password", NEW_PASSWORD)
    page.click("#save-password")
    page.wait_for_load_state()


def test_the_dashboard_and_the_public_page_on_the_demo_history(
    browser: Browser, server: str, sessions: sessionmaker[Session]
) -> None:
    # One history for both pages: it is played through the services, which takes a while.
    seed_history(sessions)
    a_supervisor_s_dashboard(browser, server, sessions)
    the_public_page(browser, server)


def a_supervisor_s_dashboard(
    browser: Browser, server: str, sessions: sessionmaker[Session]
) -> None:
    with unit_of_work(sessions) as session:
        _user, one_time = users.create_user(
            session, username="zhang.duban", office_code=STREET, role="supervisor"
        )
    key = make_key(sessions, role="supervisor", office_code=STREET)
    page, problems = open_page(browser, server)
    sign_in_for_the_first_time(page, "zhang.duban", one_time)
    page.goto("/dashboard")
    assert_the_charts_are_drawn(page, "dashboard, zh")
    assert_no_unfilled_placeholders(page, "dashboard, zh")

    # The figures are the API's, for the supervisor's subtree and the default window.
    shown = shown_figures(page)
    assert shown["received"] > 20 and shown["closed"] > 10
    assert shown == expected(api(server, "/api/v1/stats", key), list(shown))
    backlog = api(server, "/api/v1/stats", key)["backlog"]
    assert page.inner_text('[data-backlog="overdue_now"]') == str(backlog["overdue_now"])
    unlocated = page.locator("#map-unlocated")
    unlocated_overdue = 0
    if unlocated.count():
        unlocated_overdue = int(re.findall(r"\d+", unlocated.inner_text())[1])
    drawn_overdue = page.locator("#case-map circle.overdue").count()
    assert drawn_overdue > 0 and drawn_overdue + unlocated_overdue == backlog["overdue_now"]
    assert page.locator("#case-map circle.open").count() > 0
    assert page.locator("#office-table tbody tr").count() >= 3
    shot(page, "dashboard-zh")

    # Tab from the top: the skip link first, then every control shows a visible focus ring.
    page.keyboard.press("Tab")
    first = focus_ring(page)
    assert first["tag"] == "a" and "跳到正文" in first["text"] and first["visible"]
    reached = []
    for _ in range(20):
        page.keyboard.press("Tab")
        ring = focus_ring(page)
        if ring["own"]:
            assert ring["outline"] != "none" and ring["width"] >= 2 and ring["visible"], ring
            reached.append(ring["id"] or ring["tag"])
    assert {"lang-switch", "filter-from", "filter-to", "filter-office", "filter-apply"} <= set(
        reached
    )

    # A filter refreshes the figures without reloading the page; the charts come with them.
    page.evaluate("() => { window.keptAcrossFilters = 'yes'; }")
    page.evaluate("() => { document.querySelector('#trend-chart').dataset.before = 'yes'; }")
    page.select_option("#filter-office", COMMUNITY)
    page.wait_for_function(
        "() => document.querySelector('#filter-status').textContent.includes('已更新')"
    )
    assert page.evaluate("() => window.keptAcrossFilters") == "yes"
    assert f"office={COMMUNITY}" in page.url
    assert page.locator("#trend-chart[data-before]").count() == 0
    assert_the_charts_are_drawn(page, "dashboard, zh, one community")
    narrowed = shown_figures(page)
    assert narrowed == expected(api(server, "/api/v1/stats", key, office=COMMUNITY), list(narrowed))
    assert narrowed["received"] < shown["received"]
    shot(page, "dashboard-filtered-zh")

    # Back to the street; sort the office table by closed cases from the keyboard.
    page.select_option("#filter-office", "")
    page.wait_for_function(
        "() => !document.querySelector('#filters').hasAttribute('aria-busy')"
        " && document.querySelectorAll('#office-table tbody tr').length >= 3"
    )
    column = page.locator("#office-table thead th").nth(4)
    column.locator("button").focus()
    page.keyboard.press("Enter")
    assert column.get_attribute("aria-sort") == "ascending"
    page.keyboard.press("Enter")
    assert column.get_attribute("aria-sort") == "descending"
    closed = page.eval_on_selector_all(
        "#office-table tbody tr td[data-col=closed]", "tds => tds.map(t => Number(t.dataset.value))"
    )
    assert closed == sorted(closed, reverse=True) and len(closed) >= 3

    page.click("#lang-switch")
    page.wait_for_load_state()
    assert "Resolution dashboard" in page.inner_text("h1")
    assert_the_charts_are_drawn(page, "dashboard, en")
    assert_no_unfilled_placeholders(page, "dashboard, en")
    shot(page, "dashboard-en")
    # The same on a phone, in both languages, with the signed-in session.
    signed_in = page.context.storage_state()
    page.context.close()
    assert problems == []
    for lang in ("zh", "en"):
        phone, phone_problems = open_page(browser, server, viewport=PHONE, storage_state=signed_in)
        phone.goto(f"/dashboard?lang={lang}")
        assert_the_charts_are_drawn(phone, f"dashboard, {lang}, phone")
        assert_no_sideways_scroll(phone, f"dashboard, {lang}, phone")
        shot(phone, f"dashboard-{lang}-phone")
        phone.context.close()
        assert phone_problems == []


def the_public_page(browser: Browser, server: str) -> None:
    page, problems = open_page(browser, server)
    page.goto("/public")
    assert_the_charts_are_drawn(page, "public, zh")
    assert_no_unfilled_placeholders(page, "public, zh")
    body = api(server, "/api/v1/public/stats")
    rows = page.eval_on_selector_all(
        "#community-table tbody tr",
        """trs => trs.map(tr => [tr.dataset.office,
            Object.fromEntries([...tr.querySelectorAll('td[data-col]')]
                .map(td => [td.dataset.col, td.dataset.value]))])""",
    )
    on_page = dict(rows)
    assert set(on_page) == {row["office"] for row in body["communities"]}
    for row in body["communities"]:
        for name in ("received", "cases", "closed", "closed_fixed"):
            assert on_page[row["office"]][name] == str(row[name])
    received = sum(row["received"] for row in body["communities"])
    solved = sum(row["closed_fixed"] for row in body["communities"])
    assert f"收到上报 {received} 件，已解决 {solved} 件" in page.inner_text("#headline")
    photos = page.locator("#after-photos img")
    assert photos.count() > 0
    photos.first.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#after-photos img')].every(i => i.complete)"
    )
    assert photos.first.evaluate("img => img.naturalWidth") > 0
    shot(page, "public-zh")

    page.keyboard.press("Tab")
    assert focus_ring(page)["tag"] == "a"
    page.keyboard.press("Tab")
    ring = focus_ring(page)
    assert ring["id"] == "lang-switch" and ring["outline"] != "none"
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert "reported" in page.inner_text("#headline")
    assert_the_charts_are_drawn(page, "public, en")
    assert_no_unfilled_placeholders(page, "public, en")
    shot(page, "public-en")
    page.context.close()
    assert problems == []

    # A phone, in both languages, and without script: the charts are in the page itself.
    for lang in ("zh", "en"):
        phone, phone_problems = open_page(browser, server, viewport=PHONE)
        phone.goto(f"/public?lang={lang}")
        assert_the_charts_are_drawn(phone, f"public, {lang}, phone")
        assert_no_sideways_scroll(phone, f"public, {lang}, phone")
        shot(phone, f"public-{lang}-phone")
        phone.context.close()
        assert phone_problems == []
    plain, plain_problems = open_page(browser, server, viewport=PHONE, java_script_enabled=False)
    plain.goto("/public")
    assert_the_charts_are_drawn(plain, "public, zh, phone, no script")
    plain.context.close()
    assert plain_problems == []
