"""Checks every request passes before any view runs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import BadRequest

from web.errors import ApiError

NUL_MESSAGE = "The NUL character (U+0000) is not allowed."

# Tab, line feed and carriage return are text; the other C0 controls are not, and XML 1.0 cannot
# carry them at all (one in a report would make the whole Open311 XML list unreadable). Lone
# surrogates cannot be encoded as UTF-8, and U+FFFE and U+FFFF are not characters.
UNFIT_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def unfit_character(text: str) -> str | None:
    """The first character of ``text`` that no stored text may hold, or None."""
    found = UNFIT_CHARACTERS.search(text)
    return found.group() if found else None


def _message(char: str) -> str:
    if char == "\x00":
        return NUL_MESSAGE
    if 0xD800 <= ord(char) <= 0xDFFF:
        return f"A lone surrogate (U+{ord(char):04X}) is not a character."
    return f"The control character U+{ord(char):04X} is not allowed."


def limit_request_size() -> None:
    """Bodies larger than any request needs are refused with 413 from their Content-Length,
    before a byte of them is read, and a multipart body with more parts than a report has
    photos and fields as soon as the first extra part arrives."""
    config = current_app.config
    if request.mimetype == "multipart/form-data":
        photos = config["MAX_PHOTOS"]
        request.max_content_length = photos * config["MAX_PHOTO_BYTES"] + config["MAX_BODY_BYTES"]
        request.max_form_parts = photos + config["MAX_FORM_FIELDS"]
    else:
        request.max_content_length = config["MAX_BODY_BYTES"]
        request.max_form_parts = config["MAX_FORM_FIELDS"]
    request.max_form_memory_size = config["MAX_BODY_BYTES"]


def _unfit_texts(name: str, value: Any) -> Iterator[tuple[str, str]]:
    """(field path, unfit character) for each string in ``value`` that holds one, dict keys
    included; iterative, because a JSON body may nest deeper than Python's recursion limit."""
    pending: list[tuple[str, Any]] = [(name, value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, str):
            char = unfit_character(item) or unfit_character(path)
            if char is not None:
                yield path or "_body", char
        elif isinstance(item, dict):
            for key, inner in item.items():
                pending.append((f"{path}.{key}" if path else str(key), inner))
        elif isinstance(item, list):
            for index, inner in enumerate(item):
                pending.append((f"{path}.{index}" if path else str(index), inner))


def _printable(path: str) -> str:
    return "".join(
        f"\\u{ord(char):04x}" if unfit_character(char) is not None else char for char in path
    )


def _json_body() -> Any:
    """The JSON body, parsed; 400 naming the body when it is not JSON (an empty body is no
    body: views that require one say so)."""
    if not request.get_data(cache=True):
        return None
    try:
        return request.get_json()
    except BadRequest:
        pass
    # Flask says only "bad request"; the parser's own words tell the client what to mend.
    try:
        current_app.json.loads(request.get_data(cache=True))
        reason = "Not valid JSON."
    except (ValueError, UnicodeDecodeError) as error:
        reason = str(error)
    raise ApiError(400, "bad_request", "The body is not valid JSON.", {"_body": [reason]})


def refuse_unfit_characters() -> None:
    """No text CityRelay stores may hold a NUL, a control character other than tab and line
    breaks, or a lone surrogate: PostgreSQL cannot store a NUL, XML cannot carry the controls,
    UTF-8 cannot encode a surrogate, and no person types any of them. Refused up front, naming
    the field, whichever door it came through."""
    if any(True for _ in _unfit_texts("", dict(request.view_args or {}))):
        # Nothing CityRelay names (a code, a token) has such a character in it, nor can a PUT
        # create a thing so named.
        raise ApiError(404, "not_found", "No such thing: its name holds a control character.")
    sources: list[Iterator[tuple[str, str]]] = [
        _unfit_texts(name, value) for name, value in request.args.items(multi=True)
    ]
    if request.method in {"POST", "PUT", "PATCH"}:
        if request.is_json:
            sources.append(_unfit_texts("", _json_body()))
        else:
            sources += [_unfit_texts(n, v) for n, v in request.form.items(multi=True)]
    fields: dict[str, list[str]] = {}
    for source in sources:
        for path, char in source:
            fields.setdefault(_printable(path), [_message(char)])
    if fields:
        names = ", ".join(sorted(fields))
        raise ApiError(422, "validation_failed", f"Invalid or missing fields: {names}.", fields)
