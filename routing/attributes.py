"""The questions a category asks (Open311 service attributes) and the checking of answers.
Pure: definitions in, cleaned answers or named errors out. The definitions themselves are data
that admins change (services.category_settings); nothing here knows any category's questions."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Datatype = Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
DATATYPES: tuple[Datatype, ...] = (
    "string",
    "number",
    "datetime",
    "text",
    "singlevaluelist",
    "multivaluelist",
)
LIST_DATATYPES: tuple[Datatype, ...] = ("singlevaluelist", "multivaluelist")
# Longest answer to a string or text attribute.
MAX_STRING = 200
MAX_TEXT = 2000


@dataclass(frozen=True)
class Choice:
    key: str
    name_zh: str
    name_en: str

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh


@dataclass(frozen=True)
class Attribute:
    code: str
    datatype: Datatype
    required: bool
    description_zh: str
    description_en: str
    values: tuple[Choice, ...] = field(default=())
    datatype_description: str = ""
    # Bounds of a number answer, inclusive; None leaves that side open.
    minimum: float | None = None
    maximum: float | None = None

    def description(self, lang: str) -> str:
        return self.description_en if lang == "en" else self.description_zh


@dataclass(frozen=True)
class Keyword:
    """A word people search services by (Open311 `keywords`), with its language if known."""

    word: str
    lang: str | None = None


def validate_answers(
    category: str, attributes: Sequence[Attribute], answers: Mapping[str, Sequence[str]]
) -> tuple[dict[str, str | float | list[str]], dict[str, str]]:
    """Check raw answers (every value a list of strings, as forms deliver them) against the
    category's attributes. Returns (clean answers, errors by attribute code)."""
    definitions = {a.code: a for a in attributes}
    clean: dict[str, str | float | list[str]] = {}
    errors: dict[str, str] = {}
    for code in answers:
        if code not in definitions:
            errors[code] = f"'{code}' is not an attribute of {category}."
    for code, attribute in definitions.items():
        raw = [v.strip() for v in answers.get(code, []) if v.strip()]
        if not raw:
            if attribute.required:
                errors[code] = f"'{code}' is required for {category}."
            continue
        problem, value = _check(attribute, raw)
        if problem:
            errors[code] = problem
        else:
            assert value is not None
            clean[code] = value
    return clean, errors


def _check(
    attribute: Attribute, raw: list[str]
) -> tuple[str | None, str | float | list[str] | None]:
    keys = {choice.key for choice in attribute.values}
    if attribute.datatype == "multivaluelist":
        unknown = [v for v in raw if v not in keys]
        if unknown:
            return (
                f"Not allowed: {', '.join(unknown)}; choose from {', '.join(sorted(keys))}.",
                None,
            )
        return None, list(dict.fromkeys(raw))
    if len(raw) > 1:
        return f"'{attribute.code}' takes one value.", None
    value = raw[0]
    if attribute.datatype == "singlevaluelist":
        if value not in keys:
            return f"'{value}' is not allowed; choose from {', '.join(sorted(keys))}.", None
        return None, value
    if attribute.datatype == "number":
        return _check_number(attribute, value)
    if attribute.datatype == "datetime":
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return f"'{value}' is not an ISO 8601 date and time.", None
        if moment.tzinfo is None:
            return f"'{value}' needs a time zone.", None
        return None, moment.isoformat()
    limit = MAX_TEXT if attribute.datatype == "text" else MAX_STRING
    if len(value) > limit:
        return f"At most {limit} characters.", None
    return None, value


def _check_number(attribute: Attribute, value: str) -> tuple[str | None, float | None]:
    try:
        number = float(value)
    except ValueError:
        return f"'{value}' is not a number.", None
    if not math.isfinite(number):
        return f"'{value}' is not a finite number.", None
    low = -math.inf if attribute.minimum is None else attribute.minimum
    high = math.inf if attribute.maximum is None else attribute.maximum
    if not low <= number <= high:
        return f"{value} is outside {low:g} to {high:g}.", None
    return None, number
