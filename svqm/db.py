"""Engines and units of work. SQLite gets WAL, busy_timeout, foreign keys and BEGIN IMMEDIATE for writers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Table, event, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Connection, CursorResult, Dialect, Engine, Result, make_url
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, SQLModel, create_engine

# Named constraints, so later migrations (batch mode on SQLite) can find and alter them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Engines built from this option take the SQLite write lock when their transaction begins, so a
# read-then-write never fails with SQLITE_BUSY (a deferred transaction cannot wait for the lock).
_WRITE = "svqm_write"


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; svqm stores timezone-aware UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # SQLite's text, in one step: the same string SQLAlchemy's DATETIME writes (its
        # "%(year)04d-...%(microsecond)06d" format, always with microseconds), at half the cost
        # of the two processors chained; the sweep binds three datetimes a reminder.
        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            tz = value.tzinfo
            if tz is None:
                raise ValueError("naive datetime given; svqm stores timezone-aware UTC only")
            if tz is not UTC:
                value = value.astimezone(UTC)
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def make_engine(url: str, *, busy_timeout_ms: int = 10_000, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite files get their directory created and the pragmas above."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below (the pysqlite recipe).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def writer(engine: Engine) -> Engine:
    """The same engine, marked so that its transactions are write transactions."""
    return engine.execution_options(**{_WRITE: True})


@contextmanager
def session_scope(engine: Engine, *, write: bool = True) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    bind = writer(engine) if write else engine
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def ping(engine: Engine) -> None:
    """Ask the database one trivial query (readiness); raises the driver's error if it is down."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def table_of(model: type[SQLModel]) -> Table:
    """A table model's Core table, for statements built once (SQLModel sets `__table__` at
    runtime only, so type checkers cannot see it)."""
    table = sa_inspect(model).local_table
    assert isinstance(table, Table)
    return table


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE, DELETE (or, with `preserve_rowcount`, INSERT) changed."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount or 0)


# How drivers say the server cannot be reached (psycopg, SQLite), as opposed to a query's fault.
_UNREACHABLE = (
    "connection refused",
    "could not connect",
    "connection to server",
    "connection failed",
    "server closed the connection",
    "terminating connection",
    "timeout expired",
    "could not translate host name",
    "name or service not known",
    "unable to open database file",
    "the database system is starting up",
    "the database system is shutting down",
    "no route to host",
)


def unreachable(exc: BaseException) -> bool:
    """Whether a database error means the database cannot be reached (rather than a bad query,
    a missing table or a lock): the outage a service answers with 503 and a retry time."""
    if getattr(exc, "connection_invalidated", False):
        return True
    text = str(getattr(exc, "orig", None) or exc).lower()
    return any(words in text for words in _UNREACHABLE)


def first_line(exc: BaseException) -> str:
    """A driver error's first line, without SQLAlchemy's background link."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ForeignKeysBroken(RuntimeError):
    """A migration left rows whose foreign keys name nothing (SQLite's own check, after it ran)."""


@contextmanager
def migrating(conn: Connection) -> Iterator[None]:
    """One transaction for a migration run on `conn` (not yet begun).

    SQLite's batch mode rebuilds a table by copy, drop and rename, which its foreign keys refuse
    while other tables' rows point at it; as SQLite's own ALTER TABLE procedure says, the keys are
    switched off for the run (outside any transaction, where the pragma works), checked with
    `PRAGMA foreign_key_check` before the commit, and switched on again whatever happened.
    """
    sqlite = conn.dialect.name == "sqlite"
    raw = conn.connection.dbapi_connection if sqlite else None
    if raw is not None:
        raw.execute("PRAGMA foreign_keys=OFF")
    try:
        with conn.begin():
            yield
            if sqlite:
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise ForeignKeysBroken(f"rows name missing rows after migrating: {broken[:5]}")
    finally:
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=ON")
