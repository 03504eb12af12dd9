"""B5: the deadline sweep against the bare query for the rows it handles, at two table sizes.

Seeded with bulk inserts into a migrated SQLite file: one organisation, applicant, awarded
application and active Silver award per four deadline rows, each award with the svqm policy's
four award deadlines that run while it is active (annual report, renewal, expiry, upgrade
eligibility). 200,000 open rows, of which 2,000 (1%) are reminders due: their first reminder's
moment has passed and their due moment has not, so the sweep sends a reminder and moves them on
(no `on_due` action fires). The other rows wake after `now`.

Measured: `svqm.notify.sweep.sweep(engine, registry, now=...)`, the whole sweep (batches of 500,
each a transaction: the rows, their subjects and recipients, the outbox rows, the progress).
Baseline: the bare query for the same due rows,
`SELECT * FROM deadline WHERE status = 'open' AND wake_at <= :now`, fetched in full.
Between repeats the due rows are put back (reminded = '', their old wake_at) and the outbox
emptied, so each repeat does the same work; best of 3 each.

Target: sweep / bare query <= 3.0 at 200,000 rows. Check: sweep(200k) / sweep(20k) <= 2.0 (the
same 2,000 due among 20,000 rows): the sweep's cost follows the due rows, not the table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, insert, text, update
from sqlalchemy.engine import Engine

from benchmarks.fixtures import NOW, migrated_sqlite, registry, temp_dir
from benchmarks.report import Check, Result
from svqm.accounts.models import Organisation, User
from svqm.db import UtcDateTime, session_scope
from svqm.notify.models import OutboxMessage
from svqm.notify.sweep import sweep
from svqm.workflow.models import Application, Award
from svqm.workflow.schedule import ScheduledDeadline, next_wake
from svqm.workflow.schemes import SchemeRegistry

ID = "B5"
NAME = "Deadline sweep vs the bare query for its due rows"
TARGET = 3.0
SCALE_TARGET = 2.0
BIG, SMALL, DUE = 200_000, 20_000, 2_000
REPEATS = 3
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


def _best(work: Callable[[], Any], before: Callable[[], None]) -> tuple[float, list[float], Any]:
    times, out = [], None
    for _ in range(REPEATS):
        before()
        start = time.perf_counter()
        out = work()
        times.append(time.perf_counter() - start)
    return min(times), times, out


def _measure(engine: Engine, reg: SchemeRegistry, due: list[dict[str, Any]]) -> dict[str, Any]:
    def bare() -> int:
        with engine.connect() as conn:
            return len(conn.execute(BARE, {"now": NOW}).fetchall())

    def swept() -> Any:
        return sweep(engine, reg, now=NOW, base_url=BASE_URL)

    _reset(engine, due)
    bare_s, bare_runs, found = _best(bare, lambda: None)
    sweep_s, sweep_runs, report = _best(swept, lambda: _reset(engine, due))
    with engine.connect() as conn:
        messages = conn.execute(text("SELECT count(*) FROM outbox")).scalar_one()
        plan = conn.execute(
            text("EXPLAIN QUERY PLAN " + BARE.text).bindparams(
                bindparam("now", type_=UtcDateTime())
            ),
            {"now": NOW},
        ).fetchall()
    if found != DUE or sum(report.reminders.values()) != DUE or messages != DUE:
        raise RuntimeError(
            f"B5 did not do the work it claims: bare query found {found}, the sweep sent "
            f"{sum(report.reminders.values())} reminders and left {messages} outbox rows "
            f"(expected {DUE} each); refused: {report.failed[:3]}"
        )
    return {
        "bare_s": bare_s,
        "bare_runs": bare_runs,
        "sweep_s": sweep_s,
        "sweep_runs": sweep_runs,
        "plan": " / ".join(str(row[-1]) for row in plan),
    }


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
                figures[total] = _measure(engine, reg, due)
            finally:
                engine.dispose()
    big, small = figures[BIG], figures[SMALL]
    scale = big["sweep_s"] / small["sweep_s"]
    return Result(
        id=ID,
        name=NAME,
        unit="x the bare query",
        measured={
            "sweep 200k ms": 1000 * big["sweep_s"],
            "sweep 20k ms": 1000 * small["sweep_s"],
            "reminders/s (200k)": DUE / big["sweep_s"],
        },
        baseline={
            "bare query 200k ms": 1000 * big["bare_s"],
            "bare query 20k ms": 1000 * small["bare_s"],
        },
        ratio=big["sweep_s"] / big["bare_s"],
        target=TARGET,
        checks=[Check("sweep(200k) / sweep(20k)", scale, SCALE_TARGET, "x")],
        detail={
            "open_deadlines": [BIG, SMALL],
            "due_reminders": DUE,
            "repeats": REPEATS,
            "runs_s": {
                str(k): {"sweep": v["sweep_runs"], "bare": v["bare_runs"]}
                for k, v in figures.items()
            },
            "seed_s": {str(k): v for k, v in seed_s.items()},
            "bare_query_plan": big["plan"],
            "ratio_20k": small["sweep_s"] / small["bare_s"],
            "database": "SQLite file (WAL, synchronous=NORMAL), migrated with Alembic",
        },
    )
