"""Organisations and their groups, users and the organisations they act for (memberships and
invitations), their sessions, failed sign-ins and declared conflicts of interest."""

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from svqm.clock import utc_now
from svqm.db import UtcDateTime

ROLES = ("applicant", "assessor", "panel", "admin")
# Staff roles sign in with a TOTP second factor (ASVS 6.3.3).
STAFF_ROLES = ("assessor", "panel", "admin")
# A person's role within one organisation they act for: a lead also invites and removes people.
MEMBER_ROLES = ("lead", "member")


class Organisation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, index=True)
    sector: str = Field(default="", max_length=100)
    # The group (a parent organisation) this one belongs to, if any: the group's people see its
    # members' applications, awards and deadlines together.
    parent_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    # Where it works: one of the deployment's regions (Settings.REGIONS), or "" when not given.
    region: str = Field(default="", max_length=100, index=True)
    created_at: datetime = Field(
        default_factory=utc_now, sa_column=Column(UtcDateTime(), nullable=False)
    )


class User(SQLModel, table=True):
    __tablename__ = "user_account"
    # Staff lists by role (assessors to assign, admins to alert) without reading every user.
    __table_args__ = (Index("ix_user_account_role", "role", "active"),)

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    name: str = Field(default="", max_length=200)
    role: str = Field(max_length=20)
    # The organisation the person acts for by default (their first). A person may act for
    # several (`Membership`); within a request this holds the one its session acts for.
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    password_hash: str | None = Field(default=None, max_length=255)
    totp_secret: str | None = Field(default=None, max_length=64)
    # When the person proved they hold the second factor (first successful code).
    totp_confirmed_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    # The last 30-second TOTP step a code was accepted for: a code is good once (ASVS 6.5.1).
    totp_last_step: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    active: bool = True
    # Staff: event emails are held and sent once a day as one digest (reminders, deadlines and
    # decisions never are).
    email_digest: bool = False
    created_at: datetime = Field(
        default_factory=utc_now, sa_column=Column(UtcDateTime(), nullable=False)
    )


class UserSession(SQLModel, table=True):
    """A signed-in session (web cookie) or API token; the client holds only a random token.

    The token itself is never stored: its SHA-256 is the key, so a database leak gives no sessions.
    """

    __tablename__ = "user_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    kind: str = Field(max_length=10)  # "web" or "api"
    csrf_token: str = Field(max_length=64)
    # Staff sign in with a second factor; until it is given the session can do nothing else.
    mfa_passed: bool = False
    # The organisation this session acts for (one of the person's memberships); None: their own.
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id")
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    last_seen_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )


# What a login_attempt row counts.
FAILURE, SUCCESS, SIGNUP = "failure", "success", "signup"


class LoginAttempt(SQLModel, table=True):
    """Sign-in failures and successes and sign-ups, counted in the database so throttling holds
    across workers.

    A failure slows its own account and source address; a success marks the source as one the
    account's owner uses (exempt from the account's ceiling); a sign-up counts against its source.
    """

    __tablename__ = "login_attempt"
    __table_args__ = (Index("ix_login_attempt_source", "source_key", "kind", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    # SHA-256 of the normalised email: counts per account without storing who tried.
    account_key: str = Field(max_length=64, index=True)
    # SHA-256 of the client's address (empty where none is known).
    source_key: str = Field(default="", max_length=64)
    kind: str = Field(default=FAILURE, max_length=10)
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False, index=True))


class EnrolmentLink(SQLModel, table=True):
    """An admin-issued, expiring, single-use link that sets up a staff member's second factor.

    Only the token's SHA-256 is stored; the link is shown once to the admin who made it.
    """

    __tablename__ = "enrolment_link"

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    created_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))


class ConflictOfInterest(SQLModel, table=True):
    """A declared conflict: the user may not assess or decide this organisation's applications."""

    __tablename__ = "conflict_of_interest"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    reason: str = Field(default="", max_length=500)
    recorded_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(
        default_factory=utc_now, sa_column=Column(UtcDateTime(), nullable=False)
    )


class Membership(SQLModel, table=True):
    """A person acts for an organisation, in a role there (`MEMBER_ROLES`)."""

    __table_args__ = (UniqueConstraint("user_id", "organisation_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    role: str = Field(default="member", max_length=20)
    created_at: datetime = Field(
        default_factory=utc_now, sa_column=Column(UtcDateTime(), nullable=False)
    )


class Invitation(SQLModel, table=True):
    """An emailed invitation to act for an organisation: used once, before it expires.

    Only the SHA-256 of its token is kept, as for sessions.
    """

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    email: str = Field(max_length=254)
    role: str = Field(default="member", max_length=20)
    invited_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    accepted_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    accepted_by_id: int | None = Field(default=None, foreign_key="user_account.id")
