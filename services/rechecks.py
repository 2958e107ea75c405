""" "Still fixed?": reporters who file a report near a case closed as fixed are asked whether it
is still fixed; two different people's "no" about the same closing sends the case back to the
office as rework. Nothing here commits."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.entities import CaseEvent, Recheck
from routing import workflow as wf


@dataclass(frozen=True)
class RecheckCounts:
    """Answers to "still fixed?" about one case: over its latest closing as fixed, and over all
    its closings."""

    still_fixed: int
    not_fixed: int
    total_still_fixed: int
    total_not_fixed: int


def latest_fixed_closing(session: Session, case_id: int) -> CaseEvent | None:
    """The case's last "close" event whose closure was fixed, if any."""
    closings = session.scalars(
        select(CaseEvent)
        .where(CaseEvent.case_id == case_id, CaseEvent.action == wf.CLOSE)
        .order_by(CaseEvent.id.desc())
    )
    for closing in closings:
        if (closing.detail or {}).get("closure") == wf.FIXED:
            return closing
    return None


def recheck_counts(session: Session, case_id: int) -> RecheckCounts:
    """How many reporters said the case is still fixed / not fixed (read-only)."""
    rows = session.execute(
        select(Recheck.closed_event_id, Recheck.still_fixed, func.count())
        .where(Recheck.case_id == case_id)
        .group_by(Recheck.closed_event_id, Recheck.still_fixed)
    ).all()
    latest = latest_fixed_closing(session, case_id) if rows else None
    latest_id = latest.id if latest is not None else None
    counts = {"still": 0, "not": 0, "total_still": 0, "total_not": 0}
    for closed_event_id, still_fixed, count in rows:
        kind = "still" if still_fixed else "not"
        counts[f"total_{kind}"] += count
        if closed_event_id == latest_id:
            counts[kind] += count
    return RecheckCounts(
        still_fixed=counts["still"],
        not_fixed=counts["not"],
        total_still_fixed=counts["total_still"],
        total_not_fixed=counts["total_not"],
    )
