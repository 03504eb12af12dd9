"""Migration 0012_i15: messages on a case (their files and read markers) and a person's daily
digest choice; on SQLite and PostgreSQL, and back."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from svqm.dbmigrate import alembic_config, upgrade

BEFORE = "0011_i14_report_workflow"
MINE = "0012_i15_messages"
T = "2026-01-05 09:00:00+00:00"


def test_messages_and_the_digest_choice_come_and_go(blank: Engine) -> None:
    upgrade(blank, BEFORE)
    with blank.begin() as c:
        c.execute(
            text(
                "INSERT INTO organisation (id, name, sector, created_at) VALUES (1, 'Old', '', :t)"
            ),
            {"t": T},
        )
        c.execute(
            text(
                "INSERT INTO user_account (id, email, name, role, organisation_id, active, "
                "created_at) VALUES (1, 'old@org.test', 'Old Hand', 'applicant', 1, true, :t)"
            ),
            {"t": T},
        )
    upgrade(blank, MINE)
    tables = set(inspect(blank).get_table_names())
    assert {"case_message", "message_file", "message_read"} <= tables
    with blank.begin() as c:
        # A person from before has not chosen the digest.
        assert c.execute(text("SELECT email_digest FROM user_account")).scalar_one() in (False, 0)
        c.execute(
            text(
                "INSERT INTO case_message (id, subject_kind, subject_id, organisation_id, "
                "author_id, author_role, body, at) VALUES (1, 'application', 7, 1, 1, "
                "'applicant', 'hello', :t)"
            ),
            {"t": T},
        )
        c.execute(
            text(
                "INSERT INTO message_file (message_id, filename, sha256, size, content_type) "
                "VALUES (1, 'a.csv', :s, 3, 'text/csv')"
            ),
            {"s": "a" * 64},
        )
        c.execute(
            text(
                "INSERT INTO message_read (user_id, subject_kind, subject_id, last_read_id) "
                "VALUES (1, 'application', 7, 1)"
            )
        )
    cfg = alembic_config(blank.url.render_as_string(hide_password=False))
    with blank.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, BEFORE)
    tables = set(inspect(blank).get_table_names())
    assert not {"case_message", "message_file", "message_read"} & tables
    assert "email_digest" not in {c["name"] for c in inspect(blank).get_columns("user_account")}
    with blank.connect() as c:
        assert c.execute(text("SELECT name FROM user_account")).scalar_one() == "Old Hand"
