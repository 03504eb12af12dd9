"""Migration 0015_i17: the charter tables come, keep one charter per organisation and one row per
revision, hold a revision's pillars as JSON, and go back; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from svqm.dbmigrate import alembic_config, upgrade

BEFORE = "0014_i18_invoices"
MINE = "0015_i17_org_charter"
T = "2026-01-05 09:00:00+00:00"
TABLES = {"org_charter", "charter_revision", "charter_priority", "charter_priority_pledge"}
REVISION = (
    "INSERT INTO charter_revision (charter_id, revision, pillars, updated_at) VALUES (1, 1, :p, :t)"
)


def test_charter_tables_come_hold_their_rows_once_and_go_back(blank: Engine) -> None:
    upgrade(blank, BEFORE)
    with blank.begin() as c:
        c.execute(
            text("INSERT INTO organisation (id, name, sector, created_at) VALUES (1, 'A', '', :t)"),
            {"t": T},
        )
    upgrade(blank, MINE)
    assert TABLES <= set(inspect(blank).get_table_names())
    charter = "INSERT INTO org_charter (organisation_id, version, created_at) VALUES (1, 1, :t)"
    with blank.begin() as c:
        c.execute(text(charter), {"t": T})
        c.execute(text(REVISION), {"t": T, "p": '{"place": {"entries": [{"name": "ICB"}]}}'})
        got = c.execute(text("SELECT pillars FROM charter_revision")).scalar_one()
    assert "ICB" in str(got)
    with pytest.raises(IntegrityError), blank.begin() as c:
        c.execute(text(charter), {"t": T})
    with pytest.raises(IntegrityError), blank.begin() as c:
        c.execute(text(REVISION), {"t": T, "p": "{}"})
    cfg = alembic_config(blank.url.render_as_string(hide_password=False))
    with blank.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, BEFORE)
    assert not TABLES & set(inspect(blank).get_table_names())
