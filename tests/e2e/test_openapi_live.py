"""The generated OpenAPI document against the real server (`cityrelay web`, gunicorn): a bounded,
derandomized schemathesis run over every operation, with real reporter, office and admin keys,
must find no 5xx and no answer that contradicts the document (status, content type, body
schema, headers); and /docs, in headless Chromium, shows every operation without asking any
other host for anything."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.calendars import DEFAULT_CALENDAR
from models.entities import Calendar, Category, CategorySettingsVersion, RuleVersion
from tests.factories import make_key
from tests.fuzz import call_and_check, for_each_generated_case
from tests.helpers import sample_point
from tests.live_server import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    assert_no_unfilled_placeholders,
    running_web,
)

pytestmark = pytest.mark.e2e

DOCUMENT = "/api/v1/openapi.json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module")
def web(test_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_web(test_settings, tmp_path_factory.mktemp("web-openapi") / "web.log") as base:
        yield base


@pytest.fixture
def headers_for(sessions: sessionmaker[Session]) -> Callable[[str, str], dict[str, str]]:
    """The key each operation is meant for (the rows a test adds are deleted after it)."""
    keys = {
        "reporter": make_key(sessions),
        "office": make_key(sessions, role="office", office_code=sample_point()["office"]),
        "admin": make_key(sessions, role="admin"),
    }

    def headers(method: str, path: str) -> dict[str, str]:
        if path.startswith("/api/v1/admin/"):
            role = "admin"
        elif path.startswith("/api/v1/cases/"):
            role = "office"
        elif (method.upper(), path) == ("POST", "/api/v1/reports"):
            role = "reporter"
        else:
            return {}
        return {"Authorization": f"Bearer {keys[role]}"}

    return headers


@pytest.fixture
def admin_data_unchanged(sessions: sessionmaker[Session]) -> Iterator[None]:
    """Generated admin changes name offices and categories that do not exist. Were one to land,
    the rules and settings later tests rely on would have changed: say so."""
    before = _admin_data(sessions)
    yield
    assert _admin_data(sessions) == before


def _admin_data(sessions: sessionmaker[Session]) -> tuple[Any, ...]:
    with sessions() as session:
        return (
            session.scalar(select(func.max(RuleVersion.id))),
            session.scalar(select(func.max(CategorySettingsVersion.id))),
            session.execute(
                select(Category.code, Category.merge_radius_m, Category.merge_window_hours)
            ).all(),
            session.scalar(select(Calendar.updated_at).where(Calendar.name == DEFAULT_CALENDAR)),
        )


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_live_server_keeps_to_its_openapi_document(
    web: str,
    mode: GenerationMode,
    headers_for: Callable[[str, str], dict[str, str]],
    admin_data_unchanged: None,
) -> None:
    schema = schemathesis.openapi.from_url(f"{web}{DOCUMENT}", timeout=10)
    operations = [result.ok() for result in schema.get_all_operations()]
    document = requests.get(f"{web}{DOCUMENT}", timeout=10).json()
    # schemathesis leaves out the document's own URL (tests/integration/test_openapi.py has it)
    described = {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if path != DOCUMENT
    }
    assert {operation.label for operation in operations} == described
    session = requests.Session()
    failures: dict[str, str] = {}
    answered: dict[str, Counter[int]] = {}
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not _has_input(document, operation):
            continue  # nothing to make invalid
        headers = headers_for(operation.method, operation.path)
        statuses = answered.setdefault(operation.label, Counter())
        try:
            _run(operation, mode, session, headers, statuses)
        except Exception as failure:  # every operation runs; all failures are reported together
            failures[operation.label] = str(failure)
    assert not failures, "\n\n".join(f"== {label}\n{text}" for label, text in failures.items())
    assert all(answered.values()), answered
    if mode is GenerationMode.POSITIVE:
        # the example bodies got through: success answers were checked, not only refusals
        assert answered["POST /api/v1/reports"][202] > 0, answered["POST /api/v1/reports"]
        assert answered["POST /api/v1/reporters"][201] > 0, answered["POST /api/v1/reporters"]


def _has_input(document: dict[str, Any], operation: APIOperation) -> bool:
    described = document["paths"][operation.path][operation.method.lower()]
    return bool(described.get("parameters") or described.get("requestBody"))


def _run(
    operation: APIOperation,
    mode: GenerationMode,
    session: requests.Session,
    headers: dict[str, str],
    statuses: Counter[int],
) -> None:
    """Each generated request's answer checked; ``statuses`` counts what came back."""

    def keeps_to_the_document(case: schemathesis.Case) -> None:
        response = call_and_check(case, CHECKS, session=session, headers=headers, timeout=10)
        statuses[response.status_code] += 1

    for_each_generated_case(operation, mode, keeps_to_the_document)


# ---------- /docs in a real browser ----------


def test_the_docs_page_shows_every_operation_from_this_server_alone(web: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium`.", pytrace=False)
    document = requests.get(f"{web}{DOCUMENT}", timeout=10).json()
    operations = sum(len(item) for item in document["paths"].values())
    # the page shows path templates such as /api/v1/reports/{id}: braces that belong there
    path_templates = sorted(document["paths"], key=len, reverse=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            hosts: set[str] = set()
            problems: list[str] = []
            page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on(
                "response",
                lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
            )
            page.on(
                "console",
                lambda message: (
                    problems.append(message.text)
                    if message.type == "error" or "Content Security Policy" in message.text
                    else None
                ),
            )
            page.goto(f"{web}/docs")
            blocks = page.locator(".opblock")
            expect(blocks).to_have_count(operations, timeout=15_000)
            expect(page.locator(".info .title")).to_contain_text("CityRelay API")
            report = page.locator("#operations-reports-api_create_report")
            expect(report).to_contain_text("/api/v1/reports")
            expect(report).to_contain_text("File a report")
            assert_no_unfilled_placeholders(page, "every operation listed", path_templates)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=True)

            # one operation opened: its description (the 0,0 refusal), body and answers
            report.locator(".opblock-summary").click()
            expect(report.locator(".opblock-description-wrapper").first).to_contain_text("0,0")
            expect(report.locator(".responses-table")).to_contain_text("202")
            expect(report.locator(".responses-table")).to_contain_text("413")
            report.scroll_into_view_if_needed()
            assert_no_unfilled_placeholders(page, "filing a report opened", path_templates)
            page.screenshot(path=str(ARTIFACTS / "api-docs-file-report.png"))
        finally:
            browser.close()
    assert hosts == {urlsplit(web).netloc}, hosts
    assert problems == []
