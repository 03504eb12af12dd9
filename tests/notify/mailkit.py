"""Tools for the mail tests: a real SMTP relay (aiosmtpd) on loopback that can be scripted to
refuse, defer or accept; polling with a deadline; outbox rows to send."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy.engine import Engine

from svqm.db import session_scope
from svqm.notify import outbox

MAIL_FROM = "SVQM <no-reply@svqm.localhost>"


def free_port() -> int:
    """A loopback port nothing listens on (right now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    """Poll `condition` until it holds or the deadline passes (a deadline, never a fixed sleep)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@dataclass(frozen=True)
class Delivery:
    """One message the relay accepted (answered 250 to)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def key(self) -> str:
        return str(self.message["X-SVQM-Key"])

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


class Relay:
    """An aiosmtpd server on 127.0.0.1: answers DATA from a script of replies, then "250 OK"."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._script: deque[str] = deque()
        self._lock = threading.Lock()
        self._received: list[Delivery] = []
        self.refused = 0  # DATA commands answered with something other than 250
        self.unknown: set[str] = set()  # recipients refused at RCPT TO (550, no such user)
        self._controller: Controller | None = None

    def script(self, reply: str, *, times: int) -> None:
        """Answer the next `times` messages with `reply` (e.g. "451 4.3.0 try again later")."""
        with self._lock:
            self._script.extend([reply] * times)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        with self._lock:
            if address in self.unknown:
                return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            reply = self._script.popleft() if self._script else "250 OK"
            if not reply.startswith("250"):
                self.refused += 1
                return reply
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            self._received.append(Delivery(envelope.mail_from, tuple(envelope.rcpt_tos), message))
        return reply

    @property
    def received(self) -> list[Delivery]:
        with self._lock:
            return list(self._received)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._received)

    def keys(self) -> Counter[str]:
        return Counter(d.key for d in self.received)

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        assert self._controller is None
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def context(n: int) -> dict[str, Any]:
    """What the reminder template needs, as the sweep would freeze it."""
    return {
        "organisation": f"Org {n}",
        "scheme": "Social Value Quality Mark",
        "label": "Annual report",
        "kind": "annual_report",
        "subject_title": f"Silver award (SVQM-{n:05d})",
        "due_at": "2027-01-05T09:00:00+00:00",
        "due_text": "5 January 2027",
        "days_before": 30,
        "on_due_text": "",
        "outcome": "",
        "link": f"https://svqm.example/awards/{n}",
        "home_link": "https://svqm.example/dashboard",
        "audience": "applicant",
    }


def enqueue_reminders(engine: Engine, count: int, *, now: datetime, prefix: str = "m") -> list[str]:
    """`count` reminders through svqm.notify.outbox.enqueue, in one transaction; their keys."""
    keys = [f"{prefix}:{n:04d}" for n in range(count)]
    with session_scope(engine) as session:
        for n, key in enumerate(keys):
            assert outbox.enqueue(
                session,
                key=key,
                template="reminder",
                context=context(n),
                to_addrs=[f"applicant{n}@example.test"],
                now=now,
                organisation_id=n,
            )
    return keys
