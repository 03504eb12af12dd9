"""Migration 0008_i16: an evidence item carries the applicant's note for the assessor, empty for
every item uploaded before; on SQLite and PostgreSQL, and back."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from svqm.dbmigrate import alembic_config, upgrade

BEFORE = "0007_i15_score_notes"
MINE = "0008_i16_evidence_note"


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
