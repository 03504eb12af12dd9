"""What happened, for whoever must be told: a notice published in the event's own transaction.

The workflow does not send or know about email. Layers above it (svqm.notify) subscribe once and
write what they must (outbox rows) in the same session, so the notice commits with the event or
not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from svqm.policy import Policy, TransitionDef
from svqm.workflow.models import AuditEvent, Subject


@dataclass(frozen=True)
class Notice:
    """One event and who the policy says hears of it."""

    kind: str
    subject: Subject
    event: AuditEvent
    policy: Policy
    roles: tuple[str, ...]
    now: datetime
    # What the person who acted wrote (their comment, without the effects' notes).
    comment: str = ""
    transition: TransitionDef | None = None
    # "transition", "assignment" (an admin chose the assessor), "second_assignment" (an admin
    # chose the second assessor of a double-marked level), "reminder" (an admin reminded the
    # organisation of an open application), "audit_proposed" or "audit_confirmed" (the audit
    # booking, svqm.workflow.audits), or "vote_needed" (one member's decision on a step that
    # needs several is recorded: the others are asked for theirs).
    what: str = "transition"
    # The comment is for staff only: the applicant's email leaves it out.
    internal: bool = False


Listener = Callable[[Session, Notice], None]
_LISTENERS: list[Listener] = []


def subscribe(listener: Listener) -> None:
    """Call `listener` for every notice (once, however often it subscribes)."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def publish(session: Session, notice: Notice) -> None:
    """Tell every listener, in the caller's transaction."""
    if notice.roles:
        for listener in _LISTENERS:
            listener(session, notice)
