"""B5: the deadline sweep against raw `sqlite3` doing the same reads and writes, at two table sizes.

Seeded with bulk inserts into a migrated SQLite file: one organisation, applicant (a member of
it, as sign-up makes them), awarded application and active Silver award per four deadline rows,
each award with the svqm policy's four award deadlines that run while it is active (annual
report, renewal, expiry, upgrade eligibility). 200,000 open rows, of which 2,000 (1%) are
reminders due: their first reminder's moment has passed and their due moment has not, so the
sweep sends a reminder to the organisation's applicant and moves them on (no `on_due` action
fires). The other rows wake after `now`.

Measured: `svqm.notify.sweep.sweep(engine, registry, now=...)`, the whole sweep (batches of 500,
each a transaction: the rows, their subjects and recipients, the outbox rows, the progress; then
the digest and consultation reads it ends with).

Baseline (the limit): the SQL that sweep sent, replayed with raw `sqlite3` (same file, same
pragmas): recorded from SQLAlchemy's driver side (`before_cursor_execute` and `commit`) during
an untimed sweep, so it is the sweep's own statements letter for letter (select the due rows
through the same index, read their awards, organisations and members with `IN` lists, update
each deadline's progress and insert each outbox row with `executemany`, commit; then the digest
and consultation reads), with the very values the sweep bound, in the same transactions, each
read fetched to its last row. It works nothing out (who to tell, the email's content, the next
wake), which is the sweep's own work. Both must leave the same outbox rows and progress as the
recorded sweep, every reminder addressed to someone. For information, also the bare read of the
due rows alone.

Between repeats the due rows are put back (reminded = '', their old wake_at) and the outbox
emptied, so each repeat does the same work; sweep and baseline alternate, best of REPEATS each;
CPU time (getrusage) is recorded beside wall time.

Target: sweep / raw sqlite3 <= 1.5 at 200,000 rows. Check: sweep(200k) / sweep(20k) <= 1.2 (the
same 2,000 due among 20,000 rows): the sweep's cost follows the due rows, not the table.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from unittest import mock

from sqlalchemy import bindparam, event, insert, text, update
from sqlalchemy.engine import Engine

from benchmarks.fixtures import NOW, migrated_sqlite, registry, temp_dir
from benchmarks.report import Check, Result, cpu_seconds
from svqm.accounts.models import Membership, Organisation, User
from svqm.db import UtcDateTime, session_scope
from svqm.notify import sweep as sweep_module
from svqm.notify.models import OutboxMessage
from svqm.notify.sweep import sweep
from svqm.workflow.models import Application, Award
from svqm.workflow.schedule import ScheduledDeadline, next_wake
from svqm.workflow.schemes import SchemeRegistry

ID = "B5"
NAME = "Deadline sweep vs raw sqlite3 doing its reads and writes"
TARGET = 1.5
SCALE_TARGET = 1.2
# SVQM_B5_DIVIDE=N runs 1/N of the rows (a quick run; the result says which size ran).
_DIVIDE = int(os.environ.get("SVQM_B5_DIVIDE", "1"))
BIG, SMALL, DUE = 200_000 // _DIVIDE, 20_000 // _DIVIDE, 2_000 // _DIVIDE
REPEATS = 5
_BIG, _SMALL = f"{BIG / 1000:g}k", f"{SMALL / 1000:g}k"
BATCH = 500  # the sweep's default batch
KINDS = ("annual_report", "renewal", "expiry", "upgrade_eligibility")
REMINDING = ("annual_report", "renewal", "expiry")  # the kinds with reminders
BASE_URL = "https://svqm.example"
BARE = text("SELECT * FROM deadline WHERE status = 'open' AND wake_at <= :now").bindparams(
    bindparam("now", type_=UtcDateTime())
)
CHUNK = 20_000


def _bulk(engine: Engine, table: Any, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        for i in range(0, len(rows), CHUNK):
            conn.execute(insert(table), rows[i : i + CHUNK])


def _seed(engine: Engine, reg: SchemeRegistry, total: int) -> list[dict[str, Any]]:
    """`total` open deadline rows on total/4 awards; returns the due rows' ids and wake times."""
    scheme = reg.get("svqm")
    policy = scheme.policy
    with session_scope(engine) as s:
        reg.record_snapshot(s, scheme)
    awards = total // len(KINDS)
    ids = range(1, awards + 1)
    issued = NOW - timedelta(days=30)
    common = {"scheme": "svqm", "scheme_version": policy.version, "policy_digest": policy.digest}
    _bulk(
        engine,
        Organisation.__table__,  # type: ignore[attr-defined]
        [{"id": i, "name": f"Org {i}", "sector": "health", "created_at": issued} for i in ids],
    )
    _bulk(
        engine,
        User.__table__,  # type: ignore[attr-defined]
        [
            {
                "id": i,
                "email": f"applicant{i}@bench.example",
                "name": "",
                "role": "applicant",
                "organisation_id": i,
                "active": True,
                "created_at": issued,
            }
            for i in ids
        ],
    )
    # Each applicant acts for its organisation (a membership), as sign-up makes them: the
    # reminders go to them (without it every reminder would be dead, addressed to nobody).
    _bulk(
        engine,
        Membership.__table__,  # type: ignore[attr-defined]
        [
            {"id": i, "user_id": i, "organisation_id": i, "role": "lead", "created_at": issued}
            for i in ids
        ],
    )
    _bulk(
        engine,
        Application.__table__,  # type: ignore[attr-defined]
        [
            {
                "id": i,
                "organisation_id": i,
                **common,
                "level": "silver",
                "state": "awarded",
                "version": 8,
                "created_at": issued,
                "state_changed_at": issued,
            }
            for i in ids
        ],
    )
    _bulk(
        engine,
        Award.__table__,  # type: ignore[attr-defined]
        [
            {
                "id": i,
                "organisation_id": i,
                "application_id": i,
                **common,
                "level": "silver",
                "state": "active",
                "version": 1,
                "certificate_number": f"SVQM-BENCH-{i:08d}",
                "issued_at": issued,
                "expires_at": issued + timedelta(days=730),
                "created_at": issued,
                "state_changed_at": issued,
            }
            for i in ids
        ],
    )
    # The due rows are spread evenly over the table, among the kinds that send reminders.
    by_kind = {d.kind: d for d in policy.deadlines}
    reminding = [n for n in range(total) if KINDS[n % len(KINDS)] in REMINDING]
    step = len(reminding) // DUE
    due_rows = set(reminding[::step][:DUE])
    rows, due = [], []
    for n in range(total):
        kind = KINDS[n % len(KINDS)]
        d = by_kind[kind]
        if n in due_rows:
            due_at = NOW + timedelta(days=1 + n % 5)  # past its first reminder, not yet due
        else:
            due_at = NOW + timedelta(days=100 + n % 600)  # every reminder still ahead
        wake = next_wake(d, due_at, [])
        rows.append(
            {
                "id": n + 1,
                "subject_kind": "award",
                "subject_id": n // len(KINDS) + 1,
                "organisation_id": n // len(KINDS) + 1,
                "scheme": "svqm",
                "kind": kind,
                "seq": 0,
                "occurrence": 0,
                "due_at": due_at,
                "wake_at": wake,
                "reminded": "",
                "status": "open",
                "outcome": "",
                "created_at": issued,
            }
        )
        if n in due_rows:
            assert wake <= NOW < due_at
            due.append({"b_id": n + 1, "b_wake": wake})
    _bulk(engine, ScheduledDeadline.__table__, rows)  # type: ignore[attr-defined]
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return due


