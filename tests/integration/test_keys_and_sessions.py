"""API keys end: `cityrelay revoke-key`, and keys made with an expiry; console logins end:
after ``CONSOLE_SESSION_HOURS``, idle or not, and the session cookie says so."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cityrelay.cli import main
from cityrelay.settings import load_settings
from models.base import utcnow
from models.entities import ApiKey
from models.session import unit_of_work
from services.accounts import KEY_PREFIX_CHARS, find_key, issue_key, register_reporter
from tests.integration.test_console import OFFICE, log_in, make_user
from web.sessions import SESSION_SIGNED_IN_AT

ME = "/api/v1/reporters/me"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# ---------------------------------------------------------------- keys


@pytest.mark.committed  # the command line opens its own connection
def test_a_key_revoked_on_the_command_line_answers_401(
    database_url: str, client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": database_url}
    made = runner.invoke(main, ["create-key", "--role", "reporter", "--name", "王师傅"], env=env)
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    assert client.get(ME, headers=bearer(key)).status_code == 200

    revoked = runner.invoke(main, ["revoke-key", key[:KEY_PREFIX_CHARS]], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert "revoked" in revoked.output and "王师傅" in revoked.output
    refused = client.get(ME, headers=bearer(key))
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == "unauthorized"
    again = runner.invoke(main, ["revoke-key", key], env=env)
    assert again.exit_code == 0 and "was revoked at" in again.output

    # By id, too; another key is untouched.
    office = runner.invoke(main, ["create-key", "--role", "office:PD-HG-02"], env=env)
    other = runner.invoke(main, ["create-key", "--role", "admin"], env=env)
    with unit_of_work(sessions) as session:
        office_caller = find_key(session, office.stdout.strip())
    assert office_caller is not None and office_caller.key_id is not None
    by_id = runner.invoke(main, ["revoke-key", str(office_caller.key_id)], env=env)
    assert by_id.exit_code == 0, by_id.output
    with unit_of_work(sessions) as session:
        assert find_key(session, office.stdout.strip()) is None
        assert find_key(session, other.stdout.strip()) is not None

    for unknown in ("999999999", "cr_nosuchkey1", "99999999999"):
        missing = runner.invoke(main, ["revoke-key", unknown], env=env)
        assert missing.exit_code != 0 and "No key" in missing.output
    short = runner.invoke(main, ["revoke-key", "cr_x"], env=env)
    assert short.exit_code != 0 and "prefix" in short.output
    helped = runner.invoke(main, ["revoke-key", "--help"])
    assert "prefix" in helped.output and "401" in helped.output


@pytest.mark.committed  # the command line opens its own connection
def test_a_key_made_with_an_expiry_works_until_then(
    database_url: str, client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": database_url}
    made = runner.invoke(
        main, ["create-key", "--role", "reporter", "--expires-in-days", "2"], env=env
    )
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    assert key.startswith("cr_") and "expires" in made.stderr
    assert client.get(ME, headers=bearer(key)).status_code == 200
    with unit_of_work(sessions) as session:
        row = session.scalars(select(ApiKey).where(ApiKey.prefix == key[:KEY_PREFIX_CHARS])).one()
        assert row.expires_at is not None
        assert timedelta(days=1, hours=23) < row.expires_at - utcnow() <= timedelta(days=2)
    never = runner.invoke(main, ["create-key", "--role", "admin", "--expires-in-days", "0"])
    assert never.exit_code != 0
    helped = runner.invoke(main, ["create-key", "--help"])
    assert "--expires-in-days" in helped.output


def test_an_expired_key_answers_401_like_a_revoked_one(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    with unit_of_work(sessions) as session:
        _reporter, expired = register_reporter(session, expires_at=utcnow() - timedelta(seconds=1))
        _reporter, current = register_reporter(session, expires_at=utcnow() + timedelta(hours=1))
        _row, office_key = issue_key(
            session, "office", office_code=OFFICE, expires_at=utcnow() - timedelta(days=1)
        )
    refused = client.get(ME, headers=bearer(expired))
    assert refused.status_code == 401
    assert "expired" in refused.get_json()["error"]["message"]
    assert client.get(ME, headers=bearer(current)).status_code == 200
    assert client.get(
        f"/api/v1/offices/{OFFICE}/queue", headers=bearer(office_key)
    ).status_code == (401)
    # Open311 refuses it too.
    answer = client.post(
        "/open311/v2/requests.json", data={"api_key": expired, "service_code": "bin_overflow"}
    )
    assert answer.status_code == 403


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
