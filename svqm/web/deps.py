"""Request dependencies: settings, schemes, clock, store, the request's one unit of work, who is
asking (API token or page session, with the CSRF check), and the page and case loaders.

Every database session a request uses is opened here: `SessionDep` for its unit of work, and
`glance` for the short reads an upload makes before its body arrives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import anyio
from fastapi import Depends, Path, Request
from sqlmodel import Session

from svqm.accounts import auth, members
from svqm.accounts import service as accounts
from svqm.accounts.models import User, UserSession
from svqm.clock import Clock
from svqm.config import Settings
from svqm.credentials.issuers import Issuers
from svqm.db import writer
from svqm.errors import NotFound, NotSignedIn, PermissionDenied
from svqm.evidence.storage import BlobStore
from svqm.policy.charter import CharterRules
from svqm.web.security import ANON_COOKIE, SESSION_COOKIE, anon_csrf_token, cookie_name
from svqm.workflow import awards as award_queries
from svqm.workflow import queries
from svqm.workflow.models import Application, Award
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor

# Ids are database integers: anything outside 1..2^31-1 is invalid input, never a server error.
MAX_ID = 2_147_483_647
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
HOMES = {"applicant": "/dashboard", "assessor": "/assess", "panel": "/panel", "admin": "/admin"}
_AUDIENCES = {
    "applicant": "applicants",
    "assessor": "assessors",
    "panel": "panel members",
    "admin": "administrators",
}

# The five below only read what the app's lifespan stored, so they are `async`: FastAPI runs a
# plain `def` dependency in its thread pool, and each such hop costs more than the lookup itself.


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_registry(request: Request) -> SchemeRegistry:
    registry: SchemeRegistry = request.app.state.registry
    return registry


async def get_charter_rules(request: Request) -> CharterRules:
    rules: CharterRules = request.app.state.charter_rules
    return rules


def client_address(request: Request) -> str:
    """The client's address as the server saw it (uvicorn takes X-Forwarded-For only from the
    proxies its `--forwarded-allow-ips` trusts), for throttling sign-ins by source."""
    return request.client.host if request.client else ""


def now_of(request: Request) -> datetime:
    """The app clock's time (tests freeze it)."""
    clock: Clock = request.app.state.clock
    return clock.now()


async def get_now(request: Request) -> datetime:
    return now_of(request)


async def get_store(request: Request) -> BlobStore:
    store: BlobStore = request.app.state.store
    return store


async def get_issuers(request: Request) -> Issuers:
    issuers: Issuers = request.app.state.issuers
    return issuers


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


def finish_reading(session: Session) -> None:
    """End the request's (read-only) transaction now, so its pooled connection goes back before
    slow work that needs no database (a PDF render); the unit of work's exit has nothing left."""
    session.commit()


@contextmanager
def glance(request: Request) -> Iterator[Session]:
    """A short read-only session of its own, closed when the block ends.

    For the checks an upload makes before its body is read (who is asking, may they file): the
    request must not hold the database's write lock, nor a pooled connection, while a file
    streams in. Its unit of work (`SessionDep`) connects only once the body is in.
    """
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
RegistryDep = Annotated[SchemeRegistry, Depends(get_registry)]
CharterRulesDep = Annotated[CharterRules, Depends(get_charter_rules)]
NowDep = Annotated[datetime, Depends(get_now)]
StoreDep = Annotated[BlobStore, Depends(get_store)]
IssuersDep = Annotated[Issuers, Depends(get_issuers)]
# scope="function": the commit runs before the response is sent, so a failed commit is a 500 (G4).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

# --- the API: bearer tokens ---------------------------------------------------------------------


def _bearer(request: Request, session: Session, settings: Settings, now: datetime) -> User:
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


def api_user(request: Request, session: SessionDep, settings: SettingsDep, now: NowDep) -> User:
    """The user behind the request's bearer token (the API takes no cookies, so needs no CSRF)."""
    return _bearer(request, session, settings, now)


def api_user_before_body(request: Request, settings: SettingsDep, now: NowDep) -> User:
    """The bearer token's user, read before an upload's body is (see `glance`)."""
    with glance(request) as session:
        return _bearer(request, session, settings, now)