def _reset(engine: Engine, due: list[dict[str, Any]]) -> None:
    """Put the due rows back as they were before a sweep, and empty the outbox."""
    table = ScheduledDeadline.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(reminded="", wake_at=bindparam("b_wake")),
            due,
        )
        conn.execute(OutboxMessage.__table__.delete())  # type: ignore[attr-defined]


def _best(
    work: Callable[[], Any], before: Callable[[], None], runs: dict[str, list[float]], name: str
) -> Any:
    """One timed run of `work` after `before`; wall and CPU seconds appended to `runs`."""
    before()
    cpu = cpu_seconds()
    start = time.perf_counter()
    out = work()
    runs[name].append(time.perf_counter() - start)
    runs[name + "_cpu"].append(cpu_seconds() - cpu)
    return out


_OUTBOX_COLUMNS = (
    "template",
    "context",
    "organisation_id",
    "deadline_id",
    "attempts",
    "next_attempt_at",
    "claim_token",
    "last_error",
    "created_at",
)
_COMMIT = "COMMIT"
# The sweep's statement that selects a batch's due rows (what the replay counts as handled).
_DUE_SELECT = "SELECT deadline.id, deadline.subject_kind"


class _Raw:
    """The SQL a sweep sent, replayed with raw sqlite3: the same statements with the same
    parameters, in the same transactions, every read fetched to the last row.

    Recorded from the driver's side of SQLAlchemy (`before_cursor_execute`, and `commit`)
    during a sweep: so the statements are the sweep's own, letter for letter (its `IN` lists,
    `ON CONFLICT DO NOTHING`, the membership join, the digest and consultation reads), and the
    values bound are those the sweep worked out (who to tell, the email's JSON, the next wake).
    """

    def __init__(self, engine: Engine, path: str) -> None:
        self.engine, self.path = engine, path
        self.ops: list[tuple[str, Any, bool]] = []
        self._conn: sqlite3.Connection | None = None

    def record(self, work: Callable[[], Any]) -> Any:
        def executed(
            _conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, many: bool
        ) -> None:
            self.ops.append((statement, list(params) if many else tuple(params), many))

        def committed(_conn: Any) -> None:
            self.ops.append((_COMMIT, (), False))

        self.ops = []
        event.listen(self.engine, "before_cursor_execute", executed)
        event.listen(self.engine, "commit", committed)
        try:
            return work()
        finally:
            event.remove(self.engine, "before_cursor_execute", executed)
            event.remove(self.engine, "commit", committed)

    def statements(self) -> list[str]:
        return [op[0] for op in self.ops]

    def run(self) -> int:
        """Replay every statement; returns how many due rows its batch selects returned."""
        conn = self._connect()
        total = 0
        for statement, params, many in self.ops:
            if statement == _COMMIT:
                conn.execute(_COMMIT)
            elif many:
                conn.executemany(statement, params)
            else:
                rows = conn.execute(statement, params).fetchall()
                if statement.startswith(_DUE_SELECT):
                    total += len(rows)
        return total

    def _connect(self) -> sqlite3.Connection:
        # One connection for every run, as the sweep's engine keeps one in its pool; the pragmas
        # of svqm.db.make_engine (WAL is the file's own).
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout=10000")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _measure(
    engine: Engine, reg: SchemeRegistry, due: list[dict[str, Any]], path: str
) -> dict[str, Any]:
    def bare() -> int:
        with engine.connect() as conn:
            return len(conn.execute(BARE, {"now": NOW}).fetchall())

    def swept() -> Any:
        return sweep(engine, reg, now=NOW, base_url=BASE_URL, batch=BATCH)

    def reset() -> None:
        _reset(engine, due)

    runs: dict[str, list[float]] = {k: [] for k in ("sweep", "sweep_cpu", "raw", "raw_cpu")}
    runs.update(bare=[], bare_cpu=[])
    reset()
    found = bare()
    # A first sweep, untimed, warms the caches; the second, untimed too, is recorded for the
    # raw replay, and what it left is what every later sweep and replay must leave.
    swept()
    reset()
    raw = _Raw(engine, path)
    report = raw.record(swept)
    expected = _left(engine, due)
    try:
        handled = 0
        for _ in range(REPEATS):
            report = _best(swept, reset, runs, "sweep")
            if _left(engine, due) != expected:
                raise RuntimeError("B5's sweep left other rows than the recorded sweep")
            handled = _best(raw.run, reset, runs, "raw")
            if _left(engine, due) != expected:
                raise RuntimeError("B5's raw replay left other rows than the sweep")
            if _best(bare, reset, runs, "bare") != DUE:
                raise RuntimeError("B5's bare read did not find the due rows")
    finally:
        raw.close()
    own_cpu = _own_work(swept, reset)
    with engine.connect() as conn:
        plan = conn.execute(
            text("EXPLAIN QUERY PLAN " + BARE.text).bindparams(
                bindparam("now", type_=UtcDateTime())
            ),
            {"now": NOW},
        ).fetchall()
    messages, progress = expected
    progressed = sum(1 for row in progress if row[1] and row[3] == "open")
    told = sum(1 for m in messages if m[1] == "pending" and m[2])
    if (
        found != DUE
        or sum(report.reminders.values()) != DUE
        or len(messages) != DUE
        or told != DUE
        or progressed != DUE
        or handled != DUE
    ):
        raise RuntimeError(
            f"B5 did not do the work it claims: bare query found {found}, the sweep sent "
            f"{sum(report.reminders.values())} reminders and left {len(messages)} outbox rows "
            f"({told} to someone) and {progressed} deadlines moved on; raw sqlite3 handled "
            f"{handled} rows (expected {DUE} each); refused: {report.failed[:3]}"
        )
    best = {k: min(v) for k, v in runs.items()}
    return {
        **{f"{k}_s": v for k, v in best.items()},
        "own_cpu_s": own_cpu,
        "runs": runs,
        "plan": " / ".join(str(row[-1]) for row in plan),
    }


