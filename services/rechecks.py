""" "Still fixed?": reporters who file a report near a case closed as fixed are asked whether it
is still fixed; two different people's "no" about the same closing sends the case back to the
office as rework. Nothing here commits.

Who is asked: anyone who files a report with a position within the recheck radius (100 m in
CityRelay) of a case whose latest closing, as fixed, is at most the recheck window (14 days)
old. The case's own reporters are asked too: a later report of theirs nearby is as good a look
as anyone's, and their "no" counts once like anyone's. Whoever already answered about that
closing is not asked again.

The offer is worked out as of the moment the report was received, so a retried request that
returns the same report answers with the same offer.

Each answer is one case action (services.casework): one conditional update that raises the
case's version, one event (``recheck``, or ``rework`` when the answer reopens the case) and,
when the case goes back to work, the usual notifications. So two answers at the same moment
cannot both be counted as the first "no"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.base import utcnow
from models.entities import Case, CaseEvent, Recheck, Report
from routing import workflow as wf
from routing.merge import bounding_box, distance_m
from services import casework
from services.accounts import Caller
from services.casework import CaseState
from services.errors import Conflict, Forbidden

DEFAULT_RADIUS_M = 100.0
DEFAULT_WINDOW = wf.DEFAULT_RECHECK_WINDOW


@dataclass(frozen=True)
class RecheckCounts:
    """Answers to "still fixed?" about one case: over its latest closing as fixed, and over all
    its closings."""

    still_fixed: int
    not_fixed: int
    total_still_fixed: int
    total_not_fixed: int


@dataclass(frozen=True)
class RecheckOffer:
    """A case near a new report that its reporter may say is still fixed or not."""

    case_id: int
    category: str | None
    closed_at: datetime
    distance_m: float


@dataclass(frozen=True)
class RecheckResult:
    """What an answer did: the case as it leaves it, the counts, and whether it reopened."""

    state: CaseState
    counts: RecheckCounts
    reopened: bool


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


# ---------------------------------------------------------------- the offer


def offers_for_report(
    session: Session,
    report: Report,
    *,
    radius_m: float = DEFAULT_RADIUS_M,
    window: timedelta = DEFAULT_WINDOW,
) -> list[RecheckOffer]:
    """The cases near ``report`` that were closed as fixed within ``window`` before it was
    received, and still closed then, that its reporter had not yet answered about; nearest
    first. None for a report without a position."""
    if report.lat is None or report.lon is None:
        return []
    as_of = report.received_at
    min_lat, max_lat, min_lon, max_lon = bounding_box(report.lat, report.lon, radius_m)
    candidates = session.execute(
        select(Case.id, Case.category_code, Case.lat, Case.lon)
        .where(
            Case.lat.between(min_lat, max_lat),
            Case.lon.between(min_lon, max_lon),
            Case.id.in_(
                select(CaseEvent.case_id).where(
                    CaseEvent.action == wf.CLOSE,
                    CaseEvent.at >= as_of - window,
                    CaseEvent.at <= as_of,
                )
            ),
        )
        .order_by(Case.id)
    ).all()
    nearby = {
        case_id: (category, distance)
        for case_id, category, lat, lon in candidates
        if (distance := distance_m(report.lat, report.lon, lat, lon)) <= radius_m
    }
    if not nearby:
        return []
    closings = _fixed_closings_as_of(session, list(nearby), as_of, window)
    answered = set(
        session.execute(
            select(Recheck.case_id, Recheck.closed_event_id).where(
                Recheck.reporter_id == report.reporter_id,
                Recheck.case_id.in_(list(closings)),
                Recheck.at <= as_of,
            )
        ).all()
    )
    offers = [
        RecheckOffer(case_id, nearby[case_id][0], closing.at, round(nearby[case_id][1], 1))
        for case_id, closing in closings.items()
        if (case_id, closing.id) not in answered
    ]
    return sorted(offers, key=lambda offer: (offer.distance_m, offer.case_id))


def _fixed_closings_as_of(
    session: Session, case_ids: Sequence[int], as_of: datetime, window: timedelta
) -> dict[int, CaseEvent]:
    """For each case that was closed as fixed at ``as_of``, by a closing at most ``window``
    old then: that closing."""
    events = session.scalars(
        select(CaseEvent)
        .where(CaseEvent.case_id.in_(case_ids), CaseEvent.at <= as_of)
        .order_by(CaseEvent.case_id, CaseEvent.id)
    )
    last_event: dict[int, CaseEvent] = {}
    last_closing: dict[int, CaseEvent] = {}
    for event in events:
        last_event[event.case_id] = event
        if event.action == wf.CLOSE:
            last_closing[event.case_id] = event
    return {
        case_id: closing
        for case_id, closing in last_closing.items()
        if last_event[case_id].to_status == wf.CLOSED
        and (closing.detail or {}).get("closure") == wf.FIXED
        and closing.at >= as_of - window
    }


# ---------------------------------------------------------------- the answer


@dataclass
class _RecheckWork(casework._Work):
    """One answer, worked like every case action (services.casework's load, decide and record,
    so the conditional update, the event and the notifications are the same), with the facts
    of "still fixed?" added. Its caller need not have filed one of the case's reports."""

    closing: CaseEvent | None = None
    nearby_report_id: int | None = None
    rechecked: bool = False
    not_fixed_by_others: int = 0
    still_fixed: bool | None = None
    window: timedelta = DEFAULT_WINDOW

    @property
    def facts(self) -> wf.CaseFacts:
        return replace(
            super().facts,
            recheck_window=self.window,
            recheck_offered=self.nearby_report_id is not None,
            rechecked_by_caller=self.rechecked,
            recheck_still_fixed=self.still_fixed,
            not_fixed_by_others=self.not_fixed_by_others,
        )

    def allowed(self) -> list[str]:
        """What the caller may do now: what they may do as one of the case's own reporters (if
        they are), and "recheck" while they may still answer."""
        own = casework.allowed_actions_for(
            self.case, self.caller, self.now, reopen_window=self.reopen_window
        )
        listing = replace(self.facts, recheck_still_fixed=None)
        recheck = wf.decide(self.case.status, wf.RECHECK, wf.REPORTER, facts=listing)
        mine = {*own, *([wf.RECHECK] if isinstance(recheck, wf.Transition) else [])}
        return [action for action in wf.ACTIONS if action in mine]

    def state(self) -> CaseState:
        return replace(super().state(), allowed_actions=self.allowed())

    def refusal_details(self) -> dict[str, object]:
        return {"status": self.case.status, "allowed_actions": self.allowed()}


