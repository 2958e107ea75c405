"""A case's history as a reporter may see it: what happened and when, the words offices wrote
for the reporters, and the photos of the work done; never who at the office acted, nor which key.

What is public:

- every event of the case but an office's request for more time and a supervisor's refusal of
  it (``extend``, ``deny-extension``: an office's internal business); an approved extension is
  shown (the due time moved), without its reason;
- the note of ``ask`` (the question), ``resolve``, ``close`` and ``transfer`` (written for the
  reporters), and the words of reporters (``answer``, ``confirm``, ``reopen``); every other
  note (a rework order, a rejection, the system's own explanations) stays with the office;
- of an event's detail only the facts the page puts in words (category, confidence, due time,
  triage reason, closure, hours, the offices of a transfer): never ``key_id``;
- the after-photos of ``resolve``, as URLs under /media (served like the reports' photos).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from flask import url_for

from models.entities import Case, CaseEvent, Office
from routing import workflow as wf

HIDDEN_ACTIONS = frozenset({wf.EXTEND, wf.DENY_EXTENSION})
PUBLIC_NOTE_ACTIONS = frozenset(
    {wf.ASK, wf.RESOLVE, wf.CLOSE, wf.TRANSFER, wf.ANSWER, wf.CONFIRM, wf.REOPEN}
)
PUBLIC_DETAIL_KEYS = (
    "category",
    "method",
    "confidence",
    "due_at",
    "triage_reason",
    "closure",
    "closure_before",
    "hours",
    "from_office",
    "to_office",
    "rework",
)
_REPORTER_ACTIONS = frozenset(wf.REPORTER_ACTIONS)


# Event actions whose notes and details are the office's working record (rework orders, extension
# reasons, rejection reasons, escalations, other people's rechecks), not words for the public.
_INTERNAL_ACTIONS = (frozenset(wf.ACTIONS) | {"rejected", "escalate"}) - PUBLIC_NOTE_ACTIONS
# Detail keys that name people or what they earned: never in a public answer.
_PRIVATE_DETAIL_KEYS = frozenset(
    {
        "key_id",
        "user_id",
        "reporter_id",
        "points",
        "recheck_id",
        "recheck_ids",
        "report_id",
        "report_ids",
    }
)
# The pipeline's notes of these actions name a report of the case by its id ("Report 12
# received via api."): the public reads "A report" instead, so that no reader of one report
# learns the ids of the others in its case.
_NOTES_NAMING_REPORTS = frozenset({"received", "merged", "split"})
_REPORT_ID_IN_NOTE = re.compile(r"\bReport \d+\b")
# Decimals of a public latitude or longitude: 0.001 degree is about 100 m.
PUBLIC_COORDINATE_DECIMALS = 3


def public_coordinate(value: float | None) -> float | None:
    """A latitude or longitude as the public reads it: rounded to about 100 m."""
    return None if value is None else round(value, PUBLIC_COORDINATE_DECIMALS)


def office_ref(office: Office | None) -> dict[str, str] | None:
    if office is None:
        return None
    return {"code": office.code, "name": office.name, "name_en": office.name_en}


def _who(event: CaseEvent) -> str:
    if event.action in _REPORTER_ACTIONS or event.actor.startswith("reporter:"):
        return "reporter"
    if event.action in wf.OFFICE_ACTIONS:
        return "office"
    return "system"


def _photos(event: CaseEvent) -> list[dict[str, Any]]:
    if event.action != wf.RESOLVE:
        return []
    return [
        {
            "url": url_for("media.photo", name=photo["filename"], _external=True),
            "content_type": photo["content_type"],
            "size_bytes": photo["size_bytes"],
        }
        for photo in event.detail.get("photos") or []
    ]


def public_actor(event: CaseEvent) -> str:
    """Who acted, without naming people: reporters are "reporter", console users their office."""
    if event.actor.startswith("reporter:"):
        return "reporter"
    if event.actor.startswith("user:"):
        return f"office:{event.office.code}" if event.office else "office"
    return event.actor


def public_event(event: CaseEvent) -> dict[str, Any]:
    """One event of the public report's ``events``: the pipeline's explanations in full, the
    office's internal notes and details left out, and nobody's identity or points."""
    detail = event.detail or {}
    if event.action in _INTERNAL_ACTIONS:
        note = ""
        detail = {key: detail[key] for key in PUBLIC_DETAIL_KEYS if key in detail}
    else:
        note = event.note
        if event.action in _NOTES_NAMING_REPORTS:
            note = _REPORT_ID_IN_NOTE.sub("A report", note)
        detail = {k: v for k, v in detail.items() if k not in _PRIVATE_DETAIL_KEYS}
    return {
        "at": event.at,
        "action": event.action,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "actor": public_actor(event),
        "office": office_ref(event.office),
        "note": note,
        "detail": detail,
    }


def public_timeline(case: Case) -> list[dict[str, Any]]:
    """The case's events as reporters may see them, oldest first."""
    entries = []
    for event in case.events:
        if event.action in HIDDEN_ACTIONS:
            continue
        detail = event.detail or {}
        entries.append(
            {
                "at": event.at,
                "action": event.action,
                "from_status": event.from_status,
                "status": event.to_status,
                "by": _who(event),
                "office": office_ref(event.office),
                "note": event.note if event.action in PUBLIC_NOTE_ACTIONS else "",
                "detail": {key: detail[key] for key in PUBLIC_DETAIL_KEYS if key in detail},
                "photos": _photos(event),
            }
        )
    return entries


def after_photos(timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The photos of the latest resolution (none once the case went back to work)."""
    for entry in reversed(timeline):
        if entry["action"] == wf.RESOLVE:
            return list(entry["photos"])
        if entry["action"] in (wf.REWORK, wf.REOPEN):
            return []
    return []


def reopen_until(case: Case, window: timedelta) -> datetime | None:
    """Until when a closed case may be reopened; None unless it is closed."""
    if case.status != wf.CLOSED:
        return None
    closed_at = next((e.at for e in reversed(case.events) if e.action == wf.CLOSE), None)
    return closed_at + window if closed_at is not None else None
