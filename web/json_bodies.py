"""JSON bodies as the app reads them: nested no deeper than any request needs."""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider

# The deepest body CityRelay accepts (rules and calendars) nests a handful of levels.
MAX_JSON_DEPTH = 32


def _depth(value: Any) -> int:
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                break
            inner = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in inner)
    return deepest


class BoundedJSONProvider(DefaultJSONProvider):
    """Refuses JSON nested deeper than MAX_JSON_DEPTH as invalid (a ValueError, which Flask
    answers with 400), instead of letting a 100,000-level body exhaust the parser's recursion.
    Chinese stays readable in the JSON it writes, and keys keep their order."""

    ensure_ascii = False
    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            value = super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError(f"Nested more than {MAX_JSON_DEPTH} levels deep.") from None
        if _depth(value) > MAX_JSON_DEPTH:
            raise ValueError(f"Nested more than {MAX_JSON_DEPTH} levels deep.")
        return value
