"""Starting an application, one question a page: which scheme, then which of its levels."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from svqm.accounts import service as accounts
from svqm.errors import GuardRefused
from svqm.web.deps import CSRF, ApplicantPage, Page
from svqm.web.errors import status_of
from svqm.web.format import sentence
from svqm.web.forms import FormText, attempt
from svqm.web.ui import Errors, after_post, render
from svqm.web.views import applying as views
from svqm.workflow import service as workflow

router = APIRouter(dependencies=[CSRF], include_in_schema=False)


def _schemes_page(page: Page, *, errors: Errors = None, status: int = 200) -> HTMLResponse:
    return render(
        page.request,
        "applying/scheme.html",
        auth=page.auth,
        title="Which scheme do you want to apply for?",
        status=status,
        errors=errors,
        schemes=views.scheme_choices(page.registry),
    )


def _levels_page(
    page: Page, scheme_id: str, *, errors: Errors = None, status: int = 200, chosen: str = ""
) -> HTMLResponse:
    policy = page.registry.get(scheme_id).policy
    levels, holds = views.level_choices(
        page.session, policy, page.actor.organisation_id or 0, page.now
    )
    return render(
        page.request,
        "applying/level.html",
        auth=page.auth,
        title=f"Which level of the {policy.name} do you want to apply for?",
        status=status,
        errors=errors,
        scheme={"id": scheme_id, "name": policy.name},
        levels=levels,
        holds=holds,
        organisation=accounts.organisation_name(page.session, page.actor.organisation_id or 0),
        chosen=chosen,
    )


@router.get("/apply", response_model=None)
def choose_scheme(page: ApplicantPage, scheme: str = "", answered: str = "") -> Response:
    """The first question: which scheme (a GET form, so it works without scripts)."""
    if not (scheme or answered):
        return _schemes_page(page)
    if scheme in page.registry.current:
        return RedirectResponse(f"/apply/{scheme}", status_code=303)
    errors = [{"text": "Choose the scheme you want to apply for", "href": "#scheme"}]
    return _schemes_page(page, errors=errors, status=422)


@router.get("/apply/{scheme_id}")
def choose_level(page: ApplicantPage, scheme_id: str) -> HTMLResponse:
    """The second question: which of the scheme's levels, with what each needs."""
    return _levels_page(page, scheme_id)


@router.post("/applications", response_model=None)
def start_application(page: ApplicantPage, scheme: FormText = "", level: FormText = "") -> Response:
    """Open an application for a level of a scheme, then show its task list."""
    scheme_id, _, level_id = level.rpartition(":")
    scheme_id = scheme_id or scheme
    if scheme_id not in page.registry.current:
        errors = [{"text": "Choose the scheme you want to apply for", "href": "#scheme"}]
        return _schemes_page(page, errors=errors, status=422)
    if scheme and scheme != scheme_id:
        name = page.registry.get(scheme_id).policy.name
        text = f"The level you chose is a level of {name}. Choose one of the levels listed"
        return _levels_page(page, scheme, errors=[{"text": text, "href": "#level"}], status=422)
    if not level_id:
        errors = [{"text": "Choose the level you want to apply for", "href": "#level"}]
        return _levels_page(page, scheme_id, errors=errors, status=422)
    opened = []

    def write() -> None:
        opened.append(
            workflow.open_application(
                page.session,
                organisation_id=page.auth.user.organisation_id or 0,
                scheme_id=scheme_id[:64],
                level=level_id[:64],
                actor=page.actor,
                registry=page.registry,
                now=page.now,
            )
        )

    if failure := attempt(page.session, write):
        errors = [{"text": sentence(failure.detail), "href": "#level"}]
        if isinstance(failure, GuardRefused):
            errors += [{"text": sentence(r), "href": "#level"} for r in failure.unmet]
        # An unknown level is a mistake in the form, not a missing page.
        status = 422 if failure.code == "not_found" else status_of(failure)
        return _levels_page(page, scheme_id, errors=errors, status=status, chosen=level_id)
    return after_post(f"/applications/{opened[0].id}", "opened")
