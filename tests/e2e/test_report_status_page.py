"""The reporter's status page in a real headless Chromium, against a real web server process and
a real Celery worker, while a real case runs its course through the API: filed and routed by the
worker, accepted, a question answered on the page, resolved with an after-photo and a note full
of markup and braces, a confirmation that comes too late (409, the page names the status now), a
confirmation, closing as fixed, and a reopen with a reason. In both languages, at every step, the
timeline is in plain words, the office's words are shown as written (never run as HTML), and no
unfilled {…} placeholder is visible.

Screenshots (phone-sized, Chinese and English) go to test-artifacts/ and, for a quick look, to
/tmp/screens/status-*.png."""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from tests.e2e import test_reporter_page as reporter_page
from tests.e2e.test_reporter_page import (
    ARTIFACTS,
    CATEGORY,
    COMMUNITY,
    ROUTED_TIMEOUT_MS,
    PhoneOpener,
    big_png,
    screenshot,
)
from tests.factories import make_key
from tests.helpers import sample_point
from tests.live_server import assert_no_unfilled_placeholders

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e

# The reporter page's fixtures: the live web server (with the worker), the browser, a phone.
server = reporter_page.server
browser = reporter_page.browser
phone = reporter_page.phone

SCREENS = Path("/tmp/screens")
# The office's note: markup that must stay text, and braces that must stay as written.
NOTE = (
    "已清运 <script>window.pwned = 1</script><b>两个</b>桶 {max} "
    '<img src=x onerror="window.pwned=2">'
)
QUESTION = "具体是哪个门口？<i>南门</i>还是北门？"
ANSWER = "南门快递柜旁边"
REASON = "第二天又满了 {n}"


