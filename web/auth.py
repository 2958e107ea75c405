"""Who is calling: ``Authorization: Bearer <key>``, checked on a read-only session so that
authenticating never holds a write lock."""

from __future__ import annotations

from flask import request

from services.accounts import Caller, find_key
from web.db import read_session
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
    caller = find_key(read_session(), token.strip())
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
