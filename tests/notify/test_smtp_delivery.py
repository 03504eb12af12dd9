"""Outbox rows delivered through a real SMTP relay on loopback (and a Maildir), retried on 4xx and
while the relay is down, dead-lettered on 5xx or after the attempt limit; SQLite and PostgreSQL."""

from __future__ import annotations

import email
import email.policy
import gc
import logging
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from svqm.clock import FixedClock
from svqm.config import Settings
from svqm.db import session_scope
from svqm.errors import InvalidInput
from svqm.notify import outbox
from svqm.notify.dispatch import dispatch, mailer_from
from svqm.notify.mail import MaildirMailer, SmtpMailer, TransientMailError
from svqm.notify.models import DEAD, PENDING, SENT, OutboxMessage
from svqm.notify.render import build_message, message_id
from tests.notify.mailkit import MAIL_FROM, Relay, context, enqueue_reminders

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
BASE = 60.0  # OUTBOX_BACKOFF_SECONDS


def _settings(port: int, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": port,
        "SMTP_TIMEOUT_SECONDS": 5,
        "MAIL_FROM": MAIL_FROM,
        "OUTBOX_BACKOFF_SECONDS": BASE,
        "OUTBOX_BACKOFF_MAX_SECONDS": 3600,
        "OUTBOX_MAX_ATTEMPTS": 8,
        "OUTBOX_BATCH": 5,
    }
    return Settings(**(values | overrides))  # type: ignore[arg-type]


def _rows(engine: Engine) -> list[OutboxMessage]:
    with Session(engine) as s:
        return list(s.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))


def _outcomes(engine: Engine, row: OutboxMessage) -> list[str]:
    assert row.id is not None
    with Session(engine) as s:
        return [a.outcome for a in outbox.attempts_of(s, row.id)]


def _assert_is_the_reminder(message: EmailMessage, row: OutboxMessage) -> None:
    assert message["To"] == row.to_addrs
    assert message["Subject"] == "Reminder: Annual report due 5 January 2027"
    assert message["Message-ID"] == message_id(row, MAIL_FROM)
    assert message["X-SVQM-Key"] == row.key
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    assert "Annual report for the Silver award (SVQM-00000) of Org 0" in text.get_content()
    assert '<a href="https://svqm.example/awards/0">' in html.get_content()


def test_smtp_delivery_has_text_and_html_parts_and_the_rows_stable_message_id(engine, relay):
    [key] = enqueue_reminders(engine, 1, now=T0)
    clock = FixedClock(T0)
    settings = _settings(relay.port)
    assert isinstance(mailer_from(settings), SmtpMailer)

    report = dispatch(engine, mailer_from(settings), settings, clock)

    assert (report.sent, report.retried, report.dead) == (1, 0, 0)
    [row] = _rows(engine)
    [delivery] = relay.received
    assert delivery.rcpt_tos == ("applicant0@example.test",)
    assert delivery.key == key
    _assert_is_the_reminder(delivery.message, row)
    assert (row.status, row.attempts, row.sent_at, row.last_error) == (SENT, 1, T0, "")
    assert _outcomes(engine, row) == ["sent"]
    # Sent rows are never claimed again.
    clock.advance(days=30)
    assert dispatch(engine, mailer_from(settings), settings, clock).sent == 0
    assert relay.count == 1


def test_maildir_delivery_writes_the_same_message_into_new(engine, tmp_path: Path):
    enqueue_reminders(engine, 1, now=T0)
    settings = Settings(MAIL_DIR=tmp_path / "mail", MAIL_FROM=MAIL_FROM, SMTP_HOST="")
    mailer = mailer_from(settings)
    assert isinstance(mailer, MaildirMailer)

    assert dispatch(engine, mailer, settings, FixedClock(T0)).sent == 1

    [row] = _rows(engine)
    [path] = (tmp_path / "mail" / "new").iterdir()
    reread = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(reread, EmailMessage)
    _assert_is_the_reminder(reread, row)
    assert (row.status, _outcomes(engine, row)) == (SENT, ["sent"])
    assert list((tmp_path / "mail" / "tmp").iterdir()) == []


