"""Migration 0016_i17: an evidence item may name the member organisation it is for (none for
every item uploaded before); on SQLite and PostgreSQL, and back."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from svqm.dbmigrate import alembic_config, upgrade

BEFORE = "0015_i17_org_charter"
MINE = "0016_i17_member_evidence"


def _columns(engine: Engine) -> dict[str, dict]:
    return {c["name"]: c for c in inspect(engine).get_columns("evidenceitem")}


def test_evidence_items_gain_a_member_and_lose_it_going_back(blank: Engine) -> None:
    upgrade(blank, BEFORE)
    assert "member_organisation_id" not in _columns(blank)
    upgrade(blank, MINE)
    assert _columns(blank)["member_organisation_id"]["nullable"] is True
    keys = inspect(blank).get_foreign_keys("evidenceitem")
    assert any(
        k["constrained_columns"] == ["member_organisation_id"]
        and k["referred_table"] == "organisation"
        for k in keys
    )

    cfg = alembic_config(blank.url.render_as_string(hide_password=False))
    with blank.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, BEFORE)
    assert "member_organisation_id" not in _columns(blank)
