"""Shared fixtures: a migrated database per test on SQLite and PostgreSQL, the real schemes, a fixed clock."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from svqm.accounts import auth
from svqm.accounts import service as accounts
from svqm.db import make_engine, writer
from svqm.dbmigrate import upgrade
from svqm.tables import metadata
from svqm.workflow.audit import append_only_ddl
from svqm.workflow.schemes import SchemeRegistry, load_registry
from tests.svqm_for_tests import CHEAP_HASHER

REPO = Path(__file__).resolve().parent.parent
POLICIES = REPO / "policies"
POSTGRES_URL = os.environ.get("SVQM_TEST_POSTGRES_URL", "")
# Apps built by tests never start the in-process scheduler unless a test asks for it.
os.environ["SVQM_RUN_SCHEDULER"] = "false"
# pytest-xdist's workers inherit COLUMNS=80, which rich would freeze into the CLI's console when
# svqm.cli is first imported; CLI tests choose their width per invocation (COLUMNS in the env).
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)


# The service's own hasher (argon2id, 64 MiB, t=3, p=4): tests/test_password_storage.py checks it.
PRODUCTION_HASHER = accounts._hasher
# argon2id with a small cost (CHEAP_HASHER) for every other test: at the service's cost one hash
# takes 0.1-0.7 s of CPU here, and the suite makes thousands (every test's people); what a test
# proves of sign-in does not depend on the cost. Servers and CLI commands the tests start hash
# cheaply too when started through `python -m tests.svqm_for_tests` (tests/svqm_for_tests.py);
# those started as the console script `svqm` keep the service's cost.


# Files that take 20 s or more of one worker (the sums of `pytest --junitxml`'s times a file,
# 2026-12-07), longest first: pytest-xdist hands each file to one worker whole (--dist loadfile),
# in this order (`make test` passes --no-loadscope-reorder; xdist's own order is the most tests
# first), so that the last files handed out are short and neither worker is left alone at the end
# with a long one. Re-measure and re-order when a file grows past 20 s.
LONG_FILES = (
    "web/test_schemathesis.py",  # 102 s
    "browser/test_journey.py",  # 87 s, at the service's password cost
    "browser/test_demo_browser.py",  # 76 s with the demo's seeding
    "test_cli.py",  # 61 s
    # The demo's crawl at 320 px, split by person (tests/browser/demo_crawl.py), sharing one demo
    # server a worker with test_demo_browser.py.
    "browser/test_demo_crawl_public_and_admin.py",  # 56 s
    "browser/test_silver_journey.py",  # 50 s
    "test_benchmarks.py",  # 47 s
    "browser/test_demo_crawl_care_group.py",  # 40 s
    "workflow/test_transitions.py",  # 40 s
    "web/test_authz_matrix.py",  # 38 s
    "browser/test_demo_crawl_applicants.py",  # 32 s
    "notify/test_scheduler_process.py",  # 30 s
    "browser/test_judgement_browser.py",  # 28 s
    "test_serve_workers.py",  # 25 s
    "browser/test_demo_crawl_panel.py",  # 25 s
    "web/test_pages_staff.py",  # 32 s before apps were cheap to make
    "web/test_pages_account.py",  # 33 s likewise
    "browser/test_demo_crawl_assessors.py",  # 22 s
    "web/test_reports.py",  # 24 s
    "web/test_pages_public.py",  # 23 s
    "workflow/test_exports.py",  # 21 s
    "test_policies.py",  # 21 s
)


def _start_order(item: pytest.Item) -> int:
    path = item.path.relative_to(REPO / "tests").as_posix()
    if path in LONG_FILES:
        return LONG_FILES.index(path)
    return len(LONG_FILES) + (0 if path.startswith("browser/") else 1)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first (a stable sort: each file's own tests keep their order)."""
    items.sort(key=_start_order)


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(accounts, "_hasher", CHEAP_HASHER)
        dummy = CHEAP_HASHER.hash("nobody's password")
        mp.setattr(auth, "_dummy_hash", lambda: dummy)
        yield


@pytest.fixture(scope="session")
def registry() -> SchemeRegistry:
    return load_registry(POLICIES)


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database migrated with Alembic; each test gets a copy of the file."""
    path = tmp_path_factory.mktemp("template") / "svqm.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of our own on the PostgreSQL server, migrated once, dropped at the end."""
    if not POSTGRES_URL:
        pytest.skip("SVQM_TEST_POSTGRES_URL is not set (make test sets it)")
    name = f"svqm_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# One statement names the tables holding rows: a test writes to a few of the 42 tables, and
# TRUNCATE costs per table (a new file for each and for its indexes: 370-580 ms for all of them,
# 5-10 ms for the few a test used).
_HOLDING = " UNION ALL ".join(
    f"SELECT '{t.name}' WHERE EXISTS (SELECT 1 FROM \"{t.name}\")" for t in metadata.sorted_tables
)
# Sequences a test advanced, rows kept or not (a rolled-back insert advances one too).
_USED_SEQUENCES = (
    "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename) FROM pg_sequences "
    "WHERE last_value IS NOT NULL"
)
_APPEND_ONLY_TRIGGER = (
    "SELECT 1 FROM pg_trigger WHERE tgname = 'auditevent_append_only' AND NOT tgisinternal"
)


def _truncate(engine: Engine) -> None:
    """Empty the test database as a fresh migration leaves it: no rows, every id from 1."""
    with engine.begin() as conn:
        holding = [row[0] for row in conn.exec_driver_sql(_HOLDING)]
        if holding:
            names = ", ".join(f'"{name}"' for name in holding)
            conn.exec_driver_sql(f"TRUNCATE {names} CASCADE")
        for (sequence,) in conn.exec_driver_sql(_USED_SEQUENCES).all():
            conn.exec_driver_sql(f"ALTER SEQUENCE {sequence} RESTART")
        # A tamper test may have dropped the append-only trigger: put it back.
        if conn.exec_driver_sql(_APPEND_ONLY_TRIGGER).first() is None:
            for statement in append_only_ddl("postgresql"):
                conn.execute(text(statement))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A freshly migrated, empty database: a SQLite file, or the PostgreSQL test database."""
    if request.param == "sqlite":
        path = tmp_path / "svqm.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        eng = make_engine(f"sqlite:///{path}")
        yield eng
        eng.dispose()
        return
    eng = make_engine(request.getfixturevalue("postgres_url"))
    _truncate(eng)
    yield eng
    eng.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def blank(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    """An empty database of this test's own, not yet migrated."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        yield engine
        engine.dispose()
        return
    if not POSTGRES_URL:
        pytest.skip("SVQM_TEST_POSTGRES_URL is not set (make test sets it)")
    name = f"svqm_migrate_{uuid.uuid4().hex[:10]}"
    admin = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(
        make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    )
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A write session; the test commits when it wants another connection to see its rows."""
    with Session(writer(engine), expire_on_commit=False) as s:
        yield s
        s.rollback()
