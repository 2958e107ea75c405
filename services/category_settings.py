"""The questions each category asks (Open311 service attributes) and the words it is found by,
as data admins change: each change is checked here, replaces the category's rows and records a
new settings version in the caller's transaction. Also the reads the doors need, as
routing.attributes values. Nothing here commits."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import cast

from sqlalchemy.orm import Session

from models import category_settings as rows
from models.category_settings import AttributeSpec, KeywordSpec
from models.entities import Category, CategorySettingsVersion
from models.limits import (
    MAX_ATTRIBUTE_CODE_CHARS,
    MAX_ATTRIBUTE_DESCRIPTION_CHARS,
    MAX_ATTRIBUTES_PER_CATEGORY,
    MAX_DATATYPE_DESCRIPTION_CHARS,
    MAX_KEYWORD_CHARS,
    MAX_KEYWORDS_PER_CATEGORY,
    MAX_LANGUAGE_TAG_CHARS,
    MAX_VALUE_KEY_CHARS,
    MAX_VALUE_NAME_CHARS,
    MAX_VALUES_PER_ATTRIBUTE,
)
from routing.attributes import DATATYPES, LIST_DATATYPES, Attribute, Choice, Datatype, Keyword
from services.errors import InvalidFields, NotFound

# An attribute code travels in form keys (`attribute[code]`) and a value key in form values:
# plain identifiers keep both unambiguous for every Open311 client.
ATTRIBUTE_CODE = (
    re.compile(r"[a-z][a-z0-9_]*"),
    "Lower-case letters, digits and _, starting with a letter.",
)
VALUE_KEY = (
    re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*"),
    "Letters, digits, _, . and -, starting with a letter or digit.",
)
LANGUAGE_TAG = (
    re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*"),
    "A language tag such as zh, zh-Hant or en.",
)


@dataclass(frozen=True)
class CategorySettings:
    code: str
    # The settings version in force (None before any was recorded).
    version: int | None
    attributes: tuple[Attribute, ...]
    keywords: tuple[Keyword, ...]


# ---------------------------------------------------------------- reads


def attribute_from_spec(spec: AttributeSpec) -> Attribute:
    return Attribute(
        code=spec["code"],
        datatype=cast(Datatype, spec["datatype"]),
        required=spec["required"],
        description_zh=spec["description_zh"],
        description_en=spec["description_en"],
        values=tuple(Choice(c["key"], c["name_zh"], c["name_en"]) for c in spec["values"]),
        datatype_description=spec["datatype_description"],
        minimum=spec["minimum"],
        maximum=spec["maximum"],
    )


def _attribute_spec(attribute: Attribute) -> AttributeSpec:
    return {
        "code": attribute.code,
        "datatype": attribute.datatype,
        "required": attribute.required,
        "description_zh": attribute.description_zh,
        "description_en": attribute.description_en,
        "datatype_description": attribute.datatype_description,
        "minimum": attribute.minimum,
        "maximum": attribute.maximum,
        "values": [
            {"key": c.key, "name_zh": c.name_zh, "name_en": c.name_en} for c in attribute.values
        ],
    }


def _keyword(spec: KeywordSpec) -> Keyword:
    return Keyword(spec["word"], spec["lang"])


def attributes_for(session: Session, category_code: str) -> tuple[Attribute, ...]:
    """The questions the category asks now, in order (none for an unknown category)."""
    return tuple(attribute_from_spec(spec) for spec in rows.attribute_specs(session, category_code))


def keywords_by_category(session: Session) -> dict[str, tuple[Keyword, ...]]:
    return {
        code: tuple(_keyword(spec) for spec in specs)
        for code, specs in rows.keywords_by_category(session).items()
    }


def categories_with_attributes(session: Session) -> set[str]:
    return rows.categories_with_attributes(session)


def settings_of(session: Session, category_code: str) -> CategorySettings:
    _category(session, category_code)
    return CategorySettings(
        code=category_code,
        version=rows.current_settings_version(session),
        attributes=attributes_for(session, category_code),
        keywords=tuple(_keyword(s) for s in rows.keyword_specs(session, category_code)),
    )


# ---------------------------------------------------------------- changes


def replace_attributes(
    session: Session, category_code: str, attributes: Sequence[Attribute], actor: str, note: str
) -> CategorySettingsVersion:
    """The category asks exactly these questions from now on; a new settings version."""
    _category(session, category_code, lock=True)
    checked = check_attributes(attributes)
    rows.replace_attributes(session, category_code, [_attribute_spec(a) for a in checked])
    return rows.record_settings_version(session, actor, note, category_code)


def replace_keywords(
    session: Session, category_code: str, keywords: Sequence[Keyword], actor: str, note: str
) -> CategorySettingsVersion:
    """The category is found by exactly these words from now on; a new settings version."""
    _category(session, category_code, lock=True)
    checked = check_keywords(keywords)
    rows.replace_keywords(
        session, category_code, [{"word": k.word, "lang": k.lang} for k in checked]
    )
    return rows.record_settings_version(session, actor, note, category_code)


def _category(session: Session, code: str, lock: bool = False) -> Category:
    # The lock makes two admins changing one category at once take turns on PostgreSQL
    # (SQLite writers take turns anyway).
    category = session.get(Category, code, with_for_update=lock)
    if category is None:
        raise NotFound(f"Unknown category '{code}'.", field="code")
    return category


class _Problems:
    """Every problem of a change at once, by dotted field name (`attributes.1.values`)."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.fields.setdefault(field, []).append(message)

    def text(self, field: str, value: str, limit: int, required: bool = True) -> str:
        cleaned = value.strip()
        if required and not cleaned:
            self.add(field, "Must not be empty.")
        elif len(cleaned) > limit:
            self.add(field, f"At most {limit} characters.")
        # One-line labels; PostgreSQL also refuses to store a NUL.
        elif any(unicodedata.category(character) == "Cc" for character in cleaned):
            self.add(field, "Must not contain control characters.")
        return cleaned

    def identifier(
        self, field: str, value: str, form: tuple[re.Pattern[str], str], limit: int
    ) -> str:
        pattern, description = form
        if len(value) > limit:
            self.add(field, f"At most {limit} characters.")
        elif not pattern.fullmatch(value):
            self.add(field, description)
        return value

    def raise_any(self) -> None:
        if self.fields:
            raise InvalidFields(self.fields)


