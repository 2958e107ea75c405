"""What offices and reporters do with a case, from acceptance to closing, and two older office
actions: send a case back as not theirs (it is routed again without them) and split a wrongly
merged report out of a case. Nothing here commits.

Every action of the case's life (routing.workflow names them) goes the same way:

1. load the case with its timeline and reports;
2. work out the caller's role towards it: ``staff`` (a key of the case's office),
   ``supervisor`` (of the case's office or of an office above it), ``reporter`` (filed one of
   its reports), ``admin``, or ``other``, who is refused: an office's or supervisor's key
   outside its scope finds nothing (NotFound, exactly as for a missing case: another office's
   case answers 404, not its data nor its existence), anyone else is Forbidden;
3. ask routing.workflow whether the action is allowed from the case's status; a refusal is a
   Conflict naming the status and the actions the caller may do instead;
4. change the case with ONE conditional UPDATE on (id, status, version) that raises the
   version: when two people act on one case at the same moment, the second finds the row
   changed (on PostgreSQL its UPDATE waits for the first to commit, then matches nothing; on
   SQLite the writers queue, and the second reads the new status) and is refused with a
   Conflict naming the status it now has;
5. write exactly one CaseEvent (from_status, to_status, actor, note, detail);
6. when the status changed, write outbox rows: topic ``case.<status>``, for the office (or the
   triage desk) and for every reporter of the case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
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
    OutboxMessage,
    Report,
)
from models.session import enqueue_after_commit
from routing import workflow as wf
from routing.rewards import PointsPolicy
from routing.rules import RoutingDecision
from routing.sla import due_at, parse_time_limit
from services import rewards
from services.accounts import OFFICE_KEY_ROLES, Caller
from services.calendars import office_calendar
from services.errors import Conflict, Forbidden, InvalidField, NotFound
from services.escalation import NOT_OVERDUE, overdue_when_leaving
from services.filing import PROCESS_REPORT
from services.notifications import ask_for_relay
from services.photos import UploadedPhoto
from services.processing import (
    SYSTEM_ACTOR,
    case_reporter_ids,
    routing_context,
    routing_record,
    write_notifications,
)

REJECTED = "rejected"
REOPEN_WINDOW = wf.DEFAULT_REOPEN_WINDOW
# Actions after which no extension is waiting for an answer any more: it was answered, or the
# case left the office's hands.
_EXTENSION_ENDS = frozenset(
    {
        wf.APPROVE_EXTENSION,
        wf.DENY_EXTENSION,
        wf.RESOLVE,
        wf.TRANSFER,
        wf.CLOSE,
        wf.REOPEN,
        REJECTED,
    }
)


@dataclass(frozen=True)
class CaseState:
    """A case as an action leaves it, and what the caller may do next."""

    case_id: int
    status: str
    closure: str | None
    office: str | None
    due_at: datetime | None
    allowed_actions: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- who is asking


def role_towards(case: Case, caller: Caller) -> str:
    """The caller's role towards ``case`` (routing.workflow's roles)."""
    if caller.role == "admin":
        return wf.ADMIN
    if caller.role == "reporter":
        mine = any(report.reporter_id == caller.reporter_id for report in case.reports)
        return wf.REPORTER if mine else wf.OTHER
    if case.office is None or caller.office_id is None:
        return wf.OTHER
    if caller.role == "office":
        return wf.STAFF if case.office.id == caller.office_id else wf.OTHER
    if caller.role == "supervisor":
        above = _office_and_parents(case.office)
        return wf.SUPERVISOR if caller.office_id in above else wf.OTHER
    return wf.OTHER


def _office_and_parents(office: Office) -> set[int]:
    seen: set[int] = set()
    current: Office | None = office
    while current is not None and current.id not in seen:
        seen.add(current.id)
        current = current.parent
    return seen


def _actor(caller: Caller) -> str:
    if caller.username is not None:
        return f"user:{caller.username}"
    if caller.role == "reporter":
        return f"reporter:{caller.reporter_id}"
    if caller.role == "admin":
        return "admin"
    return f"{caller.role}:{caller.office_code}"


# ---------------------------------------------------------------- what the case is


def case_facts(
    case: Case,
    *,
    now: datetime,
    reporter_id: int | None = None,
    reopen_window: timedelta = REOPEN_WINDOW,
) -> wf.CaseFacts:
    """What the state machine needs besides the status, read off the case's timeline."""
    resumes_to = wf.IN_PROGRESS
    extension_pending = False
    closed_at = None
    confirmed = False
    for event in case.events:
        if event.action == wf.ASK and event.from_status:
            resumes_to = event.from_status
        if event.action == wf.EXTEND:
            extension_pending = True
        elif event.action in _EXTENSION_ENDS:
            extension_pending = False
        if event.action == wf.CLOSE:
            closed_at = event.at
        if event.action == wf.RESOLVE:
            # A new resolution asks every reporter for a new confirmation.
            confirmed = False
        elif event.action == wf.CONFIRM and reporter_id is not None:
            confirmed = confirmed or event.detail.get("reporter_id") == reporter_id
    return wf.CaseFacts(
        resumes_to=resumes_to,
        extension_pending=extension_pending,
        closure=case.closure,
        closed_at=closed_at,
        now=now,
        reopen_window=reopen_window,
        has_office=case.office_id is not None,
        confirmed_by_caller=confirmed,
    )


