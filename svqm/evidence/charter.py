"""An organisation's own charter: its revisions (pillars as structured content), its priorities and
the pledges each priority is delivered by; and the reads of it (the working copy, the published
revision). Only svqm.workflow.org_charter writes these rows.

A charter's revisions are numbered from 1. The latest revision is the working copy; once it is
published (`published_at` set) it is what the public reads, and the next edit starts a new
revision as a copy of it, so the public keeps reading the published one until that is published.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint, bindparam, column, table
from sqlalchemy import select as sa_select
from sqlmodel import Field, Session, SQLModel, col, select

from svqm.clock import utc_now
from svqm.db import PlainSelect, UtcDateTime
from svqm.evidence.models import Pledge


class OrgCharter(SQLModel, table=True):
    """One organisation's charter; `version` counts its changes (each an audit event)."""

    __tablename__ = "org_charter"

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", unique=True)
    version: int = 1
    created_at: datetime = Field(
        default_factory=utc_now, sa_column=Column(UtcDateTime(), nullable=False)
    )


class CharterRevision(SQLModel, table=True):
    """The charter as it stood at one revision: each pillar's content, keyed by pillar id."""

    __tablename__ = "charter_revision"
    __table_args__ = (UniqueConstraint("charter_id", "revision"),)

    id: int | None = Field(default=None, primary_key=True)
    charter_id: int = Field(foreign_key="org_charter.id", index=True)
    revision: int
    pillars: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    updated_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    published_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    published_by_id: int | None = Field(default=None, foreign_key="user_account.id")


class CharterPriority(SQLModel, table=True):
    """One priority of a revision: what will be achieved, its target and measurable outcome."""

    __tablename__ = "charter_priority"

    id: int | None = Field(default=None, primary_key=True)
    revision_id: int = Field(foreign_key="charter_revision.id", index=True)
    position: int
    title: str = Field(max_length=200)
    target: str = Field(max_length=500)
    outcome: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    target_date: date | None = None


class CharterPriorityPledge(SQLModel, table=True):
    """A pledge of the organisation's register that delivers a priority."""

    __tablename__ = "charter_priority_pledge"
    __table_args__ = (UniqueConstraint("priority_id", "pledge_id"),)

    id: int | None = Field(default=None, primary_key=True)
    priority_id: int = Field(foreign_key="charter_priority.id", index=True)
    pledge_id: int = Field(foreign_key="pledge.id", index=True)


@dataclass
class Priority:
    title: str
    target: str
    outcome: str
    target_date: date | None
    pledge_ids: list[int] = field(default_factory=list)


@dataclass
class CharterText:
    """A revision as read: its number, when it was published, its pillars and priorities."""

    organisation_id: int
    version: int
    revision: int
    published_at: datetime | None
    updated_at: datetime | None
    pillars: dict[str, Any]
    priorities: list[Priority]
    # The latest published revision, when the one read is not it.
    published_revision: int | None = None


def get_charter(session: Session, organisation_id: int) -> OrgCharter | None:
    return session.exec(
        select(OrgCharter).where(OrgCharter.organisation_id == organisation_id)
    ).first()


def latest_revision(
    session: Session, charter_id: int, *, published: bool
) -> CharterRevision | None:
    """The working copy (the latest revision), or the latest published one."""
    query = select(CharterRevision).where(CharterRevision.charter_id == charter_id)
    if published:
        query = query.where(col(CharterRevision.published_at).is_not(None))
    return session.exec(query.order_by(col(CharterRevision.revision).desc())).first()


def priorities_of(session: Session, revision_id: int) -> list[Priority]:
    """A revision's priorities in order, each with the ids of the pledges delivering it."""
    rows = list(
        session.exec(
            select(CharterPriority)
            .where(CharterPriority.revision_id == revision_id)
            .order_by(col(CharterPriority.position))
        )
    )
    links: dict[int, list[int]] = {}
    if rows:
        for priority_id, pledge_id in session.exec(
            select(CharterPriorityPledge.priority_id, CharterPriorityPledge.pledge_id)
            .where(col(CharterPriorityPledge.priority_id).in_([r.id for r in rows]))
            .order_by(col(CharterPriorityPledge.id))
        ):
            links.setdefault(priority_id, []).append(pledge_id)
    return [
        Priority(r.title, r.target, r.outcome, r.target_date, links.get(r.id or 0, []))
        for r in rows
    ]


# The charter's id and version, as plain columns (built once: every public organisation page
# asks, and most organisations have none).
_CHARTER = PlainSelect(
    sa_select(col(OrgCharter.id), col(OrgCharter.version)).where(
        col(OrgCharter.organisation_id) == bindparam("organisation_id")
    )
)


def read_charter(session: Session, organisation_id: int, *, published: bool) -> CharterText | None:
    """The organisation's working copy, or its published revision; None when there is none."""
    session.flush()  # as the ORM's autoflush would: the read is on the session's connection
    found = _CHARTER.rows(session.connection(), {"organisation_id": organisation_id})
    if not found:
        return None
    charter_id, version = found[0]
    row = latest_revision(session, charter_id, published=published)
    if row is None or row.id is None:
        return None
    last_published = (
        row
        if row.published_at is not None
        else latest_revision(session, charter_id, published=True)
    )
    return CharterText(
        organisation_id=organisation_id,
        version=version,
        revision=row.revision,
        published_at=row.published_at,
        updated_at=row.updated_at,
        pillars=dict(row.pillars),
        priorities=priorities_of(session, row.id),
        published_revision=last_published.revision if last_published else None,
    )


_application = table("application", column("id"), column("organisation_id"))


def published_revision_for_application(session: Session, application_id: int) -> int | None:
    """The published revision of the charter of the application's organisation, if any.

    The application table is named, not imported: it belongs to the workflow, a layer above.
    """
    owner = (
        select(_application.c.organisation_id)
        .where(_application.c.id == application_id)
        .scalar_subquery()
    )
    return session.exec(
        select(CharterRevision.revision)
        .join(OrgCharter, col(OrgCharter.id) == CharterRevision.charter_id)
        .where(
            OrgCharter.organisation_id == owner,
            col(CharterRevision.published_at).is_not(None),
        )
        .order_by(col(CharterRevision.revision).desc())
    ).first()


def organisation_pledges(session: Session, organisation_id: int) -> list[Pledge]:
    """The organisation's pledge register (pledges not withdrawn), oldest first."""
    return list(
        session.exec(
            select(Pledge)
            .where(Pledge.organisation_id == organisation_id, Pledge.status == "active")
            .order_by(col(Pledge.id))
        )
    )
