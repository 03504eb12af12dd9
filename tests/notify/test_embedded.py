"""`svqm serve`'s embedded case: the web process runs the scheduler, which sweeps on start."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from svqm.clock import FixedClock
from svqm.config import Settings
from svqm.web.app import create_app
from svqm.workflow.deadlines import add_months
from tests.notify.timeline import T0, issue_award, messages


def _wait_for(condition, seconds: float = 20.0) -> bool:
    """Poll a condition until it holds or the deadline passes (never a fixed sleep)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _scheduler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "APScheduler" in t.name or "ThreadPool" in t.name]


def test_the_web_process_sweeps_on_start_and_delivers_to_the_maildir(
    engine, registry, tmp_path: Path
):
    award_id, _ = issue_award(engine, registry, tmp_path, "silver")
    mail = tmp_path / "mail"
    settings = Settings(
        ENV="test",
        DATABASE_URL=engine.url.render_as_string(hide_password=False),
        RUN_SCHEDULER=True,
        MAIL_DIR=mail,
        VAR_DIR=tmp_path,
        EVIDENCE_DIR=tmp_path / "evidence",
    )
    # A day past the annual report's 30-day reminder.
    clock = FixedClock(add_months(T0, 12) - timedelta(days=29))
    before = set(_scheduler_threads())
    with TestClient(create_app(settings, engine, registry, clock)) as client:
        assert client.get("/healthz").status_code == 200
        # The award's own emails (issued, at T0) go first; the reminder is the sweep's.
        assert _wait_for(lambda: [m.status for m in messages(engine)] == ["sent"])
    [message] = messages(engine)
    assert message.key == f"award-{award_id}:annual_report:2027-01-05:30d:applicant"
    assert message.status == "sent"
    [delivered] = [text for f in (mail / "new").iterdir() if message.key in (text := f.read_text())]
    assert "Annual report" in delivered
    assert message.key in delivered
    # Shutting the app down stops the scheduler's threads.
    assert _wait_for(lambda: set(_scheduler_threads()) <= before, 10)


def test_no_scheduler_when_turned_off(engine, registry, tmp_path: Path):
    issue_award(engine, registry, tmp_path, "silver")
    settings = Settings(
        ENV="test",
        DATABASE_URL=engine.url.render_as_string(hide_password=False),
        RUN_SCHEDULER=False,
        MAIL_DIR=tmp_path / "mail",
        VAR_DIR=tmp_path,
    )
    clock = FixedClock(add_months(T0, 12) - timedelta(days=29))
    with TestClient(create_app(settings, engine, registry, clock)) as client:
        assert client.get("/healthz").status_code == 200
        assert client.app.state.scheduler is None
    assert messages(engine) == []
