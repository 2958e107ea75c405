"""Processing: from a received report to a case in an office's queue (or joined to an open
case of the same problem), in the caller's transaction.

The decisions come from routing/ (pure); this module loads their inputs and records their
outcome. It never commits: the task's unit of work does.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, bindparam, func, literal, or_, select, text, update
from sqlalchemy import case as sql_case
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT
from sqlalchemy.orm import Session, selectinload

from models.base import UTCDateTime, utcnow
from models.entities import (
    CASE_RECEIVED,
    CASE_ROUTED,
    CASE_TRIAGE,
    OPEN_CASE_STATUSES,
    REPORT_PROCESSED,
    REPORT_RECEIVED,
    Case,
    CaseEvent,
    Category,
    Office,
    OutboxMessage,
    Report,
    RoutingOverride,
    RuleVersion,
)
from models.session import enqueue_after_commit
from routing.geometry import JurisdictionIndex
from routing.merge import Box, Cell, OpenCase, bounding_box, cells_touched, find_match
from routing.rules import OfficeDirectory, OfficeNode, RoutingDecision
from routing.sla import due_at, parse_time_limit
from services.calendars import pin_calendar_context
from services.filing import PROCESS_REPORT
from services.notifications import ask_for_relay

if TYPE_CHECKING:
    # A type only: importing it would bring scikit-learn into every process that routes,
    # the web's too (through casework), not only into the workers that classify.
    from routing.classify import TextClassifier

SYSTEM_ACTOR = "system:pipeline"


@dataclass(frozen=True)
class RoutingContext:
    """Offices as routing needs them, built once and reused until an office changes."""

    stamp: tuple[Any, ...]
    rule_version: int | None
    index: JurisdictionIndex
    directory: OfficeDirectory
    office_ids: dict[str, int]


_context_lock = threading.Lock()
_cached_context: RoutingContext | None = None


def _offices_stamp(session: Session) -> tuple[Any, ...]:
    # Rule changes bump the version; polygon or active-flag edits bump updated_at. One round
    # trip: every report asks.
    rule_version = select(func.max(RuleVersion.id)).scalar_subquery()
    found = session.execute(
        select(rule_version, func.count(Office.id), func.max(Office.updated_at))
    ).one()
    return (found[0], found[1], str(found[2]))


def routing_context(session: Session) -> RoutingContext:
    global _cached_context
    stamp = _offices_stamp(session)
    with _context_lock:
        if _cached_context is not None and _cached_context.stamp == stamp:
            return _cached_context
        offices = session.scalars(select(Office).options(selectinload(Office.categories))).all()
        codes = {office.id: office.code for office in offices}
        index = JurisdictionIndex.from_geojson(
            (office.code, office.kind, office.jurisdiction)
            for office in offices
            if office.jurisdiction is not None and office.active
        )
        overrides = {
            (codes[o.area_office_id], o.category_code): codes[o.office_id]
            for o in session.scalars(select(RoutingOverride))
        }
        directory = OfficeDirectory(
            (
                OfficeNode(
                    code=office.code,
                    kind=office.kind,
                    parent=codes.get(office.parent_id) if office.parent_id else None,
                    categories=frozenset(c.code for c in office.categories),
                    has_jurisdiction=office.jurisdiction is not None,
                    active=office.active,
                )
                for office in offices
            ),
            overrides,
        )
        _cached_context = RoutingContext(
            stamp, stamp[0], index, directory, {v: k for k, v in codes.items()}
        )
        return _cached_context


@dataclass(frozen=True)
class CategoryChoice:
    category: str | None
    confidence: float | None
    method: str
    alternatives: list[dict[str, Any]]
    # The model id of the classifier in force, recorded whoever chose the category.
    model: str | None
    triage_reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "category": self.category,
            "confidence": self.confidence,
            "alternatives": self.alternatives,
            "model": self.model,
        }


def choose_category(report: Report, classifier: TextClassifier, threshold: float) -> CategoryChoice:
    model = classifier.model_id
    if report.requested_category:
        return CategoryChoice(report.requested_category, 1.0, "reporter", [], model)
    if not report.text.strip():
        return CategoryChoice(None, None, "none", [], model, "no_text")
    result = classifier.classify(report.text)
    confidence = round(result.confidence, 4)
    alternatives = [
        {"category": code, "confidence": round(p, 4)} for code, p in result.alternatives
    ]
    if result.confidence < threshold:
        # Keep the guess for the triage desk, but do not file the case under it.
        guess = [{"category": result.category, "confidence": confidence}]
        return CategoryChoice(
            None, confidence, "classifier", guess + alternatives, model, "low_confidence"
        )
    return CategoryChoice(result.category, confidence, "classifier", alternatives, model)


def process_report(
    session: Session,
    report_id: int,
    *,
    classifier: TextClassifier,
    threshold: float,
    now: datetime | None = None,
) -> Case | None:
    """Classify and route one report. Returns the new case, or None when there was nothing to
    do (unknown id, or already processed by an earlier run of the same message). The due time
    counts on the calendar of the office the case goes to (services.calendars), or a 24-hour
    clock for an urgent category."""
    report = session.get(Report, report_id)
    if report is None or report.state != REPORT_RECEIVED:
        return None
    now = now or utcnow()
    choice = choose_category(report, classifier, threshold)
    # Loaded once and held: the search for an open case and the due time below both read it,
    # and the session keeps an unreferenced row only weakly (it would be selected again).
    category = session.get(Category, choice.category) if choice.category else None
    if choice.category is not None and report.lat is not None and report.lon is not None:
        search = _serialize_case_opening(session, choice.category, report.lat, report.lon)
        handled, joined = _join_open_case(session, report, choice, search, now)
        if handled:
            return joined
    context = routing_context(session)
    decision: RoutingDecision | None = None
    containing: list[str] = []
    if choice.category is not None and report.lat is not None and report.lon is not None:
        containing = context.index.containing(report.lon, report.lat)
        decision = context.directory.route(containing, choice.category)

    # The guard that makes a rerun harmless: only one transaction can move the report on.
    claimed = session.execute(
        update(Report)
        .where(Report.id == report_id, Report.state == REPORT_RECEIVED)
        .values(state=REPORT_PROCESSED, processed_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        return None

    routed = decision is not None and decision.office is not None
    office_id = context.office_ids[decision.office] if routed and decision else None
    # Nothing here changes a calendar: the due time and the statistics written at the flush
    # count on the same calendars, read once.
    calendars = pin_calendar_context(session)
    due = None
    if routed and category is not None:
        due = due_at(
            report.received_at,
            parse_time_limit(category.time_limit),
            calendars.for_office(office_id),
            urgent=category.urgent,
        )
    triage_reason = choice.triage_reason
    if triage_reason is None and not routed:
        triage_reason = decision.rule if decision is not None else "no_location"
    routing_json = routing_record(context, containing, decision, triage_reason)

    case = Case(
        status=CASE_ROUTED if routed else CASE_TRIAGE,
        category_code=choice.category,
        confidence=choice.confidence,
        classification=choice.as_json(),
        office_id=office_id,
        routing=routing_json,
        rule_version=context.rule_version,
        classifier_model=choice.model,
        lat=report.lat,
        lon=report.lon,
        address=report.address,
        due_at=due,
        opened_at=now,
        first_received_at=report.received_at,
        updated_at=now,
        # An empty list, not an unloaded collection: appending to it below reads nothing.
        events=[],
    )
    session.add(case)
    session.flush()
    report.case_id = case.id
    report.state = REPORT_PROCESSED
    report.processed_at = now
    reporter_actor = f"reporter:{report.reporter_id}"
    case.events.append(
        CaseEvent(
            report_id=report.id,
            at=report.received_at,
            actor=reporter_actor,
            action="received",
            from_status=None,
            to_status=CASE_RECEIVED,
            # Every column given, as in the events below: the three rows go in one INSERT.
            office_id=None,
            note=f"Report {report.id} received via {report.channel}.",
            detail={},
        )
    )
    case.events.append(
        CaseEvent(
            report_id=report.id,
            at=now,
            actor=SYSTEM_ACTOR,
            action="classified",
            from_status=CASE_RECEIVED,
            to_status=CASE_RECEIVED,
            office_id=None,
            note=_classification_note(choice),
            detail=choice.as_json(),
        )
    )
    if routed and decision is not None:
        outcome = ("routed", CASE_ROUTED, decision.explanation)
        outcome_detail = {**routing_json, "due_at": due.isoformat() if due else None}
    else:
        outcome = ("triaged", CASE_TRIAGE, _triage_note(triage_reason, decision))
        outcome_detail = routing_json
    action, to_status, note = outcome
    case.events.append(
        CaseEvent(
            report_id=report.id,
            at=now,
            actor=SYSTEM_ACTOR,
            action=action,
            from_status=CASE_RECEIVED,
            to_status=to_status,
            office_id=office_id,
            note=note,
            detail=outcome_detail,
        )
    )
    write_notifications(
        session,
        case,
        report,
        decision.office if routed and decision else None,
        # A case this report opened has no other reporter to look up.
        reporters=[report.reporter_id],
    )
    return case


@dataclass(frozen=True)
class MeTooSearch:
    """Where and when a report of a category looks for an open case of its problem."""

    category: str
    radius_m: float
    window: timedelta
    box: Box


def _lock_key(name: str) -> int:
    digest = hashlib.blake2b(f"cityrelay:open-case:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def merge_settings_lock_key(category_code: str) -> int:
    """The advisory lock every search of the category holds shared, and a change of its merge
    radius or window holds alone (services.rules)."""
    return _lock_key(category_code)


def cell_lock_key(category_code: str, cell: Cell) -> int:
    """The advisory lock of one map cell of a category (routing.merge.cells_touched). Two cells
    whose keys collide merely queue together."""
    row, column = cell
    return _lock_key(f"{category_code}:{row}:{column}")


# Every lock in one statement, in the order given (the subquery's ORDER BY comes first).
_LOCK_CELLS = text(
    "SELECT pg_advisory_xact_lock(ordered.key) FROM "
    "(SELECT unnest(:keys) AS key ORDER BY key) AS ordered"
).bindparams(bindparam("keys", type_=ARRAY(BIGINT)))


# The statements of the search, built once: a report pays for running them, not for building
# them again (which cost more than running them).
_SHARE_SETTINGS_LOCK = select(
    func.pg_advisory_xact_lock_shared(bindparam("key", type_=BigInteger()))
)
_MERGE_SETTINGS = select(Category.merge_radius_m, Category.merge_window_hours).where(
    Category.code == bindparam("code")
)


def lock_merge_settings(session: Session, category_code: str) -> None:
    """Wait until no search of the category is running, and keep new ones waiting until this
    transaction ends: what a change of the category's merge radius or window takes first, so
    that all the searches running at one time draw their cells from the same radius."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(merge_settings_lock_key(category_code))))


