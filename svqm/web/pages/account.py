"""Signing in and out, the second factor and its enrolment, and organisation sign-up."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from svqm.accounts import auth
from svqm.accounts import service as accounts
from svqm.accounts.models import User, UserSession
from svqm.config import Settings
from svqm.db import session_scope
from svqm.errors import SvqmError, TooManyAttempts
from svqm.web.deps import (
    SESSION_COOKIE,
    NowDep,
    PageAuth,
    PendingPageUser,
    SessionDep,
    SettingsDep,
    cookie_name,
    verify_csrf,
)
from svqm.web.errors import status_of
from svqm.web.pages import flash_of, render
from svqm.web.qr import qr_data_uri
from svqm.web.schemas import OrganisationCreate

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

HOMES = {"applicant": "/dashboard", "assessor": "/assess", "panel": "/panel", "admin": "/admin"}
# `?done=` words and the only text they can put on a page (never the query text itself).
DONE = {"signed-out": "You have signed out."}
FormText = Annotated[str, Form()]


def safe_next(value: str | None) -> str | None:
    """A path on this site to go to after signing in; anything else (another site) is dropped."""
    if not value or len(value) > 500 or not value.startswith("/"):
        return None
    # "//host" and "/\host" are other sites to a browser.
    if value.startswith("//") or "\\" in value:
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return None
    return value


def home_of(user: User) -> str:
    """Where a role starts."""
    return HOMES.get(user.role, "/")


def page(
    request: Request, name: str, *, auth: PageAuth | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """`render` with the base template's optional variables filled in."""
    context.setdefault("errors", None)
    context.setdefault("flash", None)
    return render(request, name, context, auth=auth, status_code=status_code)


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    """The session cookie: HttpOnly, Lax, whole site, and gone when the browser closes."""
    response.set_cookie(
        cookie_name(settings, SESSION_COOKIE),
        token,
        httponly=True,
        secure=settings.COOKIE_SECURE,
        samesite="lax",
        path="/",
    )


def _clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        cookie_name(settings, SESSION_COOKIE),
        path="/",
        httponly=True,
        secure=settings.COOKIE_SECURE,
        samesite="lax",
    )


def _visitor(request: Request) -> tuple[PageAuth | None, bool]:
    """The session behind the cookie, if live; and whether the cookie names a dead session.

    Forms of signed-out pages must carry the token the CSRF check will expect: a live session's,
    or the visitor's own (so a dead session's cookie is cleared when the form is shown).
    """
    settings: Settings = request.app.state.settings
    token = request.cookies.get(cookie_name(settings, SESSION_COOKIE), "")
    if not token:
        return None, False
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        found = auth.resolve(
            session, token, kind="web", now=request.app.state.clock.now(), settings=settings
        )
    return (PageAuth(*found), False) if found else (None, True)


