"""B5: the deadline sweep against raw `sqlite3` doing the same reads and writes, at two table sizes.

Seeded with bulk inserts into a migrated SQLite file: one organisation, applicant, awarded
application and active Silver award per four deadline rows, each award with the svqm policy's
four award deadlines that run while it is active (annual report, renewal, expiry, upgrade
eligibility). 200,000 open rows, of which 2,000 (1%) are reminders due: their first reminder's
moment has passed and their due moment has not, so the sweep sends a reminder and moves them on
(no `on_due` action fires). The other rows wake after `now`.

Measured: `svqm.notify.sweep.sweep(engine, registry, now=...)`, the whole sweep (batches of 500,
each a transaction: the rows, their subjects and recipients, the outbox rows, the progress).

Baseline (the limit): the same reads and writes in raw `sqlite3` (same file, same pragmas), in
the same batches of 500, each one transaction: select the due rows (the sweep's query, through
the same index), read their awards, organisations and members (`IN` lists), update each
deadline's progress (`executemany`, the sweep's conditional update), insert each outbox row
(`INSERT OR IGNORE`, `executemany`), commit. The values written are exactly those the sweep
wrote in a run before (read back from the tables, not timed), so both write the same bytes; the
baseline works nothing out (who to tell, the email's content), which is the sweep's own work.
For information, also the bare read of the due rows alone.

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

from sqlalchemy import bindparam, insert, text, update
from sqlalchemy.engine import Engine

from benchmarks.fixtures import NOW, migrated_sqlite, registry, temp_dir
from benchmarks.report import Check, Result, cpu_seconds
from svqm.accounts.models import Organisation, User
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


_RAW_DUE = (
    "SELECT id, subject_kind, subject_id, organisation_id, kind, due_at, reminded FROM deadline"
    " WHERE status = 'open' AND wake_at <= ? ORDER BY wake_at, id LIMIT ?"
)
_RAW_AWARDS = (
    "SELECT id, organisation_id, level, state, policy_digest, certificate_number FROM award"
    " WHERE id IN ({})"
)
_RAW_ORGS = "SELECT id, name FROM organisation WHERE id IN ({})"
_RAW_MEMBERS = (
    "SELECT organisation_id, email, role, active FROM user_account WHERE organisation_id IN ({})"
    " ORDER BY id"
)
_RAW_ADVANCE = (
    "UPDATE deadline SET reminded = ?, wake_at = ? WHERE id = ? AND status = 'open'"
    " AND reminded = ?"
)
_OUTBOX_COLUMNS = (
    "key",
    "template",
    "context",
    "to_addrs",
    "organisation_id",
    "deadline_id",
    "status",
    "attempts",
    "next_attempt_at",
    "claim_token",
    "last_error",
    "created_at",
)
_RAW_OUTBOX = (
    f"INSERT OR IGNORE INTO outbox ({', '.join(_OUTBOX_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in _OUTBOX_COLUMNS)})"
)


class _Raw:
    """The sweep's reads and writes in raw sqlite3, with the values the sweep itself wrote."""

    def __init__(self, path: str, now_raw: str, written: dict[int, tuple[Any, ...]]) -> None:
        self.path, self.now_raw = path, now_raw
        # deadline id -> (new reminded, new wake_at, outbox rows' values), as the sweep wrote.
        self.written = written

    def run(self) -> int:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            total = 0
            while True:
                conn.execute("BEGIN IMMEDIATE")
                rows = conn.execute(_RAW_DUE, (self.now_raw, BATCH)).fetchall()
                total += len(rows)
                if rows:
                    awards = [r[2] for r in rows]
                    marks = ", ".join("?" for _ in awards)
                    conn.execute(_RAW_AWARDS.format(marks), awards).fetchall()
                    orgs = sorted({r[3] for r in rows})
                    org_marks = ", ".join("?" for _ in orgs)
                    conn.execute(_RAW_ORGS.format(org_marks), orgs).fetchall()
                    conn.execute(_RAW_MEMBERS.format(org_marks), orgs).fetchall()
                    advances, messages = [], []
                    for r in rows:
                        reminded, wake, outbox_rows = self.written[r[0]]
                        advances.append((reminded, wake, r[0], r[6]))
                        messages.extend(outbox_rows)
                    conn.executemany(_RAW_ADVANCE, advances)
                    conn.executemany(_RAW_OUTBOX, messages)
                conn.execute("COMMIT")
                if len(rows) < BATCH:
                    return total
        finally:
            conn.close()


