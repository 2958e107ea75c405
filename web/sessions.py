"""The signed session cookie the office console signs in with: HttpOnly, SameSite=Lax, and
Secure whenever the request came over https (behind a proxy that says so, too)."""

from __future__ import annotations

from flask import Flask, request, session
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy.orm import Session

from services import users
from services.users import ConsoleUser


class ConsoleSessionInterface(SecureCookieSessionInterface):
    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def init_app(app: Flask) -> None:
    """Needs ``SECRET_KEY`` set."""
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError("SECRET_KEY is not set")
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.session_interface = ConsoleSessionInterface()


# What the console writes into the session at login (console.views), read by every page that
# needs a signed-in user.
SESSION_USER_ID = "user_id"
SESSION_EPOCH = "epoch"


def signed_in_user(read: Session) -> ConsoleUser | None:
    """The console user this request's session signs in, if any is still valid."""
    user_id, epoch = session.get(SESSION_USER_ID), session.get(SESSION_EPOCH)
    if not isinstance(user_id, int) or not isinstance(epoch, str):
        return None
    return users.signed_in_user(read, user_id, epoch)