def recheck(
    session: Session,
    case_id: int,
    caller: Caller,
    still_fixed: bool,
    *,
    now: datetime | None = None,
    radius_m: float = DEFAULT_RADIUS_M,
    window: timedelta = DEFAULT_WINDOW,
) -> RecheckResult:
    """A reporter says whether the fix of a case still holds. The second different reporter
    saying "no" about the same closing sends the case back to its office (in_progress, as a
    rework); any other answer keeps it closed."""
    if caller.role != "reporter" or caller.reporter_id is None:
        raise Forbidden("Only a reporter can say whether a fix holds.", code="forbidden")
    case = casework._load(session, case_id)
    work = _RecheckWork(
        session=session,
        case=case,
        caller=caller,
        role=wf.REPORTER,
        now=now or utcnow(),
        reopen_window=casework.REOPEN_WINDOW,
        window=window,
        still_fixed=still_fixed,
    )
    work.closing = _latest_closing(case)
    work.nearby_report_id = _nearby_report(session, case, caller.reporter_id, radius_m, window)
    if work.closing is None or work.nearby_report_id is None:
        days = window / timedelta(days=1)
        raise Forbidden(
            f"Case {case_id} can be checked only by a reporter who filed a report within "
            f"{radius_m:g} m of it in the {days:g} days after it was closed.",
            code=wf.RECHECK_NOT_OFFERED,
        )
    closing_id = work.closing.id
    earlier = session.scalars(
        select(Recheck).where(Recheck.case_id == case.id, Recheck.closed_event_id == closing_id)
    ).all()
    work.rechecked = any(answer.reporter_id == caller.reporter_id for answer in earlier)
    work.not_fixed_by_others = sum(
        1
        for answer in earlier
        if not answer.still_fixed and answer.reporter_id != caller.reporter_id
    )
    transition = casework._decide(work, wf.RECHECK)
    answer = _add_answer(work, closing_id, still_fixed)
    work.rechecked = True
    reopened = transition.to_status != transition.from_status
    if reopened:
        not_fixed = [a for a in (*earlier, answer) if not a.still_fixed]
        reworks = sum(1 for event in case.events if event.action == wf.REWORK)
        detail: dict[str, object] = {
            "by": "recheck",
            "recheck_ids": [a.id for a in not_fixed],
            "report_ids": [a.report_id for a in not_fixed if a.report_id is not None],
            "reworks": reworks + 1,
            # the key a supervisor's rework counts under, for readers of either
            "rework": reworks + 1,
        }
    else:
        detail = {"recheck_id": answer.id, "still_fixed": still_fixed}
    detail["reporter_id"] = caller.reporter_id
    state = casework._record(work, transition, detail=detail, report_id=answer.report_id)
    return RecheckResult(state, recheck_counts(session, case.id), reopened)


def _latest_closing(case: Case) -> CaseEvent | None:
    return next((e for e in reversed(case.events) if e.action == wf.CLOSE), None)


def _nearby_report(
    session: Session, case: Case, reporter_id: int, radius_m: float, window: timedelta
) -> int | None:
    """The latest report of the reporter near the case, received within ``window`` after the
    case's latest closing."""
    closing = _latest_closing(case)
    if closing is None or case.lat is None or case.lon is None:
        return None
    min_lat, max_lat, min_lon, max_lon = bounding_box(case.lat, case.lon, radius_m)
    reports = session.execute(
        select(Report.id, Report.lat, Report.lon)
        .where(
            Report.reporter_id == reporter_id,
            Report.received_at >= closing.at,
            Report.received_at <= closing.at + window,
            Report.lat.between(min_lat, max_lat),
            Report.lon.between(min_lon, max_lon),
        )
        .order_by(Report.received_at.desc(), Report.id.desc())
    ).all()
    return next(
        (
            report_id
            for report_id, lat, lon in reports
            if distance_m(case.lat, case.lon, lat, lon) <= radius_m
        ),
        None,
    )


def _add_answer(work: _RecheckWork, closing_id: int, still_fixed: bool) -> Recheck:
    """The answer's row; a second answer by the same reporter racing this one is refused by
    the database's unique constraint."""
    assert work.caller.reporter_id is not None
    answer = Recheck(
        case_id=work.case.id,
        reporter_id=work.caller.reporter_id,
        closed_event_id=closing_id,
        report_id=work.nearby_report_id,
        still_fixed=still_fixed,
        at=work.now,
    )
    try:
        with work.session.begin_nested():
            work.session.add(answer)
    except IntegrityError:
        work.rechecked = True
        raise Conflict(
            "You have already said whether this fix holds.",
            code=wf.ALREADY_RECHECKED,
            details=work.refusal_details(),
        ) from None
    return answer
