"""Dependencies shared by routes: settings, schemes, clock, store, a session per request, who is asking."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import anyio
from fastapi import Depends, Path, Request
from sqlmodel import Session

from svqm.accounts import auth
from svqm.accounts.models import User, UserSession
from svqm.clock import Clock
from svqm.config import Settings
from svqm.credentials.badge import Issuer
from svqm.db import writer
from svqm.errors import NotSignedIn, PermissionDenied
from svqm.evidence.storage import BlobStore
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor

# Ids are database integers: anything outside 1..2^31-1 is invalid input, never a server error.
MAX_ID = 2_147_483_647
Id = Annotated[int, Path(ge=1, le=MAX_ID)]

SESSION_COOKIE = "svqm_session"
ANON_COOKIE = "svqm_anon"


def cookie_name(settings: Settings, base: str) -> str:
    """`__Host-` cookies (Secure, Path=/, no Domain) whenever cookies are Secure."""
    return f"__Host-{base}" if settings.COOKIE_SECURE else base


# The five below only read what the app's lifespan stored, so they are `async`: FastAPI runs a
# plain `def` dependency in its thread pool, and each such hop costs more than the lookup itself.


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_registry(request: Request) -> SchemeRegistry:
    registry: SchemeRegistry = request.app.state.registry
    return registry


def now_of(request: Request) -> datetime:
    """The app clock's time (tests freeze it)."""
    clock: Clock = request.app.state.clock
    return clock.now()


async def get_now(request: Request) -> datetime:
    return now_of(request)


async def get_store(request: Request) -> BlobStore:
    store: BlobStore = request.app.state.store
    return store


async def get_issuer(request: Request) -> Issuer:
    issuer: Issuer = request.app.state.issuer
    return issuer


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One unit of work per request; writes take the write lock up front (SQLite BEGIN IMMEDIATE).

    Entering the session and its transaction touches no database (it connects at the first
    query), so that happens on the event loop; leaving them commits or rolls back, which does
    I/O, so that runs in a worker thread.
    """
    engine = request.app.state.engine
    bind = engine if request.method in ("GET", "HEAD", "OPTIONS") else writer(engine)
    stack = ExitStack()
    session = stack.enter_context(Session(bind, expire_on_commit=False))
    stack.enter_context(session.begin())
    try:
        yield session
    except BaseException as exc:
        await _leave(stack, exc)
        raise
    else:
        await _leave(stack, None)


async def _leave(stack: ExitStack, exc: BaseException | None) -> None:
    """Exit the transaction and the session exactly as their `with` statement would."""
    args = (type(exc), exc, exc.__traceback__) if exc is not None else (None, None, None)
    # A limiter of its own, as FastAPI gives a dependency's exit: waiting for a free worker
    # while holding a pooled connection could deadlock with requests waiting for it.
    await anyio.to_thread.run_sync(stack.__exit__, *args, limiter=anyio.CapacityLimiter(1))


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
RegistryDep = Annotated[SchemeRegistry, Depends(get_registry)]
NowDep = Annotated[datetime, Depends(get_now)]
StoreDep = Annotated[BlobStore, Depends(get_store)]
IssuerDep = Annotated[Issuer, Depends(get_issuer)]
# scope="function": the commit runs before the response is sent, so a failed commit is a 500 (G4).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def api_user(request: Request, session: SessionDep, settings: SettingsDep, now: NowDep) -> User:
    """The user behind the request's bearer token (the API takes no cookies, so needs no CSRF)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotSignedIn(
            "sign in first: send 'Authorization: Bearer <token>' from /api/v1/auth/token"
        )
    found = auth.resolve(session, token.strip(), kind="api", now=now, settings=settings)
    if found is None:
        raise NotSignedIn("the token is unknown, expired or revoked; get a new one")
    return found[0]


ApiUser = Annotated[User, Depends(api_user)]


def api_user_outside_transaction(request: Request, settings: SettingsDep, now: NowDep) -> User:
    """The bearer token's user, read in a short read-only session of its own.

    For uploads: the request must not hold the database's write lock while a file streams in.
    """
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        return api_user(request, session, settings, now)


