"""Migration 0009_i18_moderation: the second assessor, each assessor's own scores, the score
history and the members' recorded decisions; on SQLite and PostgreSQL, and back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine, make_url

from svqm.db import make_engine
from svqm.dbmigrate import alembic_config, upgrade
from tests.conftest import POSTGRES_URL

BEFORE = "0008_i16_evidence_note"
MINE = "0009_i18_moderation"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def blank(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    """An empty database of this test's own, not yet migrated."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        yield engine
        engine.dispose()
        return
    if not POSTGRES_URL:
        pytest.skip("SVQM_TEST_POSTGRES_URL is not set (make test sets it)")
    name = f"svqm_migrate_{uuid.uuid4().hex[:10]}"
    admin = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(
        make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    )
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_moderation_tables_come_and_go(blank: Engine) -> None:
    upgrade(blank, BEFORE)
    tables = set(inspect(blank).get_table_names())
    assert not tables & {"assessor_score", "score_change", "decision_vote"}
    upgrade(blank, MINE)
    found = inspect(blank)
    assert {"assessor_score", "score_change", "decision_vote"} <= set(found.get_table_names())
    assert "second_assessor_id" in {c["name"] for c in found.get_columns("application")}
    assert "moderated_by_id" in {c["name"] for c in found.get_columns("score")}
    unique = found.get_unique_constraints("decision_vote")
    assert [sorted(u["column_names"]) for u in unique] == [
        ["member_id", "round", "subject_id", "subject_kind"]
    ]

    cfg = alembic_config(blank.url.render_as_string(hide_password=False))
    with blank.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, BEFORE)
    back = inspect(blank)
    assert not set(back.get_table_names()) & {"assessor_score", "score_change", "decision_vote"}
    assert "second_assessor_id" not in {c["name"] for c in back.get_columns("application")}
    assert "moderated_by_id" not in {c["name"] for c in back.get_columns("score")}