class Api:
    """The JSON API of the live server, with one key."""

    def __init__(self, base: str, key: str) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {key}"}

    def post(self, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = requests.post(
            f"{self.base}/api/v1{path}", headers=self.headers, timeout=10, **kwargs
        )
        assert response.status_code == expect, response.text
        return response.json()

    def get(self, path: str) -> Any:
        response = requests.get(f"{self.base}/api/v1{path}", headers=self.headers, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()


def file_routed_report(server: str) -> tuple[Api, int, dict[str, Any]]:
    """A reporter registered and a report filed over HTTP, routed by the live worker."""
    registered = requests.post(
        f"{server}/api/v1/reporters", json={"display_name": "李师傅"}, timeout=10
    )
    assert registered.status_code == 201, registered.text
    reporter = Api(server, registered.json()["key"])
    point = sample_point(COMMUNITY)
    filed = reporter.post(
        "/reports",
        expect=202,
        json={
            "text": "南门垃圾桶满了",
            "category": CATEGORY,
            "lat": point["lat"],
            "lon": point["lon"],
        },
    )
    deadline = time.monotonic() + ROUTED_TIMEOUT_MS / 1000
    while (report := reporter.get(f"/reports/{filed['id']}"))["status"] == "received":
        assert time.monotonic() < deadline, "the worker did not route the report"
        time.sleep(0.2)
    assert report["status"] == "routed" and report["office"]["code"] == COMMUNITY, report
    return reporter, filed["id"], report


def open_with_key(page: Page, report_id: int, key: str | None, lang: str = "zh") -> None:
    page.goto(f"/report/{report_id}?lang={lang}")
    if key:
        page.evaluate("key => window.localStorage.setItem('cityrelay.reporterKey', key)", key)
        page.reload()
    page.locator('#report[aria-busy="false"]').wait_for()


def keep_screens(*names: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(ARTIFACTS / name, SCREENS / name)
        print(f"screenshot: {ARTIFACTS / name} (copied to {SCREENS / name})")


def test_the_reporter_follows_answers_confirms_and_reopens_a_case(
    phone: PhoneOpener, server: str, sessions: sessionmaker[Session]
) -> None:
    from playwright.sync_api import expect

    reporter, report_id, report = file_routed_report(server)
    case_id = report["case_id"]
    office = report["office"]
    name, name_en = office["name"], office["name_en"]
    key = reporter.headers["Authorization"].removeprefix("Bearer ")
    staff = Api(server, make_key(sessions, role="office", office_code=COMMUNITY))
    supervisor = Api(server, make_key(sessions, role="supervisor", office_code=COMMUNITY))

    page, errors = phone(None)
    banner = page.locator("#status-text")
    timeline = page.locator("#events li")
    act_status = page.locator("#act-status")

    # accepted: said in plain words; nothing for the reporter to do
    staff.post(f"/cases/{case_id}/accept")
    open_with_key(page, report_id, key)
    expect(banner).to_have_text(f"{name}已受理")
    expect(page.locator("#fact-status")).to_have_text("已受理")
    expect(timeline.nth(2)).to_contain_text(f"您的报告已送达 {name}")
    expect(timeline.last).to_contain_text(f"{name}已受理")
    expect(page.locator("#act-card")).to_be_hidden()
    assert_no_unfilled_placeholders(page, "accepted")

    # a question: shown as written, answered from the page
    staff.post(f"/cases/{case_id}/ask", json={"question": QUESTION})
    page.reload()
    expect(banner).to_have_text(f"{name}有问题想问您，请回答")
    expect(page.locator("#question")).to_have_text(QUESTION)
    expect(page.locator("#question-label")).to_have_text(f"{name}的问题")
    assert page.locator("#question i").count() == 0
    assert_no_unfilled_placeholders(page, "waiting for an answer")
    screenshot(page, "status-waiting-zh.png")
    page.locator("#answer-btn").click()  # nothing written: said on the phone, nothing sent
    expect(act_status).to_have_text("请先写下回答。")
    page.get_by_label("您的回答").fill(ANSWER)
    with page.expect_response(lambda r: r.url.endswith(f"/reports/{report_id}/answer")) as sent:
        page.locator("#answer-btn").click()
    assert sent.value.status == 200
    assert sent.value.request.headers["authorization"] == f"Bearer {key}"
    expect(act_status).to_have_text(f"回答已送出，{name}会继续处理。")
    expect(banner).to_have_text(f"{name}已受理")
    expect(page.locator("#answer-form")).to_be_hidden()
    answered = timeline.filter(has_text="上报人回答")
    expect(answered.locator(".note")).to_have_text(ANSWER)

    # resolved with an after-photo; the note's markup and braces stay text
    after_photo = big_png(320, 240)
    staff.post(
        f"/cases/{case_id}/resolve",
        data={"note": NOTE},
        files=[("photos", ("after.png", after_photo, "image/png"))],
    )
    page.reload()
    expect(banner).to_have_text(f"{name}已处理完毕，请确认")
    expect(page.locator("#outcome-note")).to_have_text(NOTE)
    expect(page.locator("#outcome-by")).to_have_text(f"{name}说：")
    resolved = timeline.filter(has_text=f"{name}处理完毕")
    expect(resolved.locator(".note")).to_have_text(NOTE)
    assert page.evaluate("() => window.pwned") is None
    assert page.locator("#report script, #report b, #report img[src='x']").count() == 0
    after = page.locator("#after-photos img")
    expect(after).to_have_count(1)
    size = after.evaluate("img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])")
    assert size == [320, 240], size
    served = requests.get(after.get_attribute("src") or "", timeout=10)
    # Stored re-encoded without metadata: the same pixels, not the same bytes.
    assert served.headers["Content-Type"] == "image/png"
    with Image.open(io.BytesIO(served.content)) as got, Image.open(io.BytesIO(after_photo)) as sent:
        assert got.size == sent.size and got.tobytes() == sent.tobytes()
    confirm = page.get_by_role("button", name="确认已修好")
    expect(confirm).to_be_visible()
    box = confirm.bounding_box()
    assert box is not None and box["height"] >= 56 and box["width"] >= 300, box
    expect(page.locator("#reopen-form")).to_be_hidden()
    assert_no_unfilled_placeholders(page, "resolved", allowed=[NOTE])
    screenshot(page, "status-resolved-zh.png")
    screenshot(page, "status-resolved-history-zh.png", scroll_to="bottom")

    # the same in English
    page.goto(f"/report/{report_id}?lang=en")
    expect(banner).to_have_text(f"{name_en} says it is done: please confirm")
    expect(page.locator("#fact-status")).to_have_text("Done, to be confirmed")
    expect(page.locator("#outcome-by")).to_have_text(f"{name_en} wrote:")
    expect(page.locator("#outcome-note")).to_have_text(NOTE)
    expect(page.get_by_role("button", name="Confirm it is fixed")).to_be_visible()
    expect(timeline.filter(has_text="The reporter answered").locator(".note")).to_have_text(ANSWER)
    expect(page.locator("#after-photos img")).to_have_attribute("alt", "Photo after the work 1")
    assert_no_unfilled_placeholders(page, "resolved, in English", allowed=[NOTE])
    screenshot(page, "status-resolved-en.png")
    page.goto(f"/report/{report_id}?lang=zh")
    expect(banner).to_have_text(f"{name}已处理完毕，请确认")

    # someone else's phone sees the case but may do nothing to it
    stranger, stranger_errors = phone(None)
    open_with_key(stranger, report_id, None)
    expect(stranger.locator("#status-text")).to_have_text(f"{name}已处理完毕，请确认")
    # ...and where it is only to about 100 m, with no more digits than that (docs/privacy.md)
    lat, lon = report["lat"], report["lon"]
    expect(stranger.locator("#fact-location")).to_have_text(f"{lat:.3f}, {lon:.3f}")
    expect(page.locator("#fact-location")).to_have_text(f"{lat:.5f}, {lon:.5f}")
    expect(stranger.locator("#act-card")).to_be_hidden()
    expect(stranger.locator("#act-status")).to_have_text(
        "只有提交这份报告的手机可以回答、确认或申请重新处理。"
    )
    assert stranger_errors == []

    # the supervisor sends it back while the page still offers Confirm: 409, said plainly
    supervisor.post(f"/cases/{case_id}/rework", json={"note": "照片看不清，请重新清理"})
    with page.expect_response(lambda r: r.url.endswith(f"/reports/{report_id}/confirm")) as late:
        confirm.click()
    assert late.value.status == 409
    expect(act_status).to_have_text("没有完成：这个案件现在的状态是“处理中”。页面已刷新。")
    expect(act_status).to_have_attribute("data-state", "error")
    expect(banner).to_have_text(f"{name}正在处理")
    expect(page.locator("#act-card")).to_be_hidden()
    expect(page.locator("#outcome-card")).to_be_hidden()
    expect(timeline.last).to_contain_text("上级要求重新处理")
    expect(timeline.last).not_to_contain_text("照片看不清")  # a rework order is the office's
    assert_no_unfilled_placeholders(page, "a confirmation too late", allowed=[NOTE])
    screenshot(page, "status-conflict-zh.png")

    # resolved again, confirmed from the page
    staff.post(
        f"/cases/{case_id}/resolve",
        data={"note": "重新清理干净了"},
        files=[("photos", ("again.png", big_png(200, 150), "image/png"))],
    )
    page.reload()
    expect(page.locator("#outcome-note")).to_have_text("重新清理干净了")
    with page.expect_response(lambda r: r.url.endswith(f"/reports/{report_id}/confirm")) as ok:
        page.get_by_role("button", name="确认已修好").click()
    assert ok.value.status == 200
    expect(act_status).to_have_text("谢谢您的确认！")
    expect(page.locator("#confirm-box")).to_be_hidden()
    expect(timeline.last).to_contain_text("上报人确认已修好")
    page.reload()
    expect(act_status).to_have_text("您已确认过这次处理。")

    # closed as fixed; within 7 days the reporter may reopen it, with a reason
    supervisor.post(f"/cases/{case_id}/close", json={"closure": "fixed", "note": "核查属实，结案"})
    page.reload()
    expect(banner).to_have_text("已结案：已修复")
    expect(page.locator("#fact-status")).to_have_text("已结案")
    closed = timeline.filter(has_text="已结案：已修复")
    expect(closed.locator(".note")).to_have_text("核查属实，结案")
    expect(page.locator("#confirm-box")).to_be_hidden()  # confirmed already
    expect(page.locator("#reopen-form")).to_be_visible()
    expect(page.locator("#reopen-hint")).to_contain_text(f"重新交给{name}处理")
    assert_no_unfilled_placeholders(page, "closed", allowed=[NOTE])
    screenshot(page, "status-closed-zh.png")
    reopen = page.get_by_role("button", name="还没修好，重新处理")
    reopen.click()
    expect(act_status).to_have_text("请写下还没修好的原因。")
    page.get_by_label("还没修好的原因").fill(REASON)
    with page.expect_response(lambda r: r.url.endswith(f"/reports/{report_id}/reopen")) as back:
        reopen.click()
    assert back.value.status == 200
    expect(act_status).to_have_text(f"已重新交给{name}处理。")
    expect(banner).to_have_text(f"已派给：{name}")
    expect(page.locator("#reopen-form")).to_be_hidden()
    reopened = timeline.filter(has_text="上报人反映还没修好，重新处理")
    expect(reopened.locator(".note")).to_have_text(REASON)
    assert_no_unfilled_placeholders(page, "reopened", allowed=[NOTE, REASON])
    screenshot(page, "status-reopened-zh.png")

    # the whole history in English
    page.goto(f"/report/{report_id}?lang=en")
    expect(banner).to_have_text(f"Sent to: {name_en}")
    for words in (
        f"Your report reached {name_en}",
        f"{name_en} has taken it on",
        f"{name_en} has a question for you",
        "The reporter answered",
        f"{name_en} reported the work done",
        "Sent back to be done again",
        "The reporter confirmed the fix",
        "Closed: fixed",
        "The reporter says it is not fixed: reopened",
    ):
        expect(timeline.filter(has_text=words)).not_to_have_count(0)
    assert_no_unfilled_placeholders(page, "reopened, in English", allowed=[NOTE, REASON])
    screenshot(page, "status-history-en.png", scroll_to="bottom")

    # what the page was given: the public timeline, no key ids, no staff
    seen = reporter.get(f"/reports/{report_id}")
    assert seen["status"] == "routed" and seen["allowed_actions"] == []
    assert "key_id" not in str(seen["timeline"]) and "key_id" not in str(seen["events"])
    assert errors == []
    keep_screens(
        "status-waiting-zh.png",
        "status-resolved-zh.png",
        "status-resolved-history-zh.png",
        "status-resolved-en.png",
        "status-conflict-zh.png",
        "status-closed-zh.png",
        "status-reopened-zh.png",
        "status-history-en.png",
    )