@pytest.mark.parametrize("deferrals", [1, 3])
def test_451_deferrals_are_retried_with_growing_backoff_until_one_delivery(
    engine, relay, deferrals
):
    relay.script("451 4.3.0 greylisted, try again later", times=deferrals)
    [key] = enqueue_reminders(engine, 1, now=T0)
    clock = FixedClock(T0)
    settings = _settings(relay.port)
    mailer = mailer_from(settings)
    delays = []
    for attempt in range(1, deferrals + 1):
        report = dispatch(engine, mailer, settings, clock)
        assert (report.sent, report.retried, report.dead) == (0, 1, 0)
        [row] = _rows(engine)
        assert (row.status, row.attempts) == (PENDING, attempt)
        assert "relay replied 451" in row.last_error
        delay = (row.next_attempt_at - clock.now()).total_seconds()
        ceiling = BASE * 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling
        delays.append(delay)
        # Not due yet: a dispatch a second early neither sends nor counts an attempt.
        clock.at = row.next_attempt_at - timedelta(seconds=1)
        assert dispatch(engine, mailer, settings, clock).retried == 0
        clock.at = row.next_attempt_at + timedelta(seconds=1)

    assert dispatch(engine, mailer, settings, clock).sent == 1

    [row] = _rows(engine)
    assert delays == sorted(delays)
    assert len(set(delays)) == len(delays)
    assert (row.status, row.attempts) == (SENT, deferrals + 1)
    assert _outcomes(engine, row) == ["retry"] * deferrals + ["sent"]
    assert relay.refused == deferrals
    assert [d.key for d in relay.received] == [key]


def test_a_550_reply_dead_letters_at_once_and_alerts(engine, relay, caplog):
    relay.script("550 5.1.1 mailbox unavailable", times=1)
    enqueue_reminders(engine, 1, now=T0)
    settings = _settings(relay.port)
    clock = FixedClock(T0)
    with caplog.at_level(logging.ERROR, logger="svqm.notify"):
        report = dispatch(engine, mailer_from(settings), settings, clock)

    assert (report.sent, report.retried, report.dead) == (0, 0, 1)
    [row] = _rows(engine)
    assert (row.status, row.attempts) == (DEAD, 1)
    assert "550" in row.last_error
    assert _outcomes(engine, row) == ["dead"]
    assert any("dead-lettered" in r.getMessage() for r in caplog.records)
    clock.advance(days=7)
    assert dispatch(engine, mailer_from(settings), settings, clock).sent == 0
    assert relay.count == 0


def test_the_attempt_limit_dead_letters_then_an_admin_retry_delivers(engine, relay):
    relay.script("451 4.7.0 try later", times=3)
    enqueue_reminders(engine, 1, now=T0)
    settings = _settings(relay.port, OUTBOX_MAX_ATTEMPTS=3)
    mailer, clock = mailer_from(settings), FixedClock(T0)
    for _ in range(3):
        dispatch(engine, mailer, settings, clock)
        clock.advance(hours=2)  # past any backoff the first attempts can get (at most 4 min)
    [row] = _rows(engine)
    assert (row.status, row.attempts) == (DEAD, 3)
    assert _outcomes(engine, row) == ["retry", "retry", "dead"]
    assert dispatch(engine, mailer, settings, clock).sent == 0  # dead stays dead

    assert row.id is not None
    with session_scope(engine) as s:
        again = outbox.retry(s, row.id, now=clock.now())
        assert (again.status, again.attempts) == (PENDING, 0)
    with session_scope(engine) as s, pytest.raises(InvalidInput):
        outbox.retry(s, row.id, now=clock.now())  # only dead messages are retried

    assert dispatch(engine, mailer, settings, clock).sent == 1
    [row] = _rows(engine)
    assert (row.status, row.attempts) == (SENT, 1)
    assert _outcomes(engine, row) == ["retry", "retry", "dead", "sent"]
    [delivery] = relay.received
    assert delivery.message_id == message_id(row, MAIL_FROM)


