"""Signing in: passwords, TOTP second factors, throttling, and server-side sessions and API tokens."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import bindparam, delete, func, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from svqm.accounts import members
from svqm.accounts.models import STAFF_ROLES, LoginAttempt, User, UserSession
from svqm.accounts.service import get_user_by_email, hash_password, verify_password
from svqm.config import Settings
from svqm.errors import NotSignedIn, TooManyAttempts


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so both cases take the same time.

    Made on first use, not at import: every CLI command would pay for it otherwise.
    """
    return hash_password(secrets.token_urlsafe(16))


_REFUSED = "the email, password or code is not right"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _account_key(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def needs_second_factor(user: User) -> bool:
    """Assessors, panel members and admins sign in with a TOTP code."""
    return user.role in STAFF_ROLES


def ensure_totp_secret(session: Session, user: User) -> str:
    """The user's TOTP secret, made on first need."""
    if not user.totp_secret:
        user.totp_secret = pyotp.random_base32()
        session.add(user)
        session.flush()
    return user.totp_secret


def totp_uri(user: User, issuer: str) -> str:
    """The otpauth:// URI an authenticator app scans."""
    assert user.totp_secret
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.email, issuer_name=issuer)


def verify_totp(user: User, code: str, now: datetime) -> bool:
    """A current code (one step of clock drift either side is accepted)."""
    if not user.totp_secret or not code:
        return False
    cleaned = code.replace(" ", "").strip()
    return cleaned.isdigit() and pyotp.TOTP(user.totp_secret).verify(
        cleaned, for_time=now, valid_window=1
    )


def check_throttle(session: Session, email: str, now: datetime, settings: Settings) -> None:
    """TooManyAttempts if the account has had too many failures (passwords or codes) lately."""
    if _throttled(session, _account_key(email), now, settings):
        raise TooManyAttempts(
            f"too many failed sign-ins for this account; try again in "
            f"{settings.LOGIN_WINDOW_MINUTES} minutes"
        )


def _throttled(session: Session, key: str, now: datetime, settings: Settings) -> bool:
    since = now - timedelta(minutes=settings.LOGIN_WINDOW_MINUTES)
    failures = session.exec(
        select(func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.account_key == key, col(LoginAttempt.at) >= since)
    ).one()
    return failures >= settings.LOGIN_MAX_FAILURES


def record_failure(session: Session, email: str, now: datetime) -> None:
    """Count a failed sign-in against the account (kept even when the request fails)."""
    session.add(LoginAttempt(account_key=_account_key(email), at=now))
    session.flush()


def authenticate(
    session: Session, *, email: str, password: str, now: datetime, settings: Settings
) -> User:
    """The user whose email and password these are, or NotSignedIn / TooManyAttempts.

    The caller must commit even on failure, so the failed attempt is counted.
    """
    key = _account_key(email)
    check_throttle(session, email, now, settings)
    user = get_user_by_email(session, email)
    if user is None or not user.active:
        verify_password(User(email="", role="", password_hash=_dummy_hash()), password)
        record_failure(session, email, now)
        raise NotSignedIn(_REFUSED)
    if not verify_password(user, password):
        record_failure(session, email, now)
        raise NotSignedIn(_REFUSED)
    session.exec(delete(LoginAttempt).where(col(LoginAttempt.account_key) == key))
    return user


