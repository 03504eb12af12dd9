"""Signing in: passwords, TOTP second factors, throttling, and server-side sessions and API tokens."""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
from sqlalchemy import bindparam, delete, func, or_, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from svqm.accounts import members
from svqm.accounts.models import (
    FAILURE,
    SIGNUP,
    STAFF_ROLES,
    SUCCESS,
    EnrolmentLink,
    LoginAttempt,
    User,
    UserSession,
)
from svqm.accounts.service import (
    get_user_by_email,
    hash_password,
    password_needs_rehash,
    verify_password,
)
from svqm.config import Settings
from svqm.db import rows_changed
from svqm.errors import InvalidInput, NotSignedIn, TooManyAttempts


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so both cases take the same time.

    Made on first use, not at import: every CLI command would pay for it otherwise.
    """
    return hash_password(secrets.token_urlsafe(16))


_REFUSED = "the email, password or code is not right"
# An account's sign-in rows older than this serve no rule (KNOWN_SOURCE_DAYS is at most this).
_KEEP = timedelta(days=90)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive UTC from an aggregate (the column's type is not applied)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _account_key(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def source_key(address: str) -> str:
    """How a client's address is counted: its SHA-256 (empty when none is known)."""
    return hashlib.sha256(address.encode()).hexdigest() if address else ""


def needs_second_factor(user: User) -> bool:
    """Assessors, panel members and admins sign in with a TOTP code."""
    return user.role in STAFF_ROLES


def ensure_totp_secret(session: Session, user: User) -> str:
    """The user's TOTP secret, made on first need (shown once, to its owner, by whoever made it)."""
    if not user.totp_secret:
        user.totp_secret = pyotp.random_base32()
        session.add(user)
        session.flush()
    return user.totp_secret


def totp_uri(user: User, issuer: str) -> str:
    """The otpauth:// URI an authenticator app scans."""
    assert user.totp_secret
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.email, issuer_name=issuer)


def totp_step(user: User, code: str, now: datetime) -> int | None:
    """The 30-second step this code is right for (one step of clock drift either side), or None."""
    if not user.totp_secret or not code:
        return None
    cleaned = code.replace(" ", "").strip()
    if not (cleaned.isdigit() and len(cleaned) == 6):
        return None
    totp = pyotp.TOTP(user.totp_secret)
    current = totp.timecode(now)
    for step in (current + 1, current, current - 1):
        if hmac.compare_digest(totp.generate_otp(step), cleaned):
            return step
    return None


def verify_totp(user: User, code: str, now: datetime) -> bool:
    """Whether the code is current (without using it up; `use_totp` is what sign-in calls)."""
    return totp_step(user, code, now) is not None