def test_relay_down_for_the_whole_window_keeps_rows_pending_then_delivers_each_once(
    engine, down_relay: Relay, caplog
):
    keys = enqueue_reminders(engine, 7, now=T0)
    settings = _settings(down_relay.port)
    mailer, clock = mailer_from(settings), FixedClock(T0)
    with caplog.at_level(logging.WARNING, logger="svqm.notify"):
        for attempt in (1, 2, 3):
            report = dispatch(engine, mailer, settings, clock)
            assert (report.sent, report.retried, report.dead) == (0, 7, 0)
            rows = _rows(engine)
            assert {(r.status, r.attempts) for r in rows} == {(PENDING, attempt)}
            assert all("unavailable" in r.last_error for r in rows)
            clock.at = max(r.next_attempt_at for r in rows) + timedelta(seconds=1)
    assert sum("will retry" in r.getMessage() for r in caplog.records) == 21
    with Session(engine) as s:
        assert outbox.counts(s) == {PENDING: 7, "sending": 0, SENT: 0, DEAD: 0}

    down_relay.start()
    assert dispatch(engine, mailer, settings, clock).sent == 7
    clock.advance(days=1)
    assert dispatch(engine, mailer, settings, clock).sent == 0

    assert sorted(down_relay.keys().elements()) == keys
    for row in _rows(engine):
        assert (row.status, row.attempts) == (SENT, 4)
        assert _outcomes(engine, row) == ["retry", "retry", "retry", "sent"]


def test_a_dispatcher_whose_lease_ran_out_leaves_the_rest_of_its_batch(engine, relay):
    """Sending a batch outlived the claim: the unsent rows may be another dispatcher's by now."""
    enqueue_reminders(engine, 3, now=T0)
    settings = _settings(relay.port, OUTBOX_BATCH=3, OUTBOX_LEASE_SECONDS=60)
    clock = FixedClock(T0)
    smtp = mailer_from(settings)

    class SlowMailer:
        def send(self, message: EmailMessage) -> None:
            smtp.send(message)
            clock.advance(seconds=61)  # this send took longer than the whole lease

    report = dispatch(engine, SlowMailer(), settings, clock, max_batches=1)

    assert report.sent == 1
    assert relay.count == 1
    statuses = [r.status for r in _rows(engine)]
    assert statuses == [SENT, "sending", "sending"]
    # The lapsed rows are claimable again, by anyone, and are then sent once each.
    assert dispatch(engine, smtp, settings, clock).sent == 2
    assert sorted(relay.keys().values()) == [1, 1, 1]


def test_a_stopping_dispatcher_finishes_the_message_in_hand_and_hands_back_the_rest(engine, relay):
    enqueue_reminders(engine, 5, now=T0)
    settings = _settings(relay.port, OUTBOX_BATCH=5)
    clock = FixedClock(T0)

    report = dispatch(engine, mailer_from(settings), settings, clock, stop=lambda: relay.count > 0)

    assert (report.sent, relay.count) == (1, 1)
    rows = _rows(engine)
    assert [(r.status, r.attempts) for r in rows] == [(SENT, 1)] + [(PENDING, 0)] * 4
    assert all(r.lease_until is None for r in rows)
    # Handed back, they are due at once for the next dispatcher: no wait for a lease to lapse.
    assert dispatch(engine, mailer_from(settings), settings, clock).sent == 4
    assert sorted(relay.keys().values()) == [1] * 5


def test_starttls_refused_by_the_relay_is_transient_and_closes_the_connection(relay):
    row = OutboxMessage(
        id=1,
        key="k",
        template="reminder",
        context='{"label": "x", "due_text": "y", "organisation": "o", "scheme": "s",'
        ' "subject_title": "t", "days_before": 1, "on_due_text": "", "link": "l",'
        ' "home_link": "h"}',
        to_addrs="a@example.test",
        next_attempt_at=T0,
        created_at=T0,
    )
    mailer = SmtpMailer("127.0.0.1", relay.port, security="starttls", timeout=5)
    # aiosmtpd without a TLS context offers no STARTTLS; the socket must not leak (the
    # ResourceWarning would fail this test under filterwarnings=error).
    with pytest.raises(TransientMailError, match="STARTTLS"):
        mailer.send(build_message(row, mail_from=MAIL_FROM))
    gc.collect()
    assert relay.count == 0


