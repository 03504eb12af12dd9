"""Migration 0013_i18: an application's eligibility answers get a table, and organisations'
sectors that differ only by case or spaces become one spelling; on SQLite and PostgreSQL, and back."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from svqm.dbmigrate import alembic_config, upgrade

BEFORE = "0012_i15_messages"
MINE = "0013_i18_eligibility"
T = "2026-01-05 09:00:00+00:00"


def test_sectors_are_spelt_one_way_and_the_answers_table_comes_and_goes(blank: Engine) -> None:
    upgrade(blank, BEFORE)
    sectors = [
        "health",
        "Health",
        "  Health ",
        "NHS ambulance trust",
        "social care",
        "Social care",
        "social care",
        "",
    ]
    with blank.begin() as c:
        for n, sector in enumerate(sectors, 1):
            c.execute(
                text(
                    "INSERT INTO organisation (id, name, sector, created_at) "
                    "VALUES (:i, :n, :s, :t)"
                ),
                {"i": n, "n": f"Org {n}", "s": sector, "t": T},
            )
    upgrade(blank, MINE)
    with blank.connect() as c:
        after = [r[0] for r in c.execute(text("SELECT sector FROM organisation ORDER BY id"))]
    # The spelling most organisations used (a tie: the capital), spaces trimmed; capitals kept.
    assert after == [
        "Health",
        "Health",
        "Health",
        "NHS ambulance trust",
        "social care",
        "social care",
        "social care",
        "",
    ]
    assert "application_eligibility" in inspect(blank).get_table_names()

    cfg = alembic_config(blank.url.render_as_string(hide_password=False))
    with blank.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, BEFORE)
    assert "application_eligibility" not in inspect(blank).get_table_names()
