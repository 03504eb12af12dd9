"""B6: `svqm simulate` at scale: 10,000 organisations through the svqm scheme over 3 years.

Everything the simulation does goes through the real services on a throwaway migrated SQLite
file (svqm.simulate): applications, pledges, uploads, reviews, scores, transitions, filings,
the daily sweep and the dispatch of every reminder to a counting mailer.

Measured: simulated events per second over the whole run (set-up included): people's actions
through the services + deadline rows handled by the sweep + emails delivered; and peak memory,
VmHWM of this process, with VmRSS sampled every tenth of the run to show whether it stays flat.
Target: >= 1,000 events/s (wall time, the issue's figure). Beside it, steadier on a shared
machine: events per CPU second of this process (getrusage), and the CPU time and SQL statements
per event (every statement any engine sends, counted with SQLAlchemy's `before_cursor_execute`
event), which say where the floor is: each event is a call into the real services.

Size: `svqm simulate`'s own default is 10,000 organisations over 3 years, about two million
events; at 3-5 ms of CPU an event that is hours of CPU on this machine, far beyond `make bench`'s
time. The benchmark therefore runs 100 organisations over the same 3 years by default (every
stage of an award's life: applications, awards, annual reports, renewals and upgrades; about
15,000 events, 1-2 minutes of CPU), and reports the figures of that run only; nothing is
extrapolated. SVQM_B6_ORGANISATIONS and SVQM_B6_YEARS set another size (10000 and 3 for the
simulation's default); the result says which size was run.

The database's part, measured in the same run: every statement the run sent to SQLite after the
database was migrated (recorded from SQLAlchemy's driver side, `before_cursor_execute`, with the
values bound, and each connection's commits and rollbacks, savepoints included) is replayed with
raw `sqlite3` on a copy of the freshly migrated file, same pragmas, one raw connection per
connection the run used, every read fetched to its last row; the replay must leave the same
rows in every table as the run did. Its CPU time per event is the floor of this work's
database side: what an event costs above it is the services' own Python (SQLAlchemy, guards,
templates, uploads). The same ops are replayed a second time through SQLAlchemy Core
(`Connection.exec_driver_sql` on an engine, checked likewise): the least the design card's SQL
toolkit does to send them, so the printed floor parts an event's cost into the database, the
toolkit's execution of its statements, and everything the services do above that.

The statements are recorded in a second run of the same simulation (the same seed, so the same
events and statements; the benchmark checks the counts agree), not in the timed one: recording
every statement costs over a tenth of the run's CPU, which is the benchmark's, not svqm's.
"""

from __future__ import annotations

import marshal
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine

import svqm.simulate.run as simulate_run
from benchmarks.fixtures import registry
from benchmarks.report import Result, cpu_seconds
from svqm.simulate import Simulation

ID = "B6"
NAME = "Simulation at scale: events per second, peak memory"
ORGANISATIONS = int(os.environ.get("SVQM_B6_ORGANISATIONS", "100"))
YEARS = float(os.environ.get("SVQM_B6_YEARS", "3"))
SEED = 1
TARGET = 1000.0  # events per second


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


_COMMIT, _ROLLBACK = "COMMIT", "ROLLBACK"


