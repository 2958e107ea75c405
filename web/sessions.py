"""The signed session cookie the office console signs in with: HttpOnly, SameSite=Lax, and
Secure whenever the request came over https (behind a proxy that says so, with
``PROXY_FIX_HOPS``) or ``SESSION_COOKIE_SECURE`` is set.

A login lasts ``CONSOLE_SESSION_HOURS``: the session is permanent from the login on, so the
cookie expires in the browser then, and a cookie signed longer ago than that is refused (Flask
checks the signature's time; each answer signs it anew, so this ends an idle session). The time
of the login is kept in the session too, and a login older than that ends however busy the
session was: a stolen cookie cannot be kept alive by using it."""

from __future__ import annotations

import time
from datetime import timedelta

from flask import Flask, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from flask.wrappers import Request, Response
from sqlalchemy.orm import Session

from services import users
from services.users import ConsoleUser

# What the console writes into the session at login (console.views), read by every page that
# needs a signed-in user.
SESSION_USER_ID = "user_id"
SESSION_EPOCH = "epoch"
SESSION_SIGNED_IN_AT = "signed_in_at"  # seconds since the epoch, at the login


def is_static_request() -> bool:
    """Whether this request asks for a static file (the app's or a blueprint's)."""
    endpoint = request.endpoint or ""
    return endpoint == "static" or endpoint.endswith(".static")


class ConsoleSessionInterface(SecureCookieSessionInterface):
    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        # A static file is cached by anyone for a year (web.assets): it must never carry a
        # signed-in user's cookie, which a shared cache would hand to everyone after them.
        if is_static_request():
            return
        super().save_session(app, session, response)

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        opened = super().open_session(app, request)
        if opened is not None and SESSION_USER_ID in opened:
            signed_in_at = opened.get(SESSION_SIGNED_IN_AT)
            lifetime = app.permanent_session_lifetime.total_seconds()
            fresh = isinstance(signed_in_at, int | float) and (
                0 <= time.time() - signed_in_at <= lifetime
            )
            if not fresh:
                # Signed out; what else the session holds (language, CSRF token) stays.
                for name in (SESSION_USER_ID, SESSION_EPOCH, SESSION_SIGNED_IN_AT):
                    opened.pop(name, None)
        return opened


def init_app(app: Flask) -> None:
    """Needs ``SECRET_KEY`` set."""
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError("SECRET_KEY is not set")
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    hours = float(app.config.get("CONSOLE_SESSION_HOURS") or 12)
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=hours)
    app.session_interface = ConsoleSessionInterface()


def start_login(user_id: int, session_epoch: str) -> None:
    """Signs ``user_id`` in on this request's session, for ``CONSOLE_SESSION_HOURS``."""
    session[SESSION_USER_ID] = user_id
    session[SESSION_EPOCH] = session_epoch
    session[SESSION_SIGNED_IN_AT] = int(time.time())
    session.permanent = True


def signed_in_user(read: Session) -> ConsoleUser | None:
    """The console user this request's session signs in, if any is still valid."""
    user_id, epoch = session.get(SESSION_USER_ID), session.get(SESSION_EPOCH)
    if not isinstance(user_id, int) or not isinstance(epoch, str):
        return None
    return users.signed_in_user(read, user_id, epoch)