def start_session(
    session: Session, user: User, *, kind: str, now: datetime, settings: Settings, mfa_passed: bool
) -> tuple[str, UserSession]:
    """A new session or token for the user; returns the raw token (shown once) and the row."""
    token = secrets.token_urlsafe(32)
    lifetime = (
        timedelta(hours=settings.API_TOKEN_HOURS)
        if kind == "api"
        else timedelta(hours=settings.SESSION_MAX_HOURS)
    )
    row = UserSession(
        token_hash=token_hash(token),
        user_id=user.id or 0,
        kind=kind,
        csrf_token=secrets.token_urlsafe(32),
        mfa_passed=mfa_passed or not needs_second_factor(user),
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    session.flush()
    return token, row


# Every request asks this: one primary-key query for the session and its user together, built
# once (building it and deriving its cache key per request cost more than running it).
_SESSION_AND_USER = (
    select(UserSession, User)
    .join(User, col(User.id) == col(UserSession.user_id))
    .where(col(UserSession.token_hash) == bindparam("token_hash"))
)


def resolve(
    session: Session, token: str, *, kind: str, now: datetime, settings: Settings
) -> tuple[User, UserSession] | None:
    """The live session for a token: not revoked, expired or idle, and its user still active."""
    if not token or len(token) > 200:
        return None
    found = session.exec(_SESSION_AND_USER, params={"token_hash": token_hash(token)}).first()
    if found is None:
        return None
    row, user = found
    if row.kind != kind or row.revoked_at is not None or now >= row.expires_at:
        return None
    if kind == "web" and now - row.last_seen_at > timedelta(minutes=settings.SESSION_IDLE_MINUTES):
        return None
    if not user.active:
        return None
    # For this request the person acts for the organisation their session chose.
    members.act_for(user, members.acting_organisation(session, user, row))
    return user, row


# How stale last_seen_at may get before a request writes it again.
TOUCH_EVERY = timedelta(minutes=1)


def touch(session: Session, row: UserSession, now: datetime) -> None:
    """Keep an active web session alive (written at most once a minute), best effort.

    Written at once, in a savepoint, and only if still stale: the page requests of one session
    run side by side, and in SQLite's read-only transaction of a GET the write fails when another
    request has just written it (SQLITE_BUSY). That failure is left alone, not the request's
    error: the other request kept the session alive, or the next one will.
    """
    if now - row.last_seen_at <= TOUCH_EVERY:
        return
    try:
        with session.begin_nested():
            session.execute(
                update(UserSession)
                .where(
                    col(UserSession.token_hash) == row.token_hash,
                    col(UserSession.last_seen_at) < now - TOUCH_EVERY,
                )
                .values(last_seen_at=now)
                .execution_options(synchronize_session=False)
            )
    except OperationalError:
        return
    set_committed_value(row, "last_seen_at", now)


def pass_second_factor(
    session: Session, row: UserSession, user: User, code: str, *, now: datetime, settings: Settings
) -> tuple[str, UserSession]:
    """Check the TOTP code; on success the pending session is replaced by a full one (new id)."""
    check_throttle(session, user.email, now, settings)
    if not verify_totp(user, code, now):
        record_failure(session, user.email, now)
        raise NotSignedIn(_REFUSED)
    if user.totp_confirmed_at is None:
        user.totp_confirmed_at = now
        session.add(user)
    revoke(session, row, now)
    return start_session(session, user, kind=row.kind, now=now, settings=settings, mfa_passed=True)


def revoke(session: Session, row: UserSession, now: datetime) -> None:
    """End one session or token."""
    row.revoked_at = now
    session.add(row)
    session.flush()


def revoke_all(session: Session, user_id: int, now: datetime) -> None:
    """End every session and token of a user (disabled, password changed, signed out everywhere)."""
    session.exec(
        update(UserSession)
        .where(col(UserSession.user_id) == user_id, col(UserSession.revoked_at).is_(None))
        .values(revoked_at=now)
    )


def same_token(a: str, b: str) -> bool:
    """Constant-time comparison of two tokens."""
    return hmac.compare_digest(a.encode(), b.encode())


def disable(session: Session, user: User, now: datetime) -> None:
    """The account stops working and every session and token it has ends."""
    user.active = False
    session.add(user)
    revoke_all(session, user.id or 0, now)


def session_of(session: Session, token: str) -> UserSession | None:
    """The session or token row with this value, live or not."""
    return session.get(UserSession, token_hash(token)) if token else None


def revoke_token(session: Session, token: str, now: datetime) -> None:
    """End the session or token with this value, if it is still live."""
    row = session.get(UserSession, token_hash(token)) if token else None
    if row is not None and row.revoked_at is None:
        revoke(session, row, now)
