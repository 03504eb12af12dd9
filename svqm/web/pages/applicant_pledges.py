"""The applicant's page for one pledge of its application: change it, withdraw or retire it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from svqm.evidence import pledges as pledge_service
from svqm.evidence.models import PledgeUpdate
from svqm.web.deps import CSRF, ApplicationCase, Case, Id
from svqm.web.errors import status_of
from svqm.web.format import sentence
from svqm.web.forms import FormDep, attempt, parse_pledge, pledge_typed
from svqm.web.ui import Errors, after_post, render
from svqm.web.views import pledges as views
from svqm.workflow import actions

router = APIRouter(dependencies=[CSRF], include_in_schema=False)

# The input of the form that each field of a refused change is typed in.
_INPUTS = {"theme": "theme", "due_date": "due_date-day"}


def _page(
    case: Case,
    pledge_id: int,
    *,
    form: dict[str, str] | None = None,
    errors: Errors = None,
    status: int = 200,
) -> HTMLResponse:
    if form is None:
        form = views.form_of(pledge_service.get_pledge(case.session, pledge_id))
    view = views.pledge_page(
        case.session, case.registry, case.app, pledge_id, case.actor, theme=form["theme"]
    )
    return render(
        case.request,
        "applicant/pledge.html",
        auth=case.auth,
        title=f"Change pledge: {view.title}",
        status=status,
        errors=errors,
        app={"id": case.app.id},
        pledge=view,
        form=form,
    )


@router.get("/applications/{application_id}/pledges/{pledge_id}", response_model=None)
def pledge_form(case: ApplicationCase, pledge_id: Id) -> Response:
    """A pledge of the application in a form to change it, with its revisions."""
    return _page(case, pledge_id)


@router.post("/applications/{application_id}/pledges/{pledge_id}", response_model=None)
def revise_pledge(case: ApplicationCase, pledge_id: Id, posted: FormDep) -> Response:
    """Save the changed pledge as its next revision."""
    typed = pledge_typed(posted)
    values, errors = parse_pledge(typed)
    views.pledge_page(case.session, case.registry, case.app, pledge_id, case.actor, theme="")
    status = 422

    def write() -> None:
        pledge = pledge_service.get_pledge(case.session, pledge_id)
        actions.revise_pledge(
            case.session,
            pledge,
            PledgeUpdate(**values),
            actor=case.actor,
            registry=case.registry,
            now=case.now,
        )

    if not errors and (failure := attempt(case.session, write)):
        href = f"#{_INPUTS.get(failure.field or '', 'main-content')}"
        errors = [{"text": sentence(failure.detail), "href": href}]
        status = status_of(failure)
    if errors:
        return _page(case, pledge_id, form=typed, errors=errors, status=status)
    return after_post(f"/applications/{case.app.id}/pledges", "pledge-revised")


@router.post("/applications/{application_id}/pledges/{pledge_id}/withdraw", response_model=None)
def withdraw_pledge(case: ApplicationCase, pledge_id: Id) -> Response:
    """Withdraw the pledge (made here) or retire it (carried from an award)."""
    views.pledge_page(case.session, case.registry, case.app, pledge_id, case.actor, theme="")
    done: list[str] = []

    def write() -> None:
        pledge = pledge_service.get_pledge(case.session, pledge_id)
        done.append(
            actions.withdraw_pledge(
                case.session, pledge, actor=case.actor, registry=case.registry, now=case.now
            )
        )

    if failure := attempt(case.session, write):
        errors = [{"text": sentence(failure.detail), "href": "#withdraw"}]
        return _page(case, pledge_id, errors=errors, status=status_of(failure))
    return after_post(f"/applications/{case.app.id}/pledges", f"pledge-{done[0]}")
