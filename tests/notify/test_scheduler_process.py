"""`svqm scheduler` as real processes against a real SMTP relay (SECURITY H1, H4): killed with
SIGKILL mid-dispatch and restarted, nothing is lost and each crash duplicates at most one message,
with the original's Message-ID; two schedulers on one PostgreSQL database send each message once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from svqm.clock import utc_now
from svqm.notify import outbox
from svqm.notify.models import SENT, DeliveryAttempt, OutboxMessage
from svqm.notify.render import message_id
from tests.notify.conftest import OwnDatabase
from tests.notify.mailkit import MAIL_FROM, Relay, enqueue_reminders, wait_for

SVQM = str(Path(sys.executable).with_name("svqm"))


def _env(url: str, port: int, *, lease: float, batch: int, timeout: float = 10) -> dict[str, str]:
    return {
        **os.environ,
        "SVQM_DATABASE_URL": url,
        "SVQM_SMTP_HOST": "127.0.0.1",
        "SVQM_SMTP_PORT": str(port),
        "SVQM_SMTP_TIMEOUT_SECONDS": str(timeout),
        "SVQM_MAIL_FROM": MAIL_FROM,
        "SVQM_DISPATCH_INTERVAL_SECONDS": "0.5",
        "SVQM_SWEEP_INTERVAL_SECONDS": "3600",
        "SVQM_OUTBOX_LEASE_SECONDS": str(lease),
        "SVQM_OUTBOX_BATCH": str(batch),
        "PYTHONUNBUFFERED": "1",
    }


class Scheduler:
    """One `svqm scheduler` process, its output in files under `logs`."""

    def __init__(self, env: dict[str, str], logs: Path, name: str) -> None:
        self.stdout, self.stderr = logs / f"{name}.out", logs / f"{name}.err"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                [SVQM, "scheduler"], env=env, cwd=logs, stdout=out, stderr=err
            )

    def log(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def started(self) -> bool:
        return "Scheduler started" in self.stderr.read_text()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(timeout=10) == -signal.SIGKILL

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)

    def stop_if_running(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _rows(engine: Engine) -> list[OutboxMessage]:
    with Session(engine) as s:
        return list(s.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))


def _all_sent(engine: Engine, n: int) -> bool:
    with Session(engine) as s:
        return outbox.counts(s)[SENT] == n


def _assert_one_message_id_per_row(engine: Engine, relay: Relay) -> None:
    expected = {row.key: message_id(row, MAIL_FROM) for row in _rows(engine)}
    seen: defaultdict[str, set[str]] = defaultdict(set)
    for delivery in relay.received:
        seen[delivery.key].add(delivery.message_id)
    assert dict(seen) == {key: {mid} for key, mid in expected.items()}


def test_sigkill_mid_dispatch_three_times_loses_nothing_and_duplicates_at_most_once_per_kill(
    own_db: OwnDatabase, relay: Relay, tmp_path: Path
):
    keys = enqueue_reminders(own_db.engine, 500, now=utc_now(), prefix="crash")
    # A short lease, so that the next run takes up what a killed one held; a send must fit in it.
    env = _env(own_db.url, relay.port, lease=4, batch=5, timeout=2)
    runs: list[Scheduler] = []
    try:
        kills = 0
        for threshold in (100, 200, 300):
            runs.append(Scheduler(env, tmp_path, f"run{len(runs)}"))
            assert wait_for(lambda t=threshold: relay.count >= t, 60), runs[-1].log()
            assert runs[-1].proc.poll() is None, "it should still be dispatching"
            runs[-1].kill()
            kills += 1
        # Each kill landed mid-dispatch: work was left for the next run.
        assert relay.count < 500

        last = Scheduler(env, tmp_path, "final")
        runs.append(last)
        assert wait_for(lambda: _all_sent(own_db.engine, 500), 60), last.log()
        assert last.terminate() == 0, last.log()
    finally:
        for run in runs:
            run.stop_if_running()

    delivered = relay.keys()
    assert set(delivered) == set(keys)
    duplicates = sum(delivered.values()) - len(keys)
    assert duplicates <= kills, Counter({k: n for k, n in delivered.items() if n > 1})
    _assert_one_message_id_per_row(own_db.engine, relay)
    assert "Traceback" not in last.log()


@pytest.mark.parametrize("own_db", ["sqlite"], indirect=True)
def test_sigterm_mid_dispatch_finishes_the_message_in_hand_and_hands_back_the_rest(
    own_db: OwnDatabase, relay: Relay, tmp_path: Path
):
    enqueue_reminders(own_db.engine, 300, now=utc_now(), prefix="term")
    run = Scheduler(_env(own_db.url, relay.port, lease=300, batch=20), tmp_path, "term")
    try:
        assert wait_for(lambda: relay.count >= 50, 60), run.log()
        assert run.terminate() == 0, run.log()
    finally:
        run.stop_if_running()

    with Session(own_db.engine) as s:
        counts = outbox.counts(s)
    # Every message the relay took is marked sent; the rest are pending, not stuck "sending"
    # until a 300 s lease lapses, and no attempt is counted against them.
    assert counts["sent"] == relay.count < 300
    assert counts == {"pending": 300 - relay.count, "sending": 0, "sent": relay.count, "dead": 0}
    assert {r.attempts for r in _rows(own_db.engine) if r.status == "pending"} == {0}
    assert "Traceback" not in run.log()


@pytest.mark.postgres
def test_two_schedulers_on_one_postgres_database_send_each_message_exactly_once(
    own_postgres: OwnDatabase, relay: Relay, tmp_path: Path
):
    env = _env(own_postgres.url, relay.port, lease=30, batch=5)
    pair = [Scheduler(env, tmp_path, "a"), Scheduler(env, tmp_path, "b")]
    try:
        # Both are up and polling before there is anything to send, so they race for it.
        assert wait_for(lambda: all(s.started() for s in pair), 30), [s.log() for s in pair]
        keys = enqueue_reminders(own_postgres.engine, 300, now=utc_now(), prefix="pair")
        assert wait_for(lambda: _all_sent(own_postgres.engine, 300), 60), [s.log() for s in pair]
        assert [s.terminate() for s in pair] == [0, 0], [s.log() for s in pair]
    finally:
        for s in pair:
            s.stop_if_running()

    assert relay.count == 300
    assert relay.keys() == Counter(keys)
    _assert_one_message_id_per_row(own_postgres.engine, relay)
    with Session(own_postgres.engine) as s:
        workers = Counter(s.exec(select(DeliveryAttempt.worker)))
        outcomes = set(s.exec(select(DeliveryAttempt.outcome)))
    assert outcomes == {"sent"}
    assert sum(workers.values()) == 300
    pids = {w.rpartition(":")[2] for w in workers}
    assert pids == {str(s.proc.pid) for s in pair}, workers
