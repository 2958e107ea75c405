"""The office queue's page cursors, shared by /api/v1/offices/<code>/queue and the console's
queue: an opaque token for where a page ended, and its strict reading back."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from models.queries import QueuePosition
from web.urls import MAX_ROW_ID

MAX_CURSOR_CHARS = 200


def encode_cursor(position: QueuePosition) -> str:
    due = position.due_at.isoformat() if position.due_at is not None else None
    raw = json.dumps({"d": due, "i": position.case_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> QueuePosition:
    """The position a ``next_cursor`` stands for; ValueError for anything else."""
    if len(cursor) > MAX_CURSOR_CHARS:
        raise ValueError("not a cursor from this queue")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
        due, case_id = value["d"], value["i"]
        due_at = datetime.fromisoformat(due) if due is not None else None
        # Naive times and times that leave the calendar in UTC are no queue's positions.
        due_at = due_at.astimezone(UTC) if due_at is not None and due_at.tzinfo else due_at
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError, OverflowError):
        raise ValueError("not a cursor from this queue") from None
    if due_at is not None and due_at.tzinfo is None:
        raise ValueError("not a cursor from this queue")
    if not isinstance(case_id, int) or isinstance(case_id, bool) or not 0 <= case_id <= MAX_ROW_ID:
        raise ValueError("not a cursor from this queue")
    return QueuePosition(due_at, case_id)
