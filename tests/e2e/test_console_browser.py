"""The office console in a real headless Chromium at tablet size, against `cityrelay web`
(gunicorn, two workers sharing the instance's secret key): staff log in for the first time and
change the one-time password, find the routed case in the queue, accept it, resolve it with a
response template and an after-photo; a supervisor closes it as fixed. In both languages, at
every step, no unfilled {…} placeholder is visible, no script runs from what a reporter wrote,
and the page breaks no rule of its Content Security Policy. Screenshots go to test-artifacts/
(console-*.png).

Needs Debian's Chromium at /usr/bin/chromium and the Python package playwright."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.entities import Case, CaseEvent, Photo
from models.session import unit_of_work
from services import users
from services.photos import check_photos
from tests.factories import make_report, process, store_photo
from tests.helpers import tiny_png
from tests.live_server import (
    ARTIFACTS,
    assert_no_unfilled_placeholders,
    running_web,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.e2e

TABLET = {"width": 1024, "height": 768}
OFFICE = "PD-CJ-01"
STREET = "PD-CJ"
NEW_PASSWORD = "a-tablet-password-2026"
REPORT_TEXT = "垃圾桶满了，垃圾撒了一地 <script>alert(1)</script>"


@pytest.fixture(scope="module")
def server(
    test_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with running_web(test_settings, tmp_path_factory.mktemp("web-console") / "web.log") as base:
        yield base


def open_tablet(browser: Browser, server: str) -> tuple[Page, list[str]]:
    context = browser.new_context(
        base_url=server,
        viewport=TABLET,
        screen=TABLET,
        has_touch=True,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
    page.on(
        "console",
        lambda message: (
            problems.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return page, problems


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)


def seen(page: Page, moment: str) -> str:
    assert_no_unfilled_placeholders(page, moment)
    text: str = page.inner_text("body")
    return text


def log_in(page: Page, username: str, password: str) -> None:
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login")
    page.wait_for_load_state()


@pytest.fixture
def routed_case(sessions: sessionmaker[Session]) -> int:
    """A routed case of one report with a photo, in OFFICE's queue."""
    report_id = make_report(sessions, text=REPORT_TEXT, address="春江一村菜市场门口")
    photo = check_photos([tiny_png(42)], 5, 10 * 1024 * 1024)[0]
    store_photo(sessions, photo)
    with unit_of_work(sessions) as session:
        session.add(
            Photo(
                report_id=report_id,
                position=0,
                filename=photo.filename,
                content_type=photo.content_type,
                size_bytes=len(photo.data),
            )
        )
    case = process(sessions, report_id)
    assert case is not None and case.status == "routed" and case.office is not None
    assert case.office.code == OFFICE
    return case.id


def new_user(sessions: sessionmaker[Session], role: str, office: str, name: str) -> str:
    """The one-time password of a new console user."""
    with unit_of_work(sessions) as session:
        _user, password = users.create_user(
            session, username=name, office_code=office, role=role, display_name=name
        )
    return password


