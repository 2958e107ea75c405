"""The case state machine, held to a table written out here by hand: every status × action ×
role, then every closure, extension and reopen condition, and the allowed actions of every
status and role."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from routing import workflow as wf
from routing.workflow import CaseFacts, Refusal, Transition, allowed_actions, decide

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)

# A closed case closed as fixed a day ago, which the reporter was offered to recheck; a waiting
# case asked while "accepted" (so "answer" is seen to go back there, not to a default).
# Approving or denying needs a pending extension, extending needs none: those two actions are
# looked at with one pending (EXTENSION_FACTS).
FACTS = CaseFacts(
    resumes_to=wf.ACCEPTED,
    closure=wf.FIXED,
    closed_at=NOW - timedelta(days=1),
    now=NOW,
    recheck_offered=True,
)
EXTENSION_FACTS = CaseFacts(**{**FACTS.__dict__, "extension_pending": True})
# "close" in the main table uses a closure allowed from every open status.
MAIN_CLOSURE = wf.NO_FURTHER_ACTION

# A next status when allowed; "-" illegal_transition (this role may do this action, but not from
# this status); "x" role_not_allowed (this role may never do it).
TABLE = """
status       action             staff        supervisor   reporter     admin    other
triage       accept             -            -            x            x        x
triage       start              -            -            x            x        x
triage       ask                -            -            x            x        x
triage       resolve            -            -            x            x        x
triage       transfer           -            -            x            routed   x
triage       reject             -            -            x            x        x
triage       extend             -            -            x            x        x
triage       approve-extension  x            -            x            x        x
triage       deny-extension     x            -            x            x        x
triage       close              x            -            x            closed   x
triage       rework             x            -            x            x        x
triage       answer             x            x            -            x        x
triage       confirm            x            x            -            x        x
triage       reopen             x            x            -            x        x
triage       recheck            x            x            -            x        x
routed       accept             accepted     accepted     x            x        x
routed       start              -            -            x            x        x
routed       ask                -            -            x            x        x
routed       resolve            -            -            x            x        x
routed       transfer           routed       routed       x            -        x
routed       reject             routed       routed       x            x        x
routed       extend             -            -            x            x        x
routed       approve-extension  x            -            x            x        x
routed       deny-extension     x            -            x            x        x
routed       close              x            closed       x            -        x
routed       rework             x            -            x            x        x
routed       answer             x            x            -            x        x
routed       confirm            x            x            -            x        x
routed       reopen             x            x            -            x        x
routed       recheck            x            x            -            x        x
accepted     accept             -            -            x            x        x
accepted     start              in_progress  in_progress  x            x        x
accepted     ask                waiting      waiting      x            x        x
accepted     resolve            resolved     resolved     x            x        x
accepted     transfer           routed       routed       x            -        x
accepted     reject             -            -            x            x        x
accepted     extend             accepted     accepted     x            x        x
accepted     approve-extension  x            accepted     x            x        x
accepted     deny-extension     x            accepted     x            x        x
accepted     close              x            closed       x            -        x
accepted     rework             x            -            x            x        x
accepted     answer             x            x            -            x        x
accepted     confirm            x            x            -            x        x
accepted     reopen             x            x            -            x        x
accepted     recheck            x            x            -            x        x
in_progress  accept             -            -            x            x        x
in_progress  start              -            -            x            x        x
in_progress  ask                waiting      waiting      x            x        x
in_progress  resolve            resolved     resolved     x            x        x
in_progress  transfer           routed       routed       x            -        x
in_progress  reject             -            -            x            x        x
in_progress  extend             in_progress  in_progress  x            x        x
in_progress  approve-extension  x            in_progress  x            x        x
in_progress  deny-extension     x            in_progress  x            x        x
in_progress  close              x            closed       x            -        x
in_progress  rework             x            -            x            x        x
in_progress  answer             x            x            -            x        x
in_progress  confirm            x            x            -            x        x
in_progress  reopen             x            x            -            x        x
in_progress  recheck            x            x            -            x        x
waiting      accept             -            -            x            x        x
waiting      start              -            -            x            x        x
waiting      ask                -            -            x            x        x
waiting      resolve            -            -            x            x        x
waiting      transfer           -            -            x            -        x
waiting      reject             -            -            x            x        x
waiting      extend             -            -            x            x        x
waiting      approve-extension  x            waiting      x            x        x
waiting      deny-extension     x            waiting      x            x        x
waiting      close              x            closed       x            -        x
waiting      rework             x            -            x            x        x
waiting      answer             x            x            accepted     x        x
waiting      confirm            x            x            -            x        x
waiting      reopen             x            x            -            x        x
waiting      recheck            x            x            -            x        x
resolved     accept             -            -            x            x        x
resolved     start              -            -            x            x        x
resolved     ask                -            -            x            x        x
resolved     resolve            -            -            x            x        x
resolved     transfer           -            -            x            -        x
resolved     reject             -            -            x            x        x
resolved     extend             -            -            x            x        x
resolved     approve-extension  x            -            x            x        x
resolved     deny-extension     x            -            x            x        x
resolved     close              x            closed       x            -        x
resolved     rework             x            in_progress  x            x        x
resolved     answer             x            x            -            x        x
resolved     confirm            x            x            resolved     x        x
resolved     reopen             x            x            -            x        x
resolved     recheck            x            x            -            x        x
closed       accept             -            -            x            x        x
closed       start              -            -            x            x        x
closed       ask                -            -            x            x        x
closed       resolve            -            -            x            x        x
closed       transfer           -            -            x            -        x
closed       reject             -            -            x            x        x
closed       extend             -            -            x            x        x
closed       approve-extension  x            -            x            x        x
closed       deny-extension     x            -            x            x        x
closed       close              x            -            x            -        x
closed       rework             x            -            x            x        x
closed       answer             x            x            -            x        x
closed       confirm            x            x            closed       x        x
closed       reopen             x            x            routed       x        x
closed       recheck            x            x            closed       x        x
"""


def _parse(table: str) -> dict[tuple[str, str, str], str]:
    header, *rows = [line.split() for line in table.strip().splitlines()]
    roles = header[2:]
    expected = {}
    for status, action, *cells in rows:
        assert len(cells) == len(roles), (status, action)
        for role, cell in zip(roles, cells, strict=True):
            assert (status, action, role) not in expected, (status, action, role)
            expected[(status, action, role)] = cell
    return expected


EXPECTED = _parse(TABLE)
FULL_PRODUCT = [(s, a, r) for s in wf.STATUSES for a in wf.ACTIONS for r in wf.ROLES]


def test_the_table_covers_every_status_action_and_role_once() -> None:
    assert sorted(EXPECTED) == sorted(FULL_PRODUCT)
    assert len(FULL_PRODUCT) == 7 * 15 * 5


def test_the_contract_names() -> None:
    assert wf.STATUSES == (
        "triage", "routed", "accepted", "in_progress", "waiting", "resolved", "closed"
    )  # fmt: skip
    assert wf.CLOSURES == ("fixed", "duplicate", "invalid", "not_responsible", "no_further_action")
    assert set(wf.ACTIONS) == {
        "accept", "start", "ask", "resolve", "transfer", "reject", "extend",
        "approve-extension", "deny-extension", "close", "rework", "answer", "confirm", "reopen",
        "recheck",
    }  # fmt: skip


@pytest.mark.parametrize(("status", "action", "role"), FULL_PRODUCT)
def test_every_status_action_and_role(status: str, action: str, role: str) -> None:
    facts = EXTENSION_FACTS if action in (wf.APPROVE_EXTENSION, wf.DENY_EXTENSION) else FACTS
    closure = MAIN_CLOSURE if action == wf.CLOSE else None
    outcome = decide(status, action, role, closure=closure, facts=facts)
    cell = EXPECTED[(status, action, role)]
    if cell == "-":
        assert isinstance(outcome, Refusal) and outcome.reason == wf.ILLEGAL_TRANSITION
        assert status in outcome.message and action in outcome.message
    elif cell == "x":
        assert isinstance(outcome, Refusal) and outcome.reason == wf.ROLE_NOT_ALLOWED
    else:
        assert outcome == Transition(action, status, cell, closure)


# ---------- closing: every closure from every status ----------

# Closing by each role that may close, with every closure, from every status: "closed" or the
# refusal's reason (illegal: illegal_transition; fixed-only: closure_not_allowed).
CLOSE_TABLE = """
role        closure            triage  routed     accepted   in_progress waiting    resolved closed
supervisor  fixed              illegal fixed-only fixed-only fixed-only  fixed-only closed   illegal
supervisor  duplicate          illegal closed     closed     closed      closed     closed   illegal
supervisor  invalid            illegal closed     closed     closed      closed     closed   illegal
supervisor  not_responsible    illegal closed     closed     closed      closed     closed   illegal
supervisor  no_further_action  illegal closed     closed     closed      closed     closed   illegal
admin       fixed              fixed-only illegal illegal    illegal     illegal    illegal  illegal
admin       duplicate          closed  illegal    illegal    illegal     illegal    illegal  illegal
admin       invalid            closed  illegal    illegal    illegal     illegal    illegal  illegal
admin       not_responsible    closed  illegal    illegal    illegal     illegal    illegal  illegal
admin       no_further_action  closed  illegal    illegal    illegal     illegal    illegal  illegal
"""
CLOSE_REASONS = {"illegal": wf.ILLEGAL_TRANSITION, "fixed-only": wf.CLOSURE_NOT_ALLOWED}
CLOSE_CASES = [
    (role, closure, status, cell)
    for role, closure, *cells in (line.split() for line in CLOSE_TABLE.strip().splitlines()[1:])
    for status, cell in zip(wf.STATUSES, cells, strict=True)
]


def test_the_close_table_covers_every_closure_and_status() -> None:
    assert sorted((r, c, s) for r, c, s, _ in CLOSE_CASES) == sorted(
        (r, c, s) for r in (wf.SUPERVISOR, wf.ADMIN) for c in wf.CLOSURES for s in wf.STATUSES
    )


@pytest.mark.parametrize(("role", "closure", "status", "cell"), CLOSE_CASES)
def test_every_closure_from_every_status(role: str, closure: str, status: str, cell: str) -> None:
    outcome = decide(status, wf.CLOSE, role, closure=closure, facts=FACTS)
    if cell == "closed":
        assert outcome == Transition(wf.CLOSE, status, wf.CLOSED, closure)
    else:
        assert isinstance(outcome, Refusal) and outcome.reason == CLOSE_REASONS[cell]


@pytest.mark.parametrize(
    ("closure", "reason"), [(None, wf.CLOSURE_REQUIRED), ("fixed-ish", wf.UNKNOWN_CLOSURE)]
)
def test_close_needs_a_known_closure(closure: str | None, reason: str) -> None:
    outcome = decide(wf.RESOLVED, wf.CLOSE, wf.SUPERVISOR, closure=closure)
    assert isinstance(outcome, Refusal) and outcome.reason == reason


def test_allowed_closures() -> None:
    assert wf.allowed_closures(wf.RESOLVED) == list(wf.CLOSURES)
    assert wf.allowed_closures(wf.IN_PROGRESS) == [
        "duplicate", "invalid", "not_responsible", "no_further_action"
    ]  # fmt: skip
    assert wf.allowed_closures(wf.CLOSED) == []


# ---------- extensions ----------

# (action, pending) -> outcome for staff and supervisor in accepted / in_progress / waiting:
# "same" keeps the status; otherwise the refusal (EXTENSION_REASONS).
EXTENSION_TABLE = """
action             pending  role        accepted  in_progress  waiting
extend             no       staff       same      same         illegal
extend             no       supervisor  same      same         illegal
extend             yes      staff       pending   pending      illegal
extend             yes      supervisor  pending   pending      illegal
approve-extension  no       staff       role      role         role
approve-extension  no       supervisor  none      none         none
approve-extension  yes      staff       role      role         role
approve-extension  yes      supervisor  same      same         same
deny-extension     no       staff       role      role         role
deny-extension     no       supervisor  none      none         none
deny-extension     yes      staff       role      role         role
deny-extension     yes      supervisor  same      same         same
"""
EXTENSION_REASONS = {
    "illegal": wf.ILLEGAL_TRANSITION,
    "role": wf.ROLE_NOT_ALLOWED,
    "pending": wf.EXTENSION_PENDING,
    "none": wf.NO_EXTENSION_PENDING,
}
EXTENSION_CASES = [
    (action, pending == "yes", role, status, cell)
    for action, pending, role, *cells in (
        line.split() for line in EXTENSION_TABLE.strip().splitlines()[1:]
    )
    for status, cell in zip((wf.ACCEPTED, wf.IN_PROGRESS, wf.WAITING), cells, strict=True)
]


def test_the_extension_table_covers_every_combination() -> None:
    assert len(set(EXTENSION_CASES)) == 3 * 2 * 2 * 3


@pytest.mark.parametrize(("action", "pending", "role", "status", "cell"), EXTENSION_CASES)
def test_extensions(action: str, pending: bool, role: str, status: str, cell: str) -> None:
    outcome = decide(status, action, role, facts=CaseFacts(extension_pending=pending))
    if cell == "same":
        assert outcome == Transition(action, status, status)
    else:
        assert isinstance(outcome, Refusal) and outcome.reason == EXTENSION_REASONS[cell]


# ---------- reporter actions ----------


@pytest.mark.parametrize("resumes_to", [wf.ACCEPTED, wf.IN_PROGRESS])
def test_answer_goes_back_to_where_the_question_was_asked(resumes_to: str) -> None:
    outcome = decide(wf.WAITING, wf.ANSWER, wf.REPORTER, facts=CaseFacts(resumes_to=resumes_to))
    assert outcome == Transition(wf.ANSWER, wf.WAITING, resumes_to)


@pytest.mark.parametrize("closure", wf.CLOSURES)
@pytest.mark.parametrize("already", [False, True])
def test_confirm_a_closed_case_only_when_fixed_and_once(closure: str, already: bool) -> None:
    facts = CaseFacts(closure=closure, confirmed_by_caller=already)
    outcome = decide(wf.CLOSED, wf.CONFIRM, wf.REPORTER, facts=facts)
    if closure != wf.FIXED:
        assert isinstance(outcome, Refusal) and outcome.reason == wf.NOT_FIXED
        assert closure in outcome.message
    elif already:
        assert isinstance(outcome, Refusal) and outcome.reason == wf.ALREADY_CONFIRMED
    else:
        assert outcome == Transition(wf.CONFIRM, wf.CLOSED, wf.CLOSED)


def test_confirm_a_resolved_case_once() -> None:
    first = decide(wf.RESOLVED, wf.CONFIRM, wf.REPORTER, facts=CaseFacts())
    assert first == Transition(wf.CONFIRM, wf.RESOLVED, wf.RESOLVED)
    again = decide(wf.RESOLVED, wf.CONFIRM, wf.REPORTER, facts=CaseFacts(confirmed_by_caller=True))
    assert isinstance(again, Refusal) and again.reason == wf.ALREADY_CONFIRMED


@pytest.mark.parametrize(
    ("closed_ago", "window", "allowed"),
    [
        (timedelta(0), wf.DEFAULT_REOPEN_WINDOW, True),
        (timedelta(days=7), wf.DEFAULT_REOPEN_WINDOW, True),
        (timedelta(days=7, seconds=1), wf.DEFAULT_REOPEN_WINDOW, False),
        (timedelta(days=30), wf.DEFAULT_REOPEN_WINDOW, False),
        (timedelta(days=2), timedelta(days=1), False),
        (timedelta(days=2), timedelta(days=3), True),
    ],
)
def test_reopen_within_the_window_passed_in(
    closed_ago: timedelta, window: timedelta, allowed: bool
) -> None:
    facts = CaseFacts(closure=wf.FIXED, closed_at=NOW - closed_ago, now=NOW, reopen_window=window)
    outcome = decide(wf.CLOSED, wf.REOPEN, wf.REPORTER, facts=facts)
    if allowed:
        assert outcome == Transition(wf.REOPEN, wf.CLOSED, wf.ROUTED)
    else:
        assert isinstance(outcome, Refusal) and outcome.reason == wf.REOPEN_WINDOW_PASSED
        assert f"{window / timedelta(days=1):g} days" in outcome.message


def test_reopen_without_known_times_is_refused() -> None:
    outcome = decide(wf.CLOSED, wf.REOPEN, wf.REPORTER, facts=CaseFacts(closure=wf.INVALID))
    assert isinstance(outcome, Refusal) and outcome.reason == wf.REOPEN_WINDOW_PASSED


def test_a_case_closed_from_triage_reopens_to_triage() -> None:
    facts = CaseFacts(closure=wf.INVALID, closed_at=NOW, now=NOW, has_office=False)
    outcome = decide(wf.CLOSED, wf.REOPEN, wf.REPORTER, facts=facts)
    assert outcome == Transition(wf.REOPEN, wf.CLOSED, wf.TRIAGE)


# ---------- still fixed? ----------

# A fix closed a day ago that the caller was offered to check.
RECHECK_FACTS = CaseFacts(
    closure=wf.FIXED, closed_at=NOW - timedelta(days=1), now=NOW, recheck_offered=True
)

# (the caller's answer, other reporters' "not fixed" so far) -> the outcome: "same" keeps the
# case closed (action recheck); "rework" sends it back to in_progress (action rework).
RECHECK_TABLE = """
answer   others  outcome
None     0       same
None     1       same
None     2       same
yes      0       same
yes      1       same
yes      3       same
no       0       same
no       1       rework
no       2       rework
"""
ANSWERS = {"None": None, "yes": True, "no": False}
RECHECK_CASES = [
    (ANSWERS[answer], int(others), outcome)
    for answer, others, outcome in (line.split() for line in RECHECK_TABLE.strip().splitlines()[1:])
]


@pytest.mark.parametrize(("still_fixed", "others", "outcome"), RECHECK_CASES)
def test_a_second_reporters_no_sends_the_fix_back_to_work(
    still_fixed: bool | None, others: int, outcome: str
) -> None:
    facts = replace(RECHECK_FACTS, recheck_still_fixed=still_fixed, not_fixed_by_others=others)
    decided = decide(wf.CLOSED, wf.RECHECK, wf.REPORTER, facts=facts)
    if outcome == "same":
        assert decided == Transition(wf.RECHECK, wf.CLOSED, wf.CLOSED)
    else:
        assert decided == Transition(wf.REWORK, wf.CLOSED, wf.IN_PROGRESS)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"closure": wf.DUPLICATE}, wf.NOT_FIXED),
        ({"closure": wf.INVALID, "recheck_offered": False}, wf.NOT_FIXED),
        ({"closed_at": NOW - timedelta(days=14, seconds=1)}, wf.RECHECK_WINDOW_PASSED),
        ({"closed_at": None}, wf.RECHECK_WINDOW_PASSED),
        ({"recheck_window": timedelta(hours=12)}, wf.RECHECK_WINDOW_PASSED),
        ({"recheck_offered": False}, wf.RECHECK_NOT_OFFERED),
        ({"rechecked_by_caller": True}, wf.ALREADY_RECHECKED),
        ({"rechecked_by_caller": True, "recheck_still_fixed": False}, wf.ALREADY_RECHECKED),
    ],
)
def test_recheck_refusals(changes: dict[str, Any], reason: str) -> None:
    facts = replace(RECHECK_FACTS, not_fixed_by_others=1, **changes)
    outcome = decide(wf.CLOSED, wf.RECHECK, wf.REPORTER, facts=facts)
    assert isinstance(outcome, Refusal) and outcome.reason == reason


def test_recheck_at_the_edge_of_the_window() -> None:
    facts = replace(RECHECK_FACTS, closed_at=NOW - wf.DEFAULT_RECHECK_WINDOW)
    outcome = decide(wf.CLOSED, wf.RECHECK, wf.REPORTER, facts=facts)
    assert outcome == Transition(wf.RECHECK, wf.CLOSED, wf.CLOSED)


def test_recheck_is_listed_only_for_an_offered_check_not_yet_answered() -> None:
    assert allowed_actions(wf.CLOSED, wf.REPORTER, RECHECK_FACTS) == [
        "confirm", "reopen", "recheck"
    ]  # fmt: skip
    for changes in ({"recheck_offered": False}, {"rechecked_by_caller": True}):
        facts = replace(RECHECK_FACTS, **changes)
        assert "recheck" not in allowed_actions(wf.CLOSED, wf.REPORTER, facts)


# ---------- allowed actions ----------

ALLOWED = {
    (wf.TRIAGE, wf.ADMIN): ["transfer", "close"],
    (wf.ROUTED, wf.STAFF): ["accept", "transfer", "reject"],
    (wf.ROUTED, wf.SUPERVISOR): ["accept", "transfer", "reject", "close"],
    (wf.ACCEPTED, wf.STAFF): ["start", "ask", "resolve", "transfer", "extend"],
    (wf.ACCEPTED, wf.SUPERVISOR): ["start", "ask", "resolve", "transfer", "extend", "close"],
    (wf.IN_PROGRESS, wf.STAFF): ["ask", "resolve", "transfer", "extend"],
    (wf.IN_PROGRESS, wf.SUPERVISOR): ["ask", "resolve", "transfer", "extend", "close"],
    (wf.WAITING, wf.SUPERVISOR): ["close"],
    (wf.WAITING, wf.REPORTER): ["answer"],
    (wf.RESOLVED, wf.SUPERVISOR): ["close", "rework"],
    (wf.RESOLVED, wf.REPORTER): ["confirm"],
    (wf.CLOSED, wf.REPORTER): ["confirm", "reopen", "recheck"],
}


@pytest.mark.parametrize("status", wf.STATUSES)
@pytest.mark.parametrize("role", wf.ROLES)
def test_allowed_actions_of_every_status_and_role(status: str, role: str) -> None:
    assert allowed_actions(status, role, FACTS) == ALLOWED.get((status, role), [])


def test_allowed_actions_follow_a_pending_extension() -> None:
    assert allowed_actions(wf.IN_PROGRESS, wf.SUPERVISOR, EXTENSION_FACTS) == [
        "ask", "resolve", "transfer", "approve-extension", "deny-extension", "close"
    ]  # fmt: skip
    assert allowed_actions(wf.WAITING, wf.SUPERVISOR, EXTENSION_FACTS) == [
        "approve-extension", "deny-extension", "close"
    ]  # fmt: skip
    assert allowed_actions(wf.IN_PROGRESS, wf.STAFF, EXTENSION_FACTS) == [
        "ask", "resolve", "transfer"
    ]  # fmt: skip


def test_unknown_actions_and_statuses() -> None:
    outcome = decide(wf.ROUTED, "teleport", wf.STAFF)
    assert isinstance(outcome, Refusal) and outcome.reason == wf.UNKNOWN_ACTION
    with pytest.raises(ValueError, match="unknown case status"):
        decide("lost", wf.ACCEPT, wf.STAFF)