def _own_work(swept: Callable[[], Any], reset: Callable[[], None]) -> float:
    """CPU seconds of the sweep's own work in one more (untimed) sweep: `_remind` for each due
    row (which reminder is due, the next wake, the progress text, and the email: recipients,
    frozen context, JSON, key), which sends no SQL and which the raw baseline, given the values,
    never does. The least of `REPEATS` runs.
    """
    spent: list[float] = []

    def timed(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[-1] += time.process_time() - start

        return wrapper

    for _ in range(REPEATS):
        reset()
        spent.append(0.0)
        with mock.patch.object(sweep_module, "_remind", timed(sweep_module._remind)):
            swept()
    return min(spent)


def _left(
    engine: Engine, due: list[dict[str, Any]]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """What a sweep left: every outbox row's values but its id (by key), and the due rows'
    progress (reminded, wake_at, status)."""
    columns = ", ".join(f'"{c}"' for c in _OUTBOX_COLUMNS)
    ids = [d["b_id"] for d in due]
    with engine.connect() as conn:
        messages = [
            tuple(row)
            for row in conn.exec_driver_sql(
                f'SELECT "key", status, to_addrs, {columns} FROM outbox ORDER BY "key"'
            )
        ]
        progress: list[tuple[Any, ...]] = []
        for i in range(0, len(ids), BATCH):
            part = ids[i : i + BATCH]
            marks = ", ".join("?" for _ in part)
            progress.extend(
                tuple(row)
                for row in conn.exec_driver_sql(
                    f"SELECT id, reminded, wake_at, status FROM deadline WHERE id IN ({marks})"
                    " ORDER BY id",
                    tuple(part),
                )
            )
    return messages, progress


def run() -> Result:
    reg = registry()
    figures: dict[int, dict[str, Any]] = {}
    seed_s: dict[int, float] = {}
    for total in (BIG, SMALL):
        with temp_dir("svqm-bench-b5-") as tmp:
            engine = migrated_sqlite(tmp / "b5.db")
            try:
                start = time.perf_counter()
                due = _seed(engine, reg, total)
                seed_s[total] = time.perf_counter() - start
                figures[total] = _measure(engine, reg, due, str(tmp / "b5.db"))
            finally:
                engine.dispose()
    big, small = figures[BIG], figures[SMALL]
    scale = big["sweep_s"] / small["sweep_s"]
    ratio = big["sweep_s"] / big["raw_s"]
    cpu_ratio = big["sweep_cpu_s"] / big["raw_cpu_s"]
    own = big["own_cpu_s"]
    least = (big["raw_cpu_s"] + own) / big["raw_cpu_s"]
    floor = (
        f"raw sqlite3 doing the same reads and writes took {1000 * big['raw_s']:.0f} ms "
        f"({1000 * big['raw_cpu_s']:.0f} ms CPU); the sweep {1000 * big['sweep_s']:.0f} ms "
        f"({1000 * big['sweep_cpu_s']:.0f} ms CPU, {cpu_ratio:.2f}x). Working out each "
        f"reminder and its email alone (no SQL) used {1000 * own:.0f} ms CPU "
        f"({1000 * own / DUE:.3f} ms a row): raw sqlite3 plus that work is {least:.2f}x the "
        f"baseline, the least any sweep that writes those emails can reach; SQLAlchemy's "
        f"statements and the ORM session cost the other "
        f"{1000 * (big['sweep_cpu_s'] - big['raw_cpu_s'] - own):.0f} ms. From {_SMALL} to "
        f"{_BIG} open deadlines the raw replay itself grows {big['raw_s'] / small['raw_s']:.2f}x "
        f"(the same {DUE:,} rows due, in bigger tables and indexes): no sweep that sends those "
        f"statements can grow less than that"
    )
    return Result(
        id=ID,
        name=NAME,
        unit="x raw sqlite3",
        measured={
            f"sweep {_BIG} ms": 1000 * big["sweep_s"],
            f"sweep {_BIG} CPU ms": 1000 * big["sweep_cpu_s"],
            f"sweep {_SMALL} ms": 1000 * small["sweep_s"],
            f"reminders/s ({_BIG})": DUE / big["sweep_s"],
        },
        baseline={
            f"raw sqlite3 {_BIG} ms": 1000 * big["raw_s"],
            f"raw sqlite3 {_BIG} CPU ms": 1000 * big["raw_cpu_s"],
            f"raw sqlite3 {_SMALL} ms": 1000 * small["raw_s"],
            f"bare read {_BIG} ms": 1000 * big["bare_s"],
        },
        ratio=ratio,
        target=TARGET,
        checks=[Check(f"sweep({_BIG}) / sweep({_SMALL})", scale, SCALE_TARGET, "x")],
        floor=floor,
        detail={
            "open_deadlines": [BIG, SMALL],
            "due_reminders": DUE,
            "batch": BATCH,
            "repeats": REPEATS,
            "cpu_ratio": cpu_ratio,
            "own_work_cpu_ms (reminders and emails worked out, no SQL)": 1000 * own,
            "least_ratio (raw CPU + own work) / raw CPU": least,
            "runs_s": {str(k): v["runs"] for k, v in figures.items()},
            "seed_s": {str(k): v for k, v in seed_s.items()},
            "bare_query_plan": big["plan"],
            "ratio_20k": small["sweep_s"] / small["raw_s"],
            "raw_scale_200k_20k": big["raw_s"] / small["raw_s"],
            "database": "SQLite file (WAL, synchronous=NORMAL), migrated with Alembic",
        },
    )
