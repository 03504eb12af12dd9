"""The award holder's own steps on an award (a signatory withdrawing from a charter): a page that
asks first, then the step, through the workflow like any other."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from svqm.errors import NotFound
from svqm.web.deps import CSRF, OwnAward, Page
from svqm.web.forms import FormDep, field, fire_from
from svqm.web.ui import after_post, render
from svqm.web.views.awards import award_public
from svqm.web.views.triggers import holder_steps
from svqm.workflow.models import Award

router = APIRouter(dependencies=[CSRF], include_in_schema=False)


def _confirm_page(
    page: Page, award: Award, trigger: str, *, status: int = 200, **shown: Any
) -> HTMLResponse:
    step = next(
        (
            f
            for f in holder_steps(page.session, award, page.actor, page.registry, page.now)
            if f.trigger == trigger
        ),
        None,
    )
    if step is None:
        raise NotFound(f"award {award.id} has no step '{trigger}' for you to take now")
    return render(
        page.request,
        "applicant/award_step.html",
        auth=page.auth,
        title=f"Are you sure you want to {step.title.lower()}?",
        status=status,
        step=step,
        award=award_public(page.session, award, page.registry),
        version=award.version,
        action=f"/dashboard/awards/{award.id}/events/{trigger}",
        back=f"/dashboard/awards/{award.id}",
        **shown,
    )


@router.get("/dashboard/awards/{award_id}/events/{trigger}")
def confirm_step(held: OwnAward, trigger: str) -> HTMLResponse:
    """The question before the holder's step: only its form takes it."""
    page, award = held
    return _confirm_page(page, award, trigger[:64])


@router.post("/dashboard/awards/{award_id}/events/{trigger}", response_model=None)
def take_step(held: OwnAward, trigger: str, form: FormDep) -> Response:
    """Take the step with the holder's reason; a post that did not come from the question is
    sent to it, and a refusal (a stale page: 409) is shown on it."""
    page, award = held
    trigger = trigger[:64]
    if trigger not in {
        f.trigger for f in holder_steps(page.session, award, page.actor, page.registry, page.now)
    }:
        raise NotFound(f"award {award.id} has no step '{trigger}' for you to take now")
    if field(form, "confirmed") != "yes":
        return RedirectResponse(f"/dashboard/awards/{award.id}/events/{trigger}", status_code=303)
    if failure := fire_from(form, page, award, trigger):
        return _confirm_page(page, award, trigger, failure=failure, href="#comment")
    return after_post(f"/dashboard/awards/{award.id}", trigger)
