"""Ready answers staff pick for the public note of an action (FixMyStreet's response
templates): a category's own first, then those for every category. Reads only."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from models.entities import ResponseTemplate


def templates_for(
    session: Session, category_code: str | None, actions: Sequence[str]
) -> dict[str, list[ResponseTemplate]]:
    """The templates of each of ``actions`` that fit a case of ``category_code``."""
    fits = ResponseTemplate.category_code.is_(None)
    if category_code is not None:
        fits = or_(fits, ResponseTemplate.category_code == category_code)
    rows = session.scalars(
        select(ResponseTemplate)
        .where(ResponseTemplate.action.in_(list(actions)), fits)
        .order_by(
            ResponseTemplate.category_code.is_(None),
            ResponseTemplate.position,
            ResponseTemplate.id,
        )
    ).all()
    found: dict[str, list[ResponseTemplate]] = {action: [] for action in actions}
    for row in rows:
        found[row.action].append(row)
    return found
