"""Reporters' points as a ledger: awards when a case closes as fixed, reversals when a case
that holds awards is closed as invalid or duplicate, and the reads a reporter's own view needs.
routing.rewards decides; this module loads what it needs and writes the entries. Nothing here
commits.

A ledger entry is never updated nor deleted. A reporter's balance is the sum of their entries;
a reversal is exactly the negative of the award it names, and an award is reversed at most once
(a unique constraint on ``reverses_id``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased, selectinload

from models.entities import (
    POINTS_AWARD,
    POINTS_REVERSAL,
    Case,
    PointsEntry,
    Report,
    Reporter,
)
from routing import rewards as rules
from routing.rewards import PointsDecision, PointsPolicy, StandingAward

# The settings (cityrelay.settings) a policy is read from, by policy field.
POLICY_SETTINGS = {
    "first_report": "POINTS_FIRST_REPORT",
    "me_too": "POINTS_ME_TOO",
    "daily_cap": "POINTS_DAILY_CAP",
    "split_radius_m": "POINTS_SPLIT_RADIUS_M",
    "split_window_days": "POINTS_SPLIT_WINDOW_DAYS",
    "timezone": "TIMEZONE",
}


def policy_from_settings(settings: Mapping[str, Any]) -> PointsPolicy:
    """The points policy the settings describe; a setting not given keeps its default."""
    values = {field: settings[name] for field, name in POLICY_SETTINGS.items() if name in settings}
    return PointsPolicy(**values)


# ---------------------------------------------------------------- what the rules look at


def _footprint(session: Session, case: Case) -> rules.CaseFootprint:
    first = session.scalar(select(func.min(Report.received_at)).where(Report.case_id == case.id))
    return rules.CaseFootprint(case.id, case.category_code, case.lat, case.lon, first)


def standing_awards(
    session: Session,
    reporter_ids: Iterable[int] | None,
    *,
    case_id: int | None = None,
    category: str | None = None,
) -> list[StandingAward]:
    """The awards that no reversal cancelled, of these reporters (None: anyone's): on case
    ``case_id``, or on any case of ``category`` (either, when both are given), each with its
    case's footprint."""
    reversal = aliased(PointsEntry)
    first_report = (
        select(Report.case_id, func.min(Report.received_at).label("first_received_at"))
        .group_by(Report.case_id)
        .subquery()
    )
    which = []
    if case_id is not None:
        which.append(PointsEntry.case_id == case_id)
    if category is not None:
        which.append(Case.category_code == category)
    query = (
        select(
            PointsEntry.id,
            PointsEntry.reporter_id,
            PointsEntry.report_id,
            PointsEntry.points,
            Case.id.label("case_id"),
            Case.category_code,
            Case.lat,
            Case.lon,
            first_report.c.first_received_at,
        )
        .join(Case, Case.id == PointsEntry.case_id)
        .outerjoin(first_report, first_report.c.case_id == Case.id)
        .outerjoin(reversal, reversal.reverses_id == PointsEntry.id)
        .where(PointsEntry.kind == POINTS_AWARD, reversal.id.is_(None))
        .order_by(PointsEntry.id)
    )
    if reporter_ids is not None:
        query = query.where(PointsEntry.reporter_id.in_(sorted(set(reporter_ids))))
    if which:
        query = query.where(or_(*which))
    return [
        StandingAward(
            entry_id=row.id,
            reporter_id=row.reporter_id,
            case=rules.CaseFootprint(
                row.case_id, row.category_code, row.lat, row.lon, row.first_received_at
            ),
            report_id=row.report_id,
            points=row.points,
        )
        for row in session.execute(query)
    ]


def _lock_reporters(session: Session, reporter_ids: Sequence[int]) -> None:
    """Hold the reporters' rows until commit, in id order, so two closings that award one
    reporter at once read the day's awards one after the other and the cap holds (PostgreSQL;
    SQLite has one writer at a time anyway)."""
    session.execute(
        select(Reporter.id)
        .where(Reporter.id.in_(sorted(set(reporter_ids))))
        .order_by(Reporter.id)
        .with_for_update()
    ).all()


# ---------------------------------------------------------------- writing the ledger


def award_for_fixed_case(
    session: Session,
    case: Case,
    now: datetime,
    actor: str,
    policy: PointsPolicy | None = None,
) -> PointsDecision:
    """Award the reporters of ``case`` (closing as fixed, its reports loaded) and say whom the
    rules skipped and why; an award already standing for a reporter and this case is never
    repeated."""
    policy = policy or PointsPolicy()
    reports = [rules.CaseReport(r.id, r.reporter_id, r.received_at) for r in case.reports]
    reporter_ids = sorted({r.reporter_id for r in reports})
    if not reporter_ids:
        return PointsDecision()
    _lock_reporters(session, reporter_ids)
    footprint = _footprint(session, case)
    standing = standing_awards(session, reporter_ids, case_id=case.id, category=case.category_code)
    today = rules.local_day(now, policy.timezone)
    awarded_today = dict(
        session.execute(
            select(PointsEntry.reporter_id, func.sum(PointsEntry.points))
            .where(
                PointsEntry.kind == POINTS_AWARD,
                PointsEntry.day == today,
                PointsEntry.reporter_id.in_(reporter_ids),
            )
            .group_by(PointsEntry.reporter_id)
        ).all()
    )
    decision = rules.decide_awards(footprint, reports, standing, awarded_today, policy)
    for award in decision.awards:
        session.add(
            PointsEntry(
                reporter_id=award.reporter_id,
                case_id=case.id,
                report_id=award.report_id,
                kind=POINTS_AWARD,
                points=award.points,
                reason=award.reason,
                note=award.note,
                day=today,
                at=now,
                actor=actor,
            )
        )
    session.flush()
    return decision


def reverse_case_awards(
    session: Session,
    case: Case,
    now: datetime,
    actor: str,
    reason: str,
    policy: PointsPolicy | None = None,
) -> PointsDecision:
    """One reversal per standing award of ``case``, each cancelling exactly its award."""
    policy = policy or PointsPolicy()
    standing = standing_awards(session, None, case_id=case.id)
    decision = rules.decide_reversals(standing, reason)
    today = rules.local_day(now, policy.timezone)
    for reversal in decision.reversals:
        session.add(
            PointsEntry(
                reporter_id=reversal.reporter_id,
                case_id=case.id,
                report_id=reversal.report_id,
                kind=POINTS_REVERSAL,
                points=reversal.points,
                reason=reversal.reason,
                note=reversal.note,
                reverses_id=reversal.reverses_id,
                day=today,
                at=now,
                actor=actor,
            )
        )
    session.flush()
    return decision


# ---------------------------------------------------------------- the reporter's own view


def balance(session: Session, reporter_id: int) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
            PointsEntry.reporter_id == reporter_id
        )
    )
    return int(total or 0)


