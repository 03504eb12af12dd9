"""`svqm sweep` as a real command on the demo database, and the APScheduler wiring of
`svqm scheduler` / `svqm serve`: two jobs with fixed ids, coalescing, one instance each, and one
dispatch at a time in a process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel import Session

from svqm.cli.scheduling import parse_time
from svqm.clock import FixedClock
from svqm.config import Settings
from svqm.db import make_engine
from svqm.notify import outbox
from svqm.notify import scheduler as notify_scheduler
from svqm.notify.dispatch import DispatchReport
from svqm.notify.sweep import SweepReport
from tests import svqm_for_tests

SVQM = str(Path(sys.executable).with_name("svqm"))
T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
SWEPT = re.compile(
    r"^swept (\d+) deadline\(s\) as of 2027-06-01T09:00Z: (\d+) reminder\(s\), (\d+) due, "
    r"(\d+) action\(s\) fired, (\d+) refused$"
)
OUTBOX = re.compile(r"^outbox: (\d+) sent, 0 to retry, 0 dead-lettered$")


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SVQM, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _run_cheaply(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`svqm ARGS` hashing passwords cheaply (tests/svqm_for_tests.py): the demo's seed hashes
    every demo account's password, which the sweep does not care about."""
    return subprocess.run(
        [*svqm_for_tests.COMMAND, *args],
        env=svqm_for_tests.environment(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SVQM_DATABASE_URL": f"sqlite:///{tmp_path}/svqm.db",
        "SVQM_EVIDENCE_DIR": str(tmp_path / "evidence"),
        "SVQM_MAIL_DIR": str(tmp_path / "mail"),
        "SVQM_SMTP_HOST": "",
        "COLUMNS": "200",
    }


def test_svqm_sweep_now_on_the_demo_database_prints_counts_and_fills_the_maildir(
    cli_env, tmp_path: Path
):
    assert _run("db", "upgrade", env=cli_env).returncode == 0
    demo = _run_cheaply("demo", env=cli_env)
    assert demo.returncode == 0, demo.stderr

    result = _run("sweep", "--now", "2027-06-01T09:00Z", env=cli_env)

    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()[0], result.stdout.splitlines()[-1]
    swept, sent = SWEPT.match(first), OUTBOX.match(second)
    assert swept, result.stdout
    assert sent, result.stdout
    rows, reminders, due, _fired, refused = map(int, swept.groups())
    assert rows > 0
    assert reminders + due > 0
    assert refused == 0
    delivered = list((tmp_path / "mail" / "new").iterdir())
    assert len(delivered) == int(sent.group(1)) > 0
    engine = make_engine(cli_env["SVQM_DATABASE_URL"])
    try:
        with Session(engine) as s:
            assert outbox.counts(s)["sent"] == len(delivered)
    finally:
        engine.dispose()


BAD_NOW = {
    "yesterday": "is not an ISO 8601 time",
    "2027-06-01T09:00": "has no time zone",
}


def test_svqm_sweep_with_a_bad_now_fails_with_one_line_and_no_traceback(cli_env):
    # --now is checked before the database is opened (none exists here); both run at once.
    procs = {
        now: subprocess.Popen(
            [SVQM, "sweep", "--now", now],
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for now in BAD_NOW
    }
    for now, message in BAD_NOW.items():
        stdout, stderr = procs[now].communicate(timeout=120)
        assert procs[now].returncode == 1, stderr
        assert stderr.startswith(f"error: --now: '{now}' {message}")
        assert len(stderr.strip().splitlines()) == 1
        assert "Traceback" not in stderr
        assert stdout == ""


def test_a_now_past_the_last_utc_datetime_is_refused_in_one_line(capsys):
    with pytest.raises(typer.Exit) as refused:
        parse_time("9999-12-31T23:00-05:00")  # astimezone(UTC) overflows
    assert refused.value.exit_code == 1
    assert capsys.readouterr().err == "error: --now: '9999-12-31T23:00-05:00' is out of range\n"
    assert parse_time("2027-06-01T10:00+01:00") == datetime(2027, 6, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def quiet_engine(tmp_path: Path):
    """An engine the jobs are given but that these tests never let them use."""
    eng = make_engine(f"sqlite:///{tmp_path}/unused.db")
    yield eng
    eng.dispose()


@pytest.mark.parametrize("factory", [BackgroundScheduler, BlockingScheduler])
def test_build_scheduler_registers_exactly_the_two_jobs_coalescing_one_instance_each(
    factory, quiet_engine, registry
):
    settings = Settings(SWEEP_INTERVAL_SECONDS=300, DISPATCH_INTERVAL_SECONDS=30)
    scheduler = notify_scheduler.build_scheduler(
        factory, quiet_engine, registry, settings, FixedClock(T0)
    )
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"sweep-deadlines", "dispatch-outbox"}
    for job_id, seconds in (("sweep-deadlines", 300), ("dispatch-outbox", 30)):
        job = jobs[job_id]
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, None)
        assert isinstance(job.trigger, IntervalTrigger)
        assert job.trigger.interval.total_seconds() == seconds
    assert not scheduler.running


def test_a_started_background_scheduler_keeps_two_jobs_and_shuts_down(quiet_engine, registry):
    scheduler = notify_scheduler.background(quiet_engine, registry, Settings(), FixedClock(T0))
    scheduler.start(paused=True)  # paused: the jobs are scheduled but never run
    try:
        assert scheduler.running
        assert sorted(job.id for job in scheduler.get_jobs()) == [
            "dispatch-outbox",
            "sweep-deadlines",
        ]
    finally:
        scheduler.shutdown(wait=True)
    assert not scheduler.running


def test_the_sweeps_dispatch_never_runs_beside_a_running_dispatch(
    monkeypatch, quiet_engine, registry
):
    """Two dispatchers in one process could each hold a message between send and mark-sent, so
    one crash could duplicate two. The sweep's call asks the running dispatch to go again."""
    calls, peak, active = [], [0], [0]
    lock, inside, release = threading.Lock(), threading.Event(), threading.Event()

    def fake_dispatch(*args: object, **kwargs: object) -> DispatchReport:
        with lock:
            calls.append(threading.current_thread().name)
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            first = len(calls) == 1
        if first:
            inside.set()
            assert release.wait(30)
        with lock:
            active[0] -= 1
        return DispatchReport()

    monkeypatch.setattr(notify_scheduler, "dispatch", fake_dispatch)
    monkeypatch.setattr(notify_scheduler, "sweep", lambda *a, **k: SweepReport())
    sweep_job, dispatch_job = notify_scheduler.jobs(
        quiet_engine, registry, Settings(), FixedClock(T0)
    )
    scheduled = threading.Thread(target=dispatch_job, name="scheduled")
    scheduled.start()
    try:
        assert inside.wait(30)
        swept = threading.Thread(target=sweep_job, name="sweep")
        swept.start()
        swept.join(30)
        # The sweep neither waited for the running dispatch nor dispatched beside it...
        assert not swept.is_alive()
        assert calls == ["scheduled"]
    finally:
        release.set()
        scheduled.join(30)
    # ...and what it enqueued still goes out: the running job dispatched once more.
    assert calls == ["scheduled", "scheduled"]
    assert peak[0] == 1
