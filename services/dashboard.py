"""What the dashboard and public pages show beside the figures of services.statistics: the
open cases over the communities' polygons, and the after-photos of fixed cases. Never a
reporter's photo, name or words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.entities import Case, CaseEvent, CaseStat, Category, Office
from routing import statistics as st
from routing import workflow as wf
from services.statistics import StatsQuery, case_filters, communities

MAP_POINTS_LIMIT = 3000
OPEN = "open"
OVERDUE = "overdue"


def community_areas(
    session: Session, office_ids: frozenset[int] | None
) -> list[tuple[Office, dict[str, Any] | None]]:
    """The active communities (under ``office_ids``) with their jurisdiction polygons."""
    return [(office, office.jurisdiction) for office in communities(session, office_ids)]


@dataclass(frozen=True)
class OpenCases:
    """The cases open now: (lon, lat, open or overdue) of those with a location, overdue last
    so they are drawn on top, and how many of each have no location to draw."""

    points: list[tuple[float, float, str]]
    unlocated: dict[str, int]


def open_cases(session: Session, query: StatsQuery, now: datetime) -> OpenCases:
    """The cases open now under the query's offices and categories, whenever they were
    reported: the map shows what is on the ground today. Overdue as in the backlog: in the
    office's hands past its due time."""
    rows = session.execute(
        select(Case.lon, Case.lat, CaseStat.status, CaseStat.due_at)
        .join(Case, Case.id == CaseStat.case_id)
        .where(*case_filters(query, window=False), CaseStat.status.in_(list(st.OPEN_STATUSES)))
        .order_by(CaseStat.case_id.desc())
        .limit(MAP_POINTS_LIMIT)
    )
    points = []
    unlocated = {OPEN: 0, OVERDUE: 0}
    for lon, lat, status, due_at in rows:
        overdue = status in st.IN_OFFICE_HANDS and due_at is not None and due_at < now
        kind = OVERDUE if overdue else OPEN
        if lon is None or lat is None:
            unlocated[kind] += 1
        else:
            points.append((lon, lat, kind))
    return OpenCases(sorted(points, key=lambda p: p[2] == OVERDUE), unlocated)


def after_photos(session: Session, query: StatsQuery, limit: int = 8) -> list[dict[str, Any]]:
    """The latest resolution's photos of cases reported in the window and closed as fixed,
    newest first, one photo per case. These are the office's photos of the work done."""
    rows = session.execute(
        select(
            CaseEvent.case_id,
            CaseEvent.detail,
            CaseStat.closed_at,
            Category.name_zh,
            Category.name_en,
            Office.name,
            Office.name_en,
        )
        .join(CaseStat, CaseStat.case_id == CaseEvent.case_id)
        .outerjoin(Category, Category.code == CaseStat.category_code)
        .outerjoin(Office, Office.id == CaseStat.office_id)
        .where(
            *case_filters(query),
            CaseStat.closure == "fixed",
            CaseEvent.action == wf.RESOLVE,
        )
        .order_by(CaseStat.closed_at.desc(), CaseEvent.id.desc())
        .limit(limit * 4)
    )
    seen: set[int] = set()
    photos = []
    for case_id, detail, closed_at, category_zh, category_en, office_zh, office_en in rows:
        if case_id in seen:
            continue
        seen.add(case_id)
        files = (detail or {}).get("photos") or []
        if not files or not files[0].get("filename"):
            continue
        photos.append(
            {
                "case_id": case_id,
                "filename": files[0]["filename"],
                "closed_at": closed_at,
                "category": {"zh": category_zh, "en": category_en or category_zh},
                "office": {"zh": office_zh, "en": office_en or office_zh},
            }
        )
        if len(photos) == limit:
            break
    return photos
