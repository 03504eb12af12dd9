"""Engines and units of work. SQLite gets WAL, busy_timeout, foreign keys and BEGIN IMMEDIATE for writers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import DateTime, Table, event, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Connection, CursorResult, Dialect, Engine, Result, make_url
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import Select
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, SQLModel, create_engine
from sqlmodel._compat import partial_init

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


# An engine keeps up to this many connections open, and opens no more: the most a process
# used before (SQLAlchemy's 5 kept + 10 overflow), without the overflow. Overflow connections
# are closed as soon as they are given back, so a web worker serving more than 5 requests at a
# time opened and closed a connection for nearly every request above the fifth. On PostgreSQL
# that is a backend process: under B7's 16 connections with two workers, about 6 a second,
# and the waits behind them put some API requests over 2 s (wrk's timeouts; p99 0.5-1.5 s;
# 118 ms with the connections kept). Each process may hold this many: N workers, the scheduler
# and the CLI together must stay under the server's max_connections (100 by default). On a
# SQLite file a new connection runs its pragmas and reads the schema again at its first query:
# 16 requests at a time opened one for more than half of them (B4's organisation page, about
# 1 ms of CPU each).
POOL_SIZE = 15


def make_engine(url: str, *, busy_timeout_ms: int = 10_000, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite files get their directory created and the pragmas above."""
    parsed = make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    in_memory = sqlite and parsed.database in (None, "", ":memory:")
    if kwargs.get("poolclass") is None and not in_memory:  # a queue pool: see POOL_SIZE
        kwargs.setdefault("pool_size", POOL_SIZE)
        kwargs.setdefault("max_overflow", 0)
    if not sqlite:
        return create_engine(url, pool_pre_ping=True, **kwargs)
    if parsed.database and not in_memory:
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
    """The same engine, marked so that its transactions are write transactions (made once per
    engine: every unit of work asks for it)."""
    made: Engine | None = engine.__dict__.get(_WRITE)
    if made is None:
        made = engine.__dict__[_WRITE] = engine.execution_options(**{_WRITE: True})
    return made


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


_Row = TypeVar("_Row", bound=SQLModel)


def new_row(model: type[_Row], **values: Any) -> _Row:
    """A new row of a table model from trusted values: what `model(**values)` builds, at about
    a quarter of its cost.

    A table model's constructor validates nothing either; it sets each field through the ORM's
    instrumentation and pydantic's `__setattr__` one by one (about 10 µs a field). Here the
    object is made by the same instrumented constructor with SQLModel's own field setting left
    out (as `model_validate` does), then given the values and the other fields' defaults
    (their factories called) directly: the INSERT a flush sends is made from the same values,
    and `model_fields_set` is the fields given, as the constructor leaves it.
    """
    fields = model.model_fields
    unknown = values.keys() - fields.keys()
    if unknown:
        raise TypeError(f"{model.__name__} has no field {', '.join(sorted(unknown))}")
    with partial_init():
        row = model()
    state = row.__dict__
    for name, info in fields.items():
        if name in values:
            state[name] = values[name]
        elif not info.is_required():
            state[name] = info.get_default(call_default_factory=True)
    object.__setattr__(row, "__pydantic_fields_set__", set(values))
    return row


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


