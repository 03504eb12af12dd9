"""The organisations a person acts for: switching between them, their people, inviting someone
by email, and taking up an invitation (signed in, or by making an account)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from svqm.accounts import auth, members
from svqm.accounts import service as accounts
from svqm.accounts.models import Invitation, Organisation
from svqm.errors import NotFound, SvqmError
from svqm.notify import invitations
from svqm.web.deps import (
    CSRF,
    ApplicantPage,
    NowDep,
    OptionalPageUser,
    Page,
    PageAuth,
    SessionDep,
    SettingsDep,
)
from svqm.web.errors import status_of
from svqm.web.format import sentence
from svqm.web.forms import FormText, attempt, region_options, safe_next
from svqm.web.security import SESSION_COOKIE, cookie_name, set_session_cookie
from svqm.web.ui import Errors, after_post, error_page, flash_of, render, with_done

router = APIRouter(dependencies=[CSRF], include_in_schema=False)

DONE = {
    "invited": "Invitation sent. It works once, for a limited time.",
    "joined": "You can now act for this organisation too. You are acting for it now.",
    "region": "Region saved.",
}
ROLE_NAMES = {"lead": "Lead", "member": "Member"}
_INVITE_INPUTS = {"email": "email", "role": "role"}
_NO_ORG = Organisation(name="")


def _organisations_page(
    page: Page,
    regions: list[str] | None = None,
    *,
    status: int = 200,
    errors: Errors = None,
    flash: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
) -> HTMLResponse:
    user = page.auth.user
    lines = members.memberships_of(page.session, user.id)
    acting = next((m for m in lines if m.organisation_id == user.organisation_id), None)
    people = members.members_of(page.session, acting.organisation_id) if acting else []
    return render(
        page.request,
        "account/organisations.html",
        auth=page.auth,
        title="Your organisations",
        status=status,
        errors=errors,
        flash=flash,
        memberships=lines,
        acting=acting,
        people=[(p.name or p.email, p.email, ROLE_NAMES.get(r, r)) for p, r in people],
        role_names=ROLE_NAMES,
        is_lead=acting is not None and acting.role == "lead",
        typed=typed or {"email": "", "role": "member"},
        region_options=region_options(
            regions or [],
            (accounts.get_organisation(page.session, user.organisation_id) or _NO_ORG).region,
        ),
    )


@router.get("/account/organisations")
def organisations(page: ApplicantPage, settings: SettingsDep, done: str = "") -> HTMLResponse:
    """The organisations the person acts for, which one now, and (for a lead) its people."""
    return _organisations_page(page, settings.REGIONS, flash=flash_of(done, DONE))


@router.post("/account/organisations/region", response_model=None)
def set_region(page: ApplicantPage, settings: SettingsDep, region: FormText = "") -> Response:
    """Say which region the organisation the person acts for works in (its leads)."""
    user = page.auth.user

    def write() -> None:
        members.require_lead(page.session, user, user.organisation_id or 0)
        org = accounts.get_organisation(page.session, user.organisation_id)
        if org is None:
            raise NotFound("you are not acting for an organisation")
        accounts.set_region(page.session, org, region[:100], settings.REGIONS)

    if failure := attempt(page.session, write):
        errors = [{"text": sentence(failure.detail), "href": "#region"}]
        return _organisations_page(page, settings.REGIONS, status=status_of(failure), errors=errors)
    return after_post("/account/organisations", "region")


@router.post("/account/organisations/switch", response_model=None)
def switch(
    page: ApplicantPage, settings: SettingsDep, organisation_id: FormText = "", next: FormText = ""
) -> Response:
    """Act for another of the person's organisations in this session, then go to their home
    page, or back to the page that asked (`next`, a path on this site)."""
    chosen = int(organisation_id) if organisation_id.isdigit() and len(organisation_id) < 10 else 0

    def write() -> None:
        members.switch_organisation(page.session, page.auth.session, page.auth.user, chosen)

    if failure := attempt(page.session, write):
        errors = [{"text": "Choose one of your organisations", "href": "#organisations"}]
        return _organisations_page(page, settings.REGIONS, status=status_of(failure), errors=errors)
    # Back on the page that offered it, or home; the banner says what happened (svqm.web.ui).
    target = safe_next(next) or "/dashboard"
    return RedirectResponse(with_done(target, "switched"), status_code=303)


@router.post("/account/organisations/invitations", response_model=None)
def invite(
    page: ApplicantPage,
    settings: SettingsDep,
    email: FormText = "",
    role: FormText = "member",
) -> Response:
    """Email an invitation to act for the organisation the person acts for (leads only)."""
    user = page.auth.user
    typed = {"email": email[:254], "role": role[:20]}

    def write() -> None:
        token, row = members.invite(
            page.session,
            organisation_id=user.organisation_id or 0,
            email=email,
            role=role,
            invited_by=user,
            now=page.now,
            valid_for=timedelta(days=settings.INVITATION_DAYS),
        )
        invitations.send_invitation(
            page.session, row, token, inviter=user, base_url=settings.BASE_URL, now=page.now
        )

    if failure := attempt(page.session, write):
        input_id = _INVITE_INPUTS.get(failure.field or "", "email")
        errors = [{"text": sentence(failure.detail), "href": f"#{input_id}"}]
        return _organisations_page(
            page, settings.REGIONS, status=status_of(failure), errors=errors, typed=typed
        )
    return after_post("/account/organisations", "invited")


# --- taking up an invitation ----------------------------------------------------------------------


def _invitation_page(
    request: Request,
    session: Session,
    who: PageAuth | None,
    invitation: Invitation,
    token: str,
    *,
    status: int = 200,
    errors: Errors = None,
    name: str = "",
) -> HTMLResponse:
    return render(
        request,
        "account/invitation.html",
        auth=who,
        title="Your invitation",
        status=status,
        errors=errors,
        organisation=accounts.organisation_name(session, invitation.organisation_id),
        role=ROLE_NAMES.get(invitation.role, invitation.role),
        email=invitation.email,
        token=token,
        typed_name=name,
        already=who is not None
        and members.get_membership(session, who.user.id, invitation.organisation_id) is not None,
    )


def _refused(request: Request, who: PageAuth | None, failure: SvqmError) -> HTMLResponse:
    return error_page(request, who, status_of(failure), sentence(failure.detail))


@router.get("/invitations/{token}", response_model=None)
def invitation(
    request: Request, token: str, who: OptionalPageUser, session: SessionDep, now: NowDep
) -> Response:
    """What the invitation is for, and how to take it up."""
    try:
        row = members.find_invitation(session, token, now)
    except SvqmError as exc:
        return _refused(request, who, exc)
    return _invitation_page(request, session, who, row, token)


@router.post("/invitations/{token}", response_model=None)
def take_up(
    request: Request,
    token: str,
    who: OptionalPageUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    name: FormText = "",
    password: FormText = "",
) -> Response:
    """Take up the invitation: a signed-in person joins; anyone else makes their account first."""
    try:
        row = members.find_invitation(session, token, now)
    except SvqmError as exc:
        return _refused(request, who, exc)
    tokens: list[str] = []

    def write() -> None:
        if who is not None:
            membership = members.accept_invitation(session, token, who.user, now)
            members.switch_organisation(session, who.session, who.user, membership.organisation_id)
            return
        user = accounts.add_user(
            session,
            email=row.email,
            role="applicant",
            organisation_id=row.organisation_id,
            password=password,
            name=name.strip()[:200],
            member_role=row.role,
        )
        # The invitation is used up by the account it made (its membership is already there).
        members.accept_invitation(session, token, user, now)
        auth.revoke_token(
            session, request.cookies.get(cookie_name(settings, SESSION_COOKIE), ""), now
        )
        new, _ = auth.start_session(
            session, user, kind="web", now=now, settings=settings, mfa_passed=False
        )
        tokens.append(new)

    if refused := attempt(session, write):
        if who is not None or refused.field not in ("password", "email", "name"):
            return _refused(request, who, refused)
        input_id = "password" if refused.field == "password" else "name"
        errors = [{"text": sentence(refused.detail), "href": f"#{input_id}"}]
        return _invitation_page(
            request,
            session,
            who,
            row,
            token,
            status=status_of(refused),
            errors=errors,
            name=name[:200],
        )
    response = RedirectResponse("/dashboard?done=joined", status_code=303)
    if tokens:
        set_session_cookie(response, settings, tokens[0])
    return response
