"""The database as a web request sees it: a read session for the whole request, short look-up
sessions for single statements that need no snapshot (the caller's key), and one unit of work
that owns the request's only commit and sends the tasks it asked for afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, g
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from models.session import Database, Dispatch
from models.session import unit_of_work as session_unit_of_work

DATABASE = "cityrelay.db"
DISPATCH = "cityrelay.dispatch"


def init_app(app: Flask, database: Database, dispatch: Dispatch) -> None:
    """``dispatch(task_name, args)`` sends a task; it is called only after a commit."""
    app.extensions[DATABASE] = database
    app.extensions[DISPATCH] = dispatch
    app.teardown_appcontext(_close_read_session)


def database() -> Database:
    db: Database = current_app.extensions[DATABASE]
    return db


def read_session() -> Session:
    """The request's session for reading (on SQLite a deferred transaction: no write lock)."""
    if "db_read_session" not in g:
        g.db_read_session = database().sessions()
    session: Session = g.db_read_session
    return session


@contextmanager
def lookup_session() -> Iterator[Session]:
    """A session for a single-statement look-up (autocommit on PostgreSQL), closed after it, so
    its connection goes back to the pool before the request's unit of work takes one."""
    session = database().lookup_sessions()
    try:
        yield session
    finally:
        _close(session)


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """The request's one write transaction: commits once, then sends the tasks it asked for."""
    if g.get("db_unit_of_work_open"):
        raise RuntimeError("a request has one unit of work")
    g.db_unit_of_work_open = True
    try:
        with session_unit_of_work(
            database().writer_sessions, current_app.extensions[DISPATCH]
        ) as session:
            yield session
    finally:
        g.db_unit_of_work_open = False


def _close_read_session(_exc: BaseException | None) -> None:
    _close(g.pop("db_read_session", None))


def _close(session: Session | None) -> None:
    if session is not None:
        try:
            session.close()
        except DBAPIError:
            # The database went away under the request (restart, lost connection): its answer
            # (a 503) is already made; the pool drops the dead connection, pre-ping the rest.
            session.invalidate()
