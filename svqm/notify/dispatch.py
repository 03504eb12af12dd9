"""The dispatcher: claim due outbox rows, hand each to the mailer, record what happened."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from svqm.clock import Clock
from svqm.config import Settings
from svqm.db import session_scope
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
    for _ in range(max_batches):
        if stop():
            break
        with session_scope(engine) as session:
            claim = outbox.claim(
                session,
                now=clock.now(),
                limit=settings.OUTBOX_BATCH,
                lease_seconds=settings.OUTBOX_LEASE_SECONDS,
            )
        if not claim.rows:
            break
        for n, row in enumerate(claim.rows):
            if stop():
                with session_scope(engine) as session:
                    outbox.release(session, claim.rows[n:], claim.token)
                return report
            if row.lease_until is not None and clock.now() >= row.lease_until:
                # The batch outlived its claim: the rest may be another dispatcher's by now, and
                # sending them too would duplicate them. They are claimable again, by anyone.
                log.warning("claim %s lapsed; leaving the rest of its batch", claim.token[:8])
                break
            _deliver(engine, mailer, settings, clock, row, claim.token, worker, report)
    return report


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
        with session_scope(engine) as session:
            outbox.mark_sent(session, row, token, now=clock.now(), worker=worker)
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
