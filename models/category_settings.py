"""Category settings as data: the questions each category asks (Open311 service attributes,
with their allowed values) and the words people search it by.

They are read and written as plain dicts in one format: the format of the defaults file
(models/seed/category_settings.json, which migration 0007 also reads) and of every
CategorySettingsVersion snapshot. services.category_settings checks changes and turns these
dicts into routing.attributes values. Nothing here commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from models.entities import (
    Category,
    CategoryAttribute,
    CategoryAttributeValue,
    CategoryKeyword,
    CategorySettingsVersion,
)


class ChoiceSpec(TypedDict):
    key: str
    name_zh: str
    name_en: str


class AttributeSpec(TypedDict):
    code: str
    datatype: str
    required: bool
    description_zh: str
    description_en: str
    datatype_description: str
    minimum: float | None
    maximum: float | None
    values: list[ChoiceSpec]


class KeywordSpec(TypedDict):
    word: str
    lang: str | None


class CategorySpec(TypedDict):
    attributes: list[AttributeSpec]
    keywords: list[KeywordSpec]


def _attribute_spec(row: CategoryAttribute) -> AttributeSpec:
    return {
        "code": row.code,
        "datatype": row.datatype,
        "required": row.required,
        "description_zh": row.description_zh,
        "description_en": row.description_en,
        "datatype_description": row.datatype_description,
        "minimum": row.minimum,
        "maximum": row.maximum,
        "values": [
            {"key": value.key, "name_zh": value.name_zh, "name_en": value.name_en}
            for value in row.values
        ],
    }


def _keyword_spec(row: CategoryKeyword) -> KeywordSpec:
    return {"word": row.word, "lang": row.lang}


def _attribute_rows(
    session: Session, category_code: str | None = None
) -> Sequence[CategoryAttribute]:
    query = (
        select(CategoryAttribute)
        .options(selectinload(CategoryAttribute.values))
        .order_by(CategoryAttribute.category_code, CategoryAttribute.position)
    )
    if category_code is not None:
        query = query.where(CategoryAttribute.category_code == category_code)
    return session.scalars(query).all()


def _keyword_rows(session: Session, category_code: str | None = None) -> Sequence[CategoryKeyword]:
    query = select(CategoryKeyword).order_by(
        CategoryKeyword.category_code, CategoryKeyword.position
    )
    if category_code is not None:
        query = query.where(CategoryKeyword.category_code == category_code)
    return session.scalars(query).all()


def attribute_specs(session: Session, category_code: str) -> list[AttributeSpec]:
    """The category's questions in the order they are asked."""
    return [_attribute_spec(row) for row in _attribute_rows(session, category_code)]


def keyword_specs(session: Session, category_code: str) -> list[KeywordSpec]:
    return [_keyword_spec(row) for row in _keyword_rows(session, category_code)]


def keywords_by_category(session: Session) -> dict[str, list[KeywordSpec]]:
    """Every category's keywords, in one query (the services list shows them all)."""
    found: dict[str, list[KeywordSpec]] = {}
    for row in _keyword_rows(session):
        found.setdefault(row.category_code, []).append(_keyword_spec(row))
    return found


def categories_with_attributes(session: Session) -> set[str]:
    return set(session.scalars(select(CategoryAttribute.category_code).distinct()))


def current_settings(session: Session) -> dict[str, CategorySpec]:
    """Every category's settings, categories without any included (empty), keyed by code in
    code order: the snapshot a version records."""
    codes = sorted(session.scalars(select(Category.code)))
    settings: dict[str, CategorySpec] = {code: {"attributes": [], "keywords": []} for code in codes}
    for attribute in _attribute_rows(session):
        settings[attribute.category_code]["attributes"].append(_attribute_spec(attribute))
    for keyword in _keyword_rows(session):
        settings[keyword.category_code]["keywords"].append(_keyword_spec(keyword))
    return settings


def replace_attributes(
    session: Session, category_code: str, attributes: Sequence[AttributeSpec]
) -> None:
    """The category asks exactly these questions from now on, in this order."""
    for row in _attribute_rows(session, category_code):
        session.delete(row)
    # The old rows go first: a question kept under the same code must not meet itself.
    session.flush()
    for position, spec in enumerate(attributes):
        session.add(
            CategoryAttribute(
                category_code=category_code,
                position=position,
                code=spec["code"],
                datatype=spec["datatype"],
                required=spec["required"],
                description_zh=spec["description_zh"],
                description_en=spec["description_en"],
                datatype_description=spec["datatype_description"],
                minimum=spec["minimum"],
                maximum=spec["maximum"],
                values=[
                    CategoryAttributeValue(
                        position=index,
                        key=choice["key"],
                        name_zh=choice["name_zh"],
                        name_en=choice["name_en"],
                    )
                    for index, choice in enumerate(spec["values"])
                ],
            )
        )
    session.flush()


def replace_keywords(session: Session, category_code: str, keywords: Sequence[KeywordSpec]) -> None:
    """The category is found by exactly these words from now on, in this order."""
    for row in _keyword_rows(session, category_code):
        session.delete(row)
    session.flush()
    for position, spec in enumerate(keywords):
        session.add(
            CategoryKeyword(
                category_code=category_code, position=position, word=spec["word"], lang=spec["lang"]
            )
        )
    session.flush()


def latest_settings_version(session: Session) -> CategorySettingsVersion | None:
    return session.scalar(
        select(CategorySettingsVersion).order_by(CategorySettingsVersion.id.desc()).limit(1)
    )


def current_settings_version(session: Session) -> int | None:
    version: int | None = session.scalar(select(func.max(CategorySettingsVersion.id)))
    return version


def record_settings_version(
    session: Session, actor: str, note: str, category_code: str | None = None
) -> CategorySettingsVersion:
    session.flush()
    version = CategorySettingsVersion(
        actor=actor, note=note, category_code=category_code, settings=current_settings(session)
    )
    session.add(version)
    session.flush()
    return version
