"""The database as the web and the workers see it: one engine per process, one session per
request or task."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from models.session import make_engine, make_session_factory


@dataclass
class Database:
    engine: Engine
    sessions: sessionmaker[Session]
    writer_sessions: sessionmaker[Session]

    @classmethod
    def from_url(cls, url: str) -> Database:
        engine = make_engine(url)
        return cls(engine, make_session_factory(engine), make_session_factory(engine, writer=True))


def init_app(app: Flask) -> None:
    app.extensions["cityrelay.db"] = Database.from_url(app.config["DATABASE_URL"])
    app.teardown_appcontext(_close_session)


def database() -> Database:
    db: Database = current_app.extensions["cityrelay.db"]
    return db


def session() -> Session:
    """The request's session for reading, opened on first use."""
    if "db_session" not in g:
        g.db_session = database().sessions()
    current: Session = g.db_session
    return current


def write_session() -> Session:
    """The request's session for a view that writes; use it for the whole view."""
    if "db_write_session" not in g:
        g.db_write_session = database().writer_sessions()
    current: Session = g.db_write_session
    return current


def _close_session(_exc: BaseException | None) -> None:
    for name in ("db_session", "db_write_session"):
        current = g.pop(name, None)
        if current is not None:
            current.close()