def _written(path: str, due: list[dict[str, Any]]) -> dict[int, tuple[Any, ...]]:
    """What a sweep wrote for each due row: its progress and its outbox rows, as stored."""
    conn = sqlite3.connect(path)
    try:
        ids = [d["b_id"] for d in due]
        out: dict[int, tuple[Any, ...]] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ", ".join("?" for _ in part)
            for did, reminded, wake in conn.execute(
                f"SELECT id, reminded, wake_at FROM deadline WHERE id IN ({marks})", part
            ):
                out[did] = (reminded, wake, [])
            for row in conn.execute(
                f"SELECT {', '.join(_OUTBOX_COLUMNS)} FROM outbox WHERE deadline_id IN ({marks})",
                part,
            ):
                out[row[5]][2].append(row)
        return out
    finally:
        conn.close()


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
    # A first sweep, untimed: it warms the caches and leaves what the raw baseline will write.
    report = swept()
    messages_written = _count_outbox(engine)
    raw = _Raw(path, _now_raw(engine), _written(path, due))
    handled = raw_messages = 0
    for _ in range(REPEATS):
        report = _best(swept, reset, runs, "sweep")
        handled = _best(raw.run, reset, runs, "raw")
        raw_messages = _count_outbox(engine)
        if _best(bare, reset, runs, "bare") != DUE:
            raise RuntimeError("B5's bare read did not find the due rows")
    own_cpu = _own_work(swept, reset)
    with engine.connect() as conn:
        plan = conn.execute(
            text("EXPLAIN QUERY PLAN " + BARE.text).bindparams(
                bindparam("now", type_=UtcDateTime())
            ),
            {"now": NOW},
        ).fetchall()
    if (
        found != DUE
        or sum(report.reminders.values()) != DUE
        or messages_written != DUE
        or handled != DUE
        or raw_messages != DUE
    ):
        raise RuntimeError(
            f"B5 did not do the work it claims: bare query found {found}, the sweep sent "
            f"{sum(report.reminders.values())} reminders and left {messages_written} outbox "
            f"rows, raw sqlite3 handled {handled} rows and left {raw_messages} "
            f"(expected {DUE} each); refused: {report.failed[:3]}"
        )
    best = {k: min(v) for k, v in runs.items()}
    return {
        **{f"{k}_s": v for k, v in best.items()},
        "own_cpu_s": own_cpu,
        "runs": runs,
        "plan": " / ".join(str(row[-1]) for row in plan),
    }


def _own_work(swept: Callable[[], Any], reset: Callable[[], None]) -> float:
    """CPU seconds of the sweep's own work in one more (untimed) sweep: working out each
    reminder's progress and its email (recipients, frozen context, JSON, key), which sends no
    SQL and which the raw baseline, given the values, never does. The least of `REPEATS` runs.
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
        with (
            mock.patch.object(sweep_module._Batch, "tell", timed(sweep_module._Batch.tell)),
            mock.patch.object(sweep_module._Batch, "advance", timed(sweep_module._Batch.advance)),
        ):
            swept()
    return min(spent)


def _count_outbox(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM outbox")).scalar_one())


def _now_raw(engine: Engine) -> Any:
    """`now` as the database stores it (the sweep's own bind processing), for raw sqlite3."""
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT :now").bindparams(bindparam("now", type_=UtcDateTime())), {"now": NOW}
        ).scalar_one()


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
        f"{1000 * (big['sweep_cpu_s'] - big['raw_cpu_s'] - own):.0f} ms"
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