ApiUser = Annotated[User, Depends(api_user)]
UploaderUser = Annotated[User, Depends(api_user_before_body)]


def actor_of(user: User) -> Actor:
    return Actor.of(user)


def api_role(*roles: str) -> Callable[[User], User]:
    """A dependency refusing every role but these (deny by default)."""

    def check(user: ApiUser) -> User:
        if user.role not in roles:
            raise PermissionDenied(f"a {user.role} may not do this")
        return user

    return check


# --- pages: the session cookie ------------------------------------------------------------------


def home_of(user: User) -> str:
    """Where a role starts."""
    return HOMES.get(user.role, "/")


@dataclass(frozen=True)
class PageAuth:
    user: User
    session: UserSession

    @property
    def actor(self) -> Actor:
        return Actor.of(self.user)

    @property
    def home(self) -> str:
        """Where this person's role starts."""
        return home_of(self.user)


class LoginRequired(Exception):
    """Raised by page dependencies; the app turns it into a redirect to the sign-in page."""

    def __init__(self, next_path: str, second_factor: bool = False) -> None:
        self.next_path = next_path
        self.second_factor = second_factor


def visitor(
    request: Request, session: Session, settings: Settings, now: datetime
) -> PageAuth | None:
    """The live session behind the request's cookie, second factor done or not."""
    token = request.cookies.get(cookie_name(settings, SESSION_COOKIE), "")
    found = auth.resolve(session, token, kind="web", now=now, settings=settings) if token else None
    return PageAuth(*found) if found is not None else None


def _session_row(
    request: Request, session: Session, settings: Settings, now: datetime
) -> PageAuth | None:
    found = visitor(request, session, settings, now)
    if found is None:
        return None
    auth.touch(session, found.session, now)
    # For the error page of a request refused later on, which still shows who is signed in: the
    # rows' values as loaded, since a refusal rolls the session back and expires its rows. The
    # copies the page shows are made from them only when there is an error page to show.
    request.state.page_auth = SignedIn(_loaded(found.user), _loaded(found.session))
    return found


