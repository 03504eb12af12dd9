"""Emails from the outbox: templates rendered from a row's frozen context, with a stable Message-ID."""

from __future__ import annotations

import hashlib
import json
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import jinja2

from svqm.notify.models import OutboxMessage

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("svqm.notify", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)
SUBJECT_LINES = {
    "reminder": "Reminder: {label} due {due_text}",
    "due": "{label}: due {due_text}",
    "invitation": "You are invited to act for {organisation}",
}
TEMPLATES = tuple(SUBJECT_LINES)


def message_id(row: OutboxMessage, mail_from: str) -> str:
    """The same for every attempt at one row, so a receiver can drop a duplicate after a crash."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "svqm.localhost"
    digest = hashlib.sha256(row.key.encode()).hexdigest()[:16]
    return f"<svqm.{row.id}.{digest}@{domain}>"


def build_message(row: OutboxMessage, *, mail_from: str) -> EmailMessage:
    """The email for an outbox row: plain text and HTML alternatives from the row's context."""
    context = json.loads(row.context)
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = row.to_addrs
    message["Subject"] = SUBJECT_LINES[row.template].format(**context)
    message["Message-ID"] = message_id(row, mail_from)
    message["Date"] = format_datetime(row.created_at)
    message["X-SVQM-Key"] = row.key
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(_ENV.get_template(f"{row.template}.txt").render(context))
    message.add_alternative(
        _ENV.get_template(f"{row.template}.html").render(context), subtype="html"
    )
    return message
