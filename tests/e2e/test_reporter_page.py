"""The one-tap reporter page in a real headless Chromium against a real web server process and a
real Celery worker: geolocation, camera photo, category buttons, the English switch, the address
fallback, a retried submission that must not file two reports, and the language an address
asks for (?lang=en). In both languages, at every step, no unfilled {…} placeholder may be visible.

Needs Debian's Chromium at /usr/bin/chromium (`apt-get install -y chromium`) and the Python
package `playwright` (used with that browser; `playwright install` is never needed). A missing
browser is a failure, not a skip."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityrelay.embedded import free_port
from models.entities import Report
from tests.conftest import child_env
from tests.helpers import sample_point, tiny_png
from tests.live_server import assert_no_unfilled_placeholders, unfilled_placeholders

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Request, Response, Route

pytestmark = pytest.mark.e2e

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 360, "height": 740}
COMMUNITY = "PD-HG-02"  # 临港家园居委会; it handles overflowing bins
CATEGORY = "bin_overflow"
ROUTED_TIMEOUT_MS = 30_000
STATUS_PAGE = re.compile(r"/report/(\d+)$")
LOSE_FIRST_REPORT_ANSWER = r"""
(() => {
    const realFetch = window.fetch.bind(window);
    window.fetch = async (input, init) => {
        const url = typeof input === "string" ? input : input.url;
        const isReport = /\/api\/v1\/reports$/.test(url) && init && init.method === "POST";
        if (isReport && !sessionStorage.getItem("lostAnswer")) {
            const response = await realFetch(input, init);
            const body = await response.json();
            sessionStorage.setItem(
                "lostAnswer", JSON.stringify({status: response.status, id: body.id})
            );
            throw new TypeError("Failed to fetch");
        }
        return realFetch(input, init);
    };
})();
"""


# ---------- the server, the browser ----------


def http_json(url: str, timeout: float = 10) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture(scope="module")
def server(
    app: Flask,
    test_settings: dict[str, Any],
    worker: subprocess.Popen[bytes],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """`cityrelay web` (gunicorn) as a child process, with the package's real worker running."""
    assert "pages" in app.blueprints, (
        "the reporter pages are not registered: create_app must call "
        "app.register_blueprint(pages_bp) with `from intake.pages import bp as pages_bp`"
    )
    port = free_port()
    log_path = tmp_path_factory.mktemp("web") / "web.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "cityrelay.cli", "web", "--port", str(port)],
        env=child_env(test_settings),
        cwd=PROJECT_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "web server exited:\n" + log_path.read_text()
            try:
                if http_json(f"{base}/api/v1/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "web server not healthy:\n" + log_path.read_text()
            time.sleep(0.2)
        with urllib.request.urlopen(f"{base}/report", timeout=10) as page:
            assert page.status == 200
        yield base
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the reporter page tests run in Debian's Chromium. "
            "Install it with `apt-get update && apt-get install -y chromium`.",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "The Python package playwright is missing: `.venv/bin/pip install playwright` "
            "(never `playwright install`: the tests use /usr/bin/chromium).",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


PhoneOpener = Callable[[dict[str, float] | None], tuple["Page", list[str]]]


@pytest.fixture
def phone(browser: Browser, server: str) -> Iterator[PhoneOpener]:
    """Opens a phone-sized page in a fresh browser context (empty localStorage), with or without
    a location fix; also gives the list its script errors and CSP violations are put in."""
    contexts: list[BrowserContext] = []

    def open_phone(geolocation: dict[str, float] | None) -> tuple[Page, list[str]]:
        context = browser.new_context(
            base_url=server,
            viewport=PHONE,
            screen=PHONE,
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
            permissions=["geolocation"] if geolocation else [],
            geolocation=geolocation,
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "console",
            lambda message: (
                errors.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        return page, errors

    yield open_phone
    for context in contexts:
        context.close()


@pytest.fixture
def photo_file(tmp_path: Path) -> Path:
    path = tmp_path / "pothole.png"
    path.write_bytes(tiny_png(7))
    return path


def wait_for_requests(page: Page, held: list[Any], count: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while len(held) < count:
        assert time.monotonic() < deadline, f"{len(held)} requests, waited for {count}"
        page.wait_for_timeout(50)


def big_png(width: int, height: int) -> bytes:
    """A PNG larger than the page sends as it is (its longest side over 1600 px)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" + bytes(x * 255 // width for x in range(width) for _ in range(3))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(row * height, 6)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def screenshot(page: Page, name: str, scroll_to: str = "top") -> None:
    """What the phone's screen shows (a full-page shot would misplace the fixed bars)."""
    ARTIFACTS.mkdir(exist_ok=True)
    if scroll_to == "top":
        page.evaluate("() => window.scrollTo(0, 0)")
    elif scroll_to == "bottom":
        page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
    page.screenshot(path=str(ARTIFACTS / name))


def office_names(client: FlaskClient) -> dict[str, str]:
    return {office["code"]: office["name"] for office in client.get("/api/v1/offices").get_json()}


def local_storage(page: Page, key: str) -> Any:
    raw = page.evaluate("key => window.localStorage.getItem(key)", key)
    return json.loads(raw) if raw and raw[:1] in "[{" else raw


def report_id_of(page: Page) -> int:
    match = STATUS_PAGE.search(page.url)
    assert match, page.url
    return int(match.group(1))


def multipart_field(body: bytes, name: str) -> str | None:
    match = re.search(rb'name="' + name.encode() + rb'"\r\n\r\n(.*?)\r\n--', body, re.S)
    return match.group(1).decode() if match else None


# ---------- the tests ----------


def test_one_tap_report_is_routed_to_the_community(
    phone: PhoneOpener, client: FlaskClient, photo_file: Path, server: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    point = sample_point(COMMUNITY)
    office_name = office_names(client)[COMMUNITY]
    office = next(o for o in client.get("/api/v1/offices").get_json() if o["code"] == COMMUNITY)
    assert CATEGORY in office["categories"]

    page, errors = phone({"latitude": point["lat"], "longitude": point["lon"], "accuracy": 12})
    page.goto("/report")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    location = page.locator("#loc-status")
    expect(location).to_have_attribute("data-state", "fixed")
    expect(location).to_contain_text("±12")
    expect(page.locator("#photo-empty")).to_have_text("点下方“拍照”按钮，最多 5 张。")
    expect(page.locator(".cat-btn").first).to_be_visible()
    assert_no_unfilled_placeholders(page, "the form, located")
    screenshot(page, "reporter-form-fresh.png")

    page.set_input_files("#photo-input", str(photo_file))
    expect(page.locator("#thumbs img")).to_have_count(1)
    wide = tmp_path / "wide.png"
    wide.write_bytes(big_png(2400, 1800))
    page.set_input_files("#photo-input", str(wide))  # a second shot: drawn down to 1600 px
    expect(page.locator("#thumbs img")).to_have_count(2)
    expect(page.locator("#photo-count")).to_have_text("2/5")
    expect(page.locator("#photo-empty")).to_be_hidden()
    assert_no_unfilled_placeholders(page, "two photos added")

    bin_button = page.get_by_role("button", name="垃圾桶满溢", exact=True)
    bin_button.click()
    expect(bin_button).to_have_attribute("aria-pressed", "true")
    page.get_by_label("说明").fill("小区门口垃圾桶满了，溢出来了")

    # big targets, and the submit button where a thumb reaches: at the bottom of the screen
    submit = page.get_by_role("button", name="提交", exact=True)
    box = submit.bounding_box()
    assert box is not None and box["height"] >= 56 and box["width"] >= 180, box
    assert box["y"] + box["height"] > PHONE["height"] - 40, box
    category_box = bin_button.bounding_box()
    assert category_box is not None and category_box["height"] >= 64, category_box
    draft = local_storage(page, "cityrelay.draft")
    assert draft["category"] == CATEGORY and len(draft["photos"]) == 2
    assert sorted(p["type"] for p in draft["photos"]) == ["image/jpeg", "image/png"]
    screenshot(page, "reporter-form.png")
    screenshot(page, "reporter-form-bottom.png", scroll_to="bottom")

    with page.expect_response(
        lambda r: r.url.endswith("/api/v1/reports") and r.request.method == "POST"
    ) as answer:
        submit.click()
    response: Response = answer.value
    assert response.status == 202, response.text()
    request: Request = response.request
    headers = request.headers
    assert headers["authorization"].startswith("Bearer cr_")
    assert re.fullmatch(r"[0-9a-f-]{36}", headers["idempotency-key"]), headers
    assert headers["idempotency-key"] == draft["idempotencyKey"]
    page.wait_for_url(STATUS_PAGE)
    report_id = report_id_of(page)
    assert local_storage(page, "cityrelay.recentReports")[0]["id"] == report_id
    banner = page.locator("#status-text")
    expect(banner).to_contain_text(office_name, timeout=ROUTED_TIMEOUT_MS)
    expect(banner).to_have_text(f"已派给：{office_name}")
    expect(page.locator("#fact-office")).to_have_text(office_name)
    expect(page.locator("#fact-category")).to_have_text("垃圾桶满溢")
    expect(page.locator("#fact-due")).to_contain_text("还剩")
    events = page.locator("#events li")
    expect(events).to_have_count(3)
    expect(events.nth(0)).to_contain_text("收到上报")
    expect(events.nth(1)).to_contain_text("上报人选择：垃圾桶满溢")
    expect(events.nth(2)).to_contain_text(f"您的报告已送达 {office_name}")
    photos = page.locator("#status-photos img")
    expect(photos).to_have_count(2)
    sizes = [
        photos.nth(i).evaluate(
            "img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])"
        )
        for i in range(2)
    ]
    assert sorted(sizes) == [[1, 1], [1600, 1200]], sizes
    assert_no_unfilled_placeholders(page, "the status page, routed")
    screenshot(page, "reporter-status.png")
    screenshot(page, "reporter-status-history.png", scroll_to="bottom")

    # the same report through the JSON API, in-process and from the real server: exact for
    # its reporter (the key the page keeps), to about 100 m for everybody else
    mine = {"Authorization": f"Bearer {local_storage(page, 'cityrelay.reporterKey')}"}
    report = client.get(f"/api/v1/reports/{report_id}", headers=mine).get_json()
    public = client.get(f"/api/v1/reports/{report_id}").get_json()
    assert public["lat"] == round(point["lat"], 3) and public["address"] == ""
    assert report["status"] == "routed", report
    assert report["office"]["code"] == COMMUNITY and report["office"]["name"] == office_name
    assert report["category"] == CATEGORY and report["classified_by"] == "reporter"
    assert report["text"] == "小区门口垃圾桶满了，溢出来了" and report["lang"] == "zh-Hans"
    assert report["lat"] == pytest.approx(point["lat"])
    assert sorted(p["content_type"] for p in report["photos"]) == ["image/jpeg", "image/png"]
    assert [e["action"] for e in report["events"]] == ["received", "classified", "routed"]
    status, served = http_json(f"{server}/api/v1/reports/{report_id}")
    assert status == 200 and served["office"]["code"] == COMMUNITY and served["due_at"]

    # the draft is gone, the key is kept, and the report is listed on the form
    assert local_storage(page, "cityrelay.draft") is None
    assert str(local_storage(page, "cityrelay.reporterKey")).startswith("cr_")
    page.goto("/report")
    recent = page.locator("#recent-list a").first
    expect(recent).to_contain_text(f"报告 #{report_id}")
    expect(recent).to_contain_text("已派单")
    assert_no_unfilled_placeholders(page, "the form listing the report")
    recent.click()
    page.wait_for_url(f"**/report/{report_id}")
    assert errors == []


def test_english_switch_changes_every_string_and_is_remembered(
    phone: PhoneOpener, client: FlaskClient
) -> None:
    from playwright.sync_api import expect

    point = sample_point(COMMUNITY)
    page, errors = phone({"latitude": point["lat"], "longitude": point["lon"], "accuracy": 30})
    page.goto("/report")
    submit = page.locator("#submit-btn")
    bin_button = page.locator(f'.cat-btn[data-code="{CATEGORY}"]')
    expect(submit).to_have_text("提交")
    expect(page.locator("#location-heading")).to_contain_text("位置")
    expect(bin_button).to_contain_text("垃圾桶满溢")
    expect(page.locator("#loc-status")).to_contain_text("精度约 ±30 米")

    page.get_by_role("button", name="Switch to English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(submit).to_have_text("Submit")
    expect(page.locator("#camera-btn")).to_contain_text("Photo")
    expect(page.locator("#location-heading")).to_contain_text("Location")
    expect(page.locator("#photo-heading")).to_contain_text("Photos")
    expect(page.locator("#category-heading")).to_contain_text("What is it?")
    expect(page.locator("#loc-status")).to_have_text("Location found, accurate to ±30 m")
    expect(page.locator("#text")).to_have_attribute("placeholder", re.compile("microphone"))
    expect(page.locator("#recent-empty")).to_have_text("No reports yet.")
    expect(bin_button).to_contain_text("Overflowing trash bin")
    expect(page.locator("#lang-switch")).to_have_text("中文")
    assert page.title() == "Quick Report · city problems"
    # no Chinese left in the visible interface (the switch back to Chinese aside)
    visible = page.locator("body").inner_text().replace("中文", "")
    assert not re.search(r"[\u4e00-\u9fff]", visible), visible
    expect(page.locator("#photo-empty")).to_have_text("Tap the “Photo” button below, up to 5.")
    assert_no_unfilled_placeholders(page, "switched to English")
    screenshot(page, "reporter-form-en.png")

    # remembered across pages and reloads
    assert local_storage(page, "cityrelay.lang") == "en"
    page.reload()
    expect(submit).to_have_text("Submit")
    expect(page.locator("#photo-empty")).to_have_text("Tap the “Photo” button below, up to 5.")
    assert_no_unfilled_placeholders(page, "reloaded in English")
    page.goto("/report/999999")
    expect(page.locator("#status-text")).to_have_text("There is no report #999999.")
    expect(page.locator(".page-status .actionbar .btn-primary")).to_contain_text("Report another")
    assert_no_unfilled_placeholders(page, "no such report, in English")

    page.goto("/report")
    page.get_by_role("button", name="切换到中文").click()
    expect(submit).to_have_text("提交")
    expect(page.locator("#photo-empty")).to_have_text("点下方“拍照”按钮，最多 5 张。")
    assert_no_unfilled_placeholders(page, "switched back to Chinese")
    assert local_storage(page, "cityrelay.lang") == "zh"
    assert errors == []


def test_address_fallback_without_location_permission_goes_to_triage(
    phone: PhoneOpener, client: FlaskClient
) -> None:
    from playwright.sync_api import expect

    page, errors = phone(None)  # no geolocation permission
    page.goto("/report")
    location = page.locator("#loc-status")
    expect(location).to_have_attribute("data-state", re.compile("denied|unavailable|timeout"))
    expect(page.locator("#address-hint")).to_contain_text("必填")
    assert_no_unfilled_placeholders(page, "the form without a location fix")

    text = page.get_by_label("说明")
    text.fill("快递柜旁边的垃圾桶满了没人清")
    submit = page.locator("#submit-btn")
    submit.click()  # no position, no address: caught on the phone
    address_error = page.locator('[data-error-for="address"]')
    expect(address_error).to_have_text("请开启定位，或填写地址或地标。")

    # an error from the server is shown next to the field it names
    page.evaluate(
        """() => {
            const input = document.getElementById('address');
            input.value = 'x'.repeat(501);  // past maxlength, as a script could
            input.dispatchEvent(new Event('input'));
        }"""
    )
    with page.expect_response(lambda r: r.url.endswith("/api/v1/reports")) as answer:
        submit.click()
    assert answer.value.status == 422
    assert "address" in answer.value.json()["error"]["fields"]
    expect(address_error).to_contain_text("500")
    expect(page.locator("#address")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#send-status")).to_have_attribute("data-state", "error")

    address = "临港家园南门快递柜旁"
    page.get_by_label("地址或地标").fill(address)
    expect(address_error).to_be_hidden()
    expect(page.locator("#send-status")).to_be_hidden()
    screenshot(page, "reporter-address-fallback.png")
    with page.expect_request(lambda r: r.url.endswith("/api/v1/reports")) as sent:
        submit.click()
    body = sent.value.post_data_buffer or b""
    assert multipart_field(body, "address") == address
    assert multipart_field(body, "lat") is None and multipart_field(body, "lon") is None
    assert multipart_field(body, "category") is None

    page.wait_for_url(STATUS_PAGE)
    report_id = report_id_of(page)
    expect(page.locator("#report")).to_have_attribute(
        "data-status", "triage", timeout=ROUTED_TIMEOUT_MS
    )
    expect(page.locator("#status-text")).to_have_text("等待人工分派")
    expect(page.locator("#fact-location")).to_have_text(address)
    expect(page.locator("#fact-office")).to_have_text("待分派")
    expect(page.locator("#events li").last).to_contain_text("没有坐标，需要人工根据地址定位")
    assert_no_unfilled_placeholders(page, "the status page, in triage")
    screenshot(page, "reporter-status-triage.png")

    mine = {"Authorization": f"Bearer {local_storage(page, 'cityrelay.reporterKey')}"}
    report = client.get(f"/api/v1/reports/{report_id}", headers=mine).get_json()
    assert report["status"] == "triage", report
    assert report["address"] == address and report["lat"] is None and report["lon"] is None
    assert report["office"] is None and report["routing"]["triage_reason"] == "no_location"
    assert errors == []


def test_a_retried_and_double_tapped_draft_files_one_report(
    phone: PhoneOpener, client: FlaskClient, db: Session, photo_file: Path
) -> None:
    """The first POST reaches the server but its answer is lost; the page retries with the same
    Idempotency-Key and the same body (a second tap sends nothing, and switching the language in
    between changes nothing) and gets the first report back: one report, not two."""
    from playwright.sync_api import expect

    point = sample_point(COMMUNITY)
    office = next(o for o in client.get("/api/v1/offices").get_json() if o["code"] == COMMUNITY)
    page, errors = phone({"latitude": point["lat"], "longitude": point["lon"], "accuracy": 8})

    # The first POST goes to the server in full, but the page only sees a failed fetch, as when
    # the connection drops on the way back.
    page.add_init_script(LOSE_FIRST_REPORT_ANSWER)
    keys: list[str | None] = []
    held: list[Route] = []

    def hold(route: Route) -> None:  # each POST waits until the test lets it go
        keys.append(route.request.headers.get("idempotency-key"))
        held.append(route)

    page.route(re.compile(r"/api/v1/reports$"), hold)
    answers: list[Response] = []
    page.on(
        "response",
        lambda r: answers.append(r) if r.url.endswith("/api/v1/reports") else None,
    )

    page.goto("/report")
    expect(page.locator("#loc-status")).to_have_attribute("data-state", "fixed")
    page.set_input_files("#photo-input", str(photo_file))
    expect(page.locator("#thumbs img")).to_have_count(1)
    page.get_by_label("说明").fill("垃圾桶满了，溢出来了")
    page.get_by_role("button", name="垃圾桶满溢", exact=True).click()
    draft_key = local_storage(page, "cityrelay.draft")["idempotencyKey"]

    # two submits in the same instant (a double tap)
    page.evaluate(
        """() => {
            const form = document.getElementById('report-form');
            form.requestSubmit();
            form.requestSubmit();
        }"""
    )
    status = page.locator("#send-status")
    wait_for_requests(page, held, 1)
    expect(status).to_have_attribute("data-state", "sending")
    expect(page.locator("#submit-btn")).to_be_disabled()
    # the rider switches the language while the first POST is on its way
    page.get_by_role("button", name="Switch to English").click()
    held[0].continue_()  # reaches the server; the answer is lost on the way back

    wait_for_requests(page, held, 2)
    expect(status).to_have_attribute("data-state", "retrying")
    expect(status).to_contain_text("Retrying")
    expect(page.locator("#submit-btn")).to_be_disabled()
    # the draft and its key survive until the server has answered
    assert local_storage(page, "cityrelay.draft")["idempotencyKey"] == draft_key
    expect(status).to_have_text("Retrying (retry 1 of 5)…")
    assert_no_unfilled_placeholders(page, "waiting to retry, in English")
    screenshot(page, "reporter-retrying.png", scroll_to="bottom")
    held[1].continue_()

    page.wait_for_url(STATUS_PAGE)
    report_id = report_id_of(page)
    expect(page.locator("#status-text")).to_have_text(
        f"Sent to: {office['name_en']}", timeout=ROUTED_TIMEOUT_MS
    )
    expect(page.locator("#fact-due")).to_contain_text("left)")
    assert_no_unfilled_placeholders(page, "the status page, routed, in English")
    screenshot(page, "reporter-status-en.png")

    lost = page.evaluate("() => JSON.parse(sessionStorage.getItem('lostAnswer'))")
    assert lost["status"] == 202, lost
    first_id = lost["id"]
    assert keys == [draft_key, draft_key], keys
    assert report_id == first_id
    assert [a.status for a in answers] == [202, 202]
    assert answers[0].headers.get("idempotent-replayed") is None
    assert answers[1].headers.get("idempotent-replayed") == "true"

    db.expire_all()
    stored = db.scalars(select(Report).where(Report.idempotency_key == draft_key)).all()
    assert [r.id for r in stored] == [first_id]
    mine = (
        select(func.count()).select_from(Report).where(Report.reporter_id == stored[0].reporter_id)
    )
    assert db.scalar(mine) == 1
    report = client.get(f"/api/v1/reports/{report_id}").get_json()
    assert report["office"]["code"] == COMMUNITY and len(report["photos"]) == 1
    assert report["lang"] == "zh-Hans"  # the language of the first attempt
    assert local_storage(page, "cityrelay.recentReports")[0]["id"] == first_id
    assert errors == []


def test_an_address_asking_for_a_language_opens_both_pages_in_it(
    browser: Browser, phone: PhoneOpener, server: str, photo_file: Path, client: FlaskClient
) -> None:
    """?lang=en is what the server renders (seen here with scripts off) and what the page keeps;
    it is remembered for the status page the form opens, ?lang=zh (or zh-TW) asks for Chinese
    again, and the switch still works on such an address, a reload keeping the choice."""
    from playwright.sync_api import expect

    # the server's own rendering, before (and without) any script
    no_scripts = browser.new_context(
        base_url=server, viewport=PHONE, is_mobile=True, java_script_enabled=False
    )
    try:
        bare = no_scripts.new_page()
        bare.goto("/report?lang=en")
        expect(bare.locator("html")).to_have_attribute("lang", "en")
        assert bare.title() == "Quick Report · city problems"
        expect(bare.locator("#photo-empty")).to_have_text("Tap the “Photo” button below, up to 5.")
        expect(bare.locator("#submit-btn")).to_have_text("Submit")
        expect(bare.locator("#lang-switch")).to_have_text("中文")
        visible = bare.locator("main").inner_text()
        assert not re.search(r"[\u4e00-\u9fff]", visible), visible
        assert_no_unfilled_placeholders(bare, "the form as served, in English")
        screenshot(bare, "reporter-form-en-served.png")
        bare.goto("/report/999999?lang=en")
        assert bare.title() == "Report status"
        expect(bare.locator("#events-heading")).to_have_text("History")
        assert_no_unfilled_placeholders(bare, "the status page as served, in English")
    finally:
        no_scripts.close()

    point = sample_point(COMMUNITY)
    office = next(o for o in client.get("/api/v1/offices").get_json() if o["code"] == COMMUNITY)
    page, errors = phone({"latitude": point["lat"], "longitude": point["lon"], "accuracy": 15})
    page.goto("/report?lang=en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#loc-status")).to_have_text("Location found, accurate to ±15 m")
    expect(page.locator(f'.cat-btn[data-code="{CATEGORY}"]')).to_contain_text("Overflowing")
    expect(page.locator("#photo-empty")).to_have_text("Tap the “Photo” button below, up to 5.")
    assert page.title() == "Quick Report · city problems"
    assert local_storage(page, "cityrelay.lang") == "en"
    assert_no_unfilled_placeholders(page, "?lang=en, located")
    screenshot(page, "reporter-form-lang-en.png")
    page.set_input_files("#photo-input", str(photo_file))
    expect(page.locator("#thumbs img")).to_have_attribute("alt", "Photo 1")
    expect(page.locator(".thumb-remove")).to_have_attribute("aria-label", "Remove photo 1")
    assert_no_unfilled_placeholders(page, "?lang=en, a photo added")
    page.get_by_label("Description").fill("The bin at the gate is overflowing")
    screenshot(page, "reporter-form-lang-en-photo.png")

    # the status page opened after sending has no ?lang: the requested language was kept
    page.locator("#submit-btn").click()
    page.wait_for_url(STATUS_PAGE)
    report_id = report_id_of(page)
    assert client.get(f"/api/v1/reports/{report_id}").get_json()["lang"] == "en"
    banner = page.locator("#status-text")
    expect(banner).to_have_text(f"Sent to: {office['name_en']}", timeout=ROUTED_TIMEOUT_MS)
    expect(page.locator("#events li").first).to_contain_text("Filed through Quick Report")
    assert_no_unfilled_placeholders(page, "the status page after sending in English")

    page.goto(f"/report/{report_id}?lang=zh")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(banner).to_have_text(f"已派给：{office['name']}")
    assert page.title() == "上报进度"
    assert local_storage(page, "cityrelay.lang") == "zh"
    assert_no_unfilled_placeholders(page, "the status page, ?lang=zh")
    screenshot(page, "reporter-status-lang-zh.png")

    page.goto(f"/report/{report_id}?lang=en")
    expect(banner).to_have_text(f"Sent to: {office['name_en']}")
    assert page.title() == "Report status"
    assert_no_unfilled_placeholders(page, "the status page, ?lang=en")
    screenshot(page, "reporter-status-lang-en.png")
    # the switch on such an address: the address follows it, so a reload keeps the choice
    page.get_by_role("button", name="切换到中文").click()
    expect(banner).to_have_text(f"已派给：{office['name']}")
    assert page.url.endswith(f"/report/{report_id}?lang=zh"), page.url
    page.reload()
    expect(banner).to_have_text(f"已派给：{office['name']}")
    assert_no_unfilled_placeholders(page, "the status page, switched to Chinese and reloaded")

    # traditional Chinese asks for the Chinese page, over a remembered English
    page.evaluate("() => window.localStorage.setItem('cityrelay.lang', 'en')")
    page.goto("/report?lang=zh-TW")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(page.locator("#submit-btn")).to_have_text("提交")
    expect(page.locator("#photo-empty")).to_have_text("点下方“拍照”按钮，最多 5 张。")
    assert_no_unfilled_placeholders(page, "?lang=zh-TW")
    assert errors == []


def test_the_placeholder_check_sees_text_titles_and_attributes(browser: Browser) -> None:
    """The check the tests above rely on finds an unfilled placeholder wherever a person would
    meet it, and nothing in text that rightly holds braces."""
    page = browser.new_page()
    try:
        page.set_content(
            """<title>Report {id}</title>
            <p>点下方“拍照”按钮，最多 {max} 张。</p>
            <p>{{ max_photos }} photos</p>
            <input placeholder="e.g. {example}">
            <button aria-label="Remove photo {n}">×</button>
            <img alt="Photo {n}" title="taken {when}">
            <p hidden>{hidden_text}</p>
            <pre>{"lat": 31.2, "lon": 121.5} {} { } /api/v1/reports/{id}</pre>"""
        )
        found = unfilled_placeholders(page, allowed=["/api/v1/reports/{id}"])
        assert [finding.split(" in ")[0] for finding in found] == [
            "<title>: {id}",
            "text: {max}",
            "text: {{ max_photos }}",
            "input[placeholder]: {example}",
            "button[aria-label]: {n}",
            "img[title]: {when}",
            "img[alt]: {n}",
        ]
        page.set_content('<p>最多 5 张</p><pre>{"max": 5}</pre>')
        assert unfilled_placeholders(page) == []
    finally:
        page.close()
