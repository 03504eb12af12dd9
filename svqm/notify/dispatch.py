"""The dispatcher: claim due outbox rows, hand each to the mailer, record what happened."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from svqm.clock import Clock
from svqm.config import Settings
from svqm.db import session_scope, writer
from svqm.notify import outbox
from svqm.notify.mail import (
    MaildirMailer,
    Mailer,
    PartlyRefused,
    PermanentMailError,
    SmtpMailer,
    TransientMailError,
)
from svqm.notify.render import build_message

log = logging.getLogger("svqm.notify")


def mailer_from(settings: Settings) -> Mailer:
    """SMTP when a host is set, else the Maildir under var/mail."""
    if settings.SMTP_HOST:
        return SmtpMailer(
            settings.SMTP_HOST,
            settings.SMTP_PORT,
            security=settings.SMTP_SECURITY,
            username=settings.SMTP_USERNAME,
            password=settings.SMTP_PASSWORD,
            timeout=settings.SMTP_TIMEOUT_SECONDS,
        )
    return MaildirMailer(settings.MAIL_DIR)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class DispatchReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)


def _never() -> bool:
    return False


def dispatch(
    engine: Engine,
    mailer: Mailer,
    settings: Settings,
    clock: Clock,
    *,
    max_batches: int = 10_000,
    stop: Callable[[], bool] = _never,
) -> DispatchReport:
    """Send everything due now, one claimed batch after another, until nothing is claimable.

    `stop()` is asked before each message: once it says True (the process is shutting down), the
    message in hand is finished and the rest of the batch is handed back for the next dispatcher.
    """
    report = DispatchReport()
    worker = worker_name()
    lease = settings.OUTBOX_LEASE_SECONDS
    # The longest one send may block (a relay that accepts and never answers).
    timeout = settings.SMTP_TIMEOUT_SECONDS if settings.SMTP_HOST else 0.0
    limit = batch_size(settings)
    started = time.monotonic()
    for _ in range(max_batches):
        if stop() or time.monotonic() - started + timeout > lease:
            break
        with session_scope(engine) as session:
            claim = outbox.claim(session, now=clock.now(), limit=limit, lease_seconds=lease)
        if not claim.rows:
            break
        failures = report.retried + report.dead
        for n, row in enumerate(claim.rows):
            # Stopping, or a next send that could outlast the claim or this run's bound: the
            # rest are handed back untried (no attempt counted), due at once for the next run.
            overrun = time.monotonic() - started + timeout > lease
            if stop() or overrun:
                with session_scope(engine) as session:
                    outbox.release(session, claim.rows[n:], claim.token)
                if overrun:
                    log.warning(
                        "dispatch ran for its whole lease (%g s); %s message(s) handed back",
                        lease,
                        len(claim.rows) - n,
                    )
                return report
            if row.lease_until is not None and clock.now() >= row.lease_until:
                # The batch outlived its claim: the rest may be another dispatcher's by now, and
                # sending them too would duplicate them. They are claimable again, by anyone.
                log.warning("claim %s lapsed; leaving the rest of its batch", claim.token[:8])
                break
            _deliver(engine, mailer, settings, clock, row, claim.token, worker, report)
        else:
            # A short batch, all of it sent: the claim took everything that was due then, so
            # asking again at once would find nothing but what fell due meanwhile, which goes
            # with the next run (a failed message may be due again at once: then ask again).
            if len(claim.rows) < limit and report.retried + report.dead == failures:
                break
    return report


def batch_size(settings: Settings) -> int:
    """How many messages one claim takes: OUTBOX_BATCH, but never so many that their sends,
    each allowed SMTP_TIMEOUT_SECONDS, could outlast the claim's lease (30 s x 20 > 300 s)."""
    if not settings.SMTP_HOST or settings.SMTP_TIMEOUT_SECONDS <= 0:
        return settings.OUTBOX_BATCH
    fits = int(settings.OUTBOX_LEASE_SECONDS // settings.SMTP_TIMEOUT_SECONDS) - 1
    return max(1, min(settings.OUTBOX_BATCH, fits))


def _deliver(
    engine: Engine,
    mailer: Mailer,
    settings: Settings,
    clock: Clock,
    row: outbox.OutboxMessage,
    token: str,
    worker: str,
    report: DispatchReport,
) -> None:
    try:
        mailer.send(
            build_message(
                row, mail_from=settings.MAIL_FROM, now=clock.now(), base_url=settings.BASE_URL
            )
        )
    except (TransientMailError, PermanentMailError) as exc:
        permanent = isinstance(exc, PermanentMailError)
        error = str(exc)
        # Those who have it must not get it twice: what remains goes to the refused only.
        remaining = exc.refused if isinstance(exc, PartlyRefused) else None
    except Exception as exc:  # a template or header problem: retrying cannot fix it
        log.exception("outbox message %s could not be built", row.id)
        permanent, error, remaining = True, f"could not build the message: {exc}", None
    else:
        # Its own transaction, committed before the next send: a crash between a send and its
        # mark duplicates that one message only.
        with writer(engine).begin() as conn:
            outbox.mark_sent(conn, row, token, now=clock.now(), worker=worker)
        report.sent += 1
        return
    with session_scope(engine) as session:
        outcome = outbox.mark_failed(
            session,
            row,
            token,
            now=clock.now(),
            error=error,
            permanent=permanent,
            max_attempts=settings.OUTBOX_MAX_ATTEMPTS,
            base=settings.OUTBOX_BACKOFF_SECONDS,
            cap=settings.OUTBOX_BACKOFF_MAX_SECONDS,
            worker=worker,
            only_to=remaining,
        )
    if outcome == "dead":
        report.dead += 1
        # The alert: admins see dead letters on /admin/outbox; operators see this line.
        log.error(
            "outbox message %s dead-lettered after %s attempts: %s", row.id, row.attempts, error
        )
    else:
        report.retried += 1
        log.warning(
            "outbox message %s attempt %s failed, will retry: %s", row.id, row.attempts, error
        )
    report.errors.append(f"{row.id}: {error}")
