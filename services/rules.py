"""Changing the routing rules: what an office handles, per-area overrides, and how close and
how soon a report joins an open case. Each rule change records a new version in the caller's
transaction, so every case can name the rules that routed it. Nothing here commits."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.entities import Category, Office, RoutingOverride, RuleVersion
from models.routing_rules import record_version
from services.errors import InvalidField, NotFound
from services.processing import lock_merge_settings

# An unknown code is "not found" when it names the thing being changed, and an invalid field
# when it is one of the values a change refers to.


def _office(session: Session, code: str, field: str | None = None) -> Office:
    office = session.scalar(select(Office).where(Office.code == code))
    if office is None:
        message = f"No office with code '{code}'."
        raise InvalidField(field, message) if field else NotFound(message, field="code")
    return office


def _category(session: Session, code: str, field: str | None = None) -> Category:
    category = session.get(Category, code)
    if category is None:
        message = f"Unknown category '{code}'."
        raise InvalidField(field, message) if field else NotFound(message, field="code")
    return category


def set_office_categories(
    session: Session, office_code: str, codes: list[str], actor: str, note: str
) -> RuleVersion:
    office = _office(session, office_code)
    categories = session.scalars(select(Category).where(Category.code.in_(codes))).all()
    known = {c.code for c in categories}
    if unknown := [c for c in codes if c not in known]:
        raise InvalidField("categories", f"Unknown categories: {', '.join(unknown)}.")
    office.categories = sorted(categories, key=lambda c: c.position)
    return record_version(session, actor, note)


def set_override(
    session: Session,
    area_code: str,
    category_code: str,
    office_code: str | None,
    actor: str,
    note: str,
) -> RuleVersion:
    """Route the category inside the area to the office; ``office_code=None`` removes the
    override."""
    area = _office(session, area_code, "area")
    if area.jurisdiction is None:
        raise InvalidField("area", f"{area.code} has no jurisdiction to be an area.")
    category = _category(session, category_code, "category")
    office = _office(session, office_code, "office") if office_code else None
    existing = session.scalar(
        select(RoutingOverride).where(
            RoutingOverride.area_office_id == area.id,
            RoutingOverride.category_code == category.code,
        )
    )
    if office is None:
        if existing is not None:
            session.delete(existing)
    elif existing is None:
        session.add(RoutingOverride(area=area, category_code=category.code, office=office))
    else:
        existing.office = office
    return record_version(session, actor, note)


@dataclass(frozen=True)
class MergeSettings:
    code: str
    radius_m: float
    window_hours: float


def set_merge_settings(
    session: Session, category_code: str, radius_m: float, window_hours: float
) -> MergeSettings:
    """How close and how soon a new report must be to join an open case of this category.
    Waits for the "me too" searches of the category that are running, and holds new ones until
    the change commits (services.processing.lock_merge_settings)."""
    lock_merge_settings(session, category_code)
    category = _category(session, category_code)
    category.merge_radius_m = radius_m
    category.merge_window_hours = window_hours
    session.flush()
    return MergeSettings(category.code, category.merge_radius_m, category.merge_window_hours)
