"""Migration 0005 carries existing pledges into the organisation's register, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine

from svqm.dbmigrate import alembic_config, upgrade

AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _old_rows(engine: Engine) -> None:
    """Two organisations' applications with pledges, as the schema before 0005_i14 held them."""
    with engine.begin() as conn:
        for org in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO organisation (id, name, sector, created_at) VALUES (:i, :n, '', :at)"
                ),
                {"i": org, "n": f"Org {org}", "at": AT},
            )
        conn.execute(
            text(
                "INSERT INTO policysnapshot (digest, scheme, version, source_text, created_at) "
                "VALUES ('d', 'svqm', '1', 'x', :at)"
            ),
            {"at": AT},
        )
        for app, org in ((10, 1), (20, 2)):
            conn.execute(
                text(
                    "INSERT INTO application (id, organisation_id, scheme, scheme_version, "
                    "policy_digest, level, state, version, created_at, state_changed_at) "
                    "VALUES (:a, :o, 'svqm', '1', 'd', 'bronze', 'draft', 1, :at, :at)"
                ),
                {"a": app, "o": org, "at": AT},
            )
        for pledge, app in ((100, 10), (101, 10), (200, 20)):
            conn.execute(
                text(
                    "INSERT INTO pledge (id, application_id, theme, title, description, indicator, "
                    "target, due_date, created_at) VALUES (:p, :a, 'skills', :t, '', 'n', '20', "
                    ":due, :at)"
                ),
                {"p": pledge, "a": app, "t": f"Pledge {pledge}", "due": date(2027, 1, 1), "at": AT},
            )
        # Evidence that names a pledge: the table it points at is rebuilt under it.
        conn.execute(
            text(
                "INSERT INTO evidenceitem (application_id, slot, requirement_id, pledge_id, "
                "version, title, filename, sha256, size, content_type, status, uploaded_at) "
                "VALUES (10, 'pledge_plan:pledge-100', 'pledge_plan', 100, 1, '', 'e.txt', "
                "'00', 1, 'text/plain', 'pending', :at)"
            ),
            {"at": AT},
        )


def test_existing_pledges_join_their_organisations_register(blank: Engine) -> None:
    upgrade(blank, "0005_i12_signin")
    _old_rows(blank)
    upgrade(blank)
    with blank.connect() as conn:
        pledges = conn.execute(
            text(
                "SELECT id, organisation_id, unit, baseline, status, revision FROM pledge ORDER BY id"
            )
        ).all()
        holds = conn.execute(
            text(
                "SELECT application_id, pledge_id, disposition FROM application_pledge ORDER BY pledge_id"
            )
        ).all()
        revisions = conn.execute(
            text(
                "SELECT pledge_id, revision, change, target FROM pledge_revision ORDER BY pledge_id"
            )
        ).all()
    assert [tuple(r) for r in pledges] == [
        (100, 1, "", None, "active", 1),
        (101, 1, "", None, "active", 1),
        (200, 2, "", None, "active", 1),
    ]
    assert [tuple(r) for r in holds] == [(10, 100, "made"), (10, 101, "made"), (20, 200, "made")]
    assert [tuple(r) for r in revisions] == [
        (100, 1, "made", "20"),
        (101, 1, "made", "20"),
        (200, 1, "made", "20"),
    ]
    # And back: the pledges stay with the applications that made them.
    command.downgrade(
        alembic_config(blank.url.render_as_string(hide_password=False)), "0005_i12_signin"
    )
    with blank.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pledge")).scalar_one() == 3
        assert conn.execute(text("SELECT pledge_id FROM evidenceitem")).scalar_one() == 100