Row = TypeVar("Row")


@dataclass(frozen=True)
class Page(Generic[Row]):
    rows: list[Row]
    # The id the next page starts below; None on the last page.
    next_before: int | None


def ledger_page(
    session: Session, reporter_id: int, limit: int, before: int | None = None
) -> Page[PointsEntry]:
    """The reporter's entries, newest first, ``limit`` at most, with ids below ``before``."""
    query = select(PointsEntry).where(PointsEntry.reporter_id == reporter_id)
    if before is not None:
        query = query.where(PointsEntry.id < before)
    rows = list(session.scalars(query.order_by(PointsEntry.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[-1].id if more else None)


def reports_page(
    session: Session, reporter_id: int, limit: int, before: int | None = None
) -> Page[Report]:
    """The reporter's reports, newest first (with their cases and offices)."""
    query = (
        select(Report)
        .where(Report.reporter_id == reporter_id)
        .options(selectinload(Report.case).selectinload(Case.office))
    )
    if before is not None:
        query = query.where(Report.id < before)
    rows = list(session.scalars(query.order_by(Report.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[-1].id if more else None)


def points_by_report(session: Session, report_ids: Iterable[int]) -> dict[int, int]:
    """The net points each report earned (awards less their reversals)."""
    ids = sorted(set(report_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(PointsEntry.report_id, func.sum(PointsEntry.points))
        .where(PointsEntry.report_id.in_(ids))
        .group_by(PointsEntry.report_id)
    ).all()
    return {report_id: int(total) for report_id, total in rows}
