"""Routing rules as data: which office handles which category (in its own jurisdiction), and
per-area overrides, read as one snapshot; every change (services.rules) records a new
RuleVersion snapshot in the same transaction. Nothing here commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from models.entities import Office, RoutingOverride, RuleVersion


def current_rules(session: Session) -> dict[str, Any]:
    offices = session.scalars(
        select(Office).options(selectinload(Office.categories)).order_by(Office.code)
    ).all()
    overrides = session.scalars(
        select(RoutingOverride).options(
            selectinload(RoutingOverride.area), selectinload(RoutingOverride.office)
        )
    ).all()
    return {
        "handles": {o.code: sorted(c.code for c in o.categories) for o in offices},
        "overrides": sorted(
            (
                {"area": r.area.code, "category": r.category_code, "office": r.office.code}
                for r in overrides
            ),
            key=lambda r: (r["area"], r["category"]),
        ),
    }


def current_version(session: Session) -> int | None:
    version: int | None = session.scalar(select(func.max(RuleVersion.id)))
    return version


def record_version(session: Session, actor: str, note: str) -> RuleVersion:
    session.flush()
    version = RuleVersion(actor=actor, note=note, rules=current_rules(session))
    session.add(version)
    session.flush()
    return version


def ensure_version(session: Session, actor: str = "system:seed") -> int:
    """The version in force, recording the first one for a database that has none yet."""
    version = current_version(session)
    if version is None:
        version = record_version(session, actor, "rules as first loaded").id
    return version