def pending_extension_hours(case: Case) -> int | None:
    """The hours of the extension waiting for a supervisor's answer, if one is."""
    hours = None
    for event in case.events:
        if event.action == wf.EXTEND:
            hours = int(event.detail["hours"])
        elif event.action in _EXTENSION_ENDS:
            hours = None
    return hours


def due_from_timeline(
    session: Session,
    case: Case,
    *,
    office_id: int | None = None,
    more_extension_hours: int = 0,
    pause_ends_at: datetime | None = None,
) -> datetime | None:
    """The case's due time from its category's time limit, counted from its first report on
    the calendar of ``office_id`` (default: the case's office), with the clock stopped while it
    waited for an answer and every approved extension added on the case's own clock. The
    current action brings what its event will add: ``more_extension_hours`` (an approval) or
    ``pause_ends_at`` (the answer that ends a wait). A wait still going on is left out: the due
    time is worked out again when it ends. Without a limit, an office or a first report the due
    time stays as it is."""
    office_id = office_id if office_id is not None else case.office_id
    category = case.category
    received = next((e.at for e in case.events if e.action == CASE_RECEIVED), None)
    if category is None or office_id is None or received is None:
        return case.due_at
    pauses: list[tuple[datetime, datetime | None]] = []
    asked_at: datetime | None = None
    hours = more_extension_hours
    for event in case.events:
        if event.action == wf.ASK:
            asked_at = event.at
        elif asked_at is not None and event.from_status == wf.WAITING:
            pauses.append((asked_at, event.at))
            asked_at = None
        if event.action == wf.APPROVE_EXTENSION:
            hours += int(event.detail.get("hours") or 0)
    if asked_at is not None and pause_ends_at is not None:
        pauses.append((asked_at, pause_ends_at))
    return due_at(
        received,
        parse_time_limit(category.time_limit),
        office_calendar(session, office_id),
        urgent=category.urgent,
        pauses=pauses,
        extension_hours=hours,
    )


def allowed_actions_for(
    case: Case,
    caller: Caller,
    now: datetime | None = None,
    reopen_window: timedelta = REOPEN_WINDOW,
) -> list[str]:
    """What ``caller`` may do to ``case`` now (the case's events and reports loaded)."""
    role = role_towards(case, caller)
    facts = case_facts(
        case, now=now or utcnow(), reporter_id=caller.reporter_id, reopen_window=reopen_window
    )
    return wf.allowed_actions(case.status, role, facts)


def _load(session: Session, case_id: int) -> Case:
    case = session.scalar(
        select(Case)
        .where(Case.id == case_id)
        .options(
            selectinload(Case.events),
            selectinload(Case.reports),
            selectinload(Case.office).selectinload(Office.parent),
        )
        .execution_options(populate_existing=True)
    )
    if case is None:
        raise not_found(case_id)
    return case


