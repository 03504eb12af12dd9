"""The person's own account: their name, and (staff) whether their event emails come one by one
or as one daily digest."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from svqm.accounts import service as accounts
from svqm.accounts.models import STAFF_ROLES
from svqm.web.deps import CSRF, AnyPage, Page
from svqm.web.errors import status_of
from svqm.web.format import sentence
from svqm.web.forms import FormDep, attempt, field
from svqm.web.ui import Errors, after_post, flash_of, render

router = APIRouter(dependencies=[CSRF], include_in_schema=False)

DONE = {
    "name": "Your name is saved. Emails and pages use it from now on.",
    "emails": "Your email choice is saved.",
}


def _account(
    page: Page,
    *,
    status: int = 200,
    errors: Errors = None,
    flash: dict[str, str] | None = None,
    typed: str | None = None,
) -> HTMLResponse:
    user = page.auth.user
    return render(
        page.request,
        "account/account.html",
        auth=page.auth,
        title="Your account",
        status=status,
        errors=errors,
        flash=flash,
        person=user,
        typed=user.name if typed is None else typed,
        staff=user.role in STAFF_ROLES,
    )


@router.get("/account")
def account(page: AnyPage, done: str = "") -> HTMLResponse:
    """Who the person is, their name to change, and (staff) how their emails come."""
    return _account(page, flash=flash_of(done, DONE))


@router.post("/account/name", response_model=None)
def change_name(page: AnyPage, form: FormDep) -> Response:
    """Save the person's name (used to greet them in emails and to sign their messages)."""
    typed = field(form, "name", limit=400)
    user = page.auth.user
    if failure := attempt(
        page.session, lambda: accounts.update_profile(page.session, user, name=typed)
    ):
        errors = [{"text": sentence(failure.detail), "href": "#name"}]
        return _account(page, status=status_of(failure), errors=errors, typed=typed)
    return after_post("/account", "name")


@router.post("/account/emails", response_model=None)
def choose_emails(page: AnyPage, form: FormDep) -> Response:
    """Staff choose one email per event or one daily digest (reminders, deadlines and decisions
    always come at once)."""
    choice = field(form, "email_digest") == "yes"
    user = page.auth.user
    if failure := attempt(
        page.session, lambda: accounts.update_profile(page.session, user, email_digest=choice)
    ):
        errors = [{"text": sentence(failure.detail), "href": "#email_digest"}]
        return _account(page, status=status_of(failure), errors=errors)
    return after_post("/account", "emails")
