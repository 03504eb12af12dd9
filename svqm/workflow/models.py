"""Application, Award, the audit trail and the policy snapshots that applications run under."""

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from svqm.clock import utc_now
from svqm.db import UtcDateTime


def _when(nullable: bool = False) -> Column[datetime]:
    return Column(UtcDateTime(), nullable=nullable)


class PolicySnapshot(SQLModel, table=True):
    """The exact policy text a subject started under, so editing a file never rewrites it."""

    digest: str = Field(primary_key=True, max_length=64)
    scheme: str = Field(max_length=64, index=True)
    version: str = Field(max_length=64)
    source_text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utc_now, sa_column=_when())


def application_reference(application_id: int) -> str:
    """An application's reference as people quote it ('APP-000042'): on its pages and in every
    email about it."""
    return f"APP-{application_id:06d}"


class Application(SQLModel, table=True):
    # An assessor's queue, newest change first, read straight off the index.
    __table_args__ = (Index("ix_application_queue", "assessor_id", "state_changed_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    scheme: str = Field(max_length=64, index=True)
    scheme_version: str = Field(max_length=64)
    policy_digest: str = Field(foreign_key="policysnapshot.digest", max_length=64)
    level: str = Field(max_length=64)
    state: str = Field(max_length=64, index=True)
    version: int = 1
    assessor_id: int | None = Field(default=None, foreign_key="user_account.id", index=True)
    # Double-marked levels (`assessors: 2`): the assessor who scores beside the first, blind.
    second_assessor_id: int | None = Field(default=None, foreign_key="user_account.id", index=True)
    # A re-application: the refused application it follows (its pledges and evidence carried).
    reapplies_id: int | None = Field(default=None, foreign_key="application.id")
    # A member's record of a group's application that covered it (its award hangs on this).
    group_application_id: int | None = Field(default=None, foreign_key="application.id", index=True)
    created_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utc_now, sa_column=_when())
    state_changed_at: datetime = Field(default_factory=utc_now, sa_column=_when())
    # The confirmed audit start (the start of that day, scheme time zone); deadlines anchored on
    # `audit_start` count from it (svqm.workflow.audits keeps it).
    audit_starts_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class ApplicationMember(SQLModel, table=True):
    """An organisation a group's application covers: it gets an award of its own."""

    __tablename__ = "application_member"
    __table_args__ = (UniqueConstraint("application_id", "organisation_id"),)

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id", index=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)


class Award(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    application_id: int = Field(foreign_key="application.id", unique=True)
    scheme: str = Field(max_length=64, index=True)
    scheme_version: str = Field(max_length=64)
    policy_digest: str = Field(foreign_key="policysnapshot.digest", max_length=64)
    level: str = Field(max_length=64)
    state: str = Field(max_length=64, index=True)
    version: int = 1
    certificate_number: str = Field(max_length=40, unique=True)
    issued_at: datetime = Field(sa_column=_when())
    expires_at: datetime = Field(sa_column=_when())
    supersedes_id: int | None = Field(default=None, foreign_key="award.id")
    created_at: datetime = Field(default_factory=utc_now, sa_column=_when())
    state_changed_at: datetime = Field(default_factory=utc_now, sa_column=_when())


class AuditEvent(SQLModel, table=True):
    """One change to a subject. Append-only; each subject's events form a hash chain."""

    __table_args__ = (UniqueConstraint("subject_kind", "subject_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    subject_kind: str = Field(max_length=20)
    subject_id: int = Field(index=True)
    seq: int
    at: datetime = Field(sa_column=_when())
    actor_id: int | None = Field(default=None)
    actor_role: str = Field(max_length=20)
    trigger: str = Field(max_length=64)
    source: str = Field(max_length=64)
    dest: str = Field(max_length=64)
    comment: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # Who may read the comment: "applicant" (everyone on the case) or "internal" (staff only).
    visibility: str = Field(default="applicant", max_length=10)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class DecisionVote(SQLModel, table=True):
    """One member's decision on a step that needs several to agree (`quorum`): recorded while the
    subject stays in the state it entered at audit event `round`."""

    __tablename__ = "decision_vote"
    __table_args__ = (UniqueConstraint("subject_kind", "subject_id", "round", "member_id"),)

    id: int | None = Field(default=None, primary_key=True)
    subject_kind: str = Field(max_length=20)
    subject_id: int = Field(index=True)
    # The seq of the audit event that moved the subject into the state being decided.
    round: int
    trigger: str = Field(max_length=64)
    member_id: int = Field(foreign_key="user_account.id")
    comment: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    at: datetime = Field(sa_column=_when())


# A filing outside any workflow (a document that meets a deadline: a fee receipt, an audit
# report) is in this state for good; a report with figures follows the scheme's report workflow.
FILED = "filed"


class AnnualReport(SQLModel, table=True):
    """A filing that meets an award's deadline: a document, or a report with figures per pledge
    (svqm.workflow.progress) whose review follows the scheme's report workflow."""

    __tablename__ = "annual_report"

    id: int | None = Field(default=None, primary_key=True)
    award_id: int = Field(foreign_key="award.id", index=True)
    # Copied from the award when filed: what the report's workflow, deadlines and emails read.
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    scheme: str = Field(max_length=64)
    level: str = Field(max_length=64)
    policy_digest: str = Field(foreign_key="policysnapshot.digest", max_length=64)
    # The deadline the filing was for (SVQM's annual report, a B Corp fee, an ISO surveillance).
    deadline_kind: str = Field(max_length=64)
    # The occurrence of that deadline the filing answers (on time: the one it met; late: the
    # one that passed without a filing). Late and missing are read off it.
    deadline_id: int | None = Field(default=None, foreign_key="deadline.id", index=True)
    period: str = Field(max_length=20)
    title: str = Field(default="", max_length=200)
    # A document filing's file (a report with figures keeps its files as ReportFile rows).
    filename: str = Field(max_length=255)
    sha256: str = Field(max_length=64)
    size: int
    content_type: str = Field(max_length=100)
    submitted_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    # When it was first filed (a report filed again keeps it: lateness is the first filing's).
    submitted_at: datetime = Field(sa_column=_when())
    # A state of the scheme's report workflow, or FILED for a document filing.
    state: str = Field(default=FILED, max_length=64, index=True)
    # Whether its state is a `published` one (figures accepted), kept by the workflow's writer.
    published: bool = False
    version: int = 1
    state_changed_at: datetime = Field(default_factory=utc_now, sa_column=_when())
    # Who is told of a filed report: the assessor who assessed the award.
    assessor_id: int | None = Field(default=None, foreign_key="user_account.id")
    # The last review's words, who gave them and when.
    review_comment: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    reviewed_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    reviewed_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class ReportFile(SQLModel, table=True):
    """A supporting file of a report with figures, kept in the evidence store (never public)."""

    __tablename__ = "report_file"

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="annual_report.id", index=True)
    filename: str = Field(max_length=255)
    sha256: str = Field(max_length=64)
    size: int
    content_type: str = Field(max_length=100)
    uploaded_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    uploaded_at: datetime = Field(sa_column=_when())


# The things a workflow moves. Every writer, guard, effect and page takes this one type.
Subject = Application | Award | AnnualReport


def kind_of(subject: Subject) -> str:
    """'application', 'award' or 'report': the workflow of the subject's scheme it follows."""
    if isinstance(subject, Application):
        return "application"
    return "award" if isinstance(subject, Award) else "report"
