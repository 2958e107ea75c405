"""Open311 against the real server (`cityrelay web`), through its own small OpenAPI description
(docs/open311.openapi.yaml): a bounded, derandomized schemathesis run over every operation finds
no 5xx and no JSON answer that breaks the description, and the XML twin of every generated
request answers well-formed XML, never a 5xx."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import PROJECT_ROOT
from tests.factories import make_key
from tests.fuzz import call_and_check, for_each_generated_case
from tests.live_server import running_web

pytestmark = pytest.mark.e2e

DESCRIPTION = PROJECT_ROOT / "docs" / "open311.openapi.yaml"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def web(test_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_web(test_settings, tmp_path_factory.mktemp("web-open311") / "web.log") as base:
        yield base


def _xml_twin(web: str, case: schemathesis.Case, session: requests.Session) -> requests.Response:
    url = web + case.formatted_path.removesuffix(".json") + ".xml"
    if case.method.upper() == "POST":
        return session.post(url, params=case.query, data=case.body, timeout=10)
    return session.get(url, params=case.query, timeout=10)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_open311_keeps_to_its_description_in_json_and_xml(
    web: str, mode: GenerationMode, sessions: sessionmaker[Session]
) -> None:
    key = make_key(sessions)
    schema = schemathesis.openapi.from_path(str(DESCRIPTION))
    schema.config.update(base_url=web)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 7
    session = requests.Session()
    answered: dict[str, Counter[int]] = {}
    failures: dict[str, str] = {}
    for operation in operations:
        statuses = answered.setdefault(operation.label, Counter())
        try:
            _run(web, operation, mode, session, key, statuses)
        except Exception as failure:  # every operation runs; failures are reported together
            failures[operation.label] = str(failure)
    assert not failures, "\n\n".join(f"== {label}\n{text}" for label, text in failures.items())
    assert all(answered.values()), answered
    if mode is GenerationMode.POSITIVE:
        created = answered["POST /open311/v2/requests.json"]
        assert created[201] > 0, created


def _run(
    web: str,
    operation: APIOperation,
    mode: GenerationMode,
    session: requests.Session,
    key: str,
    statuses: Counter[int],
) -> None:
    def keeps_to_the_description(case: schemathesis.Case) -> None:
        if isinstance(case.body, dict) and case.body.get("api_key") == "REPORTER_KEY":
            case.body["api_key"] = key  # the example's stand-in for a real key
        response = call_and_check(case, CHECKS, session=session, timeout=10)
        statuses[response.status_code] += 1
        if response.status_code == 414:
            return  # the server's refusal of a request line too long; the twin's is the same
        twin = _xml_twin(web, case, session)
        assert twin.status_code < 500, twin.text[:500]
        assert twin.headers["Content-Type"] == "text/xml; charset=utf-8"
        ET.fromstring(twin.content)  # well-formed, or this raises

    for_each_generated_case(operation, mode, keeps_to_the_description)
