"""What the scheduler did, as the admin reads it: open, overdue and failed deadlines, the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session

from svqm.notify import outbox
from svqm.notify.models import DEAD, OutboxMessage
from svqm.notify.render import title_of
from svqm.web.format import day, moment
from svqm.web.views.deadlines import DeadlineView, describe, status_tag
from svqm.workflow.schedule import ScheduledDeadline
from svqm.workflow.schemes import SchemeRegistry

OUTBOX_STATUS_TAGS = {
    "pending": ("Waiting to send", "govuk-tag--blue"),
    "sending": ("Sending", "govuk-tag--turquoise"),
    "sent": ("Sent", "govuk-tag--green"),
    "dead": ("Not delivered", "govuk-tag--red"),
}
# Enough to see what needs attention; older rows are in the database.
OUTBOX_LIMIT = 50


def deadline_rows(
    session: Session, registry: SchemeRegistry, rows: Sequence[ScheduledDeadline], now: datetime
) -> list[dict[str, Any]]:
    """Deadline rows for the admin's table: when, whose, what, and how it stands."""

    def row(v: DeadlineView) -> dict[str, Any]:
        return {
            "due": day(v.due_at),
            "organisation": v.organisation,
            "subject": v.subject,
            "href": v.admin_path,
            "label": v.label,
            "tag": status_tag(v, now),
            "overdue": v.overdue(now),
            "outcome": v.outcome,
            "closed": moment(v.closed_at) if v.closed_at else "",
        }

    return [row(v) for v in describe(session, registry, rows)]


def message_row(session: Session, m: OutboxMessage, *, with_attempts: bool) -> dict[str, Any]:
    """One outbox message: what it is in plain words, its key, recipients, status and (for dead
    ones) attempts."""
    text, classes = OUTBOX_STATUS_TAGS.get(m.status, (m.status, ""))
    attempts = outbox.attempts_of(session, m.id or 0) if with_attempts else []
    return {
        "id": m.id,
        "key": m.key,
        "title": title_of(m),
        "recipients": m.to_addrs,
        "tag": {"text": text, "classes": classes},
        "attempts": m.attempts,
        "last_error": m.last_error,
        "created": moment(m.created_at),
        "history": [
            {"at": moment(a.at), "outcome": a.outcome, "detail": a.detail} for a in attempts
        ],
    }


def outbox_view(session: Session) -> dict[str, Any]:
    """Messages by status, the dead letters first (each can be sent again), then the newest."""
    dead = outbox.listing(session, status=DEAD, limit=OUTBOX_LIMIT)
    return {
        "counts": [
            {"status": OUTBOX_STATUS_TAGS[s][0], "count": n}
            for s, n in outbox.counts(session).items()
        ],
        "dead": [message_row(session, m, with_attempts=True) for m in dead],
        "newest": [
            message_row(session, m, with_attempts=False)
            for m in outbox.listing(session, limit=OUTBOX_LIMIT)
        ],
    }
