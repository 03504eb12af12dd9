from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from svqm.db import session_scope
from svqm.workflow import audit
from svqm.workflow import service as workflow
from svqm.workflow.models import AuditEvent
from tests.workflow.harness import application_in, make_cast


def _history(engine, registry, now) -> int:
    with session_scope(engine) as session:
        cast = make_cast(session)
        app = application_in(
            session, registry, cast, scheme="svqm", level="bronze", state="draft", at=now
        )
        other = application_in(
            session,
            registry,
            make_cast(session),
            scheme="svqm",
            level="bronze",
            state="draft",
            at=now,
        )
        workflow.fire(
            session,
            other,
            "withdraw",
            actor=workflow.SYSTEM.__class__(None, "admin"),
            registry=registry,
            now=now,
        )
        admin = workflow.Actor.of(cast.admin)
        workflow.assign_assessor(
            session, app, cast.assessor.id, actor=admin, registry=registry, now=now
        )
        workflow.fire(
            session,
            app,
            "withdraw",
            actor=admin,
            registry=registry,
            now=now,
            comment="duplicate application",
        )
        return app.id


def _drop_guards(engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER auditevent_append_only ON auditevent"))
        else:
            conn.execute(text("DROP TRIGGER auditevent_no_update"))
            conn.execute(text("DROP TRIGGER auditevent_no_delete"))


def test_an_intact_trail_verifies(engine, registry, now):
    _history(engine, registry, now)
    with session_scope(engine, write=False) as session:
        checked, problems = audit.verify_chain(session)
    assert (checked, problems) == (3, [])


def test_the_database_refuses_to_edit_or_delete_events(engine, registry, now):
    _history(engine, registry, now)
    for statement in ("UPDATE auditevent SET comment = 'x'", "DELETE FROM auditevent"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))


def test_an_edited_event_is_detected(engine, registry, now):
    app_id = _history(engine, registry, now)
    _drop_guards(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE auditevent SET comment = 'nothing to see' "
                "WHERE subject_id = :id AND seq = 2"
            ),
            {"id": app_id},
        )
    with session_scope(engine, write=False) as session:
        _, problems = audit.verify_chain(session)
    assert [str(p) for p in problems] == [
        f"application {app_id} event 2: content was edited after it was written"
    ]


@pytest.mark.parametrize("seq", [1, 2])
def test_a_deleted_event_is_detected(engine, registry, now, seq):
    app_id = _history(engine, registry, now)
    _drop_guards(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "DELETE FROM auditevent WHERE subject_kind = 'application' "
                "AND subject_id = :id AND seq = :seq"
            ),
            {"id": app_id, "seq": seq},
        )
    with session_scope(engine, write=False) as session:
        _, problems = audit.verify_chain(session)
    assert problems, "a deleted event went unnoticed"
    assert all(p.subject_id == app_id for p in problems)
    assert any("missing" in p.reason for p in problems)


def test_cli_audit_verify_exits_1_on_tampering(engine, registry, now, monkeypatch):
    from typer.testing import CliRunner

    from svqm import config
    from svqm.cli import app

    app_id = _history(engine, registry, now)
    monkeypatch.setenv("SVQM_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    config.get_settings.cache_clear()
    try:
        ok = CliRunner().invoke(app, ["audit", "verify"])
        assert ok.exit_code == 0
        assert "3 events verified" in ok.stdout
        _drop_guards(engine)
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE auditevent SET actor_role = 'panel' WHERE subject_id = :id"),
                {"id": app_id},
            )
        bad = CliRunner().invoke(app, ["audit", "verify"])
    finally:
        config.get_settings.cache_clear()
    assert bad.exit_code == 1
    assert f"application {app_id} event 1: content was edited" in bad.stderr
    with session_scope(engine, write=False) as session:
        assert len(session.exec(select(AuditEvent)).all()) == 3
