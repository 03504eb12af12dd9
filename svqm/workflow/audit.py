"""The append-only audit trail: one event per change, each subject's events chained by SHA-256."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import DDL, bindparam, event, func, insert
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from svqm.db import new_row, table_of
from svqm.workflow.models import Application, AuditEvent, Award

GENESIS = "0" * 64

# The database itself refuses to edit or delete audit events; the hash chain catches whoever
# drops these triggers first (the application's own database user could).
_SQLITE_GUARDS = [
    "CREATE TRIGGER IF NOT EXISTS auditevent_no_update BEFORE UPDATE ON auditevent "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS auditevent_no_delete BEFORE DELETE ON auditevent "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
]
_POSTGRES_GUARDS = [
    "CREATE OR REPLACE FUNCTION auditevent_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'audit events are append-only'; END; $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS auditevent_append_only ON auditevent",
    "CREATE TRIGGER auditevent_append_only BEFORE UPDATE OR DELETE ON auditevent "
    "FOR EACH ROW EXECUTE FUNCTION auditevent_append_only()",
]


def append_only_ddl(dialect: str) -> list[str]:
    """The statements that make the audit table append-only on this dialect."""
    return _POSTGRES_GUARDS if dialect == "postgresql" else _SQLITE_GUARDS


for _stmt in _SQLITE_GUARDS:
    event.listen(table_of(AuditEvent), "after_create", DDL(_stmt).execute_if(dialect="sqlite"))
for _stmt in _POSTGRES_GUARDS:
    event.listen(table_of(AuditEvent), "after_create", DDL(_stmt).execute_if(dialect="postgresql"))


def _canonical(e: AuditEvent) -> bytes:
    body: dict[str, object] = {
        "subject_kind": e.subject_kind,
        "subject_id": e.subject_id,
        "seq": e.seq,
        "at": e.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": e.actor_id,
        "actor_role": e.actor_role,
        "trigger": e.trigger,
        "source": e.source,
        "dest": e.dest,
        "comment": e.comment,
        "prev_hash": e.prev_hash,
    }
    # Chained only when it is not the default, so events written before it existed still verify.
    if e.visibility != "applicant":
        body["visibility"] = e.visibility
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def hash_event(e: AuditEvent) -> str:
    """The event's hash over its content and its predecessor's hash."""
    return hashlib.sha256(_canonical(e)).hexdigest()


# Built once, on the Core table: every step of every subject reads its predecessor's hash and
# writes one event (an ORM flush of the one new row cost more than both statements together).
_TABLE = table_of(AuditEvent)
_PREVIOUS_HASH = sa_select(_TABLE.c.hash).where(
    _TABLE.c.subject_kind == bindparam("kind"),
    _TABLE.c.subject_id == bindparam("id"),
    _TABLE.c.seq == bindparam("seq"),
)
_INSERT = insert(_TABLE)
_COLUMNS = tuple(c.key for c in _TABLE.c if c.key != "id")


def append_event(
    session: Session,
    *,
    subject_kind: str,
    subject_id: int,
    seq: int,
    at: datetime,
    actor_id: int | None,
    actor_role: str,
    trigger: str,
    source: str,
    dest: str,
    comment: str = "",
    visibility: str = "applicant",
) -> AuditEvent:
    """Append the subject's event number `seq`, chained to its event `seq - 1`.

    Callers hold the subject's row lock (its version was just bumped), so the chain cannot fork.

    The event is written at once (a Core insert on the session's connection, after any pending
    changes, as a flush of it would); the object returned carries its id but is not kept in
    the session: events are append-only, nothing changes one once written.
    """
    session.flush()
    conn = session.connection()
    params = {"kind": subject_kind, "id": subject_id, "seq": seq - 1}
    prev = conn.execute(_PREVIOUS_HASH, params).scalar()
    e = new_row(
        AuditEvent,
        subject_kind=subject_kind,
        subject_id=subject_id,
        seq=seq,
        at=at,
        actor_id=actor_id,
        actor_role=actor_role,
        trigger=trigger,
        source=source,
        dest=dest,
        comment=comment,
        visibility=visibility,
        prev_hash=prev or GENESIS,
        hash="",
    )
    e.hash = hash_event(e)
    written = conn.execute(_INSERT, {name: getattr(e, name) for name in _COLUMNS})
    key = written.inserted_primary_key
    assert key is not None
    e.id = key[0]
    return e


@dataclass(frozen=True)
class ChainProblem:
    subject_kind: str
    subject_id: int
    seq: int
    reason: str

    def __str__(self) -> str:
        return f"{self.subject_kind} {self.subject_id} event {self.seq}: {self.reason}"


def verify_chain(session: Session) -> tuple[int, list[ChainProblem]]:
    """Check every subject's chain; returns (events checked, problems found)."""
    problems: list[ChainProblem] = []
    checked = 0
    last: dict[tuple[str, int], AuditEvent] = {}
    rows = session.exec(
        select(AuditEvent).order_by(
            col(AuditEvent.subject_kind), col(AuditEvent.subject_id), col(AuditEvent.seq)
        )
    )
    for e in rows:
        checked += 1
        key = (e.subject_kind, e.subject_id)
        before = last.get(key)
        expected_seq = 1 if before is None else before.seq + 1
        expected_prev = GENESIS if before is None else before.hash
        if e.seq != expected_seq:
            problems.append(ChainProblem(*key, expected_seq, "missing: the event was deleted"))
        if e.prev_hash != expected_prev:
            problems.append(ChainProblem(*key, e.seq, "does not chain to the event before it"))
        if hash_event(e) != e.hash:
            problems.append(ChainProblem(*key, e.seq, "content was edited after it was written"))
        last[key] = e
    # The subject's version counts its changes, so a deleted last event shows up here.
    for model, kind in ((Application, "application"), (Award, "award")):
        for subject_id, version in session.exec(select(model.id, model.version)):
            assert subject_id is not None
            have = last.get((kind, subject_id))
            count = 0 if have is None else have.seq
            if version - 1 != count:
                problems.append(
                    ChainProblem(
                        kind,
                        subject_id,
                        count + 1,
                        f"missing: {version - 1} changes recorded on the {kind} "
                        f"but {count} events in its trail",
                    )
                )
    return checked, problems


def count_events(session: Session) -> int:
    """How many audit events exist."""
    return session.exec(select(func.count()).select_from(AuditEvent)).one()