def test_a_partly_refused_message_is_sent_again_only_to_those_without_it(engine, relay):
    """The relay takes it for one recipient and refuses the other: dead-lettered with only the
    refused address left, so an admin's "send again" never duplicates it for the first."""
    with session_scope(engine) as s:
        outbox.enqueue(
            s,
            key="two:0001",
            template="reminder",
            context=context(1),
            to_addrs=["kept@example.test", "gone@example.test"],
            now=T0,
        )
    relay.unknown.add("gone@example.test")
    settings = _settings(relay.port)
    mailer, clock = mailer_from(settings), FixedClock(T0)
    report = dispatch(engine, mailer, settings, clock)
    assert (report.sent, report.dead) == (0, 1)
    [row] = _rows(engine)
    assert (row.status, row.to_addrs) == (DEAD, "gone@example.test")
    assert "gone@example.test" in row.last_error
    assert [d.rcpt_tos for d in relay.received] == [("kept@example.test",)]

    relay.unknown.clear()  # the mailbox exists now
    assert row.id is not None
    with session_scope(engine) as s:
        outbox.retry(s, row.id, now=clock.now())
    assert dispatch(engine, mailer, settings, clock).sent == 1
    first, second = relay.received
    assert second.rcpt_tos == ("gone@example.test",)
    assert second.message_id == first.message_id == message_id(row, MAIL_FROM)


def test_a_short_batch_sent_whole_ends_the_dispatch_without_claiming_again(
    engine, relay, monkeypatch
):
    """Before: every dispatch claimed once more after its last batch, to find nothing."""
    enqueue_reminders(engine, 3, now=T0)
    settings = _settings(relay.port, OUTBOX_BATCH=5)
    claims: list[int] = []
    claim = outbox.claim

    def counted(*args: object, **kwargs: object) -> outbox.Claim:
        made = claim(*args, **kwargs)  # type: ignore[arg-type]
        claims.append(len(made.rows))
        return made

    monkeypatch.setattr(outbox, "claim", counted)
    assert dispatch(engine, mailer_from(settings), settings, FixedClock(T0)).sent == 3
    assert claims == [3]
    assert [(r.status, r.attempts) for r in _rows(engine)] == [(SENT, 1)] * 3
    # A full batch may have left more behind: the next claim looks, and finds the rest.
    enqueue_reminders(engine, 7, now=T0, prefix="more")
    claims.clear()
    assert dispatch(engine, mailer_from(settings), settings, FixedClock(T0)).sent == 7
    assert claims == [5, 2]


def test_a_claim_reads_the_outbox_through_its_indexes_never_a_whole_table_scan(engine):
    """The outbox keeps every message it sent; before, a claim read its rows back by claim
    token, which no index covers: each dispatch round read every message ever sent."""
    enqueue_reminders(engine, 3, now=T0)
    sent: list[tuple[str, object]] = []

    def seen(_conn, _cursor, statement, params, _context, _many):
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, params))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        with session_scope(engine) as session:
            made = outbox.claim(session, now=T0, limit=10, lease_seconds=60)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(made.rows) == 3
    assert sent
    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        if postgres:  # a scan the planner takes only when nothing else can answer
            conn.exec_driver_sql("SET enable_seqscan = off")
        explain = "EXPLAIN" if postgres else "EXPLAIN QUERY PLAN"
        for statement, params in sent:
            plan = [str(r[-1]) for r in conn.exec_driver_sql(f"{explain} {statement}", params)]
            assert _reads_outbox_by_index(plan, postgres), (statement, plan)


def _reads_outbox_by_index(plan: list[str], postgres: bool) -> bool:
    """Whether every step of a query plan that reads the outbox searches an index by a
    condition (SQLite: SEARCH, not SCAN; PostgreSQL: an index scan with an Index or Recheck
    Cond, not a Seq Scan nor an index read whole with a Filter)."""
    if not postgres:
        return not any(line.startswith("SCAN outbox") for line in plan)
    nodes: list[list[str]] = []
    for line in plan:
        if "->" in line or not nodes:
            nodes.append([line])
        else:
            nodes[-1].append(line)
    on_outbox = [n for n in nodes if " on outbox" in n[0]]
    return bool(on_outbox) and all(
        "Seq Scan" not in n[0] and any("Index Cond" in x or "Recheck Cond" in x for x in n)
        for n in on_outbox
    )
