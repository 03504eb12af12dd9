"""The outbox: one row per email to send, and one row per attempt to send it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from svqm.db import UtcDateTime

PENDING, SENDING, SENT, DEAD = "pending", "sending", "sent", "dead"
# A staff member's event email held for their daily digest, and one the digest has carried.
HELD, DIGESTED = "held", "digested"


def _when(nullable: bool = False) -> Column[datetime]:
    return Column(UtcDateTime(), nullable=nullable)


class OutboxMessage(SQLModel, table=True):
    """An email waiting for delivery. `key` is unique, so a reminder is enqueued once."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_claim", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300, unique=True)
    template: str = Field(max_length=64)
    # Everything the template needs, frozen when the message was enqueued (JSON), so every
    # attempt renders the same message.
    context: str = Field(sa_column=Column(Text, nullable=False))
    to_addrs: str = Field(sa_column=Column(Text, nullable=False))
    organisation_id: int | None = Field(default=None, index=True)
    deadline_id: int | None = Field(default=None, foreign_key="deadline.id")
    status: str = Field(default=PENDING, max_length=20)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=_when())
    # A claim: who is sending it and until when; a dispatcher that died loses it at lease_until.
    claim_token: str = Field(default="", max_length=64)
    lease_until: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(sa_column=_when())
    sent_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class DeliveryAttempt(SQLModel, table=True):
    """One try at handing a message to the relay, and what came of it."""

    __tablename__ = "delivery_attempt"

    id: int | None = Field(default=None, primary_key=True)
    outbox_id: int = Field(foreign_key="outbox.id", index=True)
    at: datetime = Field(sa_column=_when())
    outcome: str = Field(max_length=20)  # sent | retry | dead
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    worker: str = Field(default="", max_length=100)
