"""The panel's pages: the decisions waiting (recommendations and appeals), and deciding one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from svqm.web.deps import CSRF, Case, PanelCase, PanelPage
from svqm.web.forms import FormDep, ListQueryDep, field, fire_from, version_of, visibility_of
from svqm.web.ui import after_post, flash_of, render
from svqm.web.views.case import case_file
from svqm.web.views.panel import panel_view, to_confirm
from svqm.web.views.queues import list_page
from svqm.web.views.triggers import done_messages

router = APIRouter(dependencies=[CSRF], include_in_schema=False)
PAGE_SIZE = 50


@router.get("/panel")
def decisions(page: PanelPage, query: ListQueryDep) -> HTMLResponse:
    """Recommendations awaiting a decision, and appeals: those whose own workflow offers the
    panel a step now, state by state, the decision due soonest first."""
    view = list_page(
        page.session,
        page.registry,
        page.actor,
        query,
        path="/panel",
        sort="due",
        per_page=PAGE_SIZE,
        now=page.now,
        offered_to="panel",
    )
    return render(
        page.request,
        "panel/queue.html",
        auth=page.auth,
        title="Decisions for the panel",
        **view.context(),
    )


def _screen(case: Case, **shown: Any) -> HTMLResponse:
    """The decision screen; `shown` carries a failure (with its href) or a flash message.

    Who may not decide (four eyes, conflicts) is said before any button; a barred member gets
    the reasons and no buttons."""
    view = case_file(case.session, case.registry, case.app, case.actor, case.now)
    side = panel_view(case.session, view, case.actor, case.registry, case.now)
    title = f"Decide on the application from {view.organisation}"
    return render(
        case.request,
        "panel/case.html",
        auth=case.auth,
        title=title,
        barred=side.barred,
        recommendation=side.recommendation,
        notes=side.notes,
        asked=side.request,
        answered=side.answered,
        **shown,
        **view.context(),
    )


@router.get("/panel/{application_id}")
def case(case: PanelCase, done: str = "") -> HTMLResponse:
    """The application, the assessor's recommendation and comments, scores, evidence, decisions."""
    flow = case.registry.for_subject(case.session, case.app).policy.workflows.application
    return _screen(case, flash=flash_of(done, done_messages([flow])))


@router.post("/panel/{application_id}/events/{trigger}")
def decide(case: PanelCase, trigger: str, form: FormDep) -> Response:
    """Confirm or overturn a recommendation, or uphold or dismiss an appeal (four eyes apply).

    A step the policy asks to be confirmed (`confirm`: overturning) first shows a page of its own
    with what it goes against; only its "Yes" button (`confirmed=yes`) takes the step. A comment
    it needs but lacks is asked for on the case page first."""
    if field(form, "confirmed") != "yes" and version_of(form) == case.app.version:
        view = case_file(case.session, case.registry, case.app, case.actor, case.now)
        step = to_confirm(view, trigger, field(form, "comment"))
        if step is not None:
            side = panel_view(case.session, view, case.actor, case.registry, case.now)
            if not side.barred:
                return render(
                    case.request,
                    "panel/confirm.html",
                    auth=case.auth,
                    title=f"Are you sure you want to {step.title.lower()}?",
                    step=step,
                    comment=field(form, "comment"),
                    visibility=visibility_of(form),
                    version=version_of(form),
                    recommendation=side.recommendation,
                    **view.context(),
                )
    if failure := fire_from(form, case, case.app, trigger):
        return _screen(case, failure=failure, href=f"#trigger-{trigger}")
    return after_post(f"/panel/{case.app.id}", trigger)
