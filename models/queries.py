"""Read queries the doors share: a report with everything its views show, the offices and the
taxonomy in display order. Reads only."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from models.entities import Case, CaseEvent, Category, Office, Report


def report_with_case() -> Select[tuple[Report]]:
    """Reports with their photos and their case's office, category, reports and history."""
    return select(Report).options(
        selectinload(Report.photos),
        selectinload(Report.case).selectinload(Case.events).selectinload(CaseEvent.office),
        selectinload(Report.case).selectinload(Case.office),
        selectinload(Report.case).selectinload(Case.category),
        selectinload(Report.case).selectinload(Case.reports),
    )


def report_by_id(session: Session, report_id: int) -> Report | None:
    return session.scalar(report_with_case().where(Report.id == report_id))


def offices(session: Session) -> Sequence[Office]:
    return session.scalars(
        select(Office).options(selectinload(Office.categories)).order_by(Office.id)
    ).all()


def categories(session: Session) -> Sequence[Category]:
    return session.scalars(select(Category).order_by(Category.position)).all()
