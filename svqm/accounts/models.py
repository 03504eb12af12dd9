"""Organisations, users, their sessions, failed sign-ins and declared conflicts of interest."""

from datetime import datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from svqm.clock import utc_now
from svqm.db import UtcDateTime

ROLES = ("applicant", "assessor", "panel", "admin")
# Staff roles sign in with a TOTP second factor (ASVS 6.3.3).
STAFF_ROLES = ("assessor", "panel", "admin")


class Organisation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, index=True)
    sector: str = Field(default="", max_length=100)
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
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    password_hash: str | None = Field(default=None, max_length=255)
    totp_secret: str | None = Field(default=None, max_length=64)
    # When the person proved they hold the second factor (first successful code).
    totp_confirmed_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    active: bool = True
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
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    last_seen_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )


class LoginAttempt(SQLModel, table=True):
    """Failed sign-ins, counted in the database so throttling holds across workers."""

    __tablename__ = "login_attempt"

    id: int | None = Field(default=None, primary_key=True)
    # SHA-256 of the normalised email: counts per account without storing who tried.
    account_key: str = Field(max_length=64, index=True)
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False, index=True))


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
