"""Migration 0009_i18_moderation: the second assessor, each assessor's own scores, the score
history and the members' recorded decisions; on SQLite and PostgreSQL, and back."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from svqm.dbmigrate import alembic_config, upgrade

BEFORE = "0008_i16_evidence_note"
MINE = "0009_i18_moderation"


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
