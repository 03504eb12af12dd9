"""Migration 0007_i15: a score carries the assessor's note and who may read it, staff only for
every score given before; on SQLite and PostgreSQL, and back."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from svqm.dbmigrate import alembic_config, upgrade

BEFORE = "0005_i14_progress"
MINE = "0007_i15_score_notes"


def test_scores_gain_a_note_internal_by_default_and_lose_it_going_back(blank: Engine) -> None:
    upgrade(blank, BEFORE)
    assert "note" not in {c["name"] for c in inspect(blank).get_columns("score")}
    upgrade(blank, MINE)
    columns = {c["name"]: c for c in inspect(blank).get_columns("score")}
    assert columns["note"]["nullable"] is False
    assert "internal" in str(columns["visibility"]["default"])
    assert columns["visibility"]["nullable"] is False

    cfg = alembic_config(blank.url.render_as_string(hide_password=False))
    with blank.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, BEFORE)
    names = {c["name"] for c in inspect(blank).get_columns("score")}
    assert not names & {"note", "visibility"}
