"""What offices do with the cases in their queue: send a case back as not theirs (it is routed
again without them), and split a wrongly merged report out of a case. Nothing here commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from models.base import utcnow
from models.entities import (
    CASE_RECEIVED,
    CASE_ROUTED,
    CASE_TRIAGE,
    REPORT_RECEIVED,
    Case,
    CaseEvent,
    Office,
)
from models.session import enqueue_after_commit
from routing.rules import RoutingDecision
from services.errors import Conflict, InvalidField, NotFound
from services.filing import PROCESS_REPORT
from services.processing import SYSTEM_ACTOR, routing_context, routing_record, write_notifications

REJECTED = "rejected"


def _locked_case(session: Session, case_id: int, *loads: object) -> Case:
    case = session.scalar(
        select(Case).where(Case.id == case_id).options(*loads).with_for_update()  # type: ignore[arg-type]
    )
    if case is None:
        raise NotFound(f"No case {case_id}.")
    return case


def _not_your_case(case_id: int, office_code: str) -> Conflict:
    return Conflict(f"Case {case_id} is not in {office_code}'s queue.", code="not_your_case")


def split_report(
    session: Session,
    case_id: int,
    report_id: int,
    office_code: str,
    now: datetime | None = None,
) -> None:
    """Take a wrongly merged report out of a case; it is processed again on its own (after
    commit) and never merged back."""
    now = now or utcnow()
    case = _locked_case(session, case_id, selectinload(Case.reports), selectinload(Case.office))
    if case.office is None or case.office.code != office_code:
        raise _not_your_case(case_id, office_code)
    report = next((r for r in case.reports if r.id == report_id), None)
    if report is None:
        raise InvalidField("report_id", f"Report {report_id} is not part of case {case_id}.")
    if len(case.reports) == 1:
        raise Conflict("A case's only report cannot be split out of it.", code="only_report")
    case.events.append(
        CaseEvent(
            report_id=report.id,
            at=now,
            actor=f"office:{office_code}",
            action="split",
            from_status=case.status,
            to_status=case.status,
            office_id=case.office_id,
            note=f"Report {report.id} is a different problem; it leaves this case.",
            detail={"report_id": report.id},
        )
    )
    case.updated_at = now
    report.case_id = None
    report.state = REPORT_RECEIVED
    report.processed_at = None
    report.no_merge = True
    session.flush()
    enqueue_after_commit(session, PROCESS_REPORT, report.id)


def reject_and_reroute(
    session: Session,
    case_id: int,
    office_code: str,
    reason: str,
    now: datetime | None = None,
) -> Case:
    """The office says the case is not its own: route it again without that office, nor any
    office that rejected it before (so it never bounces), else send it to triage."""
    now = now or utcnow()
    case = _locked_case(
        session,
        case_id,
        selectinload(Case.events).selectinload(CaseEvent.office),
        selectinload(Case.reports),
        selectinload(Case.office),
    )
    if case.status != CASE_ROUTED or case.office is None or case.office.code != office_code:
        raise _not_your_case(case_id, office_code)
    context = routing_context(session)
    rejected_by = {
        event.office.code for event in case.events if event.action == REJECTED and event.office
    } | {office_code}
    case.events.append(
        CaseEvent(
            at=now,
            actor=f"office:{office_code}",
            action=REJECTED,
            from_status=CASE_ROUTED,
            to_status=CASE_RECEIVED,
            office_id=case.office_id,
            note=reason,
            detail={"excluded": sorted(rejected_by)},
        )
    )
    decision: RoutingDecision | None = None
    containing: list[str] = []
    if case.category_code and case.lat is not None and case.lon is not None:
        containing = context.index.containing(case.lon, case.lat)
        decision = context.directory.route(containing, case.category_code, frozenset(rejected_by))
    routed = decision is not None and decision.office is not None
    triage_reason = None if routed else (decision.rule if decision else "no_location")
    routing_json = routing_record(context, containing, decision, triage_reason)
    routing_json["excluded"] = sorted(rejected_by)
    case.routing = routing_json
    case.rule_version = context.rule_version
    case.status = CASE_ROUTED if routed else CASE_TRIAGE
    new_office_id = context.office_ids[decision.office] if routed and decision else None
    case.office = session.get(Office, new_office_id) if new_office_id else None
    case.updated_at = now
    case.events.append(
        CaseEvent(
            at=now,
            actor=SYSTEM_ACTOR,
            action="routed" if routed else "triaged",
            from_status=CASE_RECEIVED,
            to_status=case.status,
            office_id=new_office_id,
            note=decision.explanation
            if routed and decision
            else "Sent to triage: no other office handles it here.",
            detail=routing_json,
        )
    )
    session.flush()
    write_notifications(
        session, case, case.reports[0], decision.office if routed and decision else None
    )
    return case
