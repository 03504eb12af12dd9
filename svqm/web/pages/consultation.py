"""The stakeholder consultation: staff invite stakeholders and read the answers; each invitee
answers on a public form of their own (no sign-in; the link's token is the key, used once)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from svqm.errors import Conflict, GuardRefused, InvalidInput, PermissionDenied, SvqmError
from svqm.notify import consultation as consultation_mail
from svqm.web.deps import CSRF, Case, NowDep, RegistryDep, SessionDep, case_of, page_for
from svqm.web.errors import status_of
from svqm.web.format import day, sentence
from svqm.web.forms import FormDep, attempt, field
from svqm.web.ui import Errors, after_post, flash_of, render
from svqm.web.views import audits as views
from svqm.web.views.case import case_file
from svqm.workflow import consultation
from svqm.workflow.consultation import CLOSED, NOT_YET, UNKNOWN, USED
from svqm.workflow.schemes import SchemeRegistry

router = APIRouter(dependencies=[CSRF], include_in_schema=False)
StaffCase = Annotated[Case, Depends(case_of(page_for("assessor", "panel", "admin")))]

DONE = {"invited": "Invitation sent. We have emailed the stakeholder a link of their own."}
# Why a link opens no form: the page's heading, its words and its status.
REFUSED = {
    UNKNOWN: (
        "This link does not work",
        "Check that you copied the whole link from the email. If it still does not work, ask "
        "the person who invited you for a new one.",
        404,
    ),
    USED: (
        "You have already answered",
        "Each invitation takes one set of answers, and yours has been received. Thank you.",
        409,
    ),
    CLOSED: (
        "This consultation has closed",
        "The assessor is no longer taking answers for this organisation.",
        410,
    ),
    NOT_YET: ("This consultation is not open yet", "", 409),
}


def _staff_page(
    case: Case,
    *,
    status: int = 200,
    errors: Errors = None,
    flash: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
) -> HTMLResponse:
    found = views.consultation_page(case.session, case.registry, case.app)
    if found is None:
        raise InvalidInput("this application's level holds no stakeholder consultation")
    view = case_file(case.session, case.registry, case.app, case.actor, case.now)
    return render(
        case.request,
        "assessor/consultation.html",
        auth=case.auth,
        title=f"Stakeholder consultation: {view.organisation}",
        status=status,
        errors=errors,
        flash=flash,
        app=case.app,
        organisation=view.organisation,
        start_text=views.start_text(case.session, case.registry, case.app),
        may_invite=case.actor.role == "admin"
        or (case.actor.role == "assessor" and case.actor.id == case.app.assessor_id),
        typed=typed or {"name": "", "email": "", "group": ""},
        **found,
    )


@router.get("/assess/{application_id}/consultation")
def consultation_screen(case: StaffCase, done: str = "") -> HTMLResponse:
    """Who was invited, who answered, and the answers summed up (staff only)."""
    return _staff_page(case, flash=flash_of(done, DONE))


@router.post("/assess/{application_id}/consultation", response_model=None)
def invite(case: StaffCase, form: FormDep) -> Response:
    """Invite one stakeholder (name, email, internal or external)."""
    if case.actor.role not in ("assessor", "admin"):
        raise PermissionDenied("the assessor or an admin invites stakeholders")
    typed = {
        "name": field(form, "name", limit=200),
        "email": field(form, "email", limit=254),
        "group": field(form, "group", limit=20),
    }
    policy = case.registry.for_subject(case.session, case.app).policy

    def write() -> None:
        made = consultation.invite(
            case.session,
            policy,
            case.app,
            [consultation.Invitee(typed["name"], typed["email"], typed["group"])],
            actor_role=case.actor.role,
            actor_id=case.actor.id,
            now=case.now,
        )
        consultation_mail.send_invitations(case.session, policy, case.app, made, now=case.now)

    if failure := attempt(case.session, write):
        reasons = failure.unmet if isinstance(failure, GuardRefused) else [failure.detail]
        errors = [
            {"text": sentence(r), "href": _href(getattr(r, "field", None), failure)}
            for r in reasons
        ]
        return _staff_page(case, status=status_of(failure), errors=errors, typed=typed)
    return after_post(f"/assess/{case.app.id}/consultation", "invited")


def _href(where: str | None, failure: SvqmError) -> str:
    """The input a refusal names ('email.0' is the email box)."""
    if isinstance(failure, Conflict):
        return "#main-content"
    name = (where or "").split(".")[0]
    return f"#{name}" if name in ("name", "email", "group") else "#email"


def _refused(request: Request, problem: str, opens: str = "") -> HTMLResponse:
    heading, words, status = REFUSED[problem]
    if problem == NOT_YET:
        words = f"The form opens on {opens}. Use the link in your email again then."
    return render(
        request,
        "public/consultation_refused.html",
        auth=None,
        title=heading,
        status=status,
        heading=heading,
        words=words,
    )


def _form(
    request: Request,
    session: Session,
    registry: SchemeRegistry,
    invite_row: consultation.ConsultationInvite,
    token: str,
    *,
    status: int = 200,
    errors: Errors = None,
    typed: dict[str, str] | None = None,
) -> HTMLResponse:
    found = views.public_form(session, registry, invite_row)
    return render(
        request,
        "public/consultation.html",
        auth=None,
        title=f"Your view of {found['organisation']}",
        status=status,
        errors=errors,
        token=token,
        typed=typed or {},
        **found,
    )


@router.get("/consultation/{token}")
def consultation_form(
    request: Request, token: str, session: SessionDep, registry: RegistryDep, now: NowDep
) -> HTMLResponse:
    """The invitee's form, or a page saying why the link opens none (never an error page)."""
    link = consultation.follow(session, token, now)
    if link.invite is None or link.problem:
        return _refused(request, link.problem or UNKNOWN, _opens(link))
    return _form(request, session, registry, link.invite, token)


def _opens(link: consultation.Link) -> str:
    return day(link.invite.opens_at) if link.invite is not None else ""


@router.post("/consultation/{token}", response_model=None)
def consultation_answer(
    request: Request,
    token: str,
    form: FormDep,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
) -> Response:
    """Record the invitee's answers, once."""
    link = consultation.follow(session, token, now)
    if link.invite is None or link.problem:
        return _refused(request, link.problem or UNKNOWN, _opens(link))
    invite_row = link.invite
    policy = views.policy_of_invite(session, registry, invite_row)
    questions = policy.consultation.questions if policy.consultation else []
    typed = {q.id: field(form, q.id, limit=consultation.TEXT_LIMIT + 100) for q in questions}

    def write() -> None:
        consultation.answer(session, policy, token, typed, now)

    if failure := attempt(session, write):
        if isinstance(failure, Conflict):
            return _refused(request, str(failure.detail) if failure.detail in REFUSED else USED)
        reasons = failure.unmet if isinstance(failure, GuardRefused) else [failure.detail]
        errors = [
            {"text": sentence(r), "href": f"#{getattr(r, 'field', None) or 'main-content'}"}
            for r in reasons
        ]
        return _form(
            request, session, registry, invite_row, token, status=422, errors=errors, typed=typed
        )
    return render(
        request,
        "public/consultation_refused.html",
        auth=None,
        title="Thank you: your answers have been sent",
        heading="Thank you: your answers have been sent",
        words="The assessor will read them as part of the assessment. You can close this page.",
    )