def _serialize_case_opening(
    session: Session, category_code: str, lat: float, lon: float
) -> MeTooSearch | None:
    """Two workers processing reports of one problem at the same moment would each find no open
    case to join and open two. On PostgreSQL the search and the new case become one step until
    commit through transaction-scoped advisory locks on the map cells the search box touches
    (routing.merge.cells_touched, which shows why two searches that could see each other's case
    always share a cell), so reports of one category far apart (a storm all over the city) do
    not wait for each other.

    The locks are taken in one order (by key) in one statement, so two workers never deadlock.
    Before them, a shared lock of the category holds its merge settings still (a change takes
    it alone, ``lock_merge_settings``): the radius sizes the grid, and two workers that drew
    cells from different radii would not meet. The settings are read after that lock, so they
    are the ones every running search uses. SQLite needs none of this: its writers already run
    one at a time (BEGIN IMMEDIATE).

    Returns the search's radius, window and box, or None for an unknown category."""
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql:
        session.execute(_SHARE_SETTINGS_LOCK, {"key": merge_settings_lock_key(category_code)})
    settings = session.execute(_MERGE_SETTINGS, {"code": category_code}).one_or_none()
    if settings is None:
        return None
    radius_m, window_hours = settings
    box = bounding_box(lat, lon, radius_m)
    if postgresql:
        keys = sorted({cell_lock_key(category_code, c) for c in cells_touched(box, radius_m)})
        session.execute(_LOCK_CELLS, {"keys": keys})
    return MeTooSearch(category_code, radius_m, timedelta(hours=window_hours), box)


