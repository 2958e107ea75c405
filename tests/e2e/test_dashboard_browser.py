"""/dashboard and /public in a real headless Chromium against `cityrelay web`, on a history of
cases in many states: a supervisor signs in and sees the figures /api/v1/stats gives for the
same filters; a filter changes them without reloading the page; the office table sorts from
the keyboard; every control reached with Tab shows its focus; the charts draw under the
pages' Content Security Policy; no request leaves the app's host. Screenshots go to
test-artifacts/ (dashboard-*.png, public-*.png).

Needs Debian's Chromium at /usr/bin/chromium and the Python package playwright."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
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


def open_page(browser: Browser, server: str, locale: str = "zh-CN") -> tuple[Page, list[str]]:
    """A page that records every problem: script errors, CSP violations, and any request to a
    host other than the app's."""
    context = browser.new_context(
        base_url=server, viewport=LAPTOP, locale=locale, timezone_id="Asia/Shanghai"
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
    page.wait_for_selector("#trend-chart canvas")
    page.wait_for_selector("#category-chart canvas")
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

    # A filter refreshes the figures without reloading the page.
    page.evaluate("() => { window.keptAcrossFilters = 'yes'; }")
    page.select_option("#filter-office", COMMUNITY)
    page.wait_for_function(
        "() => document.querySelector('#filter-status').textContent.includes('已更新')"
    )
    assert page.evaluate("() => window.keptAcrossFilters") == "yes"
    assert f"office={COMMUNITY}" in page.url
    page.wait_for_selector("#trend-chart canvas")
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
    page.wait_for_selector("#trend-chart canvas")
    assert "Resolution dashboard" in page.inner_text("h1")
    assert_no_unfilled_placeholders(page, "dashboard, en")
    shot(page, "dashboard-en")
    page.context.close()
    assert problems == []


def the_public_page(browser: Browser, server: str) -> None:
    page, problems = open_page(browser, server)
    page.goto("/public")
    page.wait_for_selector("#trend-chart canvas")
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
    page.wait_for_selector("#trend-chart canvas")
    assert "reported" in page.inner_text("#headline")
    assert_no_unfilled_placeholders(page, "public, en")
    shot(page, "public-en")
    page.context.close()
    assert problems == []