def test_staff_accept_and_resolve_then_a_supervisor_closes(
    browser: Browser,
    server: str,
    sessions: sessionmaker[Session],
    routed_case: int,
    tmp_path: Path,
) -> None:
    case_id = routed_case
    one_time = new_user(sessions, "staff", OFFICE, "xiao.wang")
    page, problems = open_tablet(browser, server)

    # Log in for the first time: the one-time password must be changed first.
    page.goto("/console")
    assert "/console/login" in page.url
    assert "登录" in seen(page, "login, zh")
    shot(page, "login-zh")
    log_in(page, "xiao.wang", "wrong-password-1")
    assert "用户名或密码不正确" in seen(page, "login refused, zh")
    log_in(page, "xiao.wang", one_time)
    assert page.url.endswith("/console/password")
    assert "首次登录" in seen(page, "first login, zh")
    page.fill("#old_password", one_time)
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm_password", NEW_PASSWORD)
    page.click("#save-password")
    page.wait_for_load_state()

    # The queue shows the routed case with its due time.
    row = page.locator(f'tr[data-case-id="{case_id}"]')
    assert row.count() == 1
    assert "待受理" in row.inner_text()
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", row.inner_text())
    seen(page, "queue, zh")
    shot(page, "queue-zh")

    # The case: its report (escaped, no script ran), its photo, the map.
    row.locator("a.case-link").click()
    page.wait_for_load_state()
    text = seen(page, "case, zh")
    assert "<script>alert(1)</script>" in text  # shown as text, never run
    assert page.locator("#photos-before img").evaluate("img => img.naturalWidth") > 0
    assert page.locator("#case-point").count() == 1
    assert sorted(page.locator("button[id^=do-]").evaluate_all("bs => bs.map(b => b.id)")) == [
        "do-accept",
        "do-transfer",
    ]
    shot(page, "case-routed-zh")
    page.goto(f"/console/cases/{case_id}?lang=en")
    assert "Reports (1)" in seen(page, "case, en")
    shot(page, "case-routed-en")
    page.goto(f"/console/cases/{case_id}?lang=zh")

    page.click("#action-accept summary")
    page.click("#do-accept")
    page.wait_for_load_state()
    assert page.inner_text("#case-status") == "已受理"
    assert page.inner_text("#case-assignee") == "xiao.wang"
    assert "已完成：受理" in seen(page, "accepted, zh")

    # Resolve with a response template and an after-photo.
    page.click("#action-resolve summary")
    page.select_option("#template-resolve", index=1)
    note = page.input_value("#note-resolve")
    assert note, "picking a template fills the note"
    after = tmp_path / "after.png"
    after.write_bytes(tiny_png(99))
    page.set_input_files("#photos-resolve", str(after))
    shot(page, "case-resolving-zh")
    page.click("#do-resolve")
    page.wait_for_load_state()
    assert page.inner_text("#case-status") == "已处置"
    assert page.locator("#photos-after img").evaluate("img => img.naturalWidth") > 0
    assert note in seen(page, "resolved, zh")
    assert page.locator("#no-actions").count() == 1
    shot(page, "case-resolved-zh")

    # The English switch, kept from page to page.
    page.click("#lang-switch")
    page.wait_for_load_state()
    english = seen(page, "resolved, en")
    assert "Case #" in english and "resolved" in english and "Timeline" in english
    shot(page, "case-resolved-en")
    page.goto("/console")
    assert "Cases of" in seen(page, "queue, en")
    shot(page, "queue-en")
    page.click("#logout")
    page.wait_for_load_state()
    assert "/console/login" in page.url
    assert "Log in" in seen(page, "login, en")
    shot(page, "login-en")
    page.context.close()

    # A supervisor of the street closes it as fixed.
    supervisor_password = new_user(sessions, "supervisor", STREET, "li.kezhang")
    page, more_problems = open_tablet(browser, server)
    page.goto("/console")
    log_in(page, "li.kezhang", supervisor_password)
    page.fill("#old_password", supervisor_password)
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm_password", NEW_PASSWORD)
    page.click("#save-password")
    page.wait_for_load_state()
    page.select_option("#filter-office", OFFICE)
    page.click("#filters button[type=submit]")
    page.wait_for_load_state()
    page.locator(f'tr[data-case-id="{case_id}"] a.case-link').click()
    page.wait_for_load_state()
    assert sorted(page.locator("button[id^=do-]").evaluate_all("bs => bs.map(b => b.id)")) == [
        "do-close",
        "do-rework",
    ]
    page.click("#action-close summary")
    assert page.input_value("#closure-close") == "fixed"
    page.select_option("#template-close", index=1)
    page.click("#do-close")
    page.wait_for_load_state()
    assert page.inner_text("#case-status") == "已结案"
    assert page.inner_text("#case-closure") == "已解决"
    seen(page, "closed, zh")
    shot(page, "case-closed-zh")
    page.goto(f"/console/cases/{case_id}?lang=en")
    assert "closed" in seen(page, "closed, en")
    shot(page, "case-closed-en")
    page.context.close()

    assert problems == [] and more_problems == []
    with unit_of_work(sessions) as session:
        case = session.get(Case, case_id)
        assert case is not None and (case.status, case.closure) == ("closed", "fixed")
        actors = session.scalars(
            select(CaseEvent.actor)
            .where(CaseEvent.case_id == case_id, CaseEvent.action.in_(["accept", "close"]))
            .order_by(CaseEvent.id)
        ).all()
        assert actors == ["user:xiao.wang", "user:li.kezhang"]