_OPEN_CASES_NEARBY = select(Case.id, Case.lat, Case.lon, Case.first_received_at).where(
    Case.category_code == bindparam("category"),
    # The statuses written into the SQL, not bound: the planner (SQLite's always, PostgreSQL's
    # for a prepared statement) takes a partial index only for a condition it can see implies
    # the index's own.
    Case.status.in_(
        bindparam("open_statuses", OPEN_CASE_STATUSES, expanding=True, literal_execute=True)
    ),
    Case.lat.between(bindparam("min_lat"), bindparam("max_lat")),
    Case.lon.between(bindparam("min_lon"), bindparam("max_lon")),
    Case.first_received_at.between(
        bindparam("since", type_=UTCDateTime()), bindparam("until", type_=UTCDateTime())
    ),
)


def open_cases_nearby(
    session: Session, search: MeTooSearch, received_at: datetime
) -> list[OpenCase]:
    """The open cases of the search's category in its box whose first report was received
    within its window of ``received_at``: what ``find_match`` chooses from. The partial index
    ix_cases_open_nearby answers it alone."""
    min_lat, max_lat, min_lon, max_lon = search.box
    rows = session.execute(
        _OPEN_CASES_NEARBY,
        {
            "category": search.category,
            "min_lat": min_lat,
            "max_lat": max_lat,
            "min_lon": min_lon,
            "max_lon": max_lon,
            "since": received_at - search.window,
            "until": received_at + search.window,
        },
    ).all()
    return [OpenCase(r.id, search.category, r.lat, r.lon, r.first_received_at) for r in rows]


