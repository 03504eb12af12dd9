"""ManyRows: an executemany bound without SQLAlchemy's per-row work writes what SQLAlchemy would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, update
from sqlalchemy.engine import Engine

from svqm.db import ManyRows, session_scope, table_of
from svqm.notify import outbox
from svqm.notify.models import OutboxMessage
from tests.factories import make_org

NOW = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)
# The same moment seen from elsewhere: it must be stored as the UTC it is.
PARIS = timezone(timedelta(hours=1))


def _org(engine: Engine) -> int:
    with session_scope(engine) as s:
        org = make_org(s)
        s.flush()
        assert org.id is not None
        return org.id


def _messages(org_id: int, prefix: str) -> list[dict[str, object]]:
    return [
        outbox.message(
            key=f"{prefix}-{n}",
            template="reminder",
            context={"n": n, "text": "é ☃ 'quoted' %s"},
            to_addrs=[f"a{n}@example.org"] if n % 3 else [],
            now=NOW + timedelta(minutes=n) if n % 2 else NOW.astimezone(PARIS),
            organisation_id=org_id if n % 2 else None,
        )
        for n in range(7)
    ]


_COLUMNS = [c.name for c in table_of(OutboxMessage).c if c.name not in ("id", "key")]


def _stored(engine: Engine, prefix: str) -> list[tuple[object, ...]]:
    """The rows as the driver reads them back (SQLite's text, not SQLAlchemy's parse of it)."""
    columns = ", ".join(f'"{c}"' for c in _COLUMNS)
    with engine.connect() as conn:
        found = conn.exec_driver_sql(
            f'SELECT "key", {columns} FROM outbox ORDER BY "key"'
        ).fetchall()
    return [(row[0].removeprefix(prefix), *row[1:]) for row in found if row[0].startswith(prefix)]


def test_outbox_rows_are_those_sqlalchemy_writes(engine: Engine) -> None:
    org_id = _org(engine)
    with session_scope(engine) as s:
        s.execute(outbox._insert(s), _messages(org_id, "sa"))
        outbox.enqueue_many(s, _messages(org_id, "many"))
    theirs, ours = _stored(engine, "sa"), _stored(engine, "many")
    assert len(ours) == 7
    assert ours == theirs
    # Given in Paris time, kept as the UTC it is (SQLite's text: no offset).
    created_at = ours[0][_COLUMNS.index("created_at") + 1]
    assert created_at in (NOW, "2026-03-02 09:30:15.123456")


def test_existing_keys_are_skipped(engine: Engine) -> None:
    org_id = _org(engine)
    with session_scope(engine) as s:
        outbox.enqueue_many(s, [_messages(org_id, "dup")[1]])
    with session_scope(engine) as s:
        outbox.enqueue_many(s, [dict(m, template="digest") for m in _messages(org_id, "dup")[:3]])
    stored = _stored(engine, "dup")
    assert [row[0] for row in stored] == ["-0", "-1", "-2"]
    # -1 was there first: its row is the first one, not the second's.
    assert [row[1] for row in stored] == ["digest", "reminder", "digest"]


_TABLE = table_of(OutboxMessage)
_MARK = ManyRows(
    update(_TABLE)
    .where(
        _TABLE.c.key == bindparam("b_key"),
        _TABLE.c.status == "pending",
        _TABLE.c.attempts == bindparam("b_was"),
    )
    .values(attempts=bindparam("b_now"), next_attempt_at=bindparam("b_at"))
)


def test_a_conditional_update_changes_only_the_rows_it_matches(engine: Engine) -> None:
    org_id = _org(engine)
    with session_scope(engine) as s:
        outbox.enqueue_many(s, _messages(org_id, "up"))
    later = NOW + timedelta(days=1)
    with session_scope(engine) as s:
        _MARK.execute(
            s.connection(),
            [
                {"b_key": f"up-{n}", "b_was": 0 if n < 5 else 9, "b_now": 3, "b_at": later}
                for n in range(7)
            ],
        )
    stored = {row[0]: row for row in _stored(engine, "up")}
    attempts, at, status = (
        _COLUMNS.index(n) + 1 for n in ("attempts", "next_attempt_at", "status")
    )
    for n in range(7):
        row = stored[f"-{n}"]
        # Rows 0, 3 and 6 are dead (nobody to send them to), 5 and 6 had other attempts.
        moved = row[status] == "pending" and n < 5
        assert row[attempts] == (3 if moved else 0), n
        assert (row[at] in (later, "2026-03-03 09:30:15.123456")) is moved, n


def test_a_value_the_rows_do_not_give_is_refused(engine: Engine) -> None:
    with session_scope(engine) as s, pytest.raises(ValueError, match="b_at"):
        _MARK.execute(s.connection(), [{"b_key": "x", "b_was": 0, "b_now": 1}])


def test_a_column_default_worked_out_per_row_is_refused(engine: Engine) -> None:
    table = Table(
        "many_rows_default",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("name", String(20)),
        Column("made", String(20), default=lambda: "now"),
    )
    with engine.connect() as conn, pytest.raises(ValueError, match="column defaults"):
        ManyRows(insert(table)).execute(conn, [{"name": "a"}])
