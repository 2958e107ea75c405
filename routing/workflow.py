"""The case state machine: which action, by whom, from which status, leads where. Pure: no
database, no clock (the caller passes "now" in ``CaseFacts``), no web.

Statuses: ``triage`` (no office yet: a person must place it), ``routed`` (in an office's queue),
``accepted`` (受理: the office took it on), ``in_progress`` (being handled), ``waiting``
(information asked of the reporter; the clock pauses), ``resolved`` (the office says it is
done) and ``closed`` (with a ``closure``: ``fixed``, ``duplicate``, ``invalid``,
``not_responsible`` or ``no_further_action``).

Roles towards one case: ``staff`` (a key of the case's office), ``supervisor`` (of the case's
office or of an office above it), ``reporter`` (filed one of the case's reports), ``admin`` (the
triage desk) and ``other`` (anyone else: nothing is allowed).

The table (``status`` → next status; who may; further conditions)::

    action             from                                    to                 who
    accept             routed                                  accepted           staff, supervisor
    start              accepted                                in_progress        staff, supervisor
    ask                accepted, in_progress                   waiting            staff, supervisor
    resolve            accepted, in_progress                   resolved           staff, supervisor
    transfer           routed, accepted, in_progress           routed (at the     staff, supervisor
                       triage                                  other office)      admin
    reject             routed                                  routed elsewhere,  staff, supervisor
                                                               or triage
    extend             accepted, in_progress                   (unchanged)        staff, supervisor
    approve-extension  accepted, in_progress, waiting          (unchanged)        supervisor
    deny-extension     accepted, in_progress, waiting          (unchanged)        supervisor
    close              routed, accepted, in_progress,          closed             supervisor
                       waiting, resolved
                       triage                                  closed             admin
    rework             resolved                                in_progress        supervisor
    answer             waiting                                 the status the     reporter
                                                               ask came from
    confirm            resolved; closed as fixed               (unchanged)        reporter
    reopen             closed, within the reopen window        routed (triage     reporter
                                                               when no office)
    recheck            closed as fixed, within the recheck     (unchanged), or    reporter
                       window                                  in_progress as a   (nearby)
                                                               rework

Further conditions, each refused with its own reason:

- ``extend`` while an extension is pending: ``extension_pending``; ``approve-extension`` and
  ``deny-extension`` with none pending: ``no_extension_pending``.
- ``close`` needs a closure (``closure_required``, ``unknown_closure``); ``fixed`` only from
  ``resolved`` (``closure_not_allowed``).
- ``confirm`` of a case closed other than ``fixed``: ``not_fixed``; a second ``confirm`` by the
  same reporter: ``already_confirmed``.
- ``reopen`` after the window (passed in; 7 days in CityRelay) since closing:
  ``reopen_window_passed``.
- ``recheck`` ("still fixed?") is answered by a reporter who filed a report near the case after
  it was closed, not only by its own reporters: of a case closed other than ``fixed``:
  ``not_fixed``; after the recheck window (passed in; 14 days in CityRelay) since closing:
  ``recheck_window_passed``; by a reporter who was not offered the check: ``recheck_not_offered``;
  a second answer by the same reporter about the same closing: ``already_rechecked``. The answer
  "not fixed" when another reporter already said so about the same closing is a ``rework``
  transition (back to ``in_progress``); every other answer keeps the status.

Every other refusal is ``illegal_transition`` (the role may do this action, but not from this
status) or ``role_not_allowed`` (the role may never do it, from any status).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

TRIAGE = "triage"
ROUTED = "routed"
ACCEPTED = "accepted"
IN_PROGRESS = "in_progress"
WAITING = "waiting"
RESOLVED = "resolved"
CLOSED = "closed"
STATUSES = (TRIAGE, ROUTED, ACCEPTED, IN_PROGRESS, WAITING, RESOLVED, CLOSED)

FIXED = "fixed"
DUPLICATE = "duplicate"
INVALID = "invalid"
NOT_RESPONSIBLE = "not_responsible"
NO_FURTHER_ACTION = "no_further_action"
CLOSURES = (FIXED, DUPLICATE, INVALID, NOT_RESPONSIBLE, NO_FURTHER_ACTION)

STAFF = "staff"
SUPERVISOR = "supervisor"
REPORTER = "reporter"
ADMIN = "admin"
OTHER = "other"
ROLES = (STAFF, SUPERVISOR, REPORTER, ADMIN, OTHER)

ACCEPT = "accept"
START = "start"
ASK = "ask"
RESOLVE = "resolve"
TRANSFER = "transfer"
REJECT = "reject"
EXTEND = "extend"
APPROVE_EXTENSION = "approve-extension"
DENY_EXTENSION = "deny-extension"
CLOSE = "close"
REWORK = "rework"
ANSWER = "answer"
CONFIRM = "confirm"
REOPEN = "reopen"
RECHECK = "recheck"
OFFICE_ACTIONS = (
    ACCEPT,
    START,
    ASK,
    RESOLVE,
    TRANSFER,
    REJECT,
    EXTEND,
    APPROVE_EXTENSION,
    DENY_EXTENSION,
    CLOSE,
    REWORK,
)
REPORTER_ACTIONS = (ANSWER, CONFIRM, REOPEN, RECHECK)
ACTIONS = OFFICE_ACTIONS + REPORTER_ACTIONS

DEFAULT_REOPEN_WINDOW = timedelta(days=7)
DEFAULT_RECHECK_WINDOW = timedelta(days=14)
# Different reporters saying "not fixed" about one closing that send the case back to work.
RECHECK_NOT_FIXED_TO_REWORK = 2

# Refusal reasons: stable codes a client can act on.
ILLEGAL_TRANSITION = "illegal_transition"
ROLE_NOT_ALLOWED = "role_not_allowed"
UNKNOWN_ACTION = "unknown_action"
EXTENSION_PENDING = "extension_pending"
NO_EXTENSION_PENDING = "no_extension_pending"
CLOSURE_REQUIRED = "closure_required"
UNKNOWN_CLOSURE = "unknown_closure"
CLOSURE_NOT_ALLOWED = "closure_not_allowed"
NOT_FIXED = "not_fixed"
ALREADY_CONFIRMED = "already_confirmed"
REOPEN_WINDOW_PASSED = "reopen_window_passed"
RECHECK_WINDOW_PASSED = "recheck_window_passed"
RECHECK_NOT_OFFERED = "recheck_not_offered"
ALREADY_RECHECKED = "already_rechecked"

_OFFICE = frozenset({STAFF, SUPERVISOR})
_SUPERVISOR = frozenset({SUPERVISOR})
_REPORTER = frozenset({REPORTER})
_ADMIN = frozenset({ADMIN})
_HANDLING = (ACCEPTED, IN_PROGRESS)
_OPEN_AT_OFFICE = (ROUTED, ACCEPTED, IN_PROGRESS, WAITING, RESOLVED)

# (action, role set) -> {from status: to status}; None as "to" keeps the status. The next status
# of answer and reopen depends on the case (see _next_status).
_RULES: dict[str, list[tuple[frozenset[str], dict[str, str | None]]]] = {
    ACCEPT: [(_OFFICE, {ROUTED: ACCEPTED})],
    START: [(_OFFICE, {ACCEPTED: IN_PROGRESS})],
    ASK: [(_OFFICE, dict.fromkeys(_HANDLING, WAITING))],
    RESOLVE: [(_OFFICE, dict.fromkeys(_HANDLING, RESOLVED))],
    TRANSFER: [
        (_OFFICE, dict.fromkeys((ROUTED, *_HANDLING), ROUTED)),
        (_ADMIN, {TRIAGE: ROUTED}),
    ],
    REJECT: [(_OFFICE, {ROUTED: ROUTED})],
    EXTEND: [(_OFFICE, dict.fromkeys(_HANDLING))],
    APPROVE_EXTENSION: [(_SUPERVISOR, dict.fromkeys((*_HANDLING, WAITING)))],
    DENY_EXTENSION: [(_SUPERVISOR, dict.fromkeys((*_HANDLING, WAITING)))],
    CLOSE: [(_SUPERVISOR, dict.fromkeys(_OPEN_AT_OFFICE, CLOSED)), (_ADMIN, {TRIAGE: CLOSED})],
    REWORK: [(_SUPERVISOR, {RESOLVED: IN_PROGRESS})],
    ANSWER: [(_REPORTER, {WAITING: None})],
    CONFIRM: [(_REPORTER, {RESOLVED: None, CLOSED: None})],
    REOPEN: [(_REPORTER, {CLOSED: None})],
    RECHECK: [(_REPORTER, {CLOSED: None})],
}


@dataclass(frozen=True)
class CaseFacts:
    """What, besides its status, decides whether an action is allowed. The service reads these
    off the case and its timeline; nothing here reads a clock."""

    # The status the case was in when the office asked (answer goes back there).
    resumes_to: str = IN_PROGRESS
    extension_pending: bool = False
    # Of a closed case: how it was closed, and when.
    closure: str | None = None
    closed_at: datetime | None = None
    now: datetime | None = None
    reopen_window: timedelta = DEFAULT_REOPEN_WINDOW
    # Reopened, a case goes back to its office's queue, or to triage when it never had one.
    has_office: bool = True
    # The calling reporter already confirmed this case.
    confirmed_by_caller: bool = False
    # "Still fixed?" about the latest closing: may the caller answer (a report of theirs near
    # the case, filed within the window after the closing), did they already, what they answer
    # now (None: not answering, as when listing the allowed actions), and how many other
    # reporters already said "not fixed".
    recheck_window: timedelta = DEFAULT_RECHECK_WINDOW
    recheck_offered: bool = False
    rechecked_by_caller: bool = False
    recheck_still_fixed: bool | None = None
    not_fixed_by_others: int = 0


@dataclass(frozen=True)
class Transition:
    """Allowed: the case moves to ``to_status`` (equal to ``from_status`` for an action that
    keeps it, such as ``extend``)."""

    action: str
    from_status: str
    to_status: str
    closure: str | None = None


@dataclass(frozen=True)
class Refusal:
    """Not allowed, and why (``reason`` is one of the codes above)."""

    action: str
    status: str
    reason: str
    message: str


Outcome = Transition | Refusal


def decide(
    status: str,
    action: str,
    role: str,
    *,
    closure: str | None = None,
    facts: CaseFacts | None = None,
) -> Outcome:
    """The next status of a case in ``status`` when ``role`` does ``action``, or why not."""
    facts = facts or CaseFacts()
    if status not in STATUSES:
        raise ValueError(f"unknown case status: {status!r}")
    rules = _RULES.get(action)
    if rules is None:
        return Refusal(action, status, UNKNOWN_ACTION, f"There is no action '{action}'.")
    matching = [moves for roles, moves in rules if role in roles]
    if not matching:
        return Refusal(
            action, status, ROLE_NOT_ALLOWED, f"A {role} may not {action} a case, in any status."
        )
    moves = next((m for m in matching if status in m), None)
    if moves is None:
        return Refusal(
            action,
            status,
            ILLEGAL_TRANSITION,
            f"'{action}' is not possible while a case is {status}.",
        )
    refusal = _condition_refusal(status, action, closure, facts)
    if refusal is not None:
        return Refusal(action, status, refusal[0], refusal[1])
    to_status = moves[status] or _next_status(status, action, facts)
    if action == RECHECK and to_status != status:
        # Enough reporters say it is not fixed: the case goes back to work, as a rework.
        return Transition(REWORK, status, to_status)
    return Transition(action, status, to_status, closure if action == CLOSE else None)


def _condition_refusal(
    status: str, action: str, closure: str | None, facts: CaseFacts
) -> tuple[str, str] | None:
    if action == EXTEND and facts.extension_pending:
        return EXTENSION_PENDING, "An extension is already waiting for a supervisor's answer."
    if action in (APPROVE_EXTENSION, DENY_EXTENSION) and not facts.extension_pending:
        return NO_EXTENSION_PENDING, "No extension has been asked for."
    if action == CLOSE:
        if closure is None:
            return CLOSURE_REQUIRED, "Closing needs a closure."
        if closure not in CLOSURES:
            return UNKNOWN_CLOSURE, f"There is no closure '{closure}'."
        if closure == FIXED and status != RESOLVED:
            return CLOSURE_NOT_ALLOWED, "Only a resolved case can be closed as fixed."
    if action == CONFIRM:
        if status == CLOSED and facts.closure != FIXED:
            return NOT_FIXED, f"The case was closed as {facts.closure}, not fixed."
        if facts.confirmed_by_caller:
            return ALREADY_CONFIRMED, "You have already confirmed this case."
    if action == REOPEN and _reopen_window_passed(facts):
        days = facts.reopen_window / timedelta(days=1)
        return REOPEN_WINDOW_PASSED, f"A case can be reopened within {days:g} days of closing."
    if action == RECHECK:
        return _recheck_refusal(facts)
    return None


def _recheck_refusal(facts: CaseFacts) -> tuple[str, str] | None:
    if facts.closure != FIXED:
        return NOT_FIXED, f"The case was closed as {facts.closure}, not fixed."
    if _window_passed(facts, facts.recheck_window):
        days = facts.recheck_window / timedelta(days=1)
        return RECHECK_WINDOW_PASSED, f"A fix can be checked within {days:g} days of closing."
    if not facts.recheck_offered:
        return (
            RECHECK_NOT_OFFERED,
            "Only a reporter who filed a report near the case since it was closed may check it.",
        )
    if facts.rechecked_by_caller:
        return ALREADY_RECHECKED, "You have already said whether this fix holds."
    return None


def _reopen_window_passed(facts: CaseFacts) -> bool:
    return _window_passed(facts, facts.reopen_window)


def _window_passed(facts: CaseFacts, window: timedelta) -> bool:
    if facts.closed_at is None or facts.now is None:
        # Without both times nothing shows the window is still open.
        return True
    return facts.now - facts.closed_at > window


def _next_status(status: str, action: str, facts: CaseFacts) -> str:
    if action == ANSWER:
        return facts.resumes_to
    if action == REOPEN:
        return ROUTED if facts.has_office else TRIAGE
    if action == RECHECK:
        # Only a "not fixed" answer can be the one that tips the count.
        if facts.recheck_still_fixed is not False:
            return status
        not_fixed = facts.not_fixed_by_others + 1
        return IN_PROGRESS if not_fixed >= RECHECK_NOT_FIXED_TO_REWORK else status
    return status


def allowed_actions(status: str, role: str, facts: CaseFacts | None = None) -> list[str]:
    """The actions ``role`` may do on a case in ``status``, in the order of ``ACTIONS``;
    ``close`` is listed when at least one closure is allowed."""
    allowed = []
    for action in ACTIONS:
        closures = CLOSURES if action == CLOSE else (None,)
        outcomes = (decide(status, action, role, closure=c, facts=facts) for c in closures)
        if any(isinstance(outcome, Transition) for outcome in outcomes):
            allowed.append(action)
    return allowed


def allowed_closures(status: str) -> list[str]:
    """The closures a case in ``status`` may be closed with (by whoever may close it)."""
    if status == CLOSED:
        return []
    return [c for c in CLOSURES if c != FIXED or status == RESOLVED]
