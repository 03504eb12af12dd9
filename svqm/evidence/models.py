"""Pledges, evidence items (versions of an uploaded file), reviews and scores, with their schemas."""

from datetime import date, datetime
from typing import Literal

from pydantic import StrictInt
from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel
from sqlmodel.main import SQLModelConfig

from svqm.clock import utc_now
from svqm.db import UtcDateTime

# What an assessor decides on an evidence item.
Decision = Literal["accepted", "more_information", "rejected"]


class PledgeBase(SQLModel):
    theme: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    indicator: str = Field(min_length=1, max_length=500, description="the key value indicator")
    unit: str = Field(default="", max_length=50, description="what the indicator counts")
    baseline: float | None = Field(default=None, description="the indicator's value at the start")
    target: str = Field(min_length=1, max_length=200)
    due_date: date


class PledgeCreate(PledgeBase):
    model_config = SQLModelConfig(extra="forbid")

    # On a group's application: the member organisation whose own pledge this is (one of the
    # members the application covers); none, the applicant's (a group's pledges are shared).
    organisation_id: StrictInt | None = Field(
        default=None,
        description="a group's application: the member organisation whose own pledge it is "
        "(none: shared by every member)",
    )


class PledgeUpdate(SQLModel):
    """A change to a pledge: any of the fields it was made with."""

    model_config = SQLModelConfig(extra="forbid")

    theme: str | None = Field(default=None, min_length=1, max_length=64)
    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    indicator: str | None = Field(default=None, min_length=1, max_length=500)
    unit: str | None = Field(default=None, max_length=50)
    baseline: float | None = None
    target: str | None = Field(default=None, min_length=1, max_length=200)
    due_date: date | None = None


# What became of a pledge in one application: made there, carried in from the award it builds
# on (kept as it was), revised there, retired there, or withdrawn before it was ever awarded.
Disposition = Literal["made", "carried", "revised", "retired", "withdrawn"]
# The dispositions under which the application holds the pledge.
HELD: tuple[str, ...] = ("made", "carried", "revised")


class Pledge(PledgeBase, table=True):
    """One of an organisation's commitments; the applications that hold it are linked to it."""

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    # The application the pledge was first made in.
    application_id: int = Field(foreign_key="application.id", index=True)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # "active", or "withdrawn" when withdrawn from the application it was made in.
    status: str = Field(default="active", max_length=20)
    revision: int = 1
    created_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(
        default_factory=utc_now, sa_column=Column(UtcDateTime(), nullable=False)
    )
    updated_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))


class ApplicationPledge(SQLModel, table=True):
    """A pledge held (or retired) by one application."""

    __tablename__ = "application_pledge"
    __table_args__ = (UniqueConstraint("application_id", "pledge_id"),)

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id", index=True)
    pledge_id: int = Field(foreign_key="pledge.id", index=True)
    disposition: str = Field(default="made", max_length=20)


class PledgeRevision(SQLModel, table=True):
    """The pledge as it stood after each change; revision 1 is as it was made."""

    __tablename__ = "pledge_revision"
    __table_args__ = (UniqueConstraint("pledge_id", "revision"),)

    id: int | None = Field(default=None, primary_key=True)
    pledge_id: int = Field(foreign_key="pledge.id", index=True)
    revision: int
    application_id: int = Field(foreign_key="application.id")
    # made, revised, carried, retired or withdrawn
    change: str = Field(max_length=20)
    theme: str = Field(max_length=64)
    title: str = Field(max_length=200)
    indicator: str = Field(max_length=500)
    unit: str = Field(default="", max_length=50)
    baseline: float | None = None
    target: str = Field(max_length=200)
    due_date: date
    actor_id: int | None = Field(default=None, foreign_key="user_account.id")
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class PledgePublic(PledgeBase):
    id: int
    application_id: int
    organisation_id: int
    revision: int
    # What the application being read does with it (made, carried, revised, retired).
    disposition: str = "made"


