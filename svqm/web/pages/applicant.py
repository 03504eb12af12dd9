"""The applicant's pages on applications: the dashboard, an application's task list and the
steps it offers, its history and its files."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from svqm.errors import GuardRefused, StaleVersion, field_of
from svqm.evidence import service as evidence_service
from svqm.web.deps import (
    CSRF,
    AnyPage,
    ApplicantPage,
    ApplicationCase,
    Case,
    Id,
    Page,
    StoreDep,
)
from svqm.web.errors import status_of
from svqm.web.format import sentence
from svqm.web.forms import (
    FormDep,
    field,
    fire_from,
    version_of,
)
from svqm.web.security import attachment
from svqm.web.ui import Errors, after_post, flash_of, render
from svqm.web.views import applicant as views
from svqm.web.views import invoices as invoice_views
from svqm.web.views.tasks import task_groups
from svqm.web.views.triggers import done_messages, needs_confirmation
from svqm.workflow import queries

router = APIRouter(dependencies=[CSRF], include_in_schema=False)

# `?done=` words and the only text they can put on a page (never the query text itself).
DONE = {
    "signed-up": "Your organisation is registered and you are signed in.",
    "opened": "Application started. Complete each task below, then check and send it.",
    "joined": "You can now act for this organisation too, and are acting for it now.",
    # After the eligibility answers are saved (pages/eligibility.py), by their outcome.
    "eligibility-eligible": "Eligibility answers saved. Your organisation is eligible.",
    "eligibility-awaiting_decision": "Eligibility answers saved. The scheme considers an "
    "industry you named case by case: it will decide before you can send your application.",
    "eligibility-excluded": "Eligibility answers saved. The scheme does not accredit an "
    "industry you named, so this application cannot be sent.",
}
STALE = (
    "This application changed since you loaded the page. The page now shows the latest "
    "version: check it and try again"
)


# --- the dashboard ------------------------------------------------------------------------------


def _dashboard(
    page: Page,
    *,
    status: int = 200,
    errors: Errors = None,
    flash: dict[str, str] | None = None,
) -> HTMLResponse:
    view = views.dashboard(page.session, page.registry, page.actor, page.now)
    return render(
        page.request,
        "applicant/dashboard.html",
        auth=page.auth,
        title="Your dashboard",
        status=status,
        errors=errors,
        flash=flash,
        organisation=view.organisation,
        applications=view.applications,
        awards=view.awards,
        upcoming=view.upcoming,
    )


@router.get("/dashboard")
def dashboard(page: ApplicantPage, done: str = "") -> HTMLResponse:
    """The organisation's applications, awards and deadlines, and a form to start applying."""
    return _dashboard(page, flash=flash_of(done, DONE))


# --- the application's task list ----------------------------------------------------------------


def _task_list(
    case: Case,
    *,
    status: int = 200,
    errors: Errors = None,
    flash: dict[str, str] | None = None,
    comment: dict[str, str] | None = None,
) -> HTMLResponse:
    """The application's task list page; also shown again, with what was typed, after an error."""
    view = views.task_list(case.session, case.registry, case.app, case.actor, case.now)
    return render(
        case.request,
        "applicant/application.html",
        auth=case.auth,
        title=view.title,
        status=status,
        errors=errors or None,
        flash=flash,
        comment=comment or {"trigger": "", "text": ""},
        groups=task_groups(view),
        score_notes=_score_notes(case),
        invoices=invoice_views.of_application(case.session, case.registry, case.app.id or 0),
        **view.context(),
    )


def _score_notes(case: Case) -> list[tuple[str, str]]:
    """The assessor's notes on the scores that the applicant may read (never internal ones),
    each with the question it is on; the same for staff reading this page."""
    assert case.app.id is not None
    policy = case.registry.for_subject(case.session, case.app).policy
    questions = {
        f"{s.id}/{q.id}": f"{s.name}: {q.text}" for s in policy.standards for q in s.questions
    }
    lines = evidence_service.score_lines(case.session, case.app.id, staff=False)
    return [(questions.get(k, k), line.note) for k, line in sorted(lines.items()) if line.note]


@router.get("/applications/{application_id}", response_model=None)
def application_page(case: ApplicationCase, done: str = "") -> Response:
    """The application as a task list: pledges, evidence, submission (read-only for staff)."""
    flash = flash_of(done, DONE)
    if flash is None and done.startswith("event-"):
        flow = case.registry.for_subject(case.session, case.app).policy.workflows.application
        flash = flash_of(done.removeprefix("event-"), done_messages([flow]))
    return _task_list(case, flash=flash)


@router.get("/applications/{application_id}/history", response_model=None)
def history_page(case: ApplicationCase) -> Response:
    """The application's audit trail, newest first."""
    view = views.history(case.session, case.registry, case.app, case.actor)
    return render(
        case.request,
        "applicant/history.html",
        auth=case.auth,
        title=view.title,
        events=view.events,
        app=view.app,
    )


@router.get("/evidence/{evidence_id}/download", response_model=None)
def download_evidence(evidence_id: Id, page: AnyPage, store: StoreDep) -> Response:
    """The stored file of one evidence version, for those who may see its application."""
    item, _ = queries.get_visible_evidence(
        page.session, evidence_id, page.actor, registry=page.registry
    )
    return attachment(str(store.path_for(item.sha256)), item.filename, item.content_type)


# --- the steps of the workflow ------------------------------------------------------------------


@router.post("/applications/{application_id}/events/{trigger}", response_model=None)
def fire_event(case: ApplicationCase, trigger: str, form: FormDep) -> Response:
    """Take a step of the workflow (submit, resubmit, withdraw, appeal) with the page's version.

    A weighty step (the policy marks it `warning` or `confirm`: withdrawing) first shows a page
    of its own asking to confirm; only its "Yes" button (`confirmed=yes`) takes the step."""
    flow = case.registry.for_subject(case.session, case.app).policy.workflows.application
    known = any(t.trigger == trigger for t in flow.transitions)
    anchor = f"#trigger-{trigger}" if known else "#steps"
    comment = field(form, "comment")
    if (
        known
        and needs_confirmation(flow, trigger)
        and field(form, "confirmed") != "yes"
        and version_of(form) == case.app.version
    ):
        view = views.task_list(case.session, case.registry, case.app, case.actor, case.now)
        step = next((t for t in view.triggers if t.trigger == trigger and not t.unmet), None)
        # A reason it needs but lacks is asked for on the task list first.
        if step is not None and not (step.needs_comment and not comment.strip()):
            return render(
                case.request,
                "tasks/confirm.html",
                auth=case.auth,
                title=f"Are you sure you want to {step.title.lower()}?",
                step=step,
                comment=comment,
                app=view.app,
            )
    if failure := fire_from(form, case, case.app, trigger):
        if isinstance(failure, GuardRefused):
            comment_input = f"#comment-{trigger}" if known else anchor
            errors = [
                {"text": sentence(r), "href": comment_input if field_of(r) else anchor}
                for r in failure.unmet
            ]
        elif isinstance(failure, StaleVersion):
            errors = [{"text": STALE, "href": anchor}]
        else:
            errors = [{"text": sentence(failure.detail), "href": anchor}]
        typed = {"trigger": trigger if known else "", "text": comment}
        return _task_list(case, errors=errors, status=status_of(failure), comment=typed)
    return after_post(f"/applications/{case.app.id}", f"event-{trigger}")
