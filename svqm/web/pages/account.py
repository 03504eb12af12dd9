"""Signing in and out, the second factor and its enrolment, and organisation sign-up."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from svqm.accounts import auth
from svqm.accounts import service as accounts
from svqm.accounts.models import User
from svqm.errors import SvqmError, TooManyAttempts
from svqm.web.deps import (
    CSRF,
    NowDep,
    PageAuth,
    PendingPageUser,
    SessionDep,
    SettingsDep,
    home_of,
    visitor,
)
from svqm.web.errors import status_of
from svqm.web.format import sentence
from svqm.web.forms import FormText, attempt
from svqm.web.qr import qr_data_uri
from svqm.web.schemas import OrganisationCreate
from svqm.web.security import (
    SESSION_COOKIE,
    clear_session_cookie,
    cookie_name,
    set_session_cookie,
)
from svqm.web.ui import flash_of, render

router = APIRouter(dependencies=[CSRF], include_in_schema=False)

# `?done=` words and the only text they can put on a page (never the query text itself).
DONE = {"signed-out": "You have signed out."}


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


def _form_page(
    request: Request,
    session: Session,
    name: str,
    *,
    title: str,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A signed-out form (sign in, sign up) with the right form token.

    Its forms must carry the token the CSRF check will expect: a live session's, or the
    visitor's own (so a cookie naming a session that has ended is cleared when the form is shown).
    """
    settings = request.app.state.settings
    who = visitor(request, session, settings, request.app.state.clock.now())
    dead = who is None and bool(request.cookies.get(cookie_name(settings, SESSION_COOKIE)))
    # A session still owing its second factor is not "signed in" as far as the header goes.
    context.setdefault("user", who.user if who and who.session.mfa_passed else None)
    response = render(request, name, auth=who, title=title, status=status, **context)
    if dead:
        clear_session_cookie(response, settings)
    return response


def _end_old_session(session: Session, token: str, now: datetime) -> None:
    """Signing in (or up) again ends the browser's previous session, if it had one."""
    auth.revoke_token(session, token, now)


# --- sign in ----------------------------------------------------------------------------------


@router.get("/login")
def login_form(
    request: Request, session: SessionDep, next: str = "", done: str = ""
) -> HTMLResponse:
    """The sign-in form."""
    return _form_page(
        request,
        session,
        "account/login.html",
        title="Sign in",
        email="",
        next=safe_next(next) or "",
        flash=flash_of(done, DONE),
    )


@router.post("/login", response_model=None)
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    email: FormText = "",
    password: FormText = "",
    next: FormText = "",
) -> Response:
    """Check the password; staff go on to the second factor, applicants are signed in."""
    target = safe_next(next)
    old_token = request.cookies.get(cookie_name(settings, SESSION_COOKIE), "")
    # A refused attempt is counted: the page below is an answer, so the request's unit of work
    # commits the failure.
    try:
        user = auth.authenticate(
            session, email=email[:254], password=password, now=now, settings=settings
        )
    except SvqmError as failure:
        text = (
            failure.detail
            if isinstance(failure, TooManyAttempts)
            else "Enter a correct email address and password"
        )
        return _form_page(
            request,
            session,
            "account/login.html",
            title="Sign in",
            status=status_of(failure),
            email=email[:254],
            next=target or "",
            errors=[{"text": text, "href": "#email"}],
        )
    _end_old_session(session, old_token, now)
    staff = auth.needs_second_factor(user)
    if staff:
        auth.ensure_totp_secret(session, user)
    token, _ = auth.start_session(
        session, user, kind="web", now=now, settings=settings, mfa_passed=False
    )
    if staff:
        dest = "/login/second-factor" + (f"?next={quote(target)}" if target else "")
    else:
        dest = target or home_of(user)
    response = RedirectResponse(dest, status_code=303)
    set_session_cookie(response, settings, token)
    return response


# --- second factor ----------------------------------------------------------------------------


def _enrolment(request: Request, session: Session, who: PageAuth) -> dict[str, str] | None:
    """The authenticator set-up (URI and QR code) until the person has confirmed a first code."""
    if who.user.totp_confirmed_at is not None:
        return None
    user: User = who.user
    if not user.totp_secret:
        # Normally made when the password was checked.
        fresh = accounts.get_user(session, who.user.id)
        assert fresh is not None
        auth.ensure_totp_secret(session, fresh)
        user = fresh
    uri = auth.totp_uri(user, request.app.state.settings.TOTP_ISSUER)
    secret = user.totp_secret or ""
    # Groups of four are easier to type into an app by hand.
    spaced = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return {"uri": uri, "qr": qr_data_uri(uri), "secret": spaced}


