"""Fixtures for the mail tests: a real SMTP relay on loopback (running, or not yet running), and
a database of a test's own that other processes can open by URL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from svqm.db import make_engine
from svqm.dbmigrate import upgrade
from tests.conftest import POSTGRES_URL
from tests.notify.mailkit import Relay, free_port


@pytest.fixture
def relay() -> Iterator[Relay]:
    """A running relay that accepts everything unless scripted otherwise."""
    r = Relay(free_port())
    r.start()
    yield r
    r.stop()


@pytest.fixture
def down_relay() -> Iterator[Relay]:
    """A relay that is not running: connections to its port are refused until `start()`."""
    r = Relay(free_port())
    yield r
    r.stop()


@dataclass(frozen=True)
class OwnDatabase:
    url: str
    engine: Engine
    kind: str


def _own_sqlite(tmp_path: Path) -> Iterator[OwnDatabase]:
    url = f"sqlite:///{tmp_path / 'own.db'}"
    eng = make_engine(url)
    upgrade(eng)
    yield OwnDatabase(url, eng, "sqlite")
    eng.dispose()


def _own_postgres() -> Iterator[OwnDatabase]:
    if not POSTGRES_URL:
        pytest.skip("SVQM_TEST_POSTGRES_URL is not set (make test sets it)")
    name = f"svqm_notify_{uuid.uuid4().hex[:10]}"
    admin = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    eng = make_engine(url)
    try:
        upgrade(eng)
        yield OwnDatabase(url, eng, "postgres")
    finally:
        eng.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def own_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OwnDatabase]:
    """A migrated database no other test touches, which other processes may open by URL."""
    yield from _own_sqlite(tmp_path) if request.param == "sqlite" else _own_postgres()


@pytest.fixture
def own_postgres() -> Iterator[OwnDatabase]:
    """A fresh, migrated PostgreSQL database for this test alone (mark the test `postgres`)."""
    yield from _own_postgres()
