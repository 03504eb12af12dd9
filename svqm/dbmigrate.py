"""Run the Alembic migrations against a database URL (`svqm db upgrade`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from svqm.db import migrating

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database up to `revision` inside one connection and one transaction."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as conn, migrating(conn):
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
