"""Migration 0011_i14: a report becomes a subject of the report workflow (its review word a state,
its award's organisation and policy copied), a report with figures keeps its file as its first
supporting file; on SQLite and PostgreSQL, and back."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from svqm.dbmigrate import alembic_config, upgrade

BEFORE = "0010_i18_audit_booking"
MINE = "0011_i14_report_workflow"


def _seed(engine: Engine) -> None:
    """An organisation, a user, an award and three filings of it as the old schema held them."""
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO organisation (id, name, sector, created_at) VALUES (1, 'Old Trust', 'health', :t)"
            ),
            {"t": T},
        )
        digest = "d" * 64
        c.execute(
            text(
                "INSERT INTO policysnapshot (digest, scheme, version, source_text, created_at) "
                "VALUES (:d, 'svqm', '1', 'x', :t)"
            ),
            {"d": digest, "t": T},
        )
        c.execute(
            text(
                "INSERT INTO application (id, organisation_id, scheme, scheme_version, "
                "policy_digest, level, state, version, created_at, state_changed_at) "
                "VALUES (1, 1, 'svqm', '1', :d, 'bronze', 'awarded', 1, :t, :t)"
            ),
            {"d": digest, "t": T},
        )
        c.execute(
            text(
                "INSERT INTO award (id, organisation_id, application_id, scheme, scheme_version, "
                "policy_digest, level, state, version, certificate_number, issued_at, "
                "expires_at, created_at, state_changed_at) VALUES (1, 1, 1, 'svqm', '1', :d, "
                "'bronze', 'active', 1, 'SVQM-1', :t, :t, :t, :t)"
            ),
            {"d": digest, "t": T},
        )
        for rid, review, name in (
            (1, "filed", "doc.pdf"),
            (2, "accepted", "figures.csv"),
            (3, "more_information", ""),
        ):
            c.execute(
                text(
                    "INSERT INTO annual_report (id, award_id, deadline_kind, period, title, "
                    "filename, sha256, size, content_type, submitted_at, review, "
                    "review_comment) VALUES (:id, 1, 'annual_report', :p, 't', :f, :s, 3, "
                    "'text/csv', :t, :r, '')"
                ),
                {
                    "id": rid,
                    "p": str(2025 + rid),
                    "f": name,
                    "s": "a" * 64 if name else "",
                    "t": T,
                    "r": review,
                },
            )


T = "2026-01-05 09:00:00+00:00"


def test_reports_gain_a_state_and_their_files_and_lose_them_going_back(blank: Engine) -> None:
    upgrade(blank, BEFORE)
    _seed(blank)
    upgrade(blank, MINE)
    names = {c["name"] for c in inspect(blank).get_columns("annual_report")}
    assert "review" not in names
    assert {"state", "published", "version", "organisation_id", "deadline_id"} <= names
    with blank.connect() as c:
        rows = c.execute(
            text(
                "SELECT id, state, published, organisation_id, scheme, level, filename "
                "FROM annual_report ORDER BY id"
            )
        ).all()
        files = c.execute(text("SELECT report_id, filename FROM report_file")).all()
    assert [(r[0], r[1], bool(r[2]), r[3], r[4], r[5], r[6]) for r in rows] == [
        (1, "filed", False, 1, "svqm", "bronze", "doc.pdf"),
        (2, "accepted", True, 1, "svqm", "bronze", ""),
        (3, "more_information", False, 1, "svqm", "bronze", ""),
    ]
    assert [tuple(f) for f in files] == [(2, "figures.csv")]

    cfg = alembic_config(blank.url.render_as_string(hide_password=False))
    with blank.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, BEFORE)
    names = {c["name"] for c in inspect(blank).get_columns("annual_report")}
    assert "review" in names
    assert "state" not in names
    assert "report_file" not in inspect(blank).get_table_names()
