"""B1: transitions through `svqm.workflow.service.fire`, one write transaction each.

Measured: 5,000 `suspend`/`reinstate` transitions (guard: a comment, given) on 100 awards, each
in its own `session_scope` (BEGIN IMMEDIATE): load the award, `fire(..., expected_version=...)`,
commit; that is the role check, version check, shared-machine move, conditional update and a
hash-chained audit event.

Baseline: 5,000 bare SQLAlchemy units doing the same reads and writes on a copy of the same
migrated database, same engine settings and `session_scope`, statement for statement what `fire`
sends for these two steps: load the row, conditional UPDATE of state + version +
state_changed_at; the award's deadlines (a suspension cancels its open ones in one UPDATE; a
reinstatement reads its past ones and opens the annual report, renewal and expiry rows in one
INSERT); read the previous event's hash and insert the chained event (subject_kind "baseline",
hashed as `fire` hashes); read the organisation's name and members and the award's open
deadlines, and insert the holder's outbox row (its JSON context); commit. Nothing is worked out
(no policy, no guards, no date arithmetic: the due dates are constants), so it is the floor of a
transition that keeps the award's deadlines and tells its holder. Both sides must end with the
same deadline and outbox rows, or the run fails.

Both run interleaved in rounds, after a warm-up, so drift in the machine hits both alike.
Target: measured time / baseline time <= 2.0.
"""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from benchmarks.fixtures import NOW, copy_database, migrated_sqlite, registry, temp_dir
from benchmarks.report import Result, cpu_seconds
from svqm.accounts import service as accounts
from svqm.accounts.models import Membership, Organisation, User
from svqm.db import session_scope, table_of
from svqm.notify.models import OutboxMessage
from svqm.workflow.audit import GENESIS, hash_event, verify_chain
from svqm.workflow.models import Application, AuditEvent, Award
from svqm.workflow.schedule import ScheduledDeadline
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor, fire

ID = "B1"
NAME = "Transitions via fire(), one transaction each"
TARGET = 2.0
AWARDS = 100
TRANSITIONS = int(os.environ.get("SVQM_B1_TRANSITIONS", "5000"))  # a quick look: 500
ROUNDS = 5  # interleaved rounds of TRANSITIONS / ROUNDS each
WARMUP = AWARDS  # one untimed transition per award on each side first
COMMENT = "benchmark: suspended pending review"
FLIP = {"active": ("suspend", "suspended"), "suspended": ("reinstate", "active")}
# What a reinstated bronze award (issued NOW, expiring a year on) runs: due date and first wake-up.
DUE = NOW + timedelta(days=365)
REOPENED = {
    "annual_report": (DUE, DUE - timedelta(days=30)),
    "renewal": (DUE - timedelta(days=92), DUE - timedelta(days=92 + 60)),
    "expiry": (DUE, DUE - timedelta(days=90)),
}


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
        self.cpu = 0.0  # CPU seconds of this process while the side ran (steadier under load)

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


_D = table_of(ScheduledDeadline)
_PRIOR = _D.alias("prior")
_SUBJECT = (_D.c.subject_kind == bindparam("s_kind"), _D.c.subject_id == bindparam("s_id"))
_CANCEL = (
    update(_D)
    .where(*_SUBJECT, _D.c.status == "open")
    .values(
        status="cancelled",
        wake_at=None,
        closed_at=bindparam("s_now"),
        outcome="the award left the deadline's states",
    )
    .returning(_D.c.id)
)
_PAST = sa_select(
    _D.c.id, _D.c.kind, _D.c.seq, _D.c.occurrence, _D.c.status, _D.c.due_at, _D.c.closed_at
).where(*_SUBJECT, _D.c.status.in_(("open", "met", "passed", "fired", "failed")))
_REOPEN = insert(_D).values(
    seq=sa_select(func.coalesce(func.max(_PRIOR.c.seq) + 1, 0))
    .where(
        _PRIOR.c.subject_kind == bindparam("s_kind"),
        _PRIOR.c.subject_id == bindparam("s_id"),
        _PRIOR.c.kind == bindparam("s_deadline"),
    )
    .scalar_subquery()
)
_OPEN_NOW = (
    sa_select(ScheduledDeadline).where(*_SUBJECT, _D.c.status == "open").order_by(_D.c.due_at)
)
_PREV_HASH = sa_select(col(AuditEvent.hash)).where(
    col(AuditEvent.subject_kind) == bindparam("s_kind"),
    col(AuditEvent.subject_id) == bindparam("s_id"),
    col(AuditEvent.seq) == bindparam("s_seq"),
)
_ORGANISATION = sa_select(col(Organisation.id), col(Organisation.name)).where(
    col(Organisation.id).in_(bindparam("ids", expanding=True))
)
_MEMBERS = (
    sa_select(
        col(Membership.organisation_id),
        col(User.email),
        col(User.role),
        col(User.active),
        col(User.name),
    )
    .join(User, col(User.id) == Membership.user_id)
    .where(col(Membership.organisation_id).in_(bindparam("ids", expanding=True)))
    .order_by(col(User.id))
)
_OUTBOX = sqlite_insert(table_of(OutboxMessage)).on_conflict_do_nothing(index_elements=["key"])
_JSON = json.JSONEncoder(sort_keys=True)


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
            subject = {"s_kind": "award", "s_id": aid}
            if dest == "suspended":
                s.execute(_CANCEL, {**subject, "s_now": NOW}).scalars().all()
            else:
                s.execute(_PAST, subject).all()
                s.execute(
                    _REOPEN, [_reopened(award, kind, *when) for kind, when in REOPENED.items()]
                )
            chain = {"s_kind": "baseline", "s_id": aid, "s_seq": version - 1}
            prev = s.execute(_PREV_HASH, chain).scalar()
            event = AuditEvent(
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
                prev_hash=prev or GENESIS,
                hash="",
            )
            event.hash = hash_event(event)
            s.add(event)
            s.flush()
            ids = {"ids": [award.organisation_id]}
            name = dict(s.execute(_ORGANISATION, ids).all())[award.organisation_id]
            to = [e for _, e, role, active, _ in s.execute(_MEMBERS, ids) if active]
            deadlines = [{"kind": d.kind} for d in s.execute(_OPEN_NOW, subject).scalars()]
            s.execute(_OUTBOX, _outbox_row(award, version, dest, name, to, deadlines))
        side.state[aid] = dest
        side.version[aid] += 1
    return time.perf_counter() - start


