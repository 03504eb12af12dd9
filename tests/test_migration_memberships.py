"""Migration 0005_i17: every existing user keeps their organisation as a membership (its lead),
on SQLite and PostgreSQL; going back removes what the earlier schema does not know."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from svqm.dbmigrate import alembic_config, upgrade

BEFORE = "0004_i13_policy_language"
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def test_every_user_keeps_their_organisation_as_a_membership(blank: Engine) -> None:
    upgrade(blank, BEFORE)
    mine = "0005_i17_memberships_groups"
    with blank.begin() as conn:
        for oid, name in ((1, "Alpha Homes"), (2, "Beta Care")):
            conn.execute(
                text(
                    "INSERT INTO organisation (id, name, sector, created_at) VALUES (:i, :n, '', :t)"
                ),
                {"i": oid, "n": name, "t": T0},
            )
        people = [
            (1, "a@x.test", "applicant", 1),
            (2, "b@x.test", "applicant", 2),
            (3, "b2@x.test", "applicant", 2),
            (4, "s@x.test", "assessor", None),
        ]
        for uid, email, role, org in people:
            conn.execute(
                text(
                    "INSERT INTO user_account (id, email, name, role, organisation_id, active, created_at)"
                    " VALUES (:i, :e, '', :r, :o, :a, :t)"
                ),
                {"i": uid, "e": email, "r": role, "o": org, "a": True, "t": T0},
            )
    upgrade(blank, mine)
    with blank.connect() as conn:
        rows = conn.execute(
            text("SELECT user_id, organisation_id, role FROM membership ORDER BY user_id")
        ).all()
        orgs = conn.execute(
            text("SELECT id, parent_id, region FROM organisation ORDER BY id")
        ).all()
    assert [tuple(r) for r in rows] == [(1, 1, "lead"), (2, 2, "lead"), (3, 2, "lead")]
    assert [tuple(o) for o in orgs] == [(1, None, ""), (2, None, "")]

    cfg = alembic_config(blank.url.render_as_string(hide_password=False))
    with blank.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, BEFORE)
    tables = inspect(blank).get_table_names()
    assert "membership" not in tables
    assert "invitation" not in tables
    assert "parent_id" not in {c["name"] for c in inspect(blank).get_columns("organisation")}
