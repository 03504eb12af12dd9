"""Throwaway migrated SQLite databases, the real schemes and a fixed clock for the benchmarks."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

import svqm.tables  # noqa: F401  (every table in the metadata, as the entry points do)
from svqm.db import make_engine
from svqm.dbmigrate import upgrade
from svqm.workflow.schemes import SchemeRegistry, load_registry

POLICIES = Path(__file__).resolve().parent.parent / "policies"
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory, removed afterwards whatever happens."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def migrated_sqlite(path: Path) -> Engine:
    """A SQLite file migrated with Alembic (as `svqm db upgrade` does), WAL checkpointed."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return engine


def copy_database(template: Path, path: Path) -> Engine:
    """An engine on a byte-for-byte copy of a checkpointed template database."""
    shutil.copyfile(template, path)
    return make_engine(f"sqlite:///{path}")


def registry() -> SchemeRegistry:
    return load_registry(POLICIES)