def _reopened(award: Award, kind: str, due: Any, wake: Any) -> dict[str, Any]:
    return {
        "s_kind": "award",
        "s_id": award.id,
        "s_deadline": kind,
        "subject_kind": "award",
        "subject_id": award.id,
        "organisation_id": award.organisation_id,
        "scheme": award.scheme,
        "kind": kind,
        "occurrence": 0,
        "due_at": due,
        "wake_at": wake,
        "reminded": "",
        "status": "open",
        "outcome": "",
        "created_at": NOW,
        "closed_at": None,
    }


def _outbox_row(
    award: Award, seq: int, dest: str, name: str, to: list[str], deadlines: list[Any]
) -> dict[str, Any]:
    """The holder's email about the step, with a context of the same fields `fire` writes."""
    title = f"Bronze award ({award.certificate_number})"
    context = {
        "subject": f"{title}: {dest}",
        "names": [],
        "greeting_fallback": f"{name} team",
        "organisation": name,
        "scheme": "SVQM",
        "contact": "Questions about your case? Write to svqm@svqm.localhost",
        "subject_title": title,
        "step": dest,
        "happened": f"The status of your Bronze award (certificate "
        f"{award.certificate_number}) is now {dest}.",
        "next_text": "",
        "done_text": "Done by an administrator.",
        "state": dest,
        "moved": True,
        "comment": COMMENT,
        "items": [],
        "deadlines": deadlines,
        "notice": "",
        "path": f"/awards/{award.id}",
        "audience": "applicant",
    }
    return {
        "key": f"event:baseline-{award.id}:{seq}:applicant",
        "template": "event",
        "context": _JSON.encode(context),
        "to_addrs": ", ".join(to),
        "organisation_id": award.organisation_id,
        "deadline_id": None,
        "status": "pending" if to else "dead",
        "attempts": 0,
        "next_attempt_at": NOW,
        "claim_token": "",
        "last_error": "" if to else "nobody to send it to",
        "created_at": NOW,
    }


def _rows(engine: Engine) -> tuple[int, int, int]:
    """Deadline rows, open ones, and outbox rows: both sides must end with the same."""
    with session_scope(engine, write=False) as s:
        return (
            s.exec(select(func.count()).select_from(ScheduledDeadline)).one(),
            s.exec(
                select(func.count())
                .select_from(ScheduledDeadline)
                .where(ScheduledDeadline.status == "open")
            ).one(),
            s.exec(select(func.count()).select_from(OutboxMessage)).one(),
        )


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
        cpu = cpu_seconds()
        baseline.seconds += _baseline_units(baseline, per_round, base_admin)
        baseline.cpu += cpu_seconds() - cpu
        cpu = cpu_seconds()
        measured.seconds += _engine_units(measured, per_round, reg, admin)
        measured.cpu += cpu_seconds() - cpu

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
    rows, base_rows = _rows(measured_engine), _rows(baseline_engine)
    if events != expected or base_events != expected or problems or rows != base_rows:
        raise RuntimeError(
            f"B1 did not do the work it claims: {events} engine events, "
            f"{base_events} baseline events (expected {expected}), "
            f"chain problems: {[str(p) for p in problems[:5]]}; deadline, open deadline and "
            f"outbox rows: {rows} engine, {base_rows} baseline"
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
            "CPU ms/transition": 1000 * measured.cpu / TRANSITIONS,
        },
        baseline={
            "units/s": b_tps,
            "seconds": baseline.seconds,
            "ms/unit": 1000 * baseline.seconds / TRANSITIONS,
            "CPU ms/unit": 1000 * baseline.cpu / TRANSITIONS,
        },
        ratio=measured.seconds / baseline.seconds,
        target=TARGET,
        detail={
            "transitions": TRANSITIONS,
            "awards": AWARDS,
            "rounds": ROUNDS,
            "warmup_per_side": WARMUP,
            "audit_events_verified": checked,
            "deadline_open_outbox_rows": list(rows),
            "cpu_ratio": measured.cpu / baseline.cpu,
            "database": "SQLite file (WAL, synchronous=NORMAL), migrated with Alembic",
        },
    )
