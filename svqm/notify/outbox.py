"""Outbox rows: enqueued once by key, claimed by one dispatcher at a time, retried, dead-lettered.

Claims: PostgreSQL locks the rows it picks with `FOR UPDATE SKIP LOCKED`, so two dispatchers take
different rows; SQLite serialises writers (svqm.db begins write transactions IMMEDIATE) and the
claim is a conditional UPDATE. A claim is a lease: a dispatcher that dies holding rows loses them
when the lease runs out and another sends them. A row is marked sent only after the relay
accepted it, so a crash between the two sends that one message twice, never zero times.
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, func, select

from svqm.db import ManyRows, UtcDateTime, rows_changed, table_of
from svqm.errors import InvalidInput, NotFound
from svqm.notify.models import DEAD, PENDING, SENDING, SENT, DeliveryAttempt, OutboxMessage
from svqm.notify.render import TITLES

# One encoder for every message: `json.dumps` with options builds a new encoder on each call.
_JSON = json.JSONEncoder(sort_keys=True)


class ContextLayout:
    """Contexts that share most of their values, encoded as `message()` encodes a context.

    Many messages differ in a few values only (the sweep's reminders of one kind, to one role:
    the organisation, the names, the link, the due date). The shared values are encoded once,
    as runs of text between the varying values' places; each message then encodes only its
    own values: the same text as `json.dumps(context, sort_keys=True)`, at about a third of
    its cost.
    """

    def __init__(self, fixed: Mapping[str, Any], varying: Sequence[str]) -> None:
        names = [*fixed, *varying]
        if len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
            raise ValueError("ContextLayout: keys are text, each fixed or varying, once")
        self.fixed, self.varying = dict(fixed), tuple(varying)
        pieces: list[str] = []  # the text before each varying value, in key order
        slots: list[int] = []  # which varying value goes there
        text, run, sep = "{", {}, ""
        for name in sorted(names):
            if name in self.fixed:
                run[name] = self.fixed[name]
                continue
            if run:
                text, run, sep = text + sep + _JSON.encode(run)[1:-1], {}, ", "
            pieces.append(text + sep + _JSON.encode(name) + ": ")
            slots.append(self.varying.index(name))
            text, sep = "", ", "
        if run:
            text += sep + _JSON.encode(run)[1:-1]
        self._pieces = tuple(zip(pieces, slots, strict=True))
        self._tail = text + "}"

    def encode(self, values: Sequence[Any]) -> str:
        """The context of these varying values (in the order of `varying`), as JSON text."""
        if len(values) != len(self.varying):
            raise ValueError("ContextLayout: one value for each varying key")
        encode = _encode_value
        return "".join([piece + encode(values[i]) for piece, i in self._pieces]) + self._tail

    def context(self, values: Sequence[Any]) -> dict[str, Any]:
        """The same context as a dict: what `encode` writes."""
        return {**self.fixed, **dict(zip(self.varying, values, strict=True))}


# What `_JSON` writes for text (it is ASCII-only, the default), called without its checks.
_TEXT = json.encoder.encode_basestring_ascii


def _encode_value(value: Any) -> str:
    """`_JSON.encode(value)`, the commonest values (text, integers, lists of text) directly."""
    kind = type(value)
    if kind is str:
        return _TEXT(value)
    if kind is int:
        return int.__repr__(value)  # as the encoder writes integers (never bool: its own type)
    if kind is list and all(type(v) is str for v in value):
        return "[" + ", ".join(map(_TEXT, value)) + "]"
    return _JSON.encode(value)


def message(
    *,
    key: str,
    template: str,
    context: dict[str, Any] | None = None,
    to_addrs: list[str],
    now: datetime,
    organisation_id: int | None = None,
    deadline_id: int | None = None,
    encoded: str | None = None,
) -> dict[str, Any]:
    """An outbox row's values; one with nobody to send it to is dead from the start.

    The context is given as a dict, or already `encoded` (by a `ContextLayout`)."""
    if (context is None) == (encoded is None):
        raise ValueError("message: give the context or its encoding, not both")
    return {
        "key": key,
        "template": template,
        "context": _JSON.encode(context) if encoded is None else encoded,
        "to_addrs": ", ".join(to_addrs),
        "organisation_id": organisation_id,
        "deadline_id": deadline_id,
        "status": PENDING if to_addrs else DEAD,
        "attempts": 0,
        "next_attempt_at": now,
        "claim_token": "",
        "last_error": "" if to_addrs else "nobody to send it to",
        "created_at": now,
    }


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # On the Core table, not the ORM class: the ORM's bulk insert path costs more per row than
    # the database does, and no ORM object is wanted back.
    table = table_of(OutboxMessage)
    return insert(table).on_conflict_do_nothing(index_elements=["key"])


# The same statement, built once for each dialect, with its rows bound at the driver's cost.
_INSERT_MANY = {
    "postgresql": ManyRows(
        pg_insert(table_of(OutboxMessage)).on_conflict_do_nothing(index_elements=["key"])
    ),
    "sqlite": ManyRows(
        sqlite_insert(table_of(OutboxMessage)).on_conflict_do_nothing(index_elements=["key"])
    ),
}


def enqueue_many(session: Session, messages: list[dict[str, Any]]) -> None:
    """Insert messages (`message()`'s values), skipping any whose key exists.

    One statement executed for many rows: compiled once, not once per batch as a multi-row VALUES
    list of a new length would be, and each row bound without SQLAlchemy's per-row work.
    """
    if messages:
        session.flush()  # what session.execute would have flushed first
        conn = session.connection()
        _INSERT_MANY[conn.dialect.name].execute(conn, messages)


def enqueue(session: Session, **fields: Any) -> bool:
    """Add one message unless its key exists (then nothing happens); True if added."""
    # SQLAlchemy keeps rowcount for UPDATE and DELETE only; without preserve_rowcount psycopg's
    # INSERT reports -1 and this would say False for every new message on PostgreSQL.
    statement = _insert(session).values(message(**fields))
    result = session.execute(statement.execution_options(preserve_rowcount=True))
    return rows_changed(result) == 1


@dataclass(frozen=True)
class Claim:
    token: str
    rows: list[OutboxMessage]


# Built once (the dispatcher claims every run): due, or claimed by a lease that ran out, at `now`.
_NOW = bindparam("c_now", type_=UtcDateTime())
_CLAIMABLE = or_(
    and_(col(OutboxMessage.status) == PENDING, col(OutboxMessage.next_attempt_at) <= _NOW),
    and_(col(OutboxMessage.status) == SENDING, col(OutboxMessage.lease_until) <= _NOW),
)
_CLAIMABLE_IDS = (
    select(OutboxMessage.id)
    .where(_CLAIMABLE)
    .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
    .limit(bindparam("c_limit"))
    .with_for_update(skip_locked=True)
)
_TAKE = (
    update(OutboxMessage)
    .where(col(OutboxMessage.id).in_(bindparam("c_ids", expanding=True)), _CLAIMABLE)
    .values(
        status=SENDING,
        claim_token=bindparam("c_token"),
        lease_until=bindparam("c_until", type_=UtcDateTime()),
    )
    .execution_options(synchronize_session=False)
)
# By the ids just taken (the primary key), of which those this claim holds: claim_token has no
# index, and the outbox keeps every message sent, so reading by the token alone read them all.
_TAKEN = (
    select(OutboxMessage)
    .where(
        col(OutboxMessage.id).in_(bindparam("c_ids", expanding=True)),
        col(OutboxMessage.claim_token) == bindparam("c_token"),
    )
    .order_by(col(OutboxMessage.id))
    .execution_options(populate_existing=True)
)


def claim(session: Session, *, now: datetime, limit: int, lease_seconds: float) -> Claim:
    """Take up to `limit` messages that are due (or whose claim lapsed) for this dispatcher."""
    token = secrets.token_hex(16)
    ids = list(session.exec(_CLAIMABLE_IDS, params={"c_now": now, "c_limit": limit}))
    if not ids:
        return Claim(token, [])
    until = now + timedelta(seconds=lease_seconds)
    session.execute(_TAKE, {"c_ids": ids, "c_now": now, "c_token": token, "c_until": until})
    rows = session.exec(_TAKEN, params={"c_ids": ids, "c_token": token}).all()
    return Claim(token, list(rows))


def release(session: Session, rows: list[OutboxMessage], token: str) -> None:
    """Hand back claimed rows that were never tried (the dispatcher is stopping, or its lease
    would run out): due at once for whoever dispatches next, instead of when the lease runs out.
    No attempt was counted for them: attempts are counted when made (mark_sent, mark_failed)."""
    session.execute(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.id).in_([r.id for r in rows]),
            col(OutboxMessage.claim_token) == token,
            col(OutboxMessage.status) == SENDING,
        )
        .values(status=PENDING, lease_until=None)
        .execution_options(synchronize_session=False)
    )


def _record(
    session: Session, row: OutboxMessage, now: datetime, outcome: str, detail: str, worker: str
) -> None:
    assert row.id is not None
    session.add(
        DeliveryAttempt(outbox_id=row.id, at=now, outcome=outcome, detail=detail, worker=worker)
    )


# Built once: the dispatcher marks every message it sends, in a transaction of its own, on a
# Core connection (an ORM session's set-up, flush and commit cost more than these two rows).
_OUTBOX = table_of(OutboxMessage)
_MARK_SENT = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("m_id"), _OUTBOX.c.status != SENT)
    .values(
        status=SENT,
        sent_at=bindparam("m_now", type_=UtcDateTime()),
        lease_until=None,
        last_error="",
        attempts=_OUTBOX.c.attempts + 1,
    )
)
_RECORD_ATTEMPT = insert(table_of(DeliveryAttempt))


def mark_sent(
    conn: Connection, row: OutboxMessage, token: str, *, now: datetime, worker: str
) -> None:
    """The relay accepted it. Recorded even if our lease lapsed meanwhile: it *was* sent."""
    assert row.id is not None
    conn.execute(_MARK_SENT, {"m_id": row.id, "m_now": now})
    row.attempts += 1
    conn.execute(
        _RECORD_ATTEMPT,
        {
            "outbox_id": row.id,
            "at": now,
            "outcome": "sent",
            "detail": f"claim {token[:8]}",
            "worker": worker,
        },
    )


def backoff(attempts: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before the next try: exponential with full jitter in its upper half."""
    ceiling = min(cap, base * 2 ** max(attempts - 1, 0))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def mark_failed(
    session: Session,
    row: OutboxMessage,
    token: str,
    *,
    now: datetime,
    error: str,
    permanent: bool,
    max_attempts: int,
    base: float,
    cap: float,
    worker: str,
    only_to: list[str] | None = None,
) -> str:
    """Schedule the next try, or dead-letter the message; returns the outcome recorded.

    `only_to` narrows the recipients to those still without it (the relay took it for the rest).
    """
    # This attempt was made: it counts now (a claim that lapsed before its try counts nothing).
    row.attempts += 1
    dead = permanent or row.attempts >= max_attempts
    values: dict[str, Any] = {
        "last_error": error[:2000],
        "lease_until": None,
        "attempts": OutboxMessage.attempts + 1,
    }
    if only_to:
        values["to_addrs"] = ", ".join(only_to)
    if dead:
        values["status"] = DEAD
    else:
        delay = backoff(row.attempts, base=base, cap=cap)
        values |= {"status": PENDING, "next_attempt_at": now + timedelta(seconds=delay)}
    session.execute(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.id) == row.id,
            col(OutboxMessage.claim_token) == token,
            col(OutboxMessage.status) == SENDING,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    outcome = "dead" if dead else "retry"
    _record(session, row, now, outcome, error[:2000], worker)
    return outcome


def retry(session: Session, message_id: int, *, now: datetime) -> OutboxMessage:
    """An admin sends a dead-lettered message again: it is pending now, with fresh attempts."""
    row = session.get(OutboxMessage, message_id)
    if row is None:
        raise NotFound(f"no outbox message {message_id}")
    if row.status != DEAD:
        raise InvalidInput(f"message {message_id} is {row.status}; only dead messages are retried")
    if not row.to_addrs:
        raise InvalidInput(f"message {message_id} has nobody to send it to")
    row.status, row.attempts, row.next_attempt_at, row.lease_until = PENDING, 0, now, None
    session.add(row)
    session.flush()
    return row


def retry_dead(session: Session, *, now: datetime, containing: str = "") -> int:
    """Send again, in bulk, every dead letter (that has recipients) whose last error, template
    (its key or its title, as the outbox page names it) or recipients contain `containing`
    (every one when empty); how many went back to the queue."""
    query = update(OutboxMessage).where(
        col(OutboxMessage.status) == DEAD, col(OutboxMessage.to_addrs) != ""
    )
    text = containing.strip()
    if text:
        pattern = f"%{text.lower()}%"
        titled = [t for t, title in TITLES.items() if text.lower() in title.lower()]
        query = query.where(
            or_(
                func.lower(OutboxMessage.last_error).like(pattern),
                func.lower(OutboxMessage.template).like(pattern),
                col(OutboxMessage.template).in_(titled),
                func.lower(OutboxMessage.to_addrs).like(pattern),
            )
        )
    result = session.execute(
        query.values(
            status=PENDING, attempts=0, next_attempt_at=now, lease_until=None
        ).execution_options(synchronize_session=False)
    )
    return rows_changed(result)


def counts(session: Session) -> dict[str, int]:
    """Messages by status."""
    rows = session.exec(
        select(OutboxMessage.status, func.count()).group_by(col(OutboxMessage.status))
    ).all()
    found = {status: int(n) for status, n in rows}
    return {s: found.get(s, 0) for s in (PENDING, SENDING, SENT, DEAD)}


def dead_letter_count(session: Session) -> int:
    """How many messages gave up (the admin home shows a banner while there are any)."""
    return counts(session)[DEAD]


def listing(
    session: Session, *, status: str | None = None, limit: int = 100
) -> list[OutboxMessage]:
    """The newest messages, optionally of one status."""
    query = select(OutboxMessage)
    if status:
        query = query.where(OutboxMessage.status == status)
    return list(session.exec(query.order_by(col(OutboxMessage.id).desc()).limit(limit)))


def attempts_of(session: Session, message_id: int) -> list[DeliveryAttempt]:
    """Every attempt at one message, oldest first."""
    return list(
        session.exec(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.outbox_id == message_id)
            .order_by(col(DeliveryAttempt.id))
        )
    )
