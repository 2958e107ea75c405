"""Seed data: the category taxonomy (with each category's default questions and keywords) and the
demo city. Loading is an upsert by code, so running it again changes nothing and never renames a
public service code."""

from __future__ import annotations

import csv
import json
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.calendars import load_seed_calendars
from models.category_settings import (
    CategorySpec,
    attribute_specs,
    current_settings,
    keyword_specs,
    latest_settings_version,
    record_settings_version,
    replace_attributes,
    replace_keywords,
)
from models.entities import Category, Office, ResponseTemplate, RuleVersion
from models.routing_rules import current_rules, record_version

# Categories for which no published limit was found get a working default, named as ours.
DEFAULT_LIMIT_URGENT = "1 working day"
DEFAULT_LIMIT = "3 working days"
DEFAULT_LIMIT_SOURCE = "CityRelay default; no published limit found"


def taxonomy_rows() -> list[dict[str, str]]:
    text = resources.files("models.seed").joinpath("taxonomy.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def category_settings_defaults() -> dict[str, CategorySpec]:
    """Each category's questions and keywords as first loaded. Migration 0007 reads the same
    file, so a migrated database and a freshly seeded one start alike."""
    path = resources.files("models.seed").joinpath("category_settings.json")
    data: dict[str, CategorySpec] = json.loads(path.read_text(encoding="utf-8"))
    return data


def demo_city() -> dict[str, Any]:
    text = resources.files("models.seed").joinpath("demo_city.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def load_taxonomy(session: Session) -> int:
    existing = {c.code: c for c in session.scalars(select(Category))}
    for position, row in enumerate(taxonomy_rows()):
        urgent = row["urgent"].strip().lower() == "yes"
        limit = row["time_limit"].strip() or None
        source = row["time_limit_source"].strip()
        if limit is None:
            limit = DEFAULT_LIMIT_URGENT if urgent else DEFAULT_LIMIT
            source = f"{DEFAULT_LIMIT_SOURCE} ({source})" if source else DEFAULT_LIMIT_SOURCE
        category = existing.get(row["code"]) or Category(code=row["code"])
        category.name_zh = row["name_zh"]
        category.name_en = row["name_en"]
        category.group_zh = row["group_zh"]
        category.standard_codes = row["standard_codes"]
        category.time_limit = limit
        category.time_limit_source = source
        category.urgent = urgent
        category.handled_by = row["handled_by"]
        category.position = position
        session.add(category)
    session.flush()
    load_category_settings(session)
    return len(taxonomy_rows())


def load_category_settings(session: Session) -> int:
    """Give each category that has no settings yet its default questions and keywords, and
    record a settings version when anything changed. A category already named in a version
    keeps what admins made of it, so this is safe on every start. Returns how many categories
    got their defaults."""
    latest = latest_settings_version(session)
    known = set(latest.settings) if latest else set()
    defaults = category_settings_defaults()
    loaded = 0
    for code in session.scalars(select(Category.code).order_by(Category.code)).all():
        spec = defaults.get(code)
        if code in known or spec is None:
            continue
        if attribute_specs(session, code) or keyword_specs(session, code):
            continue
        replace_attributes(session, code, spec["attributes"])
        replace_keywords(session, code, spec["keywords"])
        loaded += 1
    if latest is None or current_settings(session) != latest.settings:
        record_settings_version(session, "system:seed", "default category settings loaded")
    return loaded


def load_demo_city(session: Session) -> int:
    """Upsert the demo offices; parents are listed before their children in the file. The
    seed's working-hour calendars come first (only those not there yet: admins own them)."""
    load_taxonomy(session)
    load_seed_calendars(session)
    categories = {c.code: c for c in session.scalars(select(Category))}
    offices = {o.code: o for o in session.scalars(select(Office))}
    rows = demo_city()["offices"]
    for row in rows:
        office = offices.get(row["code"]) or Office(code=row["code"])
        office.name = row["name"]
        office.name_en = row.get("name_en", "")
        office.kind = row["kind"]
        office.parent = offices[row["parent"]] if row.get("parent") else None
        office.jurisdiction = row.get("jurisdiction")
        office.categories = [categories[code] for code in row.get("categories", [])]
        office.active = True
        session.add(office)
        offices[office.code] = office
    session.flush()
    if current_rules(session) != _latest_rules(session):
        record_version(session, "system:seed", "demo city loaded")
    load_response_templates(session)
    return len(rows)


def load_response_templates(session: Session) -> int:
    """The console's ready answers, loaded only while there are none (admins own them after),
    and only for categories that exist. Returns how many were added."""
    if session.scalar(select(ResponseTemplate.id).limit(1)) is not None:
        return 0
    path = resources.files("models.seed").joinpath("response_templates.json")
    rows: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    categories = set(session.scalars(select(Category.code)))
    added = 0
    for position, row in enumerate(rows):
        if row["category"] is not None and row["category"] not in categories:
            continue
        session.add(
            ResponseTemplate(
                category_code=row["category"],
                action=row["action"],
                position=position,
                title_zh=row["title_zh"],
                title_en=row["title_en"],
                text_zh=row["text_zh"],
                text_en=row["text_en"],
            )
        )
        added += 1
    session.flush()
    return added


def _latest_rules(session: Session) -> dict[str, Any] | None:
    latest = session.scalar(select(RuleVersion).order_by(RuleVersion.id.desc()).limit(1))
    return latest.rules if latest else None


def has_offices(session: Session) -> bool:
    return session.scalar(select(Office.id).limit(1)) is not None