class EvidenceItem(SQLModel, table=True):
    """One uploaded version of the evidence for a checklist slot; earlier versions stay."""

    __table_args__ = (UniqueConstraint("application_id", "slot", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id", index=True)
    # The checklist slot: "<requirement>", "<requirement>:pledge-<id>", "<requirement>:<standard>"
    # or (a group's application, a per-member item) "<requirement>:member-<organisation id>".
    slot: str = Field(max_length=160)
    requirement_id: str = Field(max_length=64)
    pledge_id: int | None = Field(default=None, foreign_key="pledge.id")
    standard_id: str | None = Field(default=None, max_length=64)
    # A group's application: the member organisation the item is for (a `per_member` item).
    member_organisation_id: int | None = Field(default=None, foreign_key="organisation.id")
    version: int = 1
    title: str = Field(default="", max_length=200)
    filename: str = Field(max_length=255)
    sha256: str = Field(max_length=64, index=True)
    size: int
    content_type: str = Field(max_length=100)
    # The latest review decision, or "pending" before any review.
    status: str = Field(default="pending", max_length=20)
    # The applicant's short note for the assessor on this version ("" when they left none).
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    uploaded_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    uploaded_at: datetime = Field(
        default_factory=utc_now, sa_column=Column(UtcDateTime(), nullable=False)
    )


class EvidencePublic(SQLModel):
    id: int
    application_id: int
    slot: str
    requirement_id: str
    pledge_id: int | None
    standard_id: str | None
    member_organisation_id: int | None = None
    version: int
    title: str
    filename: str
    sha256: str
    size: int
    content_type: str
    status: str
    note: str = ""
    uploaded_at: datetime


class Review(SQLModel, table=True):
    """An assessor's decision on one evidence item; the history is kept."""

    id: int | None = Field(default=None, primary_key=True)
    evidence_id: int = Field(foreign_key="evidenceitem.id", index=True)
    reviewer_id: int | None = Field(default=None, foreign_key="user_account.id")
    decision: str = Field(max_length=20)
    comment: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # Who may read the comment: "applicant" (everyone on the case) or "internal" (staff only).
    visibility: str = Field(default="applicant", max_length=10)
    at: datetime = Field(default_factory=utc_now, sa_column=Column(UtcDateTime(), nullable=False))


class ReviewCreate(SQLModel):
    model_config = SQLModelConfig(extra="forbid")

    decision: Decision
    comment: str = Field(default="", max_length=5000)
    visibility: Literal["applicant", "internal"] = "applicant"


class Score(SQLModel, table=True):
    """The assessor's current score for one question of one standard."""

    __table_args__ = (UniqueConstraint("application_id", "standard", "question"),)

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id", index=True)
    standard: str = Field(max_length=64)
    question: str = Field(max_length=64)
    # Strict: a JSON true is not the score 1.
    score: StrictInt = Field(ge=0, le=100)
    # The assessor's note on the score, and who may read it: "internal" (staff only, the
    # default) or "applicant" (the organisation too).
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    visibility: str = Field(default="internal", max_length=10)
    assessor_id: int | None = Field(default=None, foreign_key="user_account.id")
    at: datetime = Field(default_factory=utc_now, sa_column=Column(UtcDateTime(), nullable=False))
    # Double marking: the moderator who recorded this agreed score (None: the assessor's own, or
    # the lower of two close scores).
    moderated_by_id: int | None = Field(default=None, foreign_key="user_account.id")


class AssessorScore(SQLModel, table=True):
    """Double marking: one assessor's own score for a question, blind to the other's."""

    __tablename__ = "assessor_score"
    __table_args__ = (UniqueConstraint("application_id", "assessor_id", "standard", "question"),)

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id", index=True)
    assessor_id: int = Field(foreign_key="user_account.id")
    standard: str = Field(max_length=64)
    question: str = Field(max_length=64)
    score: int
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


# What a score change was: an assessor's own score ("assessor"; at a single-marked level it is
# the score), the agreed score from two close ones ("agreed"), or a moderator's ("moderated").
ScoreKind = Literal["assessor", "agreed", "moderated"]


class ScoreChange(SQLModel, table=True):
    """One change to a score, kept for good: the record of judgement the panel reads."""

    __tablename__ = "score_change"

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id", index=True)
    standard: str = Field(max_length=64)
    question: str = Field(max_length=64)
    kind: str = Field(max_length=20)
    # Whose score it is (an assessor's own), or None for the agreed score.
    assessor_id: int | None = Field(default=None, foreign_key="user_account.id")
    # Who changed it (None: the engine agreeing two close scores).
    actor_id: int | None = Field(default=None, foreign_key="user_account.id")
    old: int | None = None
    new: int | None = None
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class ModerationCreate(SQLModel):
    """A moderator's agreed score for one question, with the note that explains it."""

    model_config = SQLModelConfig(extra="forbid")

    standard: str = Field(max_length=64)
    question: str = Field(max_length=64)
    score: StrictInt = Field(ge=0, le=100)
    note: str = Field(min_length=1, max_length=5000)


class ScoreCreate(SQLModel):
    model_config = SQLModelConfig(extra="forbid")

    standard: str = Field(max_length=64)
    question: str = Field(max_length=64)
    # Strict: a JSON true is not the score 1.
    score: StrictInt = Field(ge=0, le=100)
    note: str = Field(default="", max_length=5000)
    # Staff only unless the assessor says the applicant may read the note.
    visibility: Literal["applicant", "internal"] = "internal"
