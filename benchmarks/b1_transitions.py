"""B1: transitions through `svqm.workflow.service.fire`, one write transaction each.

Measured: 5,000 `suspend`/`reinstate` transitions (guard: a comment, given) on 100 awards, each
in its own `session_scope` (BEGIN IMMEDIATE): load the award, `fire(..., expected_version=...)`,
commit; that is the role check, version check, shared-machine move, conditional update and a
hash-chained audit event.

Baseline: 5,000 bare SQLAlchemy units of the same shape on a copy of the same migrated database,
same engine settings and `session_scope`: load the row, conditional UPDATE of state + version +
state_changed_at, insert one row into `auditevent` (subject_kind "baseline"), commit.

Both run interleaved in rounds, after a warm-up, so drift in the machine hits both alike.
Target: measured time / baseline time <= 2.0.
"""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from benchmarks.fixtures import NOW, copy_database, migrated_sqlite, registry, temp_dir
from benchmarks.report import Result
from svqm.accounts import service as accounts
from svqm.db import session_scope
from svqm.workflow.audit import GENESIS, verify_chain
from svqm.workflow.models import Application, AuditEvent, Award
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor, fire

ID = "B1"
NAME = "Transitions via fire(), one transaction each"
TARGET = 2.0
AWARDS = 100
TRANSITIONS = 5_000
ROUNDS = 5  # interleaved rounds of TRANSITIONS / ROUNDS each
WARMUP = AWARDS  # one untimed transition per award on each side first
COMMENT = "benchmark: suspended pending review"
FLIP = {"active": ("suspend", "suspended"), "suspended": ("reinstate", "active")}


def _seed(engine: Engine, reg: SchemeRegistry) -> tuple[list[int], Actor]:
    """An organisation, an admin, and AWARDS active awards (each on its own awarded application)."""
    scheme = reg.get("svqm")
    policy = scheme.policy
    with session_scope(engine) as s:
        org = accounts.create_organisation(s, name="Benchmark Ltd", sector="health")
        admin = accounts.add_user(s, email="admin@bench.example", role="admin")
        reg.record_snapshot(s, scheme)
        assert org.id is not None
        apps = [
            Application(
                organisation_id=org.id,
                scheme=scheme.id,
                scheme_version=policy.version,
                policy_digest=policy.digest,
                level="bronze",
                state="awarded",
                created_at=NOW,
                state_changed_at=NOW,
            )
            for _ in range(AWARDS)
        ]
        s.add_all(apps)
        s.flush()
        awards = []
        for i, app in enumerate(apps):
            assert app.id is not None
            awards.append(
                Award(
                    organisation_id=org.id,
                    application_id=app.id,
                    scheme=scheme.id,
                    scheme_version=policy.version,
                    policy_digest=policy.digest,
                    level="bronze",
                    state="active",
                    certificate_number=f"BENCH-{i:05d}",
                    issued_at=NOW,
                    expires_at=NOW + timedelta(days=365),
                    created_at=NOW,
                    state_changed_at=NOW,
                )
            )
        s.add_all(awards)
        s.flush()
        ids = [a.id for a in awards if a.id is not None]
        return ids, Actor.of(admin)


class _Side:
    """One side of the comparison: a database, its awards, and the state/version we expect."""

    def __init__(self, engine: Engine, ids: list[int]) -> None:
        self.engine = engine
        self.ids = ids
        self.state = dict.fromkeys(ids, "active")
        self.version = dict.fromkeys(ids, 1)
        self.done = 0
        self.seconds = 0.0

    def next_id(self) -> int:
        aid = self.ids[self.done % len(self.ids)]
        self.done += 1
        return aid


def _engine_units(side: _Side, n: int, reg: SchemeRegistry, admin: Actor) -> float:
    start = time.perf_counter()
    for _ in range(n):
        aid = side.next_id()
        trigger, dest = FLIP[side.state[aid]]
        with session_scope(side.engine) as s:
            award = s.get(Award, aid)
            assert award is not None
            fire(
                s,
                award,
                trigger,
                actor=admin,
                registry=reg,
                now=NOW,
                comment=COMMENT,
                expected_version=side.version[aid],
            )
        side.state[aid] = dest
        side.version[aid] += 1
    return time.perf_counter() - start


