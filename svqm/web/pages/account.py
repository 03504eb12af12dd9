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
from svqm.errors import SvqmError, TooManyAttempts
from svqm.notify import signup as signup_service
from svqm.web.deps import (
    CSRF,
    NowDep,
    PageAuth,
    PendingPageUser,
    SessionDep,
    SettingsDep,
    client_address,
    home_of,
    visitor,
)
from svqm.web.errors import status_of
from svqm.web.format import sentence
from svqm.web.forms import FormText, attempt, safe_next
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
DONE = {
    "signed-out": "You have signed out.",
    "signed-up": "Thank you. If the organisation could be registered, we have sent an email to "
    "the address you gave. Sign in with that email address and your password.",
}


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
            session,
            email=email[:254],
            password=password,
            now=now,
            settings=settings,
            source=client_address(request),
        )
    except SvqmError as failure:
        text = (
            failure.detail
            if isinstance(failure, TooManyAttempts)
            else "Enter a correct email address and password"
        )
        page = _form_page(
            request,
            session,
            "account/login.html",
            title="Sign in",
            status=status_of(failure),
            email=email[:254],
            next=target or "",
            errors=[{"text": sentence(text), "href": "#email"}],
        )
        if isinstance(failure, TooManyAttempts):
            page.headers["Retry-After"] = str(failure.retry_after)
        return page
    _end_old_session(session, old_token, now)
    # No secret is ever made here: a second factor is set up only by its owner (the key shown
    # once by `svqm user add` or an admin's set-up link), never with the password alone.
    staff = auth.needs_second_factor(user)
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


def _second_factor_page(
    request: Request,
    session: Session,
    who: PageAuth,
    target: str | None,
    *,
    status: int = 200,
    errors: list[dict[str, str]] | None = None,
) -> HTMLResponse:
    response = render(
        request,
        "account/second_factor.html",
        auth=who,
        title="Enter your security code",
        status=status,
        errors=errors,
        has_secret=bool(who.user.totp_secret),
        confirmed=who.user.totp_confirmed_at is not None,
        next=target or "",
        user=None,
    )
    return response


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
            session,
            who.session,
            who.user,
            code[:20],
            now=now,
            settings=settings,
            source=client_address(request),
        )
    except TooManyAttempts as exc:
        text = f"Too many wrong codes. Wait {exc.retry_after} seconds and try again"
        page = _second_factor_page(
            request, session, who, target, status=429, errors=[{"text": text, "href": "#code"}]
        )
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    except SvqmError as exc:
        # The failed attempt stays recorded: the request's transaction still commits.
        # A code already used (replayed) gets the same answer as a wrong one.
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


# --- setting up the second factor: an admin's single-use link ---------------------------------


def _enrol_page(
    request: Request, session: Session, token: str, *, status: int = 200, **context: Any
) -> HTMLResponse:
    return _form_page(
        request,
        session,
        "account/enrol.html",
        title="Set up your authenticator app",
        status=status,
        **context,
    )


@router.get("/enrol/{token}")
def enrol_form(request: Request, session: SessionDep, now: NowDep, token: str) -> HTMLResponse:
    """What the link does, and a button to show the key (a link checker opening it uses nothing)."""
    person = auth.enrolment_link_user(session, token[:200], now)
    return _enrol_page(
        request,
        session,
        token,
        status=200 if person else 404,
        valid=person is not None,
        email=person.email if person else "",
    )


@router.post("/enrol/{token}")
def enrol(
    request: Request, session: SessionDep, settings: SettingsDep, now: NowDep, token: str
) -> HTMLResponse:
    """Use the link up and show the new authenticator key, once. A first code confirms it."""
    person: list[Any] = []

    def write() -> None:
        person.append(auth.redeem_enrolment_link(session, token[:200], now))

    if attempt(session, write):
        return _enrol_page(request, session, token, status=404, valid=False)
    user = person[0]
    uri = auth.totp_uri(user, settings.TOTP_ISSUER)
    secret = user.totp_secret or ""
    # Groups of four are easier to type into an app by hand.
    spaced = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    enrolment = {"uri": uri, "qr": qr_data_uri(uri), "secret": spaced}
    return _enrol_page(request, session, token, enrol=enrolment)


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
    "person_name": "person_name",
    "name": "organisation",
    "sector": "sector",
    "email": "email",
    "password": "password",
}
_SIGNUP_LABELS = {
    "person_name": "name",
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
        form={"person_name": "", "organisation": "", "sector": "", "email": ""},
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
    person_name: FormText = "",
) -> Response:
    """Register the organisation and its applicant (or tell a known address's owner by email),
    then ask them to sign in: the answer is the same either way."""
    typed = {
        "person_name": person_name[:200],
        "organisation": organisation[:200],
        "sector": sector[:100],
        "email": email[:254],
    }
    errors: list[dict[str, str]] = []
    failure: SvqmError | None = None
    if not person_name.strip():
        errors.append({"text": "Enter your name", "href": "#person_name"})
    try:
        body = OrganisationCreate(
            name=organisation.strip(),
            sector=sector.strip(),
            email=email.strip(),
            password=password,
            person_name=person_name.strip(),
        )
    except ValidationError as exc:
        for problem in exc.errors():
            input_id = _SIGNUP_INPUTS.get(str(problem["loc"][0]), "organisation")
            text = _signup_message(input_id, problem["type"])
            errors.append({"text": text, "href": f"#{input_id}"})

    def write() -> None:
        signup_service.register_organisation(
            session,
            name=body.name,
            sector=body.sector,
            email=body.email,
            password=body.password,
            now=now,
            source=client_address(request),
            settings=settings,
            person_name=body.person_name,
        )

    if not errors and (failure := attempt(session, write)):
        input_id = _SIGNUP_INPUTS.get(failure.field or "", "organisation")
        errors.append({"text": sentence(failure.detail), "href": f"#{input_id}"})
    if errors:
        page = _form_page(
            request,
            session,
            "account/signup.html",
            title="Register your organisation",
            status=status_of(failure) if failure else 422,
            form=typed,
            errors=errors,
        )
        if isinstance(failure, TooManyAttempts):
            page.headers["Retry-After"] = str(failure.retry_after)
        return page
    # The same answer whether the email was new or known (its owner is told by email): sign in.
    return RedirectResponse("/login?done=signed-up", status_code=303)
