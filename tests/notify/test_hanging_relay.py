"""A relay that accepts connections and never says a word: deadlines go on, and no delivery
attempt is counted that was not made."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, col, select

from svqm.clock import FixedClock
from svqm.config import Settings
from svqm.db import session_scope
from svqm.notify import outbox
from svqm.notify import scheduler as notify_scheduler
from svqm.notify.dispatch import batch_size, dispatch, mailer_from
from svqm.notify.models import DEAD, PENDING, DeliveryAttempt, OutboxMessage
from tests.notify.mailkit import MAIL_FROM, enqueue_reminders

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


class SilentRelay:
    """Accepts every connection and holds it open without sending a greeting."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.held.append(conn)

    def close(self) -> None:
        self.done.set()
        self.thread.join(5)
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[SilentRelay]:
    relay = SilentRelay()
    yield relay
    relay.close()


def _settings(port: int, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": port,
        "SMTP_TIMEOUT_SECONDS": 0.3,
        "OUTBOX_LEASE_SECONDS": 1.0,
        "OUTBOX_BATCH": 20,
        "OUTBOX_MAX_ATTEMPTS": 3,
        "MAIL_FROM": MAIL_FROM,
    }
    return Settings(**(values | overrides))  # type: ignore[arg-type]


def _rows(engine) -> list[OutboxMessage]:
    with Session(engine) as s:
        return list(s.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))


def _tries(engine, row: OutboxMessage) -> int:
    with Session(engine) as s:
        return len(s.exec(select(DeliveryAttempt).where(DeliveryAttempt.outbox_id == row.id)).all())


def test_the_batch_fits_the_lease():
    """Before: 30 s timeout x batch of 20 = 600 s, twice the 300 s lease."""
    assert batch_size(Settings(SMTP_HOST="relay", SMTP_TIMEOUT_SECONDS=30)) == 9
    assert batch_size(Settings()) == 20  # the Maildir never hangs


def test_one_dispatch_is_bounded_by_its_lease_and_counts_only_real_tries(engine, silent):
    """Before: lapsed claims counted 1 to 3 attempts ahead of the real tries."""
    enqueue_reminders(engine, 10, now=T0)
    settings = _settings(silent.port)
    started = time.monotonic()
    report = dispatch(engine, mailer_from(settings), settings, FixedClock(T0))
    elapsed = time.monotonic() - started
    rows = _rows(engine)
    tried = [r for r in rows if _tries(engine, r)]
    assert report.retried == len(tried) >= 1
    # No try starts once the lease has run out: each try waits out the relay's timeout, so at
    # most lease / timeout + the one in flight (4 of the 10); all 10 would take 3 s and more.
    lease, timeout = settings.OUTBOX_LEASE_SECONDS, settings.SMTP_TIMEOUT_SECONDS
    assert len(tried) <= int(lease / timeout) + 1
    # And in time: the lease and the try in flight, with room for a busy 2-core machine's
    # scheduling (1.96 s was seen at load 10 against a bound of 1.8 s).
    assert elapsed < lease + timeout + 1.5
    # Every row's count is the attempts really made; the untried are pending, counted 0.
    assert all(r.attempts == _tries(engine, r) for r in rows)
    assert {(r.status, r.attempts) for r in rows if r not in tried} == {(PENDING, 0)}


def test_dead_letters_are_sent_again_in_bulk_by_filter(engine, silent):
    enqueue_reminders(engine, 4, now=T0)
    with session_scope(engine) as s:
        for row in s.exec(select(OutboxMessage)).all():
            row.status = DEAD
            row.last_error = "timed out" if row.id % 2 else "550 mailbox unavailable"
            s.add(row)
    with session_scope(engine) as s:
        assert outbox.retry_dead(s, now=T0, containing="TIMED OUT") == 2
    with session_scope(engine) as s:
        assert outbox.counts(s)[PENDING] == 2
        assert outbox.retry_dead(s, now=T0) == 2
        assert outbox.counts(s)[DEAD] == 0


def test_the_sweep_never_waits_on_a_hanging_relay(engine, registry, silent):
    """Before: the sweep ran the dispatch itself, so a silent relay held up every deadline."""
    enqueue_reminders(engine, 10, now=T0)
    settings = _settings(silent.port, SMTP_TIMEOUT_SECONDS=2.0, OUTBOX_LEASE_SECONDS=6.0)
    sweep_job, _ = notify_scheduler.jobs(engine, registry, settings, FixedClock(T0))
    started = time.monotonic()
    sweep_job()
    swept_in = time.monotonic() - started
    # The sweep is done long before even one send could time out.
    assert swept_in < settings.SMTP_TIMEOUT_SECONDS
    for thread in threading.enumerate():
        if thread.name == "svqm-dispatch-after-sweep":
            thread.join(settings.OUTBOX_LEASE_SECONDS + 5)
            assert not thread.is_alive()
