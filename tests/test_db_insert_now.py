"""insert_now: new rows written at once, as a flush writes them, and kept in the session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from svqm.db import insert_now, new_row, session_scope, table_of
from svqm.evidence.models import EvidenceItem
from svqm.workflow.schemes import SchemeRegistry
from tests.factories import make_org, make_user, open_app

NOW = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1))
_COLUMNS = [c.name for c in table_of(EvidenceItem).c if c.name != "id"]


def _app_id(engine: Engine, registry: SchemeRegistry) -> int:
    with session_scope(engine) as s:
        org = make_org(s)
        app = open_app(s, registry, make_user(s, "applicant", org), now=NOW)
        assert app.id is not None
        return app.id


def _item(app_id: int, slot: str, **values: object) -> EvidenceItem:
    fields: dict[str, object] = {
        "application_id": app_id,
        "slot": slot,
        "requirement_id": "policy",
        "title": "Our policy é ☃ 'quoted' %s",
        "filename": "policy.pdf",
        "sha256": "ab" * 32,
        "size": 12,
        "content_type": "application/pdf",
        "uploaded_at": NOW.astimezone(PARIS),
    }
    return new_row(EvidenceItem, **(fields | values))


def _stored(engine: Engine, slot: str) -> tuple[object, ...]:
    """The row as the driver reads it back (SQLite's text, not SQLAlchemy's parse of it)."""
    columns = ", ".join(f'"{c}"' for c in _COLUMNS)
    with engine.connect() as conn:
        return tuple(
            conn.exec_driver_sql(f"SELECT {columns} FROM evidenceitem WHERE slot = '{slot}'").one()
        )


def test_the_row_is_the_one_a_flush_writes(engine: Engine, registry: SchemeRegistry) -> None:
    app_id = _app_id(engine, registry)
    with session_scope(engine) as s:
        s.add(_item(app_id, "flushed", note="a note", version=2))
        s.flush()
        insert_now(s, _item(app_id, "inserted", note="a note", version=2))
    flushed, inserted = _stored(engine, "flushed"), _stored(engine, "inserted")
    assert inserted[_COLUMNS.index("slot")] == "inserted"
    assert inserted[: _COLUMNS.index("slot")] == flushed[: _COLUMNS.index("slot")]
    assert inserted[_COLUMNS.index("slot") + 1 :] == flushed[_COLUMNS.index("slot") + 1 :]
    # Given in Paris time, kept as the UTC it is.
    with session_scope(engine, write=False) as s:
        item = s.exec(select(EvidenceItem).where(EvidenceItem.slot == "inserted")).one()
        assert item.uploaded_at == NOW
        assert item.pledge_id is None
        assert item.status == "pending"


def test_the_object_is_persistent_with_its_id(engine: Engine, registry: SchemeRegistry) -> None:
    app_id = _app_id(engine, registry)
    with session_scope(engine) as s:
        first, second = _item(app_id, "a"), _item(app_id, "b")
        insert_now(s, first, second)
        assert first.id is not None
        assert second.id == first.id + 1
        statements: list[str] = []
        event.listen(s.connection(), "before_cursor_execute", lambda *a: statements.append(a[2]))
        # In the identity map: no query to get it back, and nothing left to flush.
        assert s.get(EvidenceItem, first.id) is first
        s.flush()
        assert statements == []
        # A later change is an UPDATE of that one column, like any loaded row's.
        first.status = "accepted"
        s.flush()
        assert len(statements) == 1
        assert statements[0].lstrip().upper().startswith("UPDATE")
        assert "status" in statements[0]
        assert "slot" not in statements[0].split("WHERE")[0]
    with session_scope(engine, write=False) as s:
        stored = s.get(EvidenceItem, first.id)
        assert stored is not None
        assert stored.status == "accepted"
        assert stored.slot == "a"


def test_pending_changes_are_written_first(engine: Engine, registry: SchemeRegistry) -> None:
    app_id = _app_id(engine, registry)
    with session_scope(engine) as s:
        pending = _item(app_id, "pending")
        s.add(pending)
        later = _item(app_id, "later")
        insert_now(s, later)
        assert pending.id is not None
        assert later.id is not None
        assert pending.id < later.id


def test_a_failed_insert_leaves_the_session_without_the_row(
    engine: Engine, registry: SchemeRegistry
) -> None:
    app_id = _app_id(engine, registry)
    with Session(engine) as s:
        insert_now(s, _item(app_id, "dup"))
        again = _item(app_id, "dup")  # the same (application, slot, version)
        with pytest.raises(Exception, match="(?i)unique|duplicate"):
            with s.begin_nested():
                insert_now(s, again)
        assert again.id is None
        assert again not in s
        s.rollback()


def test_a_rolled_back_savepoint_takes_its_rows_out_of_the_session(
    engine: Engine, registry: SchemeRegistry
) -> None:
    app_id = _app_id(engine, registry)
    with session_scope(engine) as s:
        kept = _item(app_id, "kept")
        insert_now(s, kept)
        savepoint = s.begin_nested()
        undone = _item(app_id, "undone")
        insert_now(s, undone)
        inner = s.begin_nested()  # committed into the savepoint, then undone with it
        nested = _item(app_id, "nested")
        insert_now(s, nested)
        inner.commit()
        savepoint.rollback()
        assert undone not in s
        assert nested not in s
        assert kept in s
        # The database may give the next row an id the undone one had: it attaches.
        again = _item(app_id, "again")
        insert_now(s, again)
        assert s.get(EvidenceItem, again.id) is again
    with session_scope(engine, write=False) as s:
        slots = set(s.exec(select(EvidenceItem.slot).where(EvidenceItem.application_id == app_id)))
        assert slots == {"kept", "again"}
