"""Who is calling: ``Authorization: Bearer <key>``, checked by one look-up that holds no lock and
no transaction (web.db.lookup_session)."""

from __future__ import annotations

from flask import request

from services.accounts import Caller, find_key
from web.db import lookup_session
from web.errors import ApiError


def authenticate(*roles: str) -> Caller:
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
    caller = caller_for_key(token.strip())
    if caller is None:
        raise ApiError(
            401,
            "unauthorized",
            "The API key is unknown, revoked or expired.",
            {"Authorization": ["Unknown, revoked or expired key."]},
            {"WWW-Authenticate": 'Bearer realm="cityrelay", error="invalid_token"'},
        )
    if caller.role not in roles:
        raise ApiError(403, "forbidden", f"This key's role '{caller.role}' may not do this.")
    return caller


def caller_for_key(key: str) -> Caller | None:
    """The caller holding ``key``; None for an unknown, revoked or expired key."""
    with lookup_session() as session:
        return find_key(session, key)
