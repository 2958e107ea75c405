"""Engine and session factory. Nothing is bound at import time: callers build them from config."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects.postgresql import Insert as PostgresqlInsert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITER_OPTION = "cityrelay_writer"


# A pooled connection idle at least this long is pinged before it is used again.
PING_AFTER_IDLE_SECONDS = 5.0
_RETURNED_AT = "cityrelay_returned_at"

# How long connecting to PostgreSQL may take before the attempt fails (a host that is down).
PG_CONNECT_TIMEOUT_SECONDS = 5


def make_engine(
    url: str,
    *,
    lock_timeout: float | None = None,
    statement_timeout: float | None = None,
    **kwargs: Any,
) -> Engine:
    """An engine tuned for the backend: WAL and a busy timeout so web, worker and beat
    processes can share one SQLite file; pre-ping so PostgreSQL restarts are survived.

    On PostgreSQL, ``lock_timeout`` and ``statement_timeout`` (seconds) bound every wait for a
    lock and every statement on the engine's connections; past them the statement fails with an
    OperationalError (LockNotAvailable, QueryCanceled), which tasks retry. SQLite waits for its
    one write lock at most its busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # pysqlite's implicit transactions break SAVEPOINT and FOR UPDATE emulation;
            # let SQLAlchemy emit BEGIN itself (as its docs recommend).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # A writer takes the write lock up front (IMMEDIATE), so two writers queue on
            # busy_timeout instead of one failing with SQLITE_BUSY when its read lock would
            # have to become a write lock. Readers stay DEFERRED and never block anyone.
            immediate = conn.get_execution_options().get(WRITER_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_SECONDS
        limits = (("lock_timeout", lock_timeout), ("statement_timeout", statement_timeout))
        options = [f"-c {name}={round(s * 1000)}" for name, s in limits if s]
        if options:
            connect_args["options"] = " ".join(options)
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    _ping_connections_back_from_idle(engine)
    return engine


def _ping_connections_back_from_idle(engine: Engine) -> None:
    """A pooled connection that sat idle for a while is pinged before use, and replaced when the
    server no longer answers on it (a restart, a proxy's idle cut). One in steady use is not:
    pinging at every checkout (SQLAlchemy's pool_pre_ping) cost a round trip on every request
    and task, and when the server restarts under load the first statement that fails on a dead
    connection invalidates the whole pool anyway (the request answers 503, the task retries)."""

    @event.listens_for(engine, "checkin")
    def _note_return(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get(_RETURNED_AT)
        if returned_at is None or time.monotonic() - returned_at < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool then connects anew (up to three times) before failing the checkout.
            raise DisconnectionError(f"idle connection lost: {error}") from error


def on_conflict_insert(session: Session, model: Any) -> PostgresqlInsert | SqliteInsert:
    """An INSERT into ``model`` in the session's dialect, which knows ON CONFLICT (PostgreSQL
    and SQLite, the two the project runs on, write it alike)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql_insert(model)
    return sqlite_insert(model)


def make_session_factory(engine: Engine, *, writer: bool = False) -> sessionmaker[Session]:
    """Sessions for reading, or (``writer=True``) for transactions that will write. Reading
    sessions keep a transaction too: a streamed result (a server-side cursor, as the case-list
    CSV uses) exists only inside one."""
    bind = engine.execution_options(**{WRITER_OPTION: True}) if writer else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


def make_lookup_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for single-statement look-ups that need no snapshot shared with another statement
    (an API key by its prefix). On PostgreSQL they run in autocommit: the statement alone, with
    no BEGIN before it and no ROLLBACK after, which were two of the round trips of every
    authenticated request. On SQLite a reader's BEGIN costs no round trip, so they are readers."""
    if engine.dialect.name == "postgresql":
        return sessionmaker(
            bind=engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )
    return make_session_factory(engine)


# A task to send once the transaction has committed: (task name, positional arguments).
PendingTask = tuple[str, tuple[Any, ...]]
Dispatch = Callable[[str, tuple[Any, ...]], None]
_PENDING = "cityrelay_pending_tasks"


def enqueue_after_commit(session: Session, task_name: str, *args: Any) -> None:
    """Ask for ``task_name(*args)`` once this session's transaction commits; forgotten on rollback.

    Services call this instead of sending messages themselves: the unit of work that owns the
    transaction sends them after its commit, so a worker always finds the rows it is told about.
    """
    session.info.setdefault(_PENDING, []).append((task_name, args))


def pending_tasks(session: Session) -> list[PendingTask]:
    return list(session.info.get(_PENDING, []))


def set_pending_tasks(session: Session, tasks: list[PendingTask]) -> None:
    """Put back the tasks to send after the commit, as ``pending_tasks`` gave them: for work
    that replays what already happened and must not ask for anything new."""
    session.info[_PENDING] = list(tasks)


@event.listens_for(Session, "after_soft_rollback")
def _forget_pending_tasks(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:  # the outermost transaction rolled back
        session.info.pop(_PENDING, None)


@dataclass
class Database:
    """One engine per process, with session factories for reading, for writing and for
    single-statement look-ups."""

    engine: Engine
    sessions: sessionmaker[Session]
    writer_sessions: sessionmaker[Session]
    lookup_sessions: sessionmaker[Session]

    @classmethod
    def from_url(
        cls, url: str, *, lock_timeout: float | None = None, statement_timeout: float | None = None
    ) -> Database:
        engine = make_engine(url, lock_timeout=lock_timeout, statement_timeout=statement_timeout)
        return cls(
            engine,
            make_session_factory(engine),
            make_session_factory(engine, writer=True),
            make_lookup_session_factory(engine),
        )


@contextmanager
def unit_of_work(
    factory: sessionmaker[Session], dispatch: Dispatch | None = None
) -> Iterator[Session]:
    """One transaction: commit once at the end, roll back on any error. Tasks the work asked
    for (``enqueue_after_commit``) go to ``dispatch`` only after the commit succeeded."""
    session = factory()
    try:
        yield session
        session.commit()
        tasks = session.info.pop(_PENDING, [])
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    if dispatch is not None:
        for name, args in tasks:
            dispatch(name, args)