def check_attributes(attributes: Sequence[Attribute]) -> tuple[Attribute, ...]:
    """The attributes with surrounding blanks trimmed, or InvalidFields naming each problem."""
    problems = _Problems()
    if len(attributes) > MAX_ATTRIBUTES_PER_CATEGORY:
        problems.add("attributes", f"At most {MAX_ATTRIBUTES_PER_CATEGORY} attributes.")
    checked: list[Attribute] = []
    seen_codes: set[str] = set()
    for index, attribute in enumerate(attributes):
        at = f"attributes.{index}"
        code = problems.identifier(
            f"{at}.code", attribute.code, ATTRIBUTE_CODE, MAX_ATTRIBUTE_CODE_CHARS
        )
        if code in seen_codes:
            problems.add(f"{at}.code", f"'{code}' is used by an earlier attribute.")
        seen_codes.add(code)
        if attribute.datatype not in DATATYPES:
            problems.add(f"{at}.datatype", f"Must be one of: {', '.join(DATATYPES)}.")
        checked.append(
            replace(
                attribute,
                description_zh=problems.text(
                    f"{at}.description_zh",
                    attribute.description_zh,
                    MAX_ATTRIBUTE_DESCRIPTION_CHARS,
                ),
                description_en=problems.text(
                    f"{at}.description_en",
                    attribute.description_en,
                    MAX_ATTRIBUTE_DESCRIPTION_CHARS,
                ),
                datatype_description=problems.text(
                    f"{at}.datatype_description",
                    attribute.datatype_description,
                    MAX_DATATYPE_DESCRIPTION_CHARS,
                    required=False,
                ),
                values=_check_values(problems, at, attribute),
            )
        )
        _check_range(problems, at, attribute)
    problems.raise_any()
    return tuple(checked)


def _check_values(problems: _Problems, at: str, attribute: Attribute) -> tuple[Choice, ...]:
    if attribute.datatype not in LIST_DATATYPES:
        if attribute.values:
            problems.add(f"{at}.values", f"Only {' and '.join(LIST_DATATYPES)} take values.")
        return ()
    if not attribute.values:
        problems.add(f"{at}.values", f"A {attribute.datatype} needs at least one value.")
    elif len(attribute.values) > MAX_VALUES_PER_ATTRIBUTE:
        problems.add(f"{at}.values", f"At most {MAX_VALUES_PER_ATTRIBUTE} values.")
    checked: list[Choice] = []
    seen_keys: set[str] = set()
    for index, choice in enumerate(attribute.values):
        where = f"{at}.values.{index}"
        key = problems.identifier(f"{where}.key", choice.key, VALUE_KEY, MAX_VALUE_KEY_CHARS)
        if key in seen_keys:
            problems.add(f"{where}.key", f"'{key}' is used by an earlier value.")
        seen_keys.add(key)
        checked.append(
            Choice(
                key,
                problems.text(f"{where}.name_zh", choice.name_zh, MAX_VALUE_NAME_CHARS),
                problems.text(f"{where}.name_en", choice.name_en, MAX_VALUE_NAME_CHARS),
            )
        )
    return tuple(checked)


def _check_range(problems: _Problems, at: str, attribute: Attribute) -> None:
    bounds = {"minimum": attribute.minimum, "maximum": attribute.maximum}
    if attribute.datatype != "number":
        for name, bound in bounds.items():
            if bound is not None:
                problems.add(f"{at}.{name}", "Only a number attribute takes a range.")
        return
    for name, bound in bounds.items():
        if bound is not None and not math.isfinite(bound):
            problems.add(f"{at}.{name}", "Must be a finite number.")
    low, high = attribute.minimum, attribute.maximum
    if low is not None and high is not None and low > high:
        problems.add(f"{at}.maximum", f"Must not be less than minimum ({low:g}).")


def check_keywords(keywords: Sequence[Keyword]) -> tuple[Keyword, ...]:
    """The keywords with surrounding blanks trimmed, or InvalidFields naming each problem."""
    problems = _Problems()
    if len(keywords) > MAX_KEYWORDS_PER_CATEGORY:
        problems.add("keywords", f"At most {MAX_KEYWORDS_PER_CATEGORY} keywords.")
    checked: list[Keyword] = []
    seen: set[str] = set()
    for index, keyword in enumerate(keywords):
        at = f"keywords.{index}"
        word = problems.text(f"{at}.word", keyword.word, MAX_KEYWORD_CHARS)
        # Open311 lists a service's keywords joined by commas.
        if "," in word:
            problems.add(f"{at}.word", "Must not contain a comma.")
        if word.casefold() in seen:
            problems.add(f"{at}.word", f"'{word}' is listed earlier.")
        seen.add(word.casefold())
        if keyword.lang is not None:
            problems.identifier(f"{at}.lang", keyword.lang, LANGUAGE_TAG, MAX_LANGUAGE_TAG_CHARS)
        checked.append(Keyword(word, keyword.lang))
    problems.raise_any()
    return tuple(checked)
