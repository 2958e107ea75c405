"""Checks every request passes before any view runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import request

from web.errors import ApiError

NUL_MESSAGE = "The NUL character (U+0000) is not allowed."


def _nul_paths(prefix: str, value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if "\x00" in value or "\x00" in prefix:
            yield prefix or "_body"
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from _nul_paths(f"{prefix}.{key}" if prefix else str(key), inner)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _nul_paths(f"{prefix}.{index}" if prefix else str(index), inner)


def refuse_nul_characters() -> None:
    """No text CityRelay stores may hold a NUL: PostgreSQL cannot store one in a text column, and
    no person types one. Refused up front, naming the field, whichever door it came through."""
    if any(True for _ in _nul_paths("", dict(request.view_args or {}))):
        # Nothing CityRelay names (a code, a token) has a NUL in it.
        raise ApiError(404, "not_found", "No such thing: its name holds a NUL character.")
    sources: list[Iterator[str]] = [
        _nul_paths(name, value) for name, value in request.args.items(multi=True)
    ]
    if request.method in {"POST", "PUT", "PATCH"}:
        sources += [_nul_paths(name, value) for name, value in request.form.items(multi=True)]
        if request.is_json:
            sources.append(_nul_paths("", request.get_json(silent=True)))
    fields: dict[str, list[str]] = {}
    for source in sources:
        for path in source:
            fields.setdefault(path.replace("\x00", "\\0"), [NUL_MESSAGE])
    if fields:
        names = ", ".join(sorted(fields))
        raise ApiError(422, "validation_failed", f"Invalid or missing fields: {names}.", fields)