UploaderUser = Annotated[User, Depends(api_user_outside_transaction)]


def actor_of(user: User) -> Actor:
    return Actor.of(user)


@dataclass(frozen=True)
class PageAuth:
    user: User
    session: UserSession

    @property
    def actor(self) -> Actor:
        return Actor.of(self.user)


class LoginRequired(Exception):
    """Raised by page dependencies; the app turns it into a redirect to the sign-in page."""

    def __init__(self, next_path: str, second_factor: bool = False) -> None:
        self.next_path = next_path
        self.second_factor = second_factor


def _session_row(
    request: Request, session: Session, settings: Settings, now: datetime
) -> PageAuth | None:
    token = request.cookies.get(cookie_name(settings, SESSION_COOKIE), "")
    found = auth.resolve(session, token, kind="web", now=now, settings=settings)
    if found is None:
        return None
    user, row = found
    auth.touch(session, row, now)
    return PageAuth(user, row)


def optional_page_user(
    request: Request, session: SessionDep, settings: SettingsDep, now: NowDep
) -> PageAuth | None:
    """The signed-in person, if any, with the second factor done."""
    found = _session_row(request, session, settings, now)
    return found if found is not None and found.session.mfa_passed else None


def page_user(
    request: Request, session: SessionDep, settings: SettingsDep, now: NowDep
) -> PageAuth:
    """The signed-in person, or a redirect to sign in (or to give the second factor)."""
    found = _session_row(request, session, settings, now)
    if found is None:
        raise LoginRequired(request.url.path)
    if not found.session.mfa_passed:
        raise LoginRequired(request.url.path, second_factor=True)
    return found


def pending_page_user(
    request: Request, session: SessionDep, settings: SettingsDep, now: NowDep
) -> PageAuth:
    """A session that has the password but still owes the second factor."""
    found = _session_row(request, session, settings, now)
    if found is None:
        raise LoginRequired("/")
    return found


OptionalPageUser = Annotated[PageAuth | None, Depends(optional_page_user)]
PageUser = Annotated[PageAuth, Depends(page_user)]
PendingPageUser = Annotated[PageAuth, Depends(pending_page_user)]


def anon_csrf_token(secret: str, anon: str) -> str:
    """The form token for signed-out forms: bound by HMAC to the visitor's random cookie."""
    return hmac.new(secret.encode(), f"csrf:{anon}".encode(), hashlib.sha256).hexdigest()


async def verify_csrf(request: Request) -> AsyncIterator[None]:
    """Every state-changing page request carries the form token of its session (or visitor).

    Also refuses browsers that say the request came from another site (Sec-Fetch-Site). The form
    it parses (uploads included) is closed once the request is done, refused or not.
    """
    if request.method in ("GET", "HEAD", "OPTIONS"):
        yield
        return
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise PermissionDenied("cross-site form posts are refused")
    form = await request.form()
    try:
        sent = str(form.get("csrf_token", "") or request.headers.get("x-csrf-token", ""))
        settings: Settings = request.app.state.settings
        token = request.cookies.get(cookie_name(settings, SESSION_COOKIE), "")
        expected = ""
        if token:
            with Session(request.app.state.engine) as s:
                found = auth.resolve(s, token, kind="web", now=now_of(request), settings=settings)
                if found is not None:
                    expected = found[1].csrf_token
        if not expected:
            anon = request.cookies.get(cookie_name(settings, ANON_COOKIE), "")
            expected = anon_csrf_token(request.app.state.secret_key, anon) if anon else ""
        if not expected or not sent or not auth.same_token(sent, expected):
            raise PermissionDenied(
                "the form has expired or did not come from this site; reload and try again"
            )
        yield
    finally:
        await form.close()


def require_role(*roles: str):  # type: ignore[no-untyped-def]
    """A dependency refusing every role but these (deny by default)."""

    def check(user: ApiUser) -> User:
        if user.role not in roles:
            raise PermissionDenied(f"a {user.role} may not do this")
        return user

    return check
