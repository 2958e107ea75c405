"""Every server-rendered page, walked from the app's URL map: each carries a Content Security
Policy with no inline script and no framing, no MIME sniffing and a same-origin referrer rule,
holds no inline script of its own, and shows hostile text that reporters wrote only escaped."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from models.entities import Case
from tests.factories import make_case
from tests.integration.test_console import log_in, make_user

HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">'
# A script element without src, other than a JSON data island (which never runs).
INLINE_SCRIPT = re.compile(
    r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE
)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)


def _html_pages(app: Flask, case_id: int, report_id: int) -> list[str]:
    """The URL of every GET rule outside the APIs, ids filled with the hostile case's."""
    values = {"case_id": case_id, "report_id": report_id}
    urls = []
    for rule in app.url_map.iter_rules():
        path = rule.rule
        if "GET" not in (rule.methods or ()) or path.startswith(("/api/", "/open311/")):
            continue
        if path in {"/healthz", "/readyz", "/metrics"}:
            continue  # probes for machines, not pages
        if rule.endpoint.endswith("static") or "<path:" in path or "<name>" in path:
            continue
        if not set(rule.arguments) <= set(values):
            continue
        urls.append(re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), path))
    return urls


def _check_page(url: str, response: TestResponse, hostile_shown: list[str]) -> None:
    assert response.status_code < 500, url
    if response.mimetype != "text/html":
        return
    policy = response.headers.get("Content-Security-Policy", "")
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy, url
    assert "frame-ancestors 'none'" in policy, url
    assert response.headers.get("X-Content-Type-Options") == "nosniff", url
    assert response.headers.get("Referrer-Policy") in {"same-origin", "no-referrer"}, url
    page = response.get_data(as_text=True)
    assert not INLINE_SCRIPT.search(page), f"{url}: {INLINE_SCRIPT.search(page)}"
    assert "alert(1)</script>" not in page and 'onerror="alert(2)"' not in page, url
    assert not EVENT_HANDLER.search(page), url
    if "&lt;script&gt;alert(1)" in page:
        hostile_shown.append(url)


@pytest.fixture
def hostile_case(sessions: sessionmaker[Session]) -> Case:
    return make_case(sessions, text=f"垃圾桶满了 {HOSTILE}", address=f"路口 {HOSTILE}")


def test_every_public_page_is_guarded_and_escapes_what_reporters_wrote(
    app: Flask, client: FlaskClient, hostile_case: Case
) -> None:
    report_id = hostile_case.reports[0].id
    urls = _html_pages(app, hostile_case.id, report_id)
    assert {"/report", f"/report/{report_id}", "/dashboard", "/public"} <= set(urls)
    # The report's status page fills in the text in the browser, as text: its browser test
    # (tests/e2e/test_report_status_page.py) puts hostile text there.
    for url in urls:
        for lang in ("", "?lang=en"):
            _check_page(url + lang, client.get(url + lang), [])


def test_every_console_page_is_guarded_and_escapes_what_reporters_wrote(
    app: Flask, sessions: sessionmaker[Session], hostile_case: Case
) -> None:
    staff = app.test_client()
    office = hostile_case.office.code
    assert log_in(staff, *make_user(sessions, "staff", office)).status_code == 303
    urls = [u for u in _html_pages(app, hostile_case.id, 0) if u.startswith("/console")]
    assert f"/console/cases/{hostile_case.id}" in urls
    shown: list[str] = []
    for url in urls:
        _check_page(url, staff.get(url), shown)
    assert f"/console/cases/{hostile_case.id}" in shown
    assert "/console" in shown or "/console/" in shown