# ---------------------------------------------------------------- one action, start to end


@dataclass
class _Work:
    session: Session
    case: Case
    caller: Caller
    role: str
    now: datetime
    reopen_window: timedelta

    @property
    def facts(self) -> wf.CaseFacts:
        return case_facts(
            self.case,
            now=self.now,
            reporter_id=self.caller.reporter_id,
            reopen_window=self.reopen_window,
        )

    def state(self) -> CaseState:
        # The caller's role may have changed with the action (a transfer hands the case on).
        self.role = role_towards(self.case, self.caller)
        case = self.case
        return CaseState(
            case_id=case.id,
            status=case.status,
            closure=case.closure,
            office=case.office.code if case.office else None,
            due_at=case.due_at,
            allowed_actions=wf.allowed_actions(case.status, self.role, self.facts),
        )

    def refusal_details(self) -> dict[str, Any]:
        return {
            "status": self.case.status,
            "allowed_actions": wf.allowed_actions(self.case.status, self.role, self.facts),
        }


def _begin(
    session: Session,
    case_id: int,
    caller: Caller,
    now: datetime | None,
    reopen_window: timedelta = REOPEN_WINDOW,
) -> _Work:
    case = _load(session, case_id)
    role = role_towards(case, caller)
    if role == wf.OTHER:
        if caller.role in OFFICE_KEY_ROLES:
            raise not_found(case_id)
        raise Forbidden(f"Case {case.id} is not one of your reports' cases.", code="not_your_case")
    return _Work(session, case, caller, role, now or utcnow(), reopen_window)


def not_found(case_id: int) -> NotFound:
    """The one refusal for a case that is missing or out of the caller's scope: the same
    words either way, so that no office can tell another office's case from no case."""
    return NotFound(f"No case {case_id}.")


def _decide(work: _Work, action: str, closure: str | None = None) -> wf.Transition:
    outcome = wf.decide(work.case.status, action, work.role, closure=closure, facts=work.facts)
    if isinstance(outcome, wf.Transition):
        return outcome
    details = work.refusal_details()
    allowed = ", ".join(details["allowed_actions"]) or "nothing"
    message = (
        f"{outcome.message} Case {work.case.id} is {work.case.status}; you may now do: {allowed}."
    )
    if outcome.reason == wf.ROLE_NOT_ALLOWED:
        raise Forbidden(message, code=outcome.reason, details=details)
    raise Conflict(message, code=outcome.reason, details=details)


