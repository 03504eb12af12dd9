"""Emails from the outbox: templates rendered from a row's frozen context, with a stable Message-ID.

What depends on the moment of reading (how many days are left, whether a date has passed) is
worked out when the message is built for sending, from the due date and the send time, never
frozen when the row was written.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import default as _default_policy
from email.utils import format_datetime, parseaddr
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from svqm.notify.models import OutboxMessage

_LOCAL = ZoneInfo("Europe/London")


class _Headers(HeaderRegistry):
    """The standard library's header factory, keeping the header classes it makes and the
    headers it parsed last.

    Its own builds a new class for every header set or looked up (about 16 a message, a third
    of the time spent building one); these are the same classes, made once per header name.
    And most of a message's headers are the same in every message (From, Auto-Submitted, the
    parts' Content-Type, Content-Transfer-Encoding and MIME-Version; To for each recipient's
    next email), while parsing one is most of the cost of building a message: a header read
    from the same name and text is the same object, and header objects are immutable (a
    message replaces a header, never changes one), so one parsed before is handed out again.
    """

    _KEEP = 512  # parsed headers kept; the cache is emptied when full (unique Message-IDs)

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}
        self._parsed: dict[tuple[str, str], BaseHeader] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(key)
        return made

    def __call__(self, name: str, value: Any) -> BaseHeader:
        if type(value) is not str:  # a header object or another str subclass: as the factory
            return super().__call__(name, value)
        key = (name, value)
        header = self._parsed.get(key)
        if header is None:
            header = super().__call__(name, value)
            if len(self._parsed) >= self._KEEP:
                self._parsed.clear()
            self._parsed[key] = header
        return header


# `email.policy.default` with that factory: the same headers, the same bytes.
_POLICY = _default_policy.clone(header_factory=_Headers())
_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("svqm.notify", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)
# Deadline emails; event emails carry their subject line in their context.
SUBJECT_LINES = {
    "reminder": "Reminder: {label} due {due_text}",
    "overdue": "{label} was due {due_text}",
    "due": "{label}: the due date has passed ({due_day})",
    "invitation": "You are invited to act for {organisation}",
    "signup_welcome": "{organisation} is registered",
    "signup_exists": "Someone tried to register with your email address",
    "consultation_invite": "{organisation}: your view, for the {scheme}",
    "consultation_reminder": "Reminder: your view of {organisation} (closes {closes_day})",
    "message": "{subject_title}: a message from {author}",
    "digest": "Your daily summary: {count} email{plural} ({day})",
}
EVENT = "event"
TEMPLATES = (*SUBJECT_LINES, EVENT)
# What each kind of email is, in plain words, where people read the outbox (the admin's page)
# rather than the email itself: one title per template above.
TITLES = {
    "reminder": "Deadline reminder",
    "overdue": "Overdue deadline",
    "due": "Due date passed",
    "invitation": "Invitation to act for an organisation",
    "signup_welcome": "Welcome after registering",
    "signup_exists": "Registration with an email address already in use",
    "consultation_invite": "Invitation to a stakeholder consultation",
    "consultation_reminder": "Stakeholder consultation reminder",
    "message": "Message on a case",
    "digest": "Daily summary",
    EVENT: "Notice of a step",
}


def title_of(row: OutboxMessage) -> str:
    """What an outbox message is, in plain words: its kind, and what it is about when its
    context says (the deadline's label, or a notice's own subject line)."""
    title = TITLES.get(row.template) or row.template.replace("_", " ").capitalize()
    try:
        context = json.loads(row.context)
    except ValueError:
        context = {}
    about = context.get("subject") if row.template == EVENT else context.get("label")
    return f"{title}: {about}" if isinstance(about, str) and about else title


def days_left(due: datetime, now: datetime) -> int:
    """Whole calendar days (UK time) from `now` to `due`: 0 on the day, negative once past."""
    return (due.astimezone(_LOCAL).date() - now.astimezone(_LOCAL).date()).days


def relative(due: datetime, now: datetime) -> str:
    """'today', 'tomorrow', 'in 40 days', '3 days ago': true on the day it is read."""
    days = days_left(due, now)
    if days == 0:
        return "today" if due >= now else "earlier today"
    if days == 1:
        return "tomorrow"
    if days == -1:
        return "yesterday"
    if days > 0:
        return f"in {days} days"
    return f"{-days} days ago"


def greeting(names: list[str] | None, fallback: str = "") -> str:
    """'Hello Ann Smith,' / 'Hello Ann Smith and Bo Li,' / 'Hello,' when nobody is named."""
    names = [n for n in (names or []) if n]
    if not names:
        return f"Hello {fallback}," if fallback else "Hello,"
    if len(names) == 1:
        return f"Hello {names[0]},"
    return f"Hello {', '.join(names[:-1])} and {names[-1]},"


def _facts(
    row: OutboxMessage, context: dict[str, Any], now: datetime, base_url: str = ""
) -> dict[str, Any]:
    """The context with what is true at `now`: the relative phrase, past or not, the greeting,
    and links on the base URL of the moment (rows hold `*_path`s)."""
    facts = dict(context)
    base = base_url.rstrip("/")
    for key, value in context.items():
        if key == "path":
            facts["link"] = base + value
        elif key.endswith("_path"):
            facts[key.removesuffix("_path") + "_link"] = base + value
    facts.setdefault("names", [])
    facts.setdefault("past", False)
    facts.setdefault("relative", "")
    facts.setdefault("comment_intro", "In their words")  # rows written before it was stored
    facts["greeting"] = greeting(facts["names"], facts.get("greeting_fallback", ""))
    if "due_at" in facts:
        due = datetime.fromisoformat(facts["due_at"])
        facts["relative"] = relative(due, now)
        facts["past"] = due <= now
        local = due.astimezone(_LOCAL)
        facts["due_day"] = f"{local:%A} {local.day} {local:%B %Y}"
    return facts


def subject_line(template: str, facts: dict[str, Any]) -> str:
    if template == EVENT:
        return str(facts["subject"])
    if template == "reminder" and facts.get("past"):
        template = "overdue"
    return SUBJECT_LINES[template].format(**facts)


def message_id(row: OutboxMessage, mail_from: str) -> str:
    """The same for every attempt at one row, so a receiver can drop a duplicate after a crash."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "svqm.localhost"
    digest = hashlib.sha256(row.key.encode()).hexdigest()[:16]
    return f"<svqm.{row.id}.{digest}@{domain}>"


def build_message(
    row: OutboxMessage, *, mail_from: str, now: datetime | None = None, base_url: str = ""
) -> EmailMessage:
    """The email for an outbox row: plain text and HTML alternatives from the row's context.

    `now` is the send time (default: when the row was written); `base_url` what paths hang on."""
    facts = _facts(row, json.loads(row.context), now or row.created_at, base_url)
    message = EmailMessage(policy=_POLICY)
    message["From"] = mail_from
    message["To"] = row.to_addrs
    message["Subject"] = subject_line(row.template, facts)
    message["Message-ID"] = message_id(row, mail_from)
    message["Date"] = format_datetime(now or row.created_at)
    message["X-SVQM-Key"] = row.key
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(_ENV.get_template(f"{row.template}.txt").render(facts))
    message.add_alternative(_ENV.get_template(f"{row.template}.html").render(facts), subtype="html")
    return message