class ManyRows:
    """An INSERT or UPDATE built once, run for many rows at the cost of the driver's executemany.

    For every row of an executemany SQLAlchemy builds a parameter dict and runs each bind
    processor (about 7 µs a row, more than SQLite takes to write it). Here the statement is
    compiled once per dialect and set of columns, and each row's values are bound in one pass
    with the same processors (the dialect's, and UtcDateTime's); a value many rows share (the
    sweep's `now`) is processed once. The SQL the driver receives is the statement's own.

    Every bind must take its value from the rows or from the statement itself (`status =
    'open'`); a column default worked out per row is not supported and is refused.
    """

    def __init__(self, statement: UpdateBase) -> None:
        self.statement = statement
        self._prepared: dict[tuple[str, tuple[str, ...]], _Prepared] = {}

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute the statement once for each row (a mapping of bind names to values)."""
        if not rows:
            return
        columns = tuple(rows[0])
        key = (conn.dialect.name, columns)
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = self._prepared[key] = _Prepared.of(self.statement, conn.dialect, columns)
        conn.exec_driver_sql(prepared.sql, prepared.bind(rows))


class _Prepared:
    """A statement's SQL for one dialect, and how to bind a row's values for its driver."""

    def __init__(
        self,
        sql: str,
        names: tuple[str, ...],
        positional: bool,
        processors: dict[str, Callable[[Any], Any]],
        constants: dict[str, Any],
        escaped: dict[str, str],
    ) -> None:
        self.sql, self.names, self.positional = sql, names, positional
        self.processors, self.constants, self.escaped = processors, constants, escaped

    @classmethod
    def of(cls, statement: UpdateBase, dialect: Dialect, columns: tuple[str, ...]) -> _Prepared:
        compiled = statement.compile(dialect=dialect, column_keys=list(columns))
        assert isinstance(compiled, SQLCompiler)
        if compiled.insert_prefetch or compiled.update_prefetch or compiled.postfetch:
            raise ValueError("ManyRows does not work out column defaults; give every value")
        names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.binds)
        processors: dict[str, Callable[[Any], Any]] = {}
        constants: dict[str, Any] = {}
        for name in names:
            bind = compiled.binds[name]
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if name in columns:
                if process is not None:
                    processors[name] = process
            elif bind.callable is None and not bind.required:
                constants[name] = bind.value if process is None else process(bind.value)
            else:
                raise ValueError(f"ManyRows: no value for '{name}' in the rows")
        escaped = dict(compiled.escaped_bind_names or {})
        return cls(compiled.string, names, compiled.positional, processors, constants, escaped)

    def bind(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        # Column by column: each processor runs once per distinct value.
        columns: dict[str, list[Any]] = {}
        for name in self.names:
            if name in self.constants:
                columns[name] = [self.constants[name]] * len(rows)
                continue
            values = [row[name] for row in rows]
            process = self.processors.get(name)
            columns[name] = values if process is None else _processed(values, process)
        if self.positional:
            return list(zip(*(columns[name] for name in self.names), strict=True))
        keys = [self.escaped.get(name, name) for name in columns]
        return [dict(zip(keys, row, strict=True)) for row in zip(*columns.values(), strict=True)]


class _Insert(NamedTuple):
    prepared: _Prepared
    key: str


_INSERTS: dict[tuple[str, type[SQLModel], tuple[str, ...]], _Insert] = {}


def insert_now(session: Session, *rows: SQLModel) -> None:
    """Write new rows of table models at once and keep them in the session, with their ids, as
    persistent objects: what `session.add_all(rows); session.flush()` does, at a fraction of
    the cost.

    A flush of a new row runs the ORM's unit of work (sorting, per-mapper actions, history of
    every attribute, the identity map's bookkeeping), several times what SQLite takes to write
    it. Here any pending changes are flushed first (as the ORM's flush would, so a row may
    refer to one just added), then each row is one INSERT ... RETURNING of its primary key,
    compiled once per model, dialect and set of columns, its values bound with the columns'
    own processors; the object is then made persistent with its history reset, as if loaded,
    so a later change to it is an ORM UPDATE like any other.

    For new rows whose every column value is set (`new_row` sets each default); a column
    default worked out per row is not supported and is refused (ValueError), like ManyRows.
    Rolling back the transaction (or savepoint) they were written in takes them out of the
    session again, as it does rows a flush inserted.
    """
    session.flush()
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect
    innermost = session.get_nested_transaction() or session.get_transaction()
    assert innermost is not None  # begun by `session.connection()`
    for row in rows:
        model = type(row)
        values = row.__dict__
        table = table_of(model)
        columns = tuple(c.key for c in table.c if not (c.primary_key and values.get(c.key) is None))
        which = (dialect.name, model, columns)
        made = _INSERTS.get(which)
        if made is None:
            (pk,) = table.primary_key.columns
            statement = table.insert().returning(pk)
            made = _INSERTS[which] = _Insert(_Prepared.of(statement, dialect, columns), pk.key)
        (args,) = made.prepared.bind([values])
        values[made.key] = conn.exec_driver_sql(made.prepared.sql, args).scalar_one()
        make_transient_to_detached(row)
        session.add(row)
        # Counted as new in the innermost transaction, as a flush counts the rows it inserts:
        # rolling it (or an enclosing one) back takes the object out of the session again, so
        # no stale object keeps an id the database may give the next row.
        innermost._new[sa_inspect(row)] = True


class PlainSelect:
    """A SELECT built once, read as plain tuples at about the driver's cost.

    `conn.execute(select)` works out, on every execution, the SQL of its expanding `IN` lists
    (about 0.3 ms for 500 ids) and builds a Row per row with each column's processor. Here the
    SQL for each dialect and each length of those lists is worked out once (by SQLAlchemy's own
    `construct_expanded_state`, so it is the SQL `conn.execute` would send, letter for letter),
    the parameters are bound with the binds' own processors, the rows fetched in one call and
    each column's result processor (the dialect's, and UtcDateTime's) run once per distinct
    value (the processors chosen once, at the first execution, by the type codes of the
    driver's cursor, as SQLAlchemy chooses them: a float's on PostgreSQL depends on them).
    """

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        self.statement = statement
        self._compiled: dict[str, _CompiledSelect] = {}

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The statement's rows for `params` (a mapping of bind names to values; a list for
        each expanding bind), as tuples of processed values."""
        dialect = conn.dialect
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _CompiledSelect(self.statement, dialect)
        return compiled.rows(conn, params)


