"""B2: binding stored applications to the shared machine, and what each binding costs in memory.

Setup: 100,000 applications inserted with a Core bulk insert (batches of 10,000) into a migrated
SQLite file, spread over every state and level of the application workflow, all under one
recorded policy snapshot; half have the assessor assigned.

Time (target <= 3.0):
  baseline  read the `state` column of every row (`select(Application.state)` iterated);
  measured  read what binding needs of every row (id, state, policy_digest: which row, where
            it stands, which scheme version it follows), find its scheme
            (`registry.for_subject`, once per digest), bind it (`SubjectFlow(state)`) and list the
            triggers an assessor may fire from its state: `service.offered_for_rows`, what a
            queue page uses.
  Each side runs REPEATS times, interleaved; the best run of each is compared.

  Also recorded, for information: reading those columns alone, to split the measured time
  into the wider read and the engine's own work.

Memory (target <= 1024 bytes per application): with tracemalloc, the growth from binding
100,000 `SubjectFlow` adapters kept in a list (states already read). For information, also the
growth from reading the seven columns and keeping rows and adapters together.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import select

from benchmarks.fixtures import NOW, migrated_sqlite, registry, temp_dir
from benchmarks.report import Check, Result
from svqm.accounts import service as accounts
from svqm.db import session_scope
from svqm.workflow.machine import SubjectFlow
from svqm.workflow.models import Application
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor, offered_for_rows

ID = "B2"
NAME = "Bind 100,000 stored applications"
TARGET = 3.0
MEMORY_TARGET = 1024  # bytes per bound application
ROWS = 100_000
BATCH = 10_000
REPEATS = 5
COLUMNS = (Application.id, Application.state, Application.policy_digest)


def _seed(engine: Engine, reg: SchemeRegistry) -> Actor:
    scheme = reg.get("svqm")
    policy = scheme.policy
    states = [s.name for s in policy.workflows.application.states]
    levels = [lv.id for lv in policy.levels]
    with session_scope(engine) as s:
        org = accounts.create_organisation(s, name="Benchmark Ltd", sector="health")
        assessor = accounts.add_user(s, email="assessor@bench.example", role="assessor")
        reg.record_snapshot(s, scheme)
        s.flush()
        table: Any = Application.__table__
        for start in range(0, ROWS, BATCH):
            s.execute(
                insert(table),
                [
                    {
                        "organisation_id": org.id,
                        "scheme": scheme.id,
                        "scheme_version": policy.version,
                        "policy_digest": policy.digest,
                        "level": levels[i % len(levels)],
                        "state": states[i % len(states)],
                        "version": 1 + i % 7,
                        "assessor_id": assessor.id if i % 2 else None,
                        "created_by_id": None,
                        "created_at": NOW,
                        "state_changed_at": NOW,
                    }
                    for i in range(start, min(start + BATCH, ROWS))
                ],
            )
        actor = Actor(assessor.id, assessor.role)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return actor


def _read_states(engine: Engine) -> tuple[float, int]:
    with session_scope(engine, write=False) as s:
        start = time.perf_counter()
        n = 0
        for _state in s.exec(select(Application.state)):
            n += 1
        return time.perf_counter() - start, n


def _read_columns(engine: Engine) -> float:
    """For information: reading the bound columns alone, without binding (the wider read's cost)."""
    with session_scope(engine, write=False) as s:
        start = time.perf_counter()
        for _row in s.exec(select(*COLUMNS)):
            pass
        return time.perf_counter() - start


def _bind_all(engine: Engine, reg: SchemeRegistry, actor: Actor) -> tuple[float, int, int]:
    with session_scope(engine, write=False) as s:
        start = time.perf_counter()
        n = triggers = 0
        for _id, _bound, mine in offered_for_rows(
            s, s.exec(select(*COLUMNS)), role=actor.role, registry=reg
        ):
            n += 1
            triggers += len(mine)
        return time.perf_counter() - start, n, triggers


def _adapter_memory(engine: Engine) -> float:
    """Traced bytes per application for binding adapters to states already read."""
    with session_scope(engine, write=False) as s:
        states = list(s.exec(select(Application.state)))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        bound = [SubjectFlow(state) for state in states]
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(bound) == ROWS
    return grown / len(bound)


def _rows_and_adapter_memory(engine: Engine) -> float:
    """Traced bytes per application for reading the seven columns and keeping rows + adapters."""
    gc.collect()
    with session_scope(engine, write=False) as s:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            kept = [(row, SubjectFlow(row.state)) for row in s.exec(select(*COLUMNS))]
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert len(kept) == ROWS
    return grown / len(kept)


def run() -> Result:
    reg = registry()
    with temp_dir("svqm-bench-b2-") as tmp:
        engine = migrated_sqlite(tmp / "b2.db")
        try:
            return _run(engine, reg)
        finally:
            engine.dispose()


def _run(engine: Engine, reg: SchemeRegistry) -> Result:
    start = time.perf_counter()
    actor = _seed(engine, reg)
    seed_seconds = time.perf_counter() - start

    _read_states(engine)  # warm-up: SQL compilation, page cache
    _bind_all(engine, reg, actor)
    base_runs: list[float] = []
    bind_runs: list[float] = []
    read_runs: list[float] = []
    triggers = 0
    for _ in range(REPEATS):
        seconds, n = _read_states(engine)
        assert n == ROWS, n
        base_runs.append(seconds)
        seconds, n, triggers = _bind_all(engine, reg, actor)
        assert n == ROWS, n
        bind_runs.append(seconds)
        read_runs.append(_read_columns(engine))
    base, bind, read = min(base_runs), min(bind_runs), min(read_runs)

    per_app = _adapter_memory(engine)
    per_app_with_rows = _rows_and_adapter_memory(engine)

    return Result(
        id=ID,
        name=NAME,
        unit="rows/s",
        measured={
            "rows/s (read+bind+triggers)": ROWS / bind,
            "seconds": bind,
            "us/row": 1e6 * bind / ROWS,
        },
        baseline={"rows/s (read state)": ROWS / base, "seconds": base, "us/row": 1e6 * base / ROWS},
        ratio=bind / base,
        target=TARGET,
        checks=[Check("memory per bound application", per_app, MEMORY_TARGET, "bytes")],
        detail={
            "rows": ROWS,
            "repeats": REPEATS,
            "baseline_runs_s": base_runs,
            "measured_runs_s": bind_runs,
            "read_7_columns_runs_s": read_runs,
            "read_7_columns_ratio": read / base,
            "bind_and_triggers_share_of_measured": (bind - read) / bind,
            "assessor_triggers_listed": triggers,
            "bytes_per_application_adapter": per_app,
            "bytes_per_application_rows_and_adapters": per_app_with_rows,
            "seed_seconds": seed_seconds,
            "time_ratio": bind / base,
            "time_target": TARGET,
            "memory_target_bytes": MEMORY_TARGET,
        },
    )
