"""Checks a real response against what the OpenAPI document says of its operation: the status is
declared, the body validates against the schema declared for that status (JSON Schema 2020-12,
the dialect of OpenAPI 3.1, with the ``date-time`` and ``uri`` formats checked), and the declared
required headers are there and match. Each operation also remembers the statuses it was seen to
answer, so a test can show that every declared status really happens."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask.testing import FlaskClient
from jsonschema import Draft202012Validator, FormatChecker
from werkzeug.test import TestResponse

FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    # RFC 3339: a full date and time with an offset ("Z" or ±hh:mm).
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return "T" in value.upper() and parsed.tzinfo is not None


@FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


def schema_validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for ``schema`` whose ``#/components/...`` references resolve in the
    document."""
    rooted = {"components": document.get("components", {}), "allOf": [schema]}
    return Draft202012Validator(rooted, format_checker=FORMATS)


@dataclass
class Operation:
    document: dict[str, Any]
    method: str
    path: str
    spec: dict[str, Any]
    seen: set[int] = field(default_factory=set)

    @property
    def declared(self) -> set[int]:
        return {int(status) for status in self.spec["responses"]}

    def call(
        self,
        client: FlaskClient,
        path_params: dict[str, Any] | None = None,
        expect: int | None = None,
        **request: Any,
    ) -> TestResponse:
        """Sends the request through the test client and checks the answer against the
        document (and against ``expect`` when given)."""
        url = self.path.format(**(path_params or {}))
        response = client.open(url, method=self.method.upper(), **request)
        if expect is not None:
            assert response.status_code == expect, (url, response.status_code, response.data)
        self.check(response)
        return response

    def check(self, response: TestResponse) -> None:
        where = f"{self.method.upper()} {self.path} -> {response.status_code}"
        answer = self.spec["responses"].get(str(response.status_code))
        assert answer is not None, f"{where}: status not declared; body {response.data[:300]!r}"
        self.seen.add(response.status_code)
        content = answer.get("content")
        if content:
            assert response.mimetype in content, f"{where}: {response.mimetype} not declared"
            body = response.get_json() if response.is_json else response.get_data(as_text=True)
            validator = schema_validator(self.document, content[response.mimetype]["schema"])
            problems = [
                f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
                for e in validator.iter_errors(body)
            ]
            assert not problems, f"{where}: body does not match the document: {problems}"
        for name, header in answer.get("headers", {}).items():
            value = response.headers.get(name)
            if value is None:
                assert not header.get("required"), f"{where}: required header {name} missing"
                continue
            validator = schema_validator(self.document, header["schema"])
            assert validator.is_valid(value), f"{where}: header {name}={value!r} does not match"

    def assert_every_declared_status_seen(self) -> None:
        assert self.seen == self.declared, (
            f"{self.method.upper()} {self.path}: declared {sorted(self.declared)}, "
            f"seen {sorted(self.seen)}"
        )


class Contract:
    """The operations of one OpenAPI document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.operations = {
            (method, path): Operation(document, method, path, spec)
            for path, item in document["paths"].items()
            for method, spec in item.items()
        }

    def __getitem__(self, key: tuple[str, str]) -> Operation:
        method, path = key
        return self.operations[(method.lower(), path)]

    def all(self) -> Iterable[Operation]:
        return self.operations.values()
