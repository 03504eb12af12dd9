"""The database down: 503 with Retry-After, /readyz failing, /healthz alive, one line a minute."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from svqm.config import Settings
from svqm.db import make_engine
from svqm.web import handlers
from svqm.web.app import create_app
from tests.notify.mailkit import free_port

SVQM = str(Path(sys.executable).with_name("svqm"))


@pytest.fixture
def down_url() -> str:
    """A PostgreSQL URL at a port where nothing listens: a database that is stopped."""
    return f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/svqm"


@pytest.fixture
def client(down_url, registry, tmp_path):
    settings = Settings(
        ENV="test", DATABASE_URL=down_url, VAR_DIR=str(tmp_path), RUN_SCHEDULER=False
    )
    engine = make_engine(down_url)
    handlers._last_outage_log[0] = float("-inf")
    with TestClient(create_app(settings=settings, engine=engine, registry=registry)) as c:
        yield c
    engine.dispose()


def test_a_stopped_database_gives_503_with_retry_after_and_one_short_log_line(client, caplog):
    """Before: 500s, /healthz "ok" only, and two full tracebacks per failed request."""
    with caplog.at_level(logging.INFO):
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.headers["Retry-After"] == "30"
        assert ready.json()["error"] == "unavailable"
        api = client.get("/api/v1/applications", headers={"Authorization": "Bearer x" * 10})
        assert (api.status_code, api.headers["Retry-After"]) == (503, "30")
        client.cookies.set("svqm_session", "a-session-token")
        page = client.get("/dashboard")
        assert page.status_code == 503
        assert "text/html" in page.headers["content-type"]
        assert "cannot reach its database" in page.text
        for _ in range(20):
            assert client.get("/readyz").status_code == 503
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert errors[0].getMessage().startswith("database unreachable, answering 503")
    assert errors[0].exc_info is None


def test_readyz_is_ready_with_a_database(engine, registry, tmp_path):
    settings = Settings(ENV="test", VAR_DIR=str(tmp_path), RUN_SCHEDULER=False)
    with TestClient(create_app(settings=settings, engine=engine, registry=registry)) as c:
        assert c.get("/readyz").json() == {"status": "ready"}


def test_svqm_sweep_with_the_database_down_says_it_is_unreachable(down_url, tmp_path):
    """Before: it suggested running `svqm db upgrade`."""
    env = {**os.environ, "SVQM_DATABASE_URL": down_url, "SVQM_VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [SVQM, "sweep"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "is unreachable" in result.stderr
    assert "db upgrade" not in result.stderr
    assert "Traceback" not in result.stderr
