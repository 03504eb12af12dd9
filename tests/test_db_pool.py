"""An engine keeps the connections it opens: a burst of requests above five at a time no longer
opens (and closes) a connection for each request above the fifth (on PostgreSQL a backend, on a
SQLite file its pragmas and the schema read again)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import event, text

from svqm.db import POOL_SIZE, make_engine


def _second_burst_opens_none(url: str) -> None:
    engine = make_engine(url)
    opened: list[object] = []
    event.listen(engine, "connect", lambda conn, record: opened.append(conn))
    burst = 12  # more than SQLAlchemy's default 5 kept, fewer than the pool's size
    assert burst <= POOL_SIZE
    try:
        for _ in range(2):
            with ExitStack() as held:
                for _ in range(burst):
                    conn = held.enter_context(engine.connect())
                    assert conn.execute(text("SELECT 1")).scalar() == 1
        # The first burst opened them; the second found every one kept (before: 7 reopened).
        assert len(opened) == burst
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_second_burst_opens_no_new_postgresql_connections(postgres_url: str) -> None:
    _second_burst_opens_none(postgres_url)


def test_a_second_burst_opens_no_new_sqlite_connections(tmp_path: Path) -> None:
    _second_burst_opens_none(f"sqlite:///{tmp_path / 'pool.db'}")


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_the_pool_opens_no_more_than_its_size(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The cap stays what it was (5 + 10 overflow = 15 a process), so N workers and the
    scheduler still fit under the server's max_connections."""
    url = (
        f"sqlite:///{tmp_path / 'pool.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = make_engine(url, pool_timeout=0.2)
    try:
        with ExitStack() as held:
            for _ in range(POOL_SIZE):
                held.enter_context(engine.connect())
            with pytest.raises(Exception, match="QueuePool limit"):
                engine.connect()
    finally:
        engine.dispose()