def _form_page(
    request: Request, name: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A signed-out form (sign in, sign up) with the right form token."""
    who, dead = _visitor(request)
    # A session still owing its second factor is not "signed in" as far as the header goes.
    context.setdefault("user", who.user if who and who.session.mfa_passed else None)
    response = page(request, name, auth=who, status_code=status_code, **context)
    if dead:
        _clear_session_cookie(response, request.app.state.settings)
    return response


def _end_old_session(session: Session, token: str, now: datetime) -> None:
    """Signing in (or up) again ends the browser's previous session, if it had one."""
    row = session.get(UserSession, auth.token_hash(token)) if token else None
    if row is not None and row.revoked_at is None:
        auth.revoke(session, row, now)


# --- sign in ----------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, next: str = "", done: str = "") -> HTMLResponse:
    """The sign-in form."""
    return _form_page(
        request,
        "account/login.html",
        title="Sign in",
        email="",
        next=safe_next(next) or "",
        flash=flash_of(done, DONE),
    )


@router.post("/login", response_model=None)
def login(
    request: Request,
    settings: SettingsDep,
    now: NowDep,
    email: FormText = "",
    password: FormText = "",
    next: FormText = "",
) -> Response:
    """Check the password; staff go on to the second factor, applicants are signed in."""
    target = safe_next(next)
    old_token = request.cookies.get(cookie_name(settings, SESSION_COOKIE), "")
    failure: SvqmError | None = None
    # Its own unit of work, like the API's: a failed attempt is committed and counted.
    with session_scope(request.app.state.engine) as session:
        try:
            user = auth.authenticate(
                session, email=email[:254], password=password, now=now, settings=settings
            )
            _end_old_session(session, old_token, now)
            staff = auth.needs_second_factor(user)
            if staff:
                auth.ensure_totp_secret(session, user)
            token, _ = auth.start_session(
                session, user, kind="web", now=now, settings=settings, mfa_passed=False
            )
            home = home_of(user)
        except SvqmError as exc:
            failure = exc
    if failure is not None:
        text = (
            failure.detail
            if isinstance(failure, TooManyAttempts)
            else "Enter a correct email address and password"
        )
        return _form_page(
            request,
            "account/login.html",
            status_code=status_of(failure),
            title="Sign in",
            email=email[:254],
            next=target or "",
            errors=[{"text": text, "href": "#email"}],
        )
    if staff:
        dest = "/login/second-factor" + (f"?next={quote(target)}" if target else "")
    else:
        dest = target or home
    response = RedirectResponse(dest, status_code=303)
    set_session_cookie(response, settings, token)
    return response


# --- second factor ----------------------------------------------------------------------------


def _enrolment(request: Request, who: PageAuth) -> dict[str, str] | None:
    """The authenticator set-up (URI and QR code) until the person has confirmed a first code."""
    if who.user.totp_confirmed_at is not None:
        return None
    settings: Settings = request.app.state.settings
    user = who.user
    if not user.totp_secret:
        # Normally made when the password was checked; a write of its own if not.
        with session_scope(request.app.state.engine) as session:
            fresh = session.get(User, who.user.id)
            assert fresh is not None
            auth.ensure_totp_secret(session, fresh)
        user = fresh
    uri = auth.totp_uri(user, settings.TOTP_ISSUER)
    secret = user.totp_secret or ""
    # Groups of four are easier to type into an app by hand.
    spaced = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return {"uri": uri, "qr": qr_data_uri(uri), "secret": spaced}


def _second_factor_page(
    request: Request,
    who: PageAuth,
    target: str | None,
    *,
    status_code: int = 200,
    errors: list[dict[str, str]] | None = None,
) -> HTMLResponse:
    enrol = _enrolment(request, who)
    title = "Set up your authenticator app" if enrol else "Enter your security code"
    return page(
        request,
        "account/second_factor.html",
        auth=who,
        status_code=status_code,
        title=title,
        enrol=enrol,
        next=target or "",
        errors=errors,
        user=None,
    )


@router.get("/login/second-factor", response_model=None)
def second_factor_form(request: Request, who: PendingPageUser, next: str = "") -> Response:
    """Ask for the TOTP code, with the enrolment QR code the first time."""
    target = safe_next(next)
    if who.session.mfa_passed:
        return RedirectResponse(target or home_of(who.user), status_code=303)
    return _second_factor_page(request, who, target)


@router.post("/login/second-factor", response_model=None)
def second_factor(
    request: Request,
    who: PendingPageUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    code: FormText = "",
    next: FormText = "",
) -> Response:
    """Check the code; on success the pending session is replaced by a new one (new cookie)."""
    target = safe_next(next)
    if who.session.mfa_passed:
        return RedirectResponse(target or home_of(who.user), status_code=303)
    # Wrong codes count with wrong passwords (pass_second_factor checks), so guessing is throttled.
    try:
        token, _ = auth.pass_second_factor(
            session, who.session, who.user, code[:20], now=now, settings=settings
        )
    except TooManyAttempts:
        text = f"Too many wrong codes. Wait {settings.LOGIN_WINDOW_MINUTES} minutes and try again"
        return _second_factor_page(
            request, who, target, status_code=429, errors=[{"text": text, "href": "#code"}]
        )
    except SvqmError as exc:
        # The failed attempt stays recorded: the request's transaction still commits.
        return _second_factor_page(
            request,
            who,
            target,
            status_code=status_of(exc),
            errors=[
                {"text": "Enter the 6-digit code shown in your authenticator app", "href": "#code"}
            ],
        )
    response = RedirectResponse(target or home_of(who.user), status_code=303)
    set_session_cookie(response, settings, token)
    return response


# --- sign out ---------------------------------------------------------------------------------


@router.post("/logout")
def logout(
    request: Request, session: SessionDep, settings: SettingsDep, now: NowDep
) -> RedirectResponse:
    """End the session on the server, drop the cookie, and ask the browser to forget the site."""
    _end_old_session(session, request.cookies.get(cookie_name(settings, SESSION_COOKIE), ""), now)
    response = RedirectResponse("/login?done=signed-out", status_code=303)
    _clear_session_cookie(response, settings)
    response.headers["Clear-Site-Data"] = '"cookies", "storage"'
    return response


# --- sign up ----------------------------------------------------------------------------------

_SIGNUP_FIELDS = {
    "name": "organisation",
    "sector": "sector",
    "email": "email",
    "password": "password",
}


def _signup_field(detail: str) -> str:
    """Which field a sign-up refusal is about, for the error summary's link."""
    lowered = detail.lower()
    for word, field in (
        ("password", "password"),
        ("email", "email"),
        ("organisation", "organisation"),
    ):
        if word in lowered:
            return field
    return "email" if "@" in detail else "organisation"


@router.get("/signup")
def signup_form(request: Request) -> HTMLResponse:
    """Register an organisation and its first applicant."""
    return _form_page(
        request,
        "account/signup.html",
        title="Register your organisation",
        form={"organisation": "", "sector": "", "email": ""},
    )


@router.post("/signup", response_model=None)
def signup(
    request: Request,
    settings: SettingsDep,
    now: NowDep,
    organisation: FormText = "",
    sector: FormText = "",
    email: FormText = "",
    password: FormText = "",
) -> Response:
    """Create the organisation and its applicant, sign them in, and go to the dashboard."""
    typed = {"organisation": organisation[:200], "sector": sector[:100], "email": email[:254]}
    errors: list[dict[str, str]] = []
    try:
        body = OrganisationCreate(
            name=organisation.strip(), sector=sector.strip(), email=email.strip(), password=password
        )
    except ValidationError as exc:
        for problem in exc.errors():
            field = _SIGNUP_FIELDS.get(str(problem["loc"][0]), "organisation")
            errors.append({"text": _signup_message(field, problem["type"]), "href": f"#{field}"})
    if not errors:
        try:
            with session_scope(request.app.state.engine) as session:
                org = accounts.create_organisation(session, name=body.name, sector=body.sector)
                user = accounts.add_user(
                    session,
                    email=body.email,
                    role="applicant",
                    organisation_id=org.id,
                    password=body.password,
                )
                _end_old_session(
                    session, request.cookies.get(cookie_name(settings, SESSION_COOKIE), ""), now
                )
                token, _ = auth.start_session(
                    session, user, kind="web", now=now, settings=settings, mfa_passed=False
                )
        except SvqmError as exc:
            detail = exc.detail[:1].upper() + exc.detail[1:]
            errors.append({"text": detail, "href": f"#{_signup_field(exc.detail)}"})
    if errors:
        return _form_page(
            request,
            "account/signup.html",
            status_code=422,
            title="Register your organisation",
            form=typed,
            errors=errors,
        )
    response = RedirectResponse("/dashboard?done=signed-up", status_code=303)
    set_session_cookie(response, settings, token)
    return response


def _signup_message(field: str, kind: str) -> str:
    labels = {
        "organisation": "organisation name",
        "sector": "sector",
        "email": "email address",
        "password": "password",
    }
    if kind in ("string_too_short", "missing"):
        return f"Enter your {labels[field]}"
    return f"Your {labels[field]} is too long"