class _Recorder:
    """The SQL a simulation sent once its database was migrated, and its replay with raw sqlite3.

    `watch()` wraps the simulation: when it has opened and migrated its SQLite file, a copy of
    that file is taken (the replay's starting point) and recording starts; each op is the
    driver connection it ran on, the statement, its parameters and whether it was an
    executemany. Commits and rollbacks come from SQLAlchemy's `commit` and `rollback` events
    (the driver's own commit() is not a statement); BEGIN, SAVEPOINT, RELEASE and ROLLBACK TO
    are statements, recorded as sent.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.start = directory / "start.db"
        self.statements = 0  # every statement the run sent, its migrations included
        self.recorded = 0
        # Written as they come (marshal: a microsecond an op), so that holding them does not
        # add to the run's memory.
        self._ops: BinaryIO | None = None

    def _executed(
        self, _conn: Any, cursor: Any, statement: str, params: Any, _ctx: Any, many: bool
    ) -> None:
        self.statements += 1
        if self._ops is not None:
            # SQLAlchemy's "insertmanyvalues" (an ORM flush of several rows with RETURNING)
            # says executemany but hands the driver one execute of a multi-row VALUES.
            many = many and bool(params) and isinstance(params[0], tuple | list | dict)
            op = (id(cursor.connection), statement, list(params) if many else params, many)
            marshal.dump(op, self._ops)
            self.recorded += 1

    def _ended(self, word: str) -> Any:
        def ended(conn: Any) -> None:
            if self._ops is not None:
                marshal.dump((id(conn.connection.dbapi_connection), word, (), False), self._ops)

        return ended

    @contextmanager
    def watch(self) -> Iterator[None]:
        real = simulate_run.open_database

        def opened(root: Path, url: str | None = None) -> Engine:
            engine = real(root, url)
            with sqlite3.connect(root / "simulation.db") as src, sqlite3.connect(self.start) as dst:
                src.backup(dst)
            self._ops = (self.directory / "ops.marshal").open("wb")
            return engine

        committed, rolled_back = self._ended(_COMMIT), self._ended(_ROLLBACK)
        simulate_run.open_database = opened  # type: ignore[assignment]
        event.listen(Engine, "before_cursor_execute", self._executed)
        event.listen(Engine, "commit", committed)
        event.listen(Engine, "rollback", rolled_back)
        try:
            yield
        finally:
            if self._ops is not None:
                self._ops.close()
                self._ops = None
            simulate_run.open_database = real  # type: ignore[assignment]
            event.remove(Engine, "before_cursor_execute", self._executed)
            event.remove(Engine, "commit", committed)
            event.remove(Engine, "rollback", rolled_back)

    def _recorded_ops(self) -> list[Any]:
        ops = []
        with (self.directory / "ops.marshal").open("rb") as f:
            while True:
                try:
                    ops.append(marshal.load(f))
                except EOFError:
                    break
        return ops

    def replay(self) -> tuple[float, float]:
        """Run every recorded op on a copy of the start; its (CPU, wall) seconds."""
        path = self.directory / "replay.db"
        shutil.copyfile(self.start, path)
        ops = self._recorded_ops()
        conns: dict[int, sqlite3.Connection] = {}
        cpu, wall = cpu_seconds(), time.perf_counter()
        for who, statement, params, many in ops:
            conn = conns.get(who)
            if conn is None:
                conn = conns[who] = _connect(path)
            if statement == _COMMIT or statement == _ROLLBACK:
                if conn.in_transaction:  # SQLAlchemy ends a transaction the driver never began
                    conn.execute(statement)
            elif many:
                conn.executemany(statement, params)
            else:
                conn.execute(statement, params).fetchall()
        cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
        for conn in conns.values():
            conn.close()
        return cpu, wall

    def replay_through_sqlalchemy(self) -> float:
        """The same ops sent through SQLAlchemy Core (`Connection.exec_driver_sql`, every read
        fetched to its last row) on an engine over a second copy; its CPU seconds.

        The least the design card's SQL toolkit does to send these statements: no ORM, no
        statement built or compiled, no unit of work; the engine leaves transactions to the
        statements (AUTOCOMMIT: BEGIN, SAVEPOINT, COMMIT and ROLLBACK are sent as recorded)."""
        path = self.directory / "replay-sqlalchemy.db"
        shutil.copyfile(self.start, path)
        ops = self._recorded_ops()
        engine = create_engine(f"sqlite:///{path}", isolation_level="AUTOCOMMIT")

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            _pragmas_on(dbapi_conn)

        conns: dict[int, Connection] = {}
        cpu = cpu_seconds()
        try:
            for who, statement, params, many in ops:
                conn = conns.get(who)
                if conn is None:
                    conn = conns[who] = engine.connect()
                if statement == _COMMIT or statement == _ROLLBACK:
                    if conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
                        conn.exec_driver_sql(statement)
                elif many:
                    conn.exec_driver_sql(statement, params)
                else:
                    result = conn.exec_driver_sql(statement, tuple(params))
                    if result.returns_rows:
                        result.fetchall()
            cpu = cpu_seconds() - cpu
        finally:
            for conn in conns.values():
                conn.close()
            engine.dispose()
        return cpu

    def same_rows(self, path: Path, replay: str = "replay.db") -> bool:
        """Whether the replay left what the simulation left: every table's rows, in id order."""
        with sqlite3.connect(path) as a, sqlite3.connect(self.directory / replay) as b:
            tables = [t for (t,) in a.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            return all(
                a.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall()
                == b.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall()
                for t in tables
            )


def _connect(path: Path) -> sqlite3.Connection:
    # Transactions as the engine runs them (explicit BEGIN).
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    _pragmas_on(conn)
    return conn


def _pragmas_on(conn: Any) -> None:
    """svqm.db.make_engine's pragmas, on a raw sqlite3 connection."""
    conn.isolation_level = None
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=NORMAL")


def run() -> Result:
    reg = registry()
    days = max(1, round(YEARS * 365.25))
    samples: list[float] = []
    every = max(1, days // 10)

    def sample(day: int) -> None:
        if day % every == every - 1:
            samples.append(round(_status_mib("VmRSS"), 1))

    before = _status_mib("VmRSS")
    with tempfile.TemporaryDirectory(prefix="svqm-b6-") as tmp:
        work = Path(tmp)

        def simulation(name: str) -> Simulation:
            (work / name).mkdir()
            return Simulation(
                reg,
                organisations=ORGANISATIONS,
                seed=SEED,
                verify_audit=False,
                workdir=work / name,  # kept until the replay has been checked against it
            )

        # The timed run, with nothing of the benchmark's own attached to it.
        cpu = cpu_seconds()
        result = simulation("timed").run(years=YEARS, on_day=sample)
        cpu = cpu_seconds() - cpu
        peak = _status_mib("VmHWM")
        # The same run again (the same seed: the same events and statements), recorded for the
        # floors; recording each statement costs over a tenth of the run's CPU, so it is kept
        # out of the timed run.
        recorder = _Recorder(work)
        with recorder.watch():
            recorded = simulation("simulation").run(years=YEARS)
        if (recorded.events, recorded.actions) != (result.events, result.actions):
            raise RuntimeError("B6's recorded run did other work than its timed run")
        replay_cpu, replay_wall = recorder.replay()
        if not recorder.same_rows(work / "simulation" / "simulation.db"):
            raise RuntimeError("B6's raw replay left other rows than the simulation")
        core_cpu = recorder.replay_through_sqlalchemy()
        if not recorder.same_rows(work / "simulation" / "simulation.db", "replay-sqlalchemy.db"):
            raise RuntimeError("B6's SQLAlchemy replay left other rows than the simulation")
    statements = recorder.statements
    rate = result.events / result.wall_seconds
    per_cpu = result.events / cpu
    db_ms = 1000 * replay_cpu / result.events
    core_ms = 1000 * core_cpu / result.events
    event_ms = 1000 * cpu / result.events
    floor = (
        f"{ORGANISATIONS:,} organisations over {YEARS:g} years, {result.events:,} events: "
        f"{1000 * cpu / result.events:.2f} ms of CPU and {statements / result.events:.1f} SQL "
        f"statements per event through the real services ({per_cpu:.0f} events per CPU "
        f"second); wall time {result.wall_seconds:.0f} s for {cpu:.0f} s of CPU. The database's "
        f"part: the run's own {recorder.recorded:,} statements replayed with raw sqlite3 take "
        f"{db_ms:.2f} ms of CPU per event ({1000 / db_ms if db_ms else 0:,.0f} events per CPU "
        f"second). The same statements sent through SQLAlchemy Core (exec_driver_sql, no "
        f"ORM), the least the design card's SQL toolkit does: {core_ms:.2f} ms "
        f"({1000 / core_ms if core_ms else 0:,.0f} events per CPU second). So no floor rules "
        f"1,000 events/s out: the database is {db_ms:.2f} ms of an event, SQLAlchemy's "
        f"execution {core_ms - db_ms:.2f} ms, and the services' own work above it (the ORM's "
        f"statements, units of work and rows, guards, templates, uploads) "
        f"{event_ms - core_ms:.2f} ms"
    )
    return Result(
        id=ID,
        name=NAME,
        unit="events/s",
        measured={
            "events/s": rate,
            "events per CPU s": per_cpu,
            "CPU ms per event": 1000 * cpu / result.events,
            "SQL statements per event": statements / result.events,
            "raw sqlite3 replay CPU ms per event": db_ms,
            "SQLAlchemy Core replay CPU ms per event": core_ms,
            "events": result.events,
            "seconds": result.wall_seconds,
            "peak RSS MiB (VmHWM)": peak,
        },
        baseline={"RSS before MiB": before},
        ratio=rate,
        target=TARGET,
        higher_is_better=True,
        floor=floor,
        absolute=True,
        detail={
            "cpu_seconds": cpu,
            "sql_statements": statements,
            "replayed_statements": recorder.recorded,
            "replay_cpu_seconds": replay_cpu,
            "replay_wall_seconds": replay_wall,
            "sqlalchemy_replay_cpu_seconds": core_cpu,
            "organisations": ORGANISATIONS,
            "simulate_default": "10,000 organisations x 3 years (not run here: hours of CPU)",
            "years": YEARS,
            "seed": SEED,
            "actions": result.actions,
            "sweep_rows": result.sweep_rows,
            "emails_delivered": result.emails_delivered,
            "audit_events": result.audit_events,
            "awards_issued": result.awards_issued,
            "rss_mib_every_tenth": samples,
            "refused": result.refused,
        },
    )
