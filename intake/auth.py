"""API keys: ``Authorization: Bearer <key>``. Only a SHA-256 of each key is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import request
from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.errors import ApiError
from models.entities import ApiKey

KEY_PREFIX_CHARS = 12


def new_key() -> str:
    return "cr_" + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def find_key(session: Session, key: str) -> ApiKey | None:
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == key[:KEY_PREFIX_CHARS]))
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, hash_key(key)):
        return None
    return row


def bearer_key(session: Session, *roles: str) -> ApiKey:
    """The caller's key, which must carry one of ``roles``; 401 or 403 otherwise."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthorized",
            "Send an API key as 'Authorization: Bearer <key>'.",
            {"Authorization": ["Missing bearer token."]},
            {"WWW-Authenticate": 'Bearer realm="cityrelay"'},
        )
    key = find_key(session, token.strip())
    if key is None:
        raise ApiError(
            401,
            "unauthorized",
            "The API key is unknown or revoked.",
            {"Authorization": ["Unknown or revoked key."]},
            {"WWW-Authenticate": 'Bearer realm="cityrelay", error="invalid_token"'},
        )
    if key.role not in roles:
        raise ApiError(403, "forbidden", f"This key's role '{key.role}' may not do this.")
    return key
