"""Console logins end: after ``CONSOLE_SESSION_HOURS``, idle or not, and the session cookie
says so."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner
from sqlalchemy.orm import Session, sessionmaker

from cityrelay.settings import load_settings
from tests.integration.test_console import OFFICE, log_in, make_user
from web.sessions import SESSION_SIGNED_IN_AT

ME = "/api/v1/reporters/me"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# ---------------------------------------------------------------- console sessions


def signed_in(app: Flask, sessions: sessionmaker[Session]) -> FlaskClient:
    client = app.test_client()
    assert log_in(client, *make_user(sessions, "staff", OFFICE)).status_code == 303
    assert client.get("/console").status_code == 200
    return client


def test_a_login_lasts_console_session_hours(
    make_app: Callable[..., Flask], sessions: sessionmaker[Session]
) -> None:
    app = make_app(CONSOLE_SESSION_HOURS=3)
    client = app.test_client()
    username, password = make_user(sessions, "staff", OFFICE)
    answer = log_in(client, username, password)
    assert answer.status_code == 303
    set_cookie = answer.headers["Set-Cookie"]
    assert "Expires=" in set_cookie and "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None and cookie.expires is not None
    left = cookie.expires.timestamp() - time.time()
    assert 3 * 3600 - 60 < left <= 3 * 3600 + 1


def test_a_login_older_than_the_lifetime_no_longer_signs_in(
    app: Flask, sessions: sessionmaker[Session]
) -> None:
    client = signed_in(app, sessions)
    lifetime = app.permanent_session_lifetime.total_seconds()
    assert lifetime == 12 * 3600
    with client.session_transaction() as session:
        session[SESSION_SIGNED_IN_AT] = int(time.time() - lifetime - 60)
    assert client.get("/console").status_code == 302
    # Signed out for good: the session no longer names the user.
    with client.session_transaction() as session:
        assert "user_id" not in session


def test_a_session_idle_longer_than_the_lifetime_is_refused(
    app: Flask, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = signed_in(app, sessions)
    # The cookie as the last answer 13 hours ago signed it (the login itself stays recent).
    signed_then = int(time.time() - 13 * 3600)
    with client.session_transaction() as session:
        data = dict(session)
    assert "user_id" in data
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: signed_then)
    old_cookie = serializer.dumps(data)
    monkeypatch.undo()
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], old_cookie)
    assert client.get("/console").status_code == 302


def test_the_session_cookie_is_secure_when_the_setting_says_so(
    make_app: Callable[..., Flask],
) -> None:
    assert load_settings({"CITYRELAY_SESSION_COOKIE_SECURE": "true"})["SESSION_COOKIE_SECURE"]
    assert not load_settings({})["SESSION_COOKIE_SECURE"]
    assert load_settings({})["CONSOLE_SESSION_HOURS"] == 12
    secure = make_app(SESSION_COOKIE_SECURE=True).test_client().get("/console/login")
    cookie = secure.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
