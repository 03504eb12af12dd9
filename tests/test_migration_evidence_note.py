"""Migration 0008_i16: an evidence item carries the applicant's note for the assessor, empty for
every item uploaded before; on SQLite and PostgreSQL, and back."""

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

BEFORE = "0007_i15_score_notes"
MINE = "0008_i16_evidence_note"


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


def test_evidence_items_gain_an_empty_note_and_lose_it_going_back(blank: Engine) -> None:
    upgrade(blank, BEFORE)
    assert "note" not in {c["name"] for c in inspect(blank).get_columns("evidenceitem")}
    upgrade(blank, MINE)
    columns = {c["name"]: c for c in inspect(blank).get_columns("evidenceitem")}
    assert columns["note"]["nullable"] is False
    assert columns["note"]["default"] is not None

    cfg = alembic_config(blank.url.render_as_string(hide_password=False))
    with blank.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, BEFORE)
    assert "note" not in {c["name"] for c in inspect(blank).get_columns("evidenceitem")}
