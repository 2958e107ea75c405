"""The bounded, derandomized schemathesis run both OpenAPI descriptions get (the /api/v1 document
and docs/open311.openapi.yaml): generated requests per operation, and for valid data the
description's own examples too, so that success answers are checked as well as refusals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import APIOperation, GenerationMode

# Per operation and strategy; small enough that each whole run stays around a minute.
MAX_EXAMPLES = 25


def for_each_generated_case(
    operation: APIOperation,
    mode: GenerationMode,
    check: Callable[[schemathesis.Case], None],
) -> None:
    """Calls ``check`` with up to MAX_EXAMPLES generated cases of ``operation`` (and, for
    positive data, the description's examples), the same ones on every run."""
    strategies = [operation.as_strategy(generation_mode=mode)]
    if mode is GenerationMode.POSITIVE:
        strategies += operation.get_strategies_from_examples()
    for strategy in strategies:

        @settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case: schemathesis.Case) -> None:
            check(case)

        run()


# gunicorn's limit_request_line: a longer request line is refused by the server itself, before
# the app, with 414 URI Too Long (see the README's checks every request passes).
MAX_REQUEST_LINE = 4094


def call_and_check(
    case: schemathesis.Case, checks: list[Any], **call: Any
) -> schemathesis.Response:
    """The case called and its answer checked, except a 414 for a request line longer than the
    server takes: that answer is the server's, the same for every path, and in no description."""
    response = case.call(**call)
    request = response.request
    line = f"{request.method} {request.path_url} HTTP/1.1"
    if response.status_code == 414 and len(line.encode()) > MAX_REQUEST_LINE:
        return response
    case.validate_response(response, checks=checks, headers=call.get("headers"))
    return response
