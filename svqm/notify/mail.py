"""Handing a message to the mail system: a local Maildir by default, or an SMTP relay.

A mailer either returns (the message was accepted) or raises: `TransientMailError` when trying
again later may work (a 4xx reply, the relay down), `PermanentMailError` when it never will.
"""

from __future__ import annotations

import mailbox
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal, Protocol


class MailError(Exception):
    """The message was not accepted."""


class TransientMailError(MailError):
    """Try again later: a 4xx reply, a refused or dropped connection, a timeout."""


class PermanentMailError(MailError):
    """Trying again will not help: a 5xx reply, or no valid recipient."""


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class MaildirMailer:
    """Delivers into a Maildir (var/mail by default) that any mail reader can open."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def send(self, message: EmailMessage) -> None:
        try:
            # Maildir only makes its tmp/, new/ and cur/ when it makes the directory itself.
            for sub in ("tmp", "new", "cur"):
                (self.directory / sub).mkdir(parents=True, exist_ok=True)
            # Maildir writes to tmp/ and renames into new/: a reader never sees half a message.
            mailbox.Maildir(self.directory, create=False).add(message)
        except OSError as exc:
            raise TransientMailError(f"could not write to {self.directory}: {exc}") from exc


Security = Literal["none", "starttls", "tls"]


class SmtpMailer:
    """Sends through an SMTP relay: one connection a message, STARTTLS or TLS, optional login."""

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        security: Security = "none",
        username: str = "",
        password: str = "",
        timeout: float = 30.0,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.username, self.password, self.timeout = username, password, timeout
        self._context: ssl.SSLContext | None = None

    def _tls(self) -> ssl.SSLContext:
        # Loading the CA certificates costs tens of milliseconds of CPU: once a mailer, not once a
        # message, and never for a plain connection.
        if self._context is None:
            self._context = ssl.create_default_context()
        return self._context

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._tls())
        client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.security == "starttls":
            try:
                client.starttls(context=self._tls())
            except BaseException:
                client.close()  # not yet inside `with`: nothing else would close the socket
                raise
        return client

    def send(self, message: EmailMessage) -> None:
        try:
            with self._connect() as client:
                if self.username:
                    client.login(self.username, self.password)
                refused = client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise _by_code(min(codes), f"every recipient refused: {exc.recipients}") from exc
        except smtplib.SMTPResponseException as exc:
            error = exc.smtp_error
            reply = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
            raise _by_code(exc.smtp_code, f"relay replied {exc.smtp_code} {reply}") from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise TransientMailError(f"relay {self.host}:{self.port} unavailable: {exc}") from exc
        if refused:
            raise PartlyRefused(refused)


class PartlyRefused(PermanentMailError):
    """The relay took the message for some recipients and refused the rest: sending it again
    to everyone would duplicate it for those who have it, so only `refused` may be sent to."""

    def __init__(self, refused: dict[str, Any]) -> None:
        self.refused = sorted(refused)
        super().__init__(
            f"delivered to the others, but these recipients were refused: {refused}; "
            "sending it again goes to them only"
        )


def _by_code(code: int, detail: str) -> MailError:
    return TransientMailError(detail) if 400 <= code < 500 else PermanentMailError(detail)