def _second_factor_page(
    request: Request,
    session: Session,
    who: PageAuth,
    target: str | None,
    *,
    status: int = 200,
    errors: list[dict[str, str]] | None = None,
) -> HTMLResponse:
    enrol = _enrolment(request, session, who)
    title = "Set up your authenticator app" if enrol else "Enter your security code"
    return render(
        request,
        "account/second_factor.html",
        auth=who,
        title=title,
        status=status,
        errors=errors,
        enrol=enrol,
        next=target or "",
        user=None,
    )


@router.get("/login/second-factor", response_model=None)
def second_factor_form(
    request: Request, who: PendingPageUser, session: SessionDep, next: str = ""
) -> Response:
    """Ask for the TOTP code, with the enrolment QR code the first time."""
    target = safe_next(next)
    if who.session.mfa_passed:
        return RedirectResponse(target or who.home, status_code=303)
    return _second_factor_page(request, session, who, target)


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
        return RedirectResponse(target or who.home, status_code=303)
    # Wrong codes count with wrong passwords (pass_second_factor checks), so guessing is throttled.
    try:
        token, _ = auth.pass_second_factor(
            session, who.session, who.user, code[:20], now=now, settings=settings
        )
    except TooManyAttempts:
        text = f"Too many wrong codes. Wait {settings.LOGIN_WINDOW_MINUTES} minutes and try again"
        return _second_factor_page(
            request, session, who, target, status=429, errors=[{"text": text, "href": "#code"}]
        )
    except SvqmError as exc:
        # The failed attempt stays recorded: the request's transaction still commits.
        text = "Enter the 6-digit code shown in your authenticator app"
        return _second_factor_page(
            request,
            session,
            who,
            target,
            status=status_of(exc),
            errors=[{"text": text, "href": "#code"}],
        )
    response = RedirectResponse(target or who.home, status_code=303)
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
    clear_session_cookie(response, settings)
    response.headers["Clear-Site-Data"] = '"cookies", "storage"'
    return response


# --- sign up ----------------------------------------------------------------------------------

# Each field of the sign-up body (and of a refusal, by its `field`) and the input it is typed in.
_SIGNUP_INPUTS = {
    "name": "organisation",
    "sector": "sector",
    "email": "email",
    "password": "password",
}
_SIGNUP_LABELS = {
    "organisation": "organisation name",
    "sector": "sector",
    "email": "email address",
    "password": "password",
}


def _signup_message(input_id: str, kind: str) -> str:
    if kind in ("string_too_short", "missing"):
        return f"Enter your {_SIGNUP_LABELS[input_id]}"
    return f"Your {_SIGNUP_LABELS[input_id]} is too long"


@router.get("/signup")
def signup_form(request: Request, session: SessionDep) -> HTMLResponse:
    """Register an organisation and its first applicant."""
    return _form_page(
        request,
        session,
        "account/signup.html",
        title="Register your organisation",
        form={"organisation": "", "sector": "", "email": ""},
    )


@router.post("/signup", response_model=None)
def signup(
    request: Request,
    session: SessionDep,
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
    tokens: list[str] = []
    try:
        body = OrganisationCreate(
            name=organisation.strip(), sector=sector.strip(), email=email.strip(), password=password
        )
    except ValidationError as exc:
        for problem in exc.errors():
            input_id = _SIGNUP_INPUTS.get(str(problem["loc"][0]), "organisation")
            text = _signup_message(input_id, problem["type"])
            errors.append({"text": text, "href": f"#{input_id}"})

    def write() -> None:
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
        tokens.append(token)

    if not errors and (failure := attempt(session, write)):
        input_id = _SIGNUP_INPUTS.get(failure.field or "", "organisation")
        errors.append({"text": sentence(failure.detail), "href": f"#{input_id}"})
    if errors:
        return _form_page(
            request,
            session,
            "account/signup.html",
            title="Register your organisation",
            status=422,
            form=typed,
            errors=errors,
        )
    response = RedirectResponse("/dashboard?done=signed-up", status_code=303)
    set_session_cookie(response, settings, tokens[0])
    return response