def _record(
    work: _Work,
    transition: wf.Transition,
    *,
    note: str = "",
    detail: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
    report_id: int | None = None,
) -> CaseState:
    """The conditional update, the one event and, on a change of status, the outbox rows."""
    session, case = work.session, work.case
    # A closure comes with "close", stays while the case is closed, and goes when it reopens.
    closure = transition.closure if transition.action == wf.CLOSE else case.closure
    if transition.action in (wf.RESOLVE, wf.CLOSE):
        # Leaving the office's hands decides the overdue flag once, beat or no beat.
        late_since = overdue_when_leaving(case, transition.from_status, work.now, case.events)
        if late_since is not None:
            changes = {**(changes or {}), "overdue_at": late_since}
    values = {
        "status": transition.to_status,
        "closure": closure if transition.to_status == wf.CLOSED else None,
        "version": case.version + 1,
        "updated_at": work.now,
        **(changes or {}),
    }
    changed = session.execute(
        update(Case)
        .where(
            Case.id == case.id,
            Case.status == transition.from_status,
            Case.version == case.version,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:
        work.case = _load(session, case.id)
        details = work.refusal_details()
        allowed = ", ".join(details["allowed_actions"]) or "nothing"
        raise Conflict(
            f"Case {case.id} changed while you acted: it is {work.case.status} now; "
            f"you may now do: {allowed}.",
            code="case_changed",
            details=details,
        )
    work.case = case = _load(session, case.id)
    event_detail = {**(detail or {})}
    if work.caller.user_id is not None:
        event_detail["user_id"] = work.caller.user_id
    elif work.caller.role != "reporter":
        event_detail["key_id"] = work.caller.key_id
    case.events.append(
        CaseEvent(
            report_id=report_id,
            at=work.now,
            actor=_actor(work.caller),
            action=transition.action,
            from_status=transition.from_status,
            to_status=transition.to_status,
            office_id=case.office_id,
            note=note,
            detail=event_detail,
        )
    )
    session.flush()
    if transition.to_status != transition.from_status:
        _notify(session, case, transition.action, note)
    return work.state()


def _notify(session: Session, case: Case, action: str, note: str) -> None:
    """Outbox rows for a change of status: the office (or the triage desk) and every reporter
    of the case, its first reporter first."""
    office = case.office.code if case.office else None
    payload = {
        "case_id": case.id,
        "status": case.status,
        "closure": case.closure,
        "action": action,
        "note": note,
        "category": case.category_code,
        "office": office,
        "due_at": case.due_at.isoformat() if case.due_at else None,
    }
    reporters = case_reporter_ids(session, case.id)
    recipients = [f"office:{office}" if office else "triage"]
    recipients += [f"reporter:{reporter_id}" for reporter_id in reporters]
    for recipient in recipients:
        session.add(
            OutboxMessage(
                topic=f"case.{case.status}",
                recipient=recipient,
                case_id=case.id,
                payload=payload,
            )
        )
    ask_for_relay(session)


# ---------------------------------------------------------------- the office's actions


def accept(
    session: Session, case_id: int, caller: Caller, note: str = "", now: datetime | None = None
) -> CaseState:
    """受理: the office takes the case on; the caller (its key, or its console user) becomes
    its assignee."""
    work = _begin(session, case_id, caller, now)
    transition = _decide(work, wf.ACCEPT)
    return _record(work, transition, note=note, changes={"assignee": caller.assignee})


def start(
    session: Session, case_id: int, caller: Caller, note: str = "", now: datetime | None = None
) -> CaseState:
    work = _begin(session, case_id, caller, now)
    return _record(work, _decide(work, wf.START), note=note)


def ask(
    session: Session, case_id: int, caller: Caller, question: str, now: datetime | None = None
) -> CaseState:
    """Ask the reporters for information; the case waits for an answer."""
    work = _begin(session, case_id, caller, now)
    transition = _decide(work, wf.ASK)
    return _record(work, transition, note=question, detail={"question": question})


def resolve(
    session: Session,
    case_id: int,
    caller: Caller,
    note: str,
    photos: Sequence[UploadedPhoto] = (),
    now: datetime | None = None,
) -> CaseState:
    """The office says the work is done; after-photos (already stored) are named in the
    event's detail."""
    work = _begin(session, case_id, caller, now)
    transition = _decide(work, wf.RESOLVE)
    after_photos = [
        {"filename": p.filename, "content_type": p.content_type, "size_bytes": len(p.data)}
        for p in photos
    ]
    return _record(work, transition, note=note, detail={"photos": after_photos})


def transfer(
    session: Session,
    case_id: int,
    caller: Caller,
    office_code: str,
    reason: str,
    now: datetime | None = None,
) -> CaseState:
    """Hand the case to another office: it is routed there and waits to be accepted. Its due
    time still counts from its first report, on the new office's calendar (a case placed from
    triage gets its first due time here)."""
    work = _begin(session, case_id, caller, now)
    transition = _decide(work, wf.TRANSFER)
    target = session.scalar(select(Office).where(Office.code == office_code))
    if target is None or not target.active:
        raise InvalidField("office", f"No active office with code '{office_code}'.")
    if target.id == work.case.office_id:
        raise InvalidField("office", f"Case {case_id} is already with {office_code}.")
    before = work.case.office.code if work.case.office else None
    # The time limit still counts from the first report, on the new office's calendar.
    due = due_from_timeline(session, work.case, office_id=target.id)
    return _record(
        work,
        transition,
        note=reason,
        detail={"from_office": before, "to_office": target.code},
        # The new office's clock starts afresh: no overdue flag nor escalation of the old one.
        changes={"office_id": target.id, "assignee": None, "due_at": due, **NOT_OVERDUE},
    )


def extend(
    session: Session,
    case_id: int,
    caller: Caller,
    hours: int,
    reason: str,
    now: datetime | None = None,
) -> CaseState:
    """Ask a supervisor for ``hours`` more; nothing moves until one approves."""
    work = _begin(session, case_id, caller, now)
    transition = _decide(work, wf.EXTEND)
    return _record(work, transition, note=reason, detail={"hours": hours})


def approve_extension(
    session: Session, case_id: int, caller: Caller, note: str = "", now: datetime | None = None
) -> CaseState:
    """The pending extension is granted: the due time moves by its hours, on the case's own
    clock (working hours for a working-hour limit)."""
    work = _begin(session, case_id, caller, now)
    transition = _decide(work, wf.APPROVE_EXTENSION)
    hours = pending_extension_hours(work.case)
    assert hours is not None, "the state machine allows this only with an extension pending"
    before = work.case.due_at
    after = due_from_timeline(session, work.case, more_extension_hours=hours)
    detail = {
        "hours": hours,
        "due_at_before": before.isoformat() if before else None,
        "due_at": after.isoformat() if after else None,
    }
    changes: dict[str, Any] = {"due_at": after}
    # Granted time that lies ahead lifts a flag the overdue sweep set; the escalation stays in
    # the timeline, and the sweep flags the case again if the new due time passes too.
    if work.case.overdue_at is not None and after is not None and after > work.now:
        changes.update(NOT_OVERDUE)
        detail["overdue_lifted"] = True
    return _record(work, transition, note=note, detail=detail, changes=changes)


def deny_extension(
    session: Session, case_id: int, caller: Caller, note: str = "", now: datetime | None = None
) -> CaseState:
    work = _begin(session, case_id, caller, now)
    transition = _decide(work, wf.DENY_EXTENSION)
    hours = pending_extension_hours(work.case)
    return _record(work, transition, note=note, detail={"hours": hours})


def close(
    session: Session,
    case_id: int,
    caller: Caller,
    closure: str,
    note: str = "",
    now: datetime | None = None,
    points_policy: PointsPolicy | None = None,
) -> CaseState:
    """结案: a supervisor closes the case (the admin closes a triage case) with a closure.

    Points follow the closure (services.rewards): ``fixed`` awards the case's reporters,
    ``invalid`` and ``duplicate`` reverse every award the case holds; the other closures leave
    the ledger as it is. The event's detail says what was written and whom the rules skipped."""
    work = _begin(session, case_id, caller, now)
    transition = _decide(work, wf.CLOSE, closure)
    detail: dict[str, Any] = {"closure": closure}
    actor = _actor(caller)
    if closure == wf.FIXED:
        points = rewards.award_for_fixed_case(session, work.case, work.now, actor, points_policy)
        detail["points"] = points.as_detail()
    elif closure in (wf.INVALID, wf.DUPLICATE):
        reason = f"closed_{closure}"
        points = rewards.reverse_case_awards(
            session, work.case, work.now, actor, reason, points_policy
        )
        detail["points"] = points.as_detail()
    return _record(work, transition, note=note, detail=detail)


def rework(
    session: Session, case_id: int, caller: Caller, note: str, now: datetime | None = None
) -> CaseState:
    """A supervisor sends a resolved case back to work (each rework is an event, so counted)."""
    work = _begin(session, case_id, caller, now)
    transition = _decide(work, wf.REWORK)
    reworks = sum(1 for event in work.case.events if event.action == wf.REWORK)
    return _record(work, transition, note=note, detail={"rework": reworks + 1})


# ---------------------------------------------------------------- the reporter's actions


def _reporters_case(session: Session, report_id: int, caller: Caller) -> int:
    """The case of one of the caller's own reports."""
    report = session.get(Report, report_id)
    if report is None:
        raise NotFound(f"No report {report_id}.")
    if report.reporter_id != caller.reporter_id:
        raise Forbidden(f"Report {report_id} is not yours.", code="not_your_report")
    if report.case_id is None:
        raise Conflict(
            f"Report {report_id} is not a case yet: it is {report.state}.",
            code=wf.ILLEGAL_TRANSITION,
            details={"status": report.state, "allowed_actions": []},
        )
    return report.case_id


def answer(
    session: Session, report_id: int, caller: Caller, text: str, now: datetime | None = None
) -> CaseState:
    """The reporter answers the office's question; the case goes back to where it was, and
    its due time moves by the time it waited."""
    work = _begin(session, _reporters_case(session, report_id, caller), caller, now)
    transition = _decide(work, wf.ANSWER)
    # The clock stood still while the case waited: the due time moves by that much.
    due = due_from_timeline(session, work.case, pause_ends_at=work.now)
    return _record(
        work,
        transition,
        note=text,
        detail={"answer": text},
        changes={"due_at": due},
        report_id=report_id,
    )


def confirm(
    session: Session, report_id: int, caller: Caller, note: str = "", now: datetime | None = None
) -> CaseState:
    """The reporter confirms the fix (核查)."""
    work = _begin(session, _reporters_case(session, report_id, caller), caller, now)
    transition = _decide(work, wf.CONFIRM)
    detail = {"reporter_id": caller.reporter_id}
    return _record(work, transition, note=note, detail=detail, report_id=report_id)


def reopen(
    session: Session,
    report_id: int,
    caller: Caller,
    reason: str,
    now: datetime | None = None,
    reopen_window: timedelta = REOPEN_WINDOW,
) -> CaseState:
    """The reporter says a closed case is not done: within the window it goes back to its
    office's queue (to triage when it never had an office), without its closure."""
    case_id = _reporters_case(session, report_id, caller)
    work = _begin(session, case_id, caller, now, reopen_window)
    transition = _decide(work, wf.REOPEN)
    closure = work.case.closure
    detail = {"reporter_id": caller.reporter_id, "closure_before": closure}
    return _record(
        work,
        transition,
        note=reason,
        detail=detail,
        changes={"assignee": None},
        report_id=report_id,
    )


# ---------------------------------------------------------------- reject and split


def _locked_case(session: Session, case_id: int, *loads: object) -> Case:
    case = session.scalar(
        select(Case).where(Case.id == case_id).options(*loads).with_for_update()  # type: ignore[arg-type]
    )
    if case is None:
        raise not_found(case_id)
    return case


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
        raise not_found(case_id)
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
    case.first_received_at = min(r.received_at for r in case.reports if r.id != report.id)
    report.case_id = None
    report.state = REPORT_RECEIVED
    report.processed_at = None
    report.no_merge = True
    session.flush()
    enqueue_after_commit(session, PROCESS_REPORT, report.id)


def reject_and_reroute(
    session: Session,
    case_id: int,
    caller: Caller,
    reason: str,
    now: datetime | None = None,
) -> Case:
    """The office (its staff, or a supervisor above it) says the case is not its own: route it
    again without that office, nor any office that rejected it before (so it never bounces),
    else send it to triage. A key outside the case's office finds no case (NotFound, as for a
    missing one); a case no longer routed is an ``illegal_transition``."""
    now = now or utcnow()
    case = _locked_case(
        session,
        case_id,
        selectinload(Case.events).selectinload(CaseEvent.office),
        selectinload(Case.reports),
        selectinload(Case.office).selectinload(Office.parent),
    )
    role = role_towards(case, caller)
    if role not in (wf.STAFF, wf.SUPERVISOR) or case.office is None:
        raise not_found(case_id)
    work = _Work(session, case, caller, role, now, REOPEN_WINDOW)
    _decide(work, wf.REJECT)
    rejecting = case.office.code
    context = routing_context(session)
    rejected_by = {
        event.office.code for event in case.events if event.action == REJECTED and event.office
    } | {rejecting}
    case.events.append(
        CaseEvent(
            at=now,
            actor=_actor(caller),
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
    # The row is locked (FOR UPDATE), so raising the version here is enough to make a
    # concurrent conditional update (say, an "accept") miss.
    case.version += 1
    case.assignee = None
    # The next office's clock starts afresh (the timeline keeps the old flag and escalation).
    for column, value in NOT_OVERDUE.items():
        setattr(case, column, value)
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