def _baseline_units(side: _Side, n: int, admin: Actor) -> float:
    start = time.perf_counter()
    for _ in range(n):
        aid = side.next_id()
        trigger, dest = FLIP[side.state[aid]]
        with session_scope(side.engine) as s:
            award = s.get(Award, aid)
            assert award is not None
            source, version = award.state, award.version
            result = s.execute(
                update(Award)
                .where(col(Award.id) == aid, col(Award.version) == version)
                .values(state=dest, version=version + 1, state_changed_at=NOW)
                .execution_options(synchronize_session=False)
            )
            assert result.rowcount == 1  # type: ignore[attr-defined]
            s.add(
                AuditEvent(
                    subject_kind="baseline",
                    subject_id=aid,
                    seq=version,
                    at=NOW,
                    actor_id=admin.id,
                    actor_role=admin.role,
                    trigger=trigger,
                    source=source,
                    dest=dest,
                    comment=COMMENT,
                    prev_hash=GENESIS,
                    hash=GENESIS,
                )
            )
        side.state[aid] = dest
        side.version[aid] += 1
    return time.perf_counter() - start


def run() -> Result:
    reg = registry()
    with temp_dir("svqm-bench-b1-") as tmp:
        template = tmp / "template.db"
        migrated_sqlite(template).dispose()
        measured = copy_database(template, tmp / "engine.db")
        baseline = copy_database(template, tmp / "baseline.db")
        try:
            return _run(reg, measured, baseline)
        finally:
            measured.dispose()
            baseline.dispose()


def _run(reg: SchemeRegistry, measured_engine: Engine, baseline_engine: Engine) -> Result:
    ids, admin = _seed(measured_engine, reg)
    base_ids, base_admin = _seed(baseline_engine, reg)
    measured = _Side(measured_engine, ids)
    baseline = _Side(baseline_engine, base_ids)

    _engine_units(measured, WARMUP, reg, admin)
    _baseline_units(baseline, WARMUP, base_admin)
    per_round = TRANSITIONS // ROUNDS
    for _ in range(ROUNDS):
        baseline.seconds += _baseline_units(baseline, per_round, base_admin)
        measured.seconds += _engine_units(measured, per_round, reg, admin)

    with session_scope(measured_engine, write=False) as s:
        events = s.exec(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.subject_kind == "award")
        ).one()
        checked, problems = verify_chain(s)
    with session_scope(baseline_engine, write=False) as s:
        base_events = s.exec(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.subject_kind == "baseline")
        ).one()
    expected = WARMUP + TRANSITIONS
    if events != expected or base_events != expected or problems:
        raise RuntimeError(
            f"B1 did not do the work it claims: {events} engine events, "
            f"{base_events} baseline events (expected {expected}), "
            f"chain problems: {[str(p) for p in problems[:5]]}"
        )

    m_tps = TRANSITIONS / measured.seconds
    b_tps = TRANSITIONS / baseline.seconds
    return Result(
        id=ID,
        name=NAME,
        unit="transitions/s",
        measured={
            "transitions/s": m_tps,
            "seconds": measured.seconds,
            "ms/transition": 1000 * measured.seconds / TRANSITIONS,
        },
        baseline={
            "units/s": b_tps,
            "seconds": baseline.seconds,
            "ms/unit": 1000 * baseline.seconds / TRANSITIONS,
        },
        ratio=measured.seconds / baseline.seconds,
        target=TARGET,
        detail={
            "transitions": TRANSITIONS,
            "awards": AWARDS,
            "rounds": ROUNDS,
            "warmup_per_side": WARMUP,
            "audit_events_verified": checked,
            "database": "SQLite file (WAL, synchronous=NORMAL), migrated with Alembic",
        },
    )
