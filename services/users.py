"""Console logins: staff, supervisors and the triage desk sign in to the office console with a
username and a password. Only an argon2id hash of a password is stored; a new user gets a
one-time password, shown once, that must be changed at the first login. Nothing here commits."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from models.base import utcnow
from models.entities import USER_ROLES, Office, User
from models.limits import MAX_DISPLAY_NAME_CHARS, MAX_USERNAME_CHARS
from services.accounts import Caller
from services.errors import Conflict, InvalidField, NotFound

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 200
ONE_TIME_PASSWORD_BYTES = 15  # 20 URL-safe characters, 120 bits
USERNAME_PATTERN = re.compile(rf"^[a-z0-9][a-z0-9._-]{{1,{MAX_USERNAME_CHARS - 1}}}$")
# A user acts on cases with the role a key of the same kind has (services.casework).
CALLER_ROLE_OF = {"staff": "office", "supervisor": "supervisor", "admin": "admin"}

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Checked for unknown usernames, so that a wrong name costs as long as a wrong password.
    Made at a process's first login rather than at import: hashing takes argon2's memory (64 MiB
    by default) and tens of milliseconds, which every process importing this module (Celery
    workers and beat too) would otherwise pay for nothing."""
    return _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class ConsoleUser:
    """A signed-in user as plain values."""

    id: int
    username: str
    display_name: str
    role: str
    office_id: int
    office_code: str
    must_change_password: bool
    # Stored in the console session at login; a session whose epoch is no longer the user's
    # (the password changed since) signs no one in.
    session_epoch: str

    @property
    def caller(self) -> Caller:
        return Caller(
            key_id=None,
            role=CALLER_ROLE_OF[self.role],
            reporter_id=None,
            office_id=self.office_id,
            office_code=self.office_code,
            user_id=self.id,
            username=self.username,
        )


def _plain(user: User) -> ConsoleUser:
    return ConsoleUser(
        id=user.id,
        username=user.username,
        display_name=user.display_name or user.username,
        role=user.role,
        office_id=user.office_id,
        office_code=user.office.code,
        must_change_password=user.must_change_password,
        session_epoch=session_epoch_of(user.password_hash),
    )


def session_epoch_of(password_hash: str) -> str:
    """A short fingerprint of the password hash: it changes with every new password, so the
    sessions made before a change end without a column of their own, and it gives nothing of
    the hash away."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def new_one_time_password() -> str:
    return secrets.token_urlsafe(ONE_TIME_PASSWORD_BYTES)


def normalize_username(username: str) -> str:
    return username.strip().lower()


def create_user(
    session: Session,
    *,
    username: str,
    office_code: str,
    role: str,
    display_name: str = "",
) -> tuple[ConsoleUser, str]:
    """A new console user and its one-time password (shown once, never stored)."""
    name = normalize_username(username)
    if not USERNAME_PATTERN.match(name):
        raise InvalidField(
            "username",
            f"2 to {MAX_USERNAME_CHARS} characters: lower-case letters, digits, '.', '_' or "
            "'-', starting with a letter or digit.",
        )
    if role not in USER_ROLES:
        raise InvalidField("role", "staff, supervisor or admin.")
    if len(display_name.strip()) > MAX_DISPLAY_NAME_CHARS:
        raise InvalidField("display_name", f"At most {MAX_DISPLAY_NAME_CHARS} characters.")
    office = session.scalar(select(Office).where(Office.code == office_code))
    if office is None:
        raise NotFound(f"No office with code '{office_code}'.", field="office")
    if session.scalar(select(User.id).where(func.lower(User.username) == name)) is not None:
        raise Conflict(f"A user named '{name}' already exists.", code="username_taken")
    password = new_one_time_password()
    user = User(
        username=name,
        password_hash=hash_password(password),
        must_change_password=True,
        role=role,
        office=office,
        display_name=display_name.strip(),
    )
    session.add(user)
    session.flush()
    return _plain(user), password


def authenticate(
    session: Session, username: str, password: str, now: datetime | None = None
) -> ConsoleUser | None:
    """The user when the password is right and the user not disabled; None otherwise, after
    about the same work whether or not the username exists. Records the login and brings an
    old hash up to the hasher's current parameters."""
    # Before the lookup, so that a process's first login costs the same for any username.
    dummy_hash = _dummy_hash()
    name = normalize_username(username)
    user = session.scalar(
        select(User).where(User.username == name).options(selectinload(User.office))
    )
    if user is None:
        _verify(dummy_hash, password)
        return None
    if not _verify(user.password_hash, password) or user.disabled_at is not None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now or utcnow()
    session.flush()
    return _plain(user)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password[:MAX_PASSWORD_CHARS])
    except (VerificationError, InvalidHashError):
        return False


def change_password(session: Session, user_id: int, old_password: str, new_password: str) -> str:
    """A user's new password, after the old one is proven; clears the first-login demand. Every
    session made before ends; the answer is the session epoch that keeps the caller's own."""
    user = session.get(User, user_id)
    if user is None or user.disabled_at is not None:
        raise NotFound("No such user.")
    if not _verify(user.password_hash, old_password):
        raise InvalidField("old_password", "The current password is wrong.", code="wrong_password")
    if len(new_password) < MIN_PASSWORD_CHARS:
        raise InvalidField(
            "new_password", f"At least {MIN_PASSWORD_CHARS} characters.", code="too_short"
        )
    if len(new_password) > MAX_PASSWORD_CHARS:
        raise InvalidField("new_password", f"At most {MAX_PASSWORD_CHARS} characters.")
    if new_password == old_password:
        raise InvalidField(
            "new_password", "Choose a password other than the current one.", code="unchanged"
        )
    user.password_hash = hash_password(new_password)
    user.must_change_password = False
    session.flush()
    return session_epoch_of(user.password_hash)


def signed_in_user(session: Session, user_id: int, session_epoch: str) -> ConsoleUser | None:
    """The user a console session names, unless it was removed or disabled since or its password
    changed after the session began (``session_epoch`` is no longer the user's)."""
    user = session.scalar(select(User).where(User.id == user_id).options(selectinload(User.office)))
    if user is None or user.disabled_at is not None:
        return None
    plain = _plain(user)
    if not hmac.compare_digest(plain.session_epoch, session_epoch):
        return None
    return plain


def assignee_names(session: Session, assignees: list[str | None]) -> dict[str, str]:
    """Console users' names for the assignees ``user:<id>`` among ``assignees`` (a key's
    ``key:<id>`` has no name to show)."""
    ids = {
        int(assignee.removeprefix("user:"))
        for assignee in assignees
        if assignee and assignee.startswith("user:") and assignee[5:].isdigit()
    }
    if not ids:
        return {}
    rows = session.execute(
        select(User.id, User.username, User.display_name).where(User.id.in_(ids))
    ).all()
    return {f"user:{id_}": display or username for id_, username, display in rows}