# How many lengths of its IN lists a PlainSelect keeps the SQL of, per dialect (a batch's lists
# are most often full; the odd lengths of a last batch come and go).
_LENGTHS_KEPT = 64


class _CompiledSelect:
    def __init__(self, statement: Select[*tuple[Any, ...]], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.compiled, self.dialect = compiled, dialect
        # The expanding binds by the names the SQL gives them (an IN list of the statement's
        # own values, `.in_(("a", "b"))`, is an anonymous one: its values are its own).
        self.expanding = tuple(
            name
            for name in dict.fromkeys(compiled.bind_names.values())
            if compiled.binds[name].expanding
        )
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self.processors[name] = process
        self.columns = list(statement.selected_columns)
        # Each column's result processor, worked out at the first execution from the type the
        # driver says it returns (a numeric's depends on it on PostgreSQL; SQLite says none).
        self.results: list[tuple[int, Callable[[Any], Any]]] | None = None
        self._plans: dict[tuple[int, ...], _SelectPlan] = {}

    def _results(self, description: Any) -> list[tuple[int, Callable[[Any], Any]]]:
        results: list[tuple[int, Callable[[Any], Any]]] = []
        for i, column in enumerate(self.columns):
            coltype = description[i][1] if description else None
            process = column.type.dialect_impl(self.dialect).result_processor(self.dialect, coltype)
            if process is not None:
                results.append((i, process))
        return results

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        lengths = tuple(len(params[n]) if n in params else -1 for n in self.expanding)
        plan = self._plans.get(lengths)
        if plan is None:
            if len(self._plans) >= _LENGTHS_KEPT:
                self._plans.clear()
            plan = self._plans[lengths] = self._plan(params)
        values: dict[str, Any] = {}
        for name, value in params.items():
            process = self.processors.get(name)
            if process is None:
                values[name] = value
            elif name in self.expanding:
                values[name] = [process(v) for v in value]
            else:
                values[name] = process(value)
        bound = [
            constant if source is None else values[source] if index < 0 else values[source][index]
            for _name, source, index, constant in plan.binds
        ]
        args: Any = (
            tuple(bound)
            if plan.positional
            else dict(zip((b[0] for b in plan.binds), bound, strict=True))
        )
        result = conn.exec_driver_sql(plan.sql, args)
        results = self.results
        if results is None:
            results = self.results = self._results(result.cursor.description)
        found = result.fetchall()
        if not found:
            return []
        if not results:
            return [tuple(row) for row in found]
        columns = list(zip(*found, strict=True))
        for i, process in results:
            columns[i] = tuple(_processed(list(columns[i]), process))
        return list(zip(*columns, strict=True))

    def _plan(self, params: Mapping[str, Any]) -> _SelectPlan:
        missing = [n for n, b in self.compiled.binds.items() if b.required and n not in params]
        if missing:
            raise ValueError(f"PlainSelect: no value for {', '.join(sorted(missing))}")
        state = self.compiled.construct_expanded_state(dict(params))
        expanded = {
            final: (name, index)
            for name, finals in state.parameter_expansion.items()
            for index, final in enumerate(finals)
        }
        positional = state.positiontup is not None
        names = list(state.positiontup) if state.positiontup is not None else list(state.parameters)
        # Names the driver cannot take as they are are escaped in the SQL; the params are not.
        original = {v: k for k, v in (self.compiled.escaped_bind_names or {}).items()}
        binds: list[tuple[str, str | None, int, Any]] = []
        for final in names:
            if final in expanded and expanded[final][0] in params:
                binds.append((final, *expanded[final], None))
            elif final not in expanded and original.get(final, final) in params:
                binds.append((final, original.get(final, final), -1, None))
            else:  # a value of the statement's own (`status = 'open'`, `OFFSET 0`, an IN list's)
                value = state.parameters[final]
                own = expanded[final][0] if final in expanded else original.get(final, final)
                bind = self.compiled.binds.get(own)
                if bind is not None and value is not None:
                    process = bind.type.dialect_impl(self.dialect).bind_processor(self.dialect)
                    value = value if process is None else process(value)
                binds.append((final, None, -1, value))
        return _SelectPlan(state.statement, positional, binds)


class _SelectPlan(NamedTuple):
    """One expansion's SQL and, for each of its parameters, where its value comes from: a
    parameter (and the index in its list), or the statement's own value."""

    sql: str
    positional: bool
    binds: list[tuple[str, str | None, int, Any]]


def _processed(values: list[Any], process: Callable[[Any], Any]) -> list[Any]:
    done: dict[Any, Any] = {}
    out = []
    for value in values:
        try:
            out.append(done[value])
        except KeyError:
            out.append(done.setdefault(value, process(value)))
        except TypeError:  # unhashable: processed each time
            out.append(process(value))
    return out


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