def _loaded(row: User | UserSession) -> dict[str, Any]:
    """Each field's value as the row holds it now (what `model_dump` reads, without its cost)."""
    held = row.__dict__
    return {
        name: held[name] if name in held else getattr(row, name) for name in type(row).model_fields
    }


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who was signed in when the request began, kept outside its unit of work."""

    user: dict[str, Any]
    session: dict[str, Any]

    def page_auth(self) -> PageAuth:
        """Copies of the person and their session, for the error page (as `PageAuth`)."""
        return PageAuth(User(**self.user), UserSession(**self.session))


def signed_in(request: Request) -> PageAuth | None:
    """Who the request's page dependencies found signed in (second factor done or not), as
    copies outside its unit of work, for the error page of a request refused later on."""
    found: SignedIn | None = getattr(request.state, "page_auth", None)
    return found.page_auth() if found is not None else None


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


async def verify_csrf(request: Request, session: SessionDep) -> AsyncIterator[None]:
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
        found = await anyio.to_thread.run_sync(visitor, request, session, settings, now_of(request))
        expected = found.session.csrf_token if found is not None else ""
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


# --- pages by audience, and the case a page is about ----------------------------------------------


@dataclass(frozen=True)
class Page:
    """A request for a page by a signed-in person: who, the unit of work, the schemes, the time."""

    request: Request
    auth: PageAuth
    session: Session
    registry: SchemeRegistry
    now: datetime

    @property
    def actor(self) -> Actor:
        return self.auth.actor


@dataclass(frozen=True)
class Case(Page):
    """A page about one application the person may see."""

    app: Application


async def _page(
    request: Request, auth: PageUser, session: SessionDep, registry: RegistryDep, now: NowDep
) -> Page:
    # `async`, as the lookups above: it only puts together what the other dependencies found.
    return Page(request, auth, session, registry, now)


def page_for(*roles: str) -> Callable[..., Awaitable[Page]]:
    """A dependency giving the page to these roles only; anyone else gets a 403 page."""
    audience = " and ".join(_AUDIENCES[r] for r in roles)

    # The dependency sits in the default, not in an annotation: annotations are strings here
    # (postponed evaluation), and FastAPI resolves them in the module, not in this closure.
    async def dependency(page: Page = Depends(_page)) -> Page:
        if page.auth.user.role not in roles:
            raise PermissionDenied(f"this page is for {audience}; use your own home page instead")
        return page

    return dependency


class ActingElsewhere(Exception):
    """Raised by page dependencies: the path's application or award belongs to another of the
    person's organisations than the one they act for now. The app answers with a page that
    offers to act for it and come back (a link in an email may be about any of them)."""

    def __init__(self, kind: str, organisation_id: int, name: str, acting: str) -> None:
        # Plain values: the request's unit of work is closed by the time the page is rendered.
        self.kind = kind
        self.organisation_id = organisation_id
        self.name = name
        self.acting = acting


def require_acting_for(page: Page, organisation_id: int | None, kind: str, missing: str) -> None:
    """Nothing if the person acts for this organisation now; `ActingElsewhere` if it is another
    of their organisations; otherwise 'not found' (never 'forbidden': that would say it exists)."""
    user = page.auth.user
    if organisation_id == user.organisation_id:
        return
    if user.role == "applicant" and members.get_membership(page.session, user.id, organisation_id):
        organisation = accounts.get_organisation(page.session, organisation_id)
        acting = accounts.get_organisation(page.session, user.organisation_id)
        if organisation is not None and organisation.id is not None:
            raise ActingElsewhere(
                kind, organisation.id, organisation.name, acting.name if acting else ""
            )
    raise NotFound(missing)


def case_of(page_dependency: Callable[..., Awaitable[Page]]) -> Callable[..., Case]:
    """A dependency loading the path's application for that page: a 404 unless the person may
    see it (another organisation's application is never 'forbidden': that would say it exists),
    or the offer to act for it if it is one of their other organisations'."""

    def dependency(application_id: Id, page: Page = Depends(page_dependency)) -> Case:
        try:
            app = queries.get_application(
                page.session, application_id, page.actor, registry=page.registry
            )
        except NotFound as missing:
            owner = queries.organisation_of(page.session, application_id)
            if owner is None:
                raise
            require_acting_for(page, owner, "application", missing.detail)
            raise
        return Case(page.request, page.auth, page.session, page.registry, page.now, app)

    return dependency


_FOR = {role: page_for(role) for role in _AUDIENCES}
AnyPage = Annotated[Page, Depends(_page)]
ApplicantPage = Annotated[Page, Depends(_FOR["applicant"])]
AssessorPage = Annotated[Page, Depends(_FOR["assessor"])]
PanelPage = Annotated[Page, Depends(_FOR["panel"])]
AdminPage = Annotated[Page, Depends(_FOR["admin"])]
# The applicant's task list: any signed-in person who may see the application (staff read it).
ApplicationCase = Annotated[Case, Depends(case_of(_page))]
AssessorCase = Annotated[Case, Depends(case_of(_FOR["assessor"]))]
PanelCase = Annotated[Case, Depends(case_of(_FOR["panel"]))]
AdminCase = Annotated[Case, Depends(case_of(_FOR["admin"]))]
# Moderating a double-marked application's scores: admins and panel members (the policy says which).
_MODERATORS = page_for("admin", "panel")
ModeratorPage = Annotated[Page, Depends(_MODERATORS)]
ModeratorCase = Annotated[Case, Depends(case_of(_MODERATORS))]
ApplicantCase = Annotated[Case, Depends(case_of(_FOR["applicant"]))]


def own_award(award_id: Id, page: Page = Depends(_FOR["applicant"])) -> tuple[Page, Award]:
    """The path's award if it is the organisation's the person acts for (the offer to act for
    it if it is another of theirs); anything else is simply not found."""
    award = award_queries.get_award(page.session, award_id)
    require_acting_for(page, award.organisation_id, "award", f"no award {award_id}")
    return page, award


# One of the organisation's awards, for its holder's pages.
OwnAward = Annotated[tuple[Page, Award], Depends(own_award)]

# Every page router's dependency: the form token of any state-changing request (it reads the
# request's unit of work, so it shares its scope).
CSRF = Depends(verify_csrf, scope="function")
