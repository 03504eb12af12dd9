"""Run the Alembic migrations against a database URL (`svqm db upgrade`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


class ForeignKeysBroken(RuntimeError):
    """A migration left rows whose foreign keys name nothing (SQLite's own check, after it ran)."""


@contextmanager
def migrating(conn: Connection) -> Iterator[None]:
    """One transaction for a migration run on `conn` (not yet begun).

    SQLite's batch mode rebuilds a table by copy, drop and rename, which its foreign keys refuse
    while other tables' rows point at it; as SQLite's own ALTER TABLE procedure says, the keys are
    switched off for the run (outside any transaction, where the pragma works), checked with
    `PRAGMA foreign_key_check` before the commit, and switched on again whatever happened.
    """
    sqlite = conn.dialect.name == "sqlite"
    raw = conn.connection.dbapi_connection if sqlite else None
    if raw is not None:
        raw.execute("PRAGMA foreign_keys=OFF")
    try:
        with conn.begin():
            yield
            if sqlite:
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise ForeignKeysBroken(f"rows name missing rows after migrating: {broken[:5]}")
    finally:
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=ON")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database up to `revision` inside one connection and one transaction."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as conn, migrating(conn):
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
