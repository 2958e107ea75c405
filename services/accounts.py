"""Reporters and API keys. Keys are issued here and nowhere else; only a SHA-256 of each key is
stored, and its first characters find the row without a table scan."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from models.base import utcnow
from models.entities import KEY_ROLES, ApiKey, Office, Reporter
from services.errors import InvalidField, NotFound

KEY_PREFIX_CHARS = 12
# Keys that belong to an office: its staff, and its supervisors.
OFFICE_KEY_ROLES = ("office", "supervisor")
DEFAULT_DISPLAY_NAME = "骑手"


def new_key() -> str:
    return "cr_" + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    """Who acts: the holder of a key, or a console user, as plain values that outlive the
    session that found them. A console user acts with the role its kind of key would have
    (``office`` for staff) and is named by ``user_id`` and ``username`` instead of a key."""

    key_id: int | None
    role: str
    reporter_id: int | None
    office_id: int | None
    office_code: str | None
    user_id: int | None = None
    username: str | None = None

    @property
    def assignee(self) -> str:
        """How a case names this caller once it accepted it."""
        return f"user:{self.user_id}" if self.user_id is not None else f"key:{self.key_id}"


# One statement, built once: the key's row and its office's code (no second look-up for an
# office's key), as plain columns, since a caller outlives the session that found it.
_KEY_BY_PREFIX = (
    select(
        ApiKey.id,
        ApiKey.key_hash,
        ApiKey.role,
        ApiKey.reporter_id,
        ApiKey.office_id,
        ApiKey.revoked_at,
        ApiKey.expires_at,
        Office.code,
    )
    .outerjoin(Office, Office.id == ApiKey.office_id)
    .where(ApiKey.prefix == bindparam("prefix"))
)


def find_key(session: Session, key: str) -> Caller | None:
    """The caller holding ``key``; None for an unknown, revoked or expired key."""
    row = session.execute(_KEY_BY_PREFIX, {"prefix": key[:KEY_PREFIX_CHARS]}).first()
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= utcnow():
        return None
    if not hmac.compare_digest(row.key_hash, hash_key(key)):
        return None
    return Caller(
        key_id=row.id,
        role=row.role,
        reporter_id=row.reporter_id,
        office_id=row.office_id,
        office_code=row.code,
    )


def issue_key(
    session: Session,
    role: str,
    *,
    reporter: Reporter | None = None,
    office_code: str | None = None,
    label: str = "",
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key row and the key itself, which is shown once and never stored.

    ``role`` is "reporter" (with ``reporter``), "office" (staff of ``office_code``),
    "supervisor" (of ``office_code`` and every office under it) or "admin". From
    ``expires_at`` on (None: never) the key is refused like a revoked one."""
    if role not in KEY_ROLES:
        raise InvalidField(
            "role", "reporter, office:<office code>, supervisor:<office code> or admin"
        )
    if role == "reporter" and reporter is None:
        raise InvalidField("role", "A reporter key needs its reporter.")
    office = None
    if role in OFFICE_KEY_ROLES:
        office = session.scalar(select(Office).where(Office.code == office_code))
        if office is None:
            raise NotFound(f"No office with code '{office_code}'.", field="role")
    key = new_key()
    row = ApiKey(
        prefix=key[:KEY_PREFIX_CHARS],
        key_hash=hash_key(key),
        role=role,
        reporter=reporter,
        office=office,
        label=label,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return row, key


def revoke_key(session: Session, which: str) -> tuple[ApiKey, bool]:
    """Revokes the key named by ``which``: its id, its prefix (the first
    ``KEY_PREFIX_CHARS`` characters of the key) or the whole key. Returns the row and whether
    this call revoked it (False: it was revoked before, and keeps its first revocation time)."""
    which = which.strip()
    if which.isascii() and which.isdigit():
        # Beyond the integer column (PostgreSQL refuses the comparison) no row can match.
        row = session.get(ApiKey, int(which)) if int(which) < 2**31 else None
    elif len(which) >= KEY_PREFIX_CHARS:
        row = session.scalar(select(ApiKey).where(ApiKey.prefix == which[:KEY_PREFIX_CHARS]))
    else:
        raise InvalidField(
            "key", f"A key id, or a key prefix of {KEY_PREFIX_CHARS} characters, or the key."
        )
    if row is None:
        raise NotFound(f"No key '{which[:KEY_PREFIX_CHARS]}'.", field="key")
    if row.revoked_at is not None:
        return row, False
    row.revoked_at = utcnow()
    session.flush()
    return row, True


def register_reporter(
    session: Session,
    *,
    display_name: str = "",
    occupation: str = "rider",
    platform: str = "",
    label: str = "",
    expires_at: datetime | None = None,
) -> tuple[Reporter, str]:
    """A new reporter with its key (the key is shown once; see ``issue_key``)."""
    reporter = Reporter(
        display_name=display_name.strip() or DEFAULT_DISPLAY_NAME,
        occupation=occupation,
        platform=platform,
    )
    session.add(reporter)
    _row, key = issue_key(
        session, "reporter", reporter=reporter, label=label, expires_at=expires_at
    )
    return reporter, key