def _join_open_case(
    session: Session,
    report: Report,
    choice: CategoryChoice,
    search: MeTooSearch | None,
    now: datetime,
) -> tuple[bool, Case | None]:
    """Join the report to an open case of the same problem, if there is one. Returns (handled,
    case): handled is False when the report needs a case of its own; case is None when another
    run of the same message already took the report."""
    if search is None or report.no_merge or report.lat is None or report.lon is None:
        return False, None
    match = find_match(
        search.category,
        report.lat,
        report.lon,
        report.received_at,
        open_cases_nearby(session, search, report.received_at),
        search.radius_m,
        search.window,
    )
    if match is None:
        return False, None
    claimed = session.execute(
        update(Report)
        .where(Report.id == report.id, Report.state == REPORT_RECEIVED)
        .values(state=REPORT_PROCESSED, processed_at=now, case_id=match.case_id)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        return True, None
    case = session.get(Case, match.case_id)
    assert case is not None
    session.refresh(report)
    case.updated_at = now
    # A report a busy queue reached late may be older than the case's first one. Compared in
    # the UPDATE itself, against the row as it is then (an office may have split a report out).
    received_at = literal(report.received_at, UTCDateTime())
    case.first_received_at = sql_case(  # type: ignore[assignment]
        (Case.first_received_at > received_at, received_at), else_=Case.first_received_at
    )
    minutes = int(match.apart.total_seconds() // 60)
    case.events.append(
        CaseEvent(
            report_id=report.id,
            at=now,
            actor=SYSTEM_ACTOR,
            action="merged",
            from_status=case.status,
            to_status=case.status,
            office_id=case.office_id,
            note=(
                f"Report {report.id} is the same problem ('me too'): {match.distance_m:.0f} m "
                f"away, received {minutes} min apart from the case's first report."
            ),
            detail={
                "report_id": report.id,
                "distance_m": round(match.distance_m, 1),
                "minutes_apart": minutes,
                "classification": choice.as_json(),
            },
        )
    )
    session.flush()
    write_notifications(session, case, report, case.office.code if case.office else None)
    return True, case


def routing_record(
    context: RoutingContext,
    containing: list[str],
    decision: RoutingDecision | None,
    triage_reason: str | None,
) -> dict[str, Any]:
    """Why this office: what a case keeps to explain its routing."""
    record: dict[str, Any] = {
        "rule_version": context.rule_version,
        "polygon": containing[0] if containing else None,
    }
    if decision is not None:
        record |= {
            "office": decision.office,
            "rule": decision.rule,
            "explanation": decision.explanation,
            "considered": list(decision.considered),
        }
    if triage_reason:
        record["triage_reason"] = triage_reason
    return record


def _classification_note(choice: CategoryChoice) -> str:
    if choice.method == "reporter":
        return f"Category {choice.category} chosen by the reporter."
    if choice.category is None and choice.triage_reason == "low_confidence":
        best = choice.alternatives[0] if choice.alternatives else None
        guess = f" (best guess {best['category']} at {best['confidence']:.2f})" if best else ""
        return f"Classifier not confident enough{guess}."
    if choice.category is None:
        return "No text to classify."
    return f"Classified as {choice.category} with confidence {choice.confidence:.2f}."


def _triage_note(reason: str | None, decision: RoutingDecision | None) -> str:
    if decision is not None and reason == decision.rule:
        return decision.explanation
    return {
        "low_confidence": "Sent to triage: the category needs a person's decision.",
        "no_text": "Sent to triage: no text and no category; a person must look at the photos.",
        "no_location": "Sent to triage: no coordinates; a person must place the address.",
    }.get(reason or "", "Sent to triage.")


def write_notifications(
    session: Session,
    case: Case,
    report: Report,
    office_code: str | None,
    *,
    reporters: Sequence[int] | None = None,
) -> None:
    """One outbox row for the office (or triage) and one for each reporter of the case.
    ``reporters``: the case's reporters, first reporter first, when the caller knows them."""
    payload = {
        "case_id": case.id,
        "report_id": report.id,
        "status": case.status,
        "category": case.category_code,
        "office": office_code,
        "due_at": case.due_at.isoformat() if case.due_at else None,
    }
    # Every reporter of the case follows it, not only the one whose report caused this: one
    # row per recipient, the case's first reporter first.
    if reporters is None:
        reporters = case_reporter_ids(session, case.id)
    if report.reporter_id not in reporters:
        reporters = [*reporters, report.reporter_id]
    recipients = [f"office:{office_code}" if office_code else "triage"]
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


SWEEP_BATCH = 500


def requeue_stuck_reports(session: Session, stale_after: timedelta, now: datetime) -> list[int]:
    """Ask again for the processing of every report that should have been processed by now:
    its message was lost (broker down at intake, worker killed) or its task gave up. A report
    whose message is merely queued is asked for again only once it is stale too."""
    cutoff = now - stale_after
    stuck = session.scalars(
        select(Report)
        .where(
            Report.state == REPORT_RECEIVED,
            Report.received_at < cutoff,
            or_(Report.last_enqueued_at.is_(None), Report.last_enqueued_at < cutoff),
        )
        .order_by(Report.id)
        .limit(SWEEP_BATCH)
        .with_for_update(skip_locked=True)
    ).all()
    for report in stuck:
        report.last_enqueued_at = now
        enqueue_after_commit(session, PROCESS_REPORT, report.id)
    return [report.id for report in stuck]


def case_reporter_ids(session: Session, case_id: int) -> list[int]:
    """The reporters of a case's reports, each once, the case's first reporter first."""
    return list(
        session.scalars(
            select(Report.reporter_id)
            .where(Report.case_id == case_id)
            .group_by(Report.reporter_id)
            .order_by(func.min(Report.id))
        ).all()
    )
