"""PlainSelect: a select read as plain tuples, at the driver's cost, reads what SQLAlchemy reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Float, bindparam, cast, event, select
from sqlalchemy.engine import Engine

from svqm.accounts.models import User
from svqm.db import PlainSelect, UtcDateTime, session_scope, table_of
from svqm.notify import outbox
from svqm.notify.models import OutboxMessage
from tests.factories import make_org, make_user

NOW = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1))
_OUT = table_of(OutboxMessage)
_USERS = table_of(User)

# Expanding IN lists, a datetime bound and read, a value of the statement's own, NULLs.
_BY_ID = (
    select(_OUT.c.id, _OUT.c.key, _OUT.c.next_attempt_at, _OUT.c.lease_until, _OUT.c.status)
    .where(
        _OUT.c.id.in_(bindparam("ids", expanding=True)),
        _OUT.c.status == "pending",
        _OUT.c.next_attempt_at <= bindparam("now", type_=UtcDateTime()),
    )
    .order_by(_OUT.c.id)
)
_TWO_LISTS = (
    select(_OUT.c.key, _OUT.c.organisation_id)
    .where(
        _OUT.c.id.in_(bindparam("ids", expanding=True)),
        _OUT.c.key.in_(bindparam("keys", expanding=True)),
    )
    .order_by(_OUT.c.key)
    .limit(bindparam("limit"))
)
# An IN list of the statement's own values (an anonymous expanding bind) beside one given.
_OWN_LIST = (
    select(_OUT.c.id, _OUT.c.status)
    .where(
        _OUT.c.id.in_(bindparam("ids", expanding=True)),
        _OUT.c.status.in_(("pending", "dead")),
    )
    .order_by(_OUT.c.id)
)
# A float: its result processor on PostgreSQL depends on the type the driver says it returns.
_FLOAT = (
    select(_OUT.c.id, cast(_OUT.c.id, Float) / 4)
    .where(_OUT.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_OUT.c.id)
)
_ACTIVE = select(_USERS.c.id, _USERS.c.active, _USERS.c.email).where(
    _USERS.c.id.in_(bindparam("ids", expanding=True))
)


def _seed(engine: Engine, n: int) -> list[int]:
    with session_scope(engine) as s:
        org = make_org(s)
        s.flush()
        outbox.enqueue_many(
            s,
            [
                outbox.message(
                    key=f"k-{i:03d}",
                    template="reminder",
                    context={"i": i},
                    to_addrs=["a@example.org"] if i % 4 else [],  # every fourth is dead
                    # Some given in Paris time: read back as the UTC moment they are.
                    now=(NOW + timedelta(hours=i - n // 2)).astimezone(PARIS if i % 2 else UTC),
                    organisation_id=org.id if i % 3 else None,
                )
                for i in range(n)
            ],
        )
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(select(_OUT.c.id).order_by(_OUT.c.id))]


def _sent(engine: Engine, work: Any) -> tuple[Any, list[tuple[str, Any]]]:
    """What `work` returned, and each statement it sent with its parameters."""
    sent: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        sent.append((statement, params if isinstance(params, dict) else tuple(params)))

    event.listen(engine, "before_cursor_execute", record)
    try:
        return work(), sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize(
    ("statement", "params"),
    [
        (_BY_ID, {"ids": [3, 1, 2, 40, 7], "now": NOW}),
        (_BY_ID, {"ids": [5], "now": NOW.astimezone(PARIS)}),
        (_BY_ID, {"ids": [], "now": NOW}),  # SQLAlchemy's empty-IN form
        (_BY_ID, {"ids": list(range(1, 41)), "now": NOW + timedelta(days=1)}),
        (_TWO_LISTS, {"ids": [2, 3, 4, 5, 6], "keys": ["k-003", "k-005", "k-009"], "limit": 5}),
        (_TWO_LISTS, {"ids": list(range(40)), "keys": ["k-001"], "limit": 1}),
        (_OWN_LIST, {"ids": [1, 4, 8, 12, 13]}),
        (_OWN_LIST, {"ids": []}),
        (_FLOAT, {"ids": [1, 2, 3, 7]}),
    ],
)
def test_rows_and_sql_are_sqlalchemys(
    engine: Engine, statement: Any, params: dict[str, Any]
) -> None:
    _seed(engine, 40)
    plain = PlainSelect(statement)
    with engine.connect() as conn, conn.begin():  # begun first: its BEGIN is not recorded
        theirs, their_sql = _sent(
            engine, lambda: [tuple(r) for r in conn.execute(statement, params)]
        )
        for _ in range(2):  # the first builds the SQL for these lengths, the second reuses it
            ours, our_sql = _sent(engine, lambda: plain.rows(conn, params))
            assert ours == theirs
            assert our_sql == their_sql  # letter for letter, the same values bound
    if statement is _BY_ID and len(params["ids"]) > 10:
        # Datetimes come back aware and in UTC, as UtcDateTime reads them.
        assert theirs
        assert all(row[2].tzinfo is UTC and row[3] is None for row in theirs)


def test_booleans_and_many_lengths(engine: Engine) -> None:
    with session_scope(engine) as s:
        users = [make_user(s, "assessor") for _ in range(6)]
        users[2].active = False
        s.flush()
        ids = [u.id for u in users]
    plain = PlainSelect(_ACTIVE)
    with engine.connect() as conn:
        # More lengths than it keeps the SQL of: each still reads what SQLAlchemy reads.
        for n in [*range(len(ids) + 1), *range(70), 3]:
            part = [ids[i % len(ids)] for i in range(n)]
            ours = sorted(plain.rows(conn, {"ids": part}))
            assert ours == sorted(tuple(r) for r in conn.execute(_ACTIVE, {"ids": part}))
        found = {uid: active for uid, active, _ in plain.rows(conn, {"ids": ids})}
    assert found == {uid: uid != ids[2] for uid in ids}
    assert all(type(v) is bool for v in found.values())


def test_a_value_not_given_is_refused(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises(ValueError, match="now"):
        PlainSelect(_BY_ID).rows(conn, {"ids": [1]})