def use_totp(session: Session, user: User, code: str, now: datetime) -> bool:
    """Accept a code once: its step must be later than the last one used (ASVS 6.5.1).

    One guarded UPDATE, so two requests racing with the same code cannot both pass. The first
    code accepted also confirms the enrolment, whichever channel (page or API) it came by.
    """
    step = totp_step(user, code, now)
    if step is None:
        return False
    result = session.execute(
        update(User)
        .where(
            col(User.id) == user.id,
            or_(col(User.totp_last_step).is_(None), col(User.totp_last_step) < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if rows_changed(result) != 1:
        return False
    set_committed_value(user, "totp_last_step", step)
    if user.totp_confirmed_at is None:
        user.totp_confirmed_at = now
        session.add(user)
    return True


# --- throttling -----------------------------------------------------------------------------------


def _count(session: Session, *where: Any) -> int:
    return int(session.exec(select(func.count()).select_from(LoginAttempt).where(*where)).one())


def check_throttle(
    session: Session, email: str, now: datetime, settings: Settings, source: str = ""
) -> None:
    """TooManyAttempts (with the seconds to wait) if this address must wait before trying again.

    A stranger's failures slow only their own address: the owner, from an address they have
    signed in from before, is never refused because of someone else's guesses.
    """
    account, here = _account_key(email), source_key(source)
    since = now - timedelta(minutes=settings.LOGIN_WINDOW_MINUTES)
    recent = col(LoginAttempt.at) >= since
    failure = col(LoginAttempt.kind) == FAILURE
    if here and (
        _count(session, col(LoginAttempt.source_key) == here, failure, recent)
        >= settings.LOGIN_SOURCE_MAX_FAILURES
    ):
        raise TooManyAttempts(
            "too many failed sign-ins from your address; try again later",
            retry_after=settings.LOGIN_WINDOW_MINUTES * 60,
        )
    mine = (col(LoginAttempt.account_key) == account, col(LoginAttempt.source_key) == here)
    failures, last = session.exec(
        select(func.count(), func.max(LoginAttempt.at)).where(*mine, failure, recent)
    ).one()
    if failures >= settings.LOGIN_FREE_FAILURES and last is not None:
        delay = min(
            2 ** (failures - settings.LOGIN_FREE_FAILURES), settings.LOGIN_MAX_DELAY_SECONDS
        )
        wait = (as_utc(last) + timedelta(seconds=delay) - now).total_seconds()
        if wait > 0:
            seconds = math.ceil(wait)
            raise TooManyAttempts(
                f"too many failed sign-ins; wait {seconds} seconds and try again",
                retry_after=seconds,
            )
    if _count(
        session, col(LoginAttempt.account_key) == account, failure, recent
    ) >= settings.LOGIN_ACCOUNT_CEILING and not _known_source(
        session, account, here, now, settings
    ):
        raise TooManyAttempts(
            "this account is under attack, so it can be signed in to only from addresses "
            "used before; try again later or from your usual network",
            retry_after=settings.LOGIN_WINDOW_MINUTES * 60,
        )


def _known_source(
    session: Session, account: str, here: str, now: datetime, settings: Settings
) -> bool:
    since = now - timedelta(days=settings.KNOWN_SOURCE_DAYS)
    return (
        bool(here)
        and _count(
            session,
            col(LoginAttempt.account_key) == account,
            col(LoginAttempt.source_key) == here,
            col(LoginAttempt.kind) == SUCCESS,
            col(LoginAttempt.at) >= since,
        )
        > 0
    )


def record_failure(session: Session, email: str, now: datetime, source: str = "") -> None:
    """Count a failed sign-in against the account and address (kept even when the request fails)."""
    session.add(
        LoginAttempt(account_key=_account_key(email), source_key=source_key(source), at=now)
    )
    session.flush()


def record_success(session: Session, email: str, now: datetime, source: str = "") -> None:
    """The address's failures for the account are forgotten; the address is one the owner uses."""
    account, here = _account_key(email), source_key(source)
    session.exec(
        delete(LoginAttempt).where(
            col(LoginAttempt.account_key) == account,
            or_(
                col(LoginAttempt.source_key) == here,
                col(LoginAttempt.at) < now - _KEEP,
            ),
        )
    )
    session.add(LoginAttempt(account_key=account, source_key=here, kind=SUCCESS, at=now))
    session.flush()


def check_signup(session: Session, source: str, now: datetime, settings: Settings) -> None:
    """TooManyAttempts if this address has signed up too many organisations in the last hour."""
    here = source_key(source)
    if (
        here
        and _count(
            session,
            col(LoginAttempt.source_key) == here,
            col(LoginAttempt.kind) == SIGNUP,
            col(LoginAttempt.at) >= now - timedelta(hours=1),
        )
        >= settings.SIGNUP_PER_SOURCE_HOUR
    ):
        raise TooManyAttempts(
            "too many registrations from your address; try again in an hour", retry_after=3600
        )


def record_signup(session: Session, source: str, now: datetime) -> None:
    session.add(LoginAttempt(account_key="", source_key=source_key(source), kind=SIGNUP, at=now))
    session.flush()


def authenticate(
    session: Session,
    *,
    email: str,
    password: str,
    now: datetime,
    settings: Settings,
    source: str = "",
) -> User:
    """The user whose email and password these are, or NotSignedIn / TooManyAttempts.

    `source` is the client's address. The caller must commit even on failure, so the failed
    attempt is counted.
    """
    check_throttle(session, email, now, settings, source)
    user = get_user_by_email(session, email)
    if user is None or not user.active:
        verify_password(User(email="", role="", password_hash=_dummy_hash()), password)
        record_failure(session, email, now, source)
        raise NotSignedIn(_REFUSED)
    if not verify_password(user, password):
        record_failure(session, email, now, source)
        raise NotSignedIn(_REFUSED)
    if user.password_hash and password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.add(user)
    record_success(session, email, now, source)
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
    session: Session,
    row: UserSession,
    user: User,
    code: str,
    *,
    now: datetime,
    settings: Settings,
    source: str = "",
) -> tuple[str, UserSession]:
    """Check the TOTP code; on success the pending session is replaced by a full one (new id)."""
    check_throttle(session, user.email, now, settings, source)
    if not use_totp(session, user, code, now):
        record_failure(session, user.email, now, source)
        raise NotSignedIn(_REFUSED)
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


# --- enrolment links ------------------------------------------------------------------------------


def issue_enrolment_link(
    session: Session, user: User, *, by: User | None, now: datetime, settings: Settings
) -> str:
    """A single-use token for `user` to set up a (new) second factor; only its hash is stored."""
    if not needs_second_factor(user):
        raise InvalidInput("only staff sign in with a second factor")
    if not user.active:
        raise InvalidInput("this account is disabled")
    token = secrets.token_urlsafe(32)
    session.add(
        EnrolmentLink(
            token_hash=token_hash(token),
            user_id=user.id or 0,
            created_by_id=by.id if by else None,
            created_at=now,
            expires_at=now + timedelta(hours=settings.ENROLMENT_LINK_HOURS),
        )
    )
    session.flush()
    return token


def enrolment_link_user(session: Session, token: str, now: datetime) -> User | None:
    """The person an unused, unexpired link is for (the link is not used up by looking)."""
    if not token or len(token) > 200:
        return None
    link = session.get(EnrolmentLink, token_hash(token))
    if link is None or link.used_at is not None or now >= as_utc(link.expires_at):
        return None
    user = session.get(User, link.user_id)
    return user if user is not None and user.active else None


def redeem_enrolment_link(session: Session, token: str, now: datetime) -> User:
    """Use the link up (once, even under a race) and give its user a new TOTP secret.

    The new secret is unconfirmed until a first code is accepted on the page or the API.
    """
    user = enrolment_link_user(session, token, now)
    if user is None:
        raise InvalidInput("this set-up link has been used, has expired or is not right")
    result = session.execute(
        update(EnrolmentLink)
        .where(
            col(EnrolmentLink.token_hash) == token_hash(token),
            col(EnrolmentLink.used_at).is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if rows_changed(result) != 1:
        raise InvalidInput("this set-up link has been used, has expired or is not right")
    user.totp_secret = pyotp.random_base32()
    user.totp_confirmed_at = None
    user.totp_last_step = None
    session.add(user)
    session.flush()
    return user
