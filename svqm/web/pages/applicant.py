"""The applicant's pages on applications: the dashboard, starting one, its task list (pledges,
evidence uploads, the steps to take), its history and its files."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from svqm.errors import GuardRefused, InvalidInput, StaleVersion, SvqmError, field_of
from svqm.evidence import service as evidence_service
from svqm.evidence.models import PledgeCreate
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
from svqm.web.format import dom_id, sentence
from svqm.web.forms import (
    FormDep,
    FormText,
    attempt,
    date_of,
    field,
    fire_from,
    read_upload_form,
)
from svqm.web.security import attachment
from svqm.web.ui import Errors, after_post, flash_of, render
from svqm.web.views import applicant as views
from svqm.web.views.applicant import PLEDGE_FIELDS
from svqm.web.views.triggers import done_messages
from svqm.workflow import actions, queries
from svqm.workflow import service as workflow

router = APIRouter(dependencies=[CSRF], include_in_schema=False)

# `?done=` words and the only text they can put on a page (never the query text itself).
DONE = {
    "signed-up": "Your organisation is registered and you are signed in.",
    "opened": "Application started. Make your pledges and upload your evidence, then submit it.",
    "pledge-added": "Pledge added.",
    "evidence-uploaded": "Evidence uploaded.",
    "switched": "You are now acting for this organisation.",
    "joined": "You can now act for this organisation too, and are acting for it now.",
}
STALE = (
    "This application changed since you loaded the page. The page now shows the latest "
    "version: check it and try again"
)
_PLEDGE_MESSAGES = {
    "theme": "Choose a theme for the pledge",
    "title": "Enter a title for the pledge (up to 200 characters)",
    "description": "The description must be 5,000 characters or fewer",
    "indicator": "Enter the key value indicator (up to 500 characters)",
    "target": "Enter the target (up to 200 characters)",
}
# The input of the pledge form that each field of a refused pledge is typed in.
_PLEDGE_INPUTS = {"theme": "theme", "due_date": "due_date-day"}


# --- the dashboard ------------------------------------------------------------------------------


def _dashboard(
    page: Page,
    *,
    status: int = 200,
    errors: Errors = None,
    chosen: dict[str, str] | None = None,
    flash: dict[str, str] | None = None,
) -> HTMLResponse:
    view = views.dashboard(page.session, page.registry, page.actor, page.now)
    schemes, levels = views.level_choices(page.registry, chosen or {})
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
        schemes=schemes,
        levels=levels,
    )


@router.get("/dashboard")
def dashboard(page: ApplicantPage, done: str = "") -> HTMLResponse:
    """The organisation's applications, awards and deadlines, and a form to start applying."""
    return _dashboard(page, flash=flash_of(done, DONE))


@router.post("/applications", response_model=None)
def start_application(page: ApplicantPage, scheme: FormText = "", level: FormText = "") -> Response:
    """Open an application for a level, then show it."""
    chosen = {"scheme": scheme, "level": level}
    scheme_id, level_id = scheme, level
    if ":" in level:
        scheme_id, _, level_id = level.partition(":")
        if scheme and scheme != scheme_id:
            names = {sid: s.policy.name for sid, s in page.registry.current.items()}
            text = (
                f"The level you chose is a level of {names.get(scheme_id, 'another scheme')}"
                f". Choose a level listed under {names.get(scheme, 'the scheme you chose')}"
                f", or change the scheme"
            )
            errors = [{"text": text, "href": "#level"}]
            return _dashboard(page, status=422, errors=errors, chosen=chosen)
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
        # An unknown scheme is a mistake in the form, not a missing page.
        status = 422 if failure.code == "not_found" else status_of(failure)
        return _dashboard(page, errors=errors, status=status, chosen=chosen)
    return after_post(f"/applications/{opened[0].id}", "opened")


# --- the application's task list ----------------------------------------------------------------


def _task_list(
    case: Case,
    *,
    status: int = 200,
    errors: Errors = None,
    flash: dict[str, str] | None = None,
    pledge_form: dict[str, str] | None = None,
    upload: dict[str, str] | None = None,
    comment: dict[str, str] | None = None,
) -> HTMLResponse:
    """The application's task list page; also shown again, with what was typed, after an error."""
    pledge_form = pledge_form or dict.fromkeys((*PLEDGE_FIELDS, "day", "month", "year"), "")
    view = views.task_list(
        case.session, case.registry, case.app, case.actor, case.now, theme=pledge_form["theme"]
    )
    upload = upload or {"slot": "", "title": "", "error": ""}
    errors = list(errors or [])
    if upload["error"]:
        errors.append({"text": upload["error"], "href": view.slot_href(upload["slot"])})
    return render(
        case.request,
        "applicant/application.html",
        auth=case.auth,
        title=view.title,
        status=status,
        errors=errors or None,
        flash=flash,
        pledge_form=pledge_form,
        upload=upload,
        comment=comment or {"trigger": "", "text": ""},
        **view.context(),
    )


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
    item = evidence_service.get_evidence(page.session, evidence_id)
    queries.get_application(page.session, item.application_id, page.actor, registry=page.registry)
    return attachment(str(store.path_for(item.sha256)), item.filename, item.content_type)


# --- what the applicant posts on it -------------------------------------------------------------


@router.post("/applications/{application_id}/pledges", response_model=None)
def add_pledge(
    case: ApplicationCase,
    theme: FormText = "",
    title: FormText = "",
    description: FormText = "",
    indicator: FormText = "",
    target: FormText = "",
    due_day: Annotated[str, Form(alias="due_date-day")] = "",
    due_month: Annotated[str, Form(alias="due_date-month")] = "",
    due_year: Annotated[str, Form(alias="due_date-year")] = "",
) -> Response:
    """Add a pledge (theme, title, description, key value indicator, target, due date)."""
    typed = {
        "theme": theme,
        "title": title,
        "description": description,
        "indicator": indicator,
        "target": target,
        "day": due_day.strip(),
        "month": due_month.strip(),
        "year": due_year.strip(),
    }
    due = date_of(typed["day"], typed["month"], typed["year"])
    errors = []
    try:
        data = PledgeCreate(
            theme=theme.strip(),
            title=title.strip(),
            description=description.strip(),
            indicator=indicator.strip(),
            target=target.strip(),
            due_date=due or date.max,
        )
    except ValidationError as exc:
        bad = {str(e["loc"][0]) for e in exc.errors()}
        errors = [{"text": _PLEDGE_MESSAGES[f], "href": f"#{f}"} for f in PLEDGE_FIELDS if f in bad]
    if due is None:
        text = "Enter a real due date, for example 31 3 2027"
        errors.append({"text": text, "href": "#due_date-day"})
    status = 422

    def write() -> None:
        actions.add_pledge(
            case.session, case.app, data, actor=case.actor, registry=case.registry, now=case.now
        )

    if not errors and (failure := attempt(case.session, write)):
        href = f"#{_PLEDGE_INPUTS.get(failure.field or '', 'pledges')}"
        errors = [{"text": sentence(failure.detail), "href": href}]
        status = status_of(failure)
    if errors:
        return _task_list(case, errors=errors, status=status, pledge_form=typed)
    return after_post(f"/applications/{case.app.id}", "pledge-added", "#pledges")


@router.post("/applications/{application_id}/evidence", response_model=None)
async def upload_evidence(case: ApplicationCase, form: FormDep, store: StoreDep) -> Response:
    """Upload a file for one checklist slot (multipart: file, requirement, title)."""
    slot, title = field(form, "requirement"), field(form, "title", limit=200)

    def refuse(exc: SvqmError) -> Response:
        text = "Choose a file to upload" if exc.field == "file" else sentence(exc.detail)
        upload = {"slot": slot, "title": title, "error": text}
        return _task_list(case, status=status_of(exc), upload=upload)

    try:
        upload = await read_upload_form(case.request)
    except SvqmError as exc:
        return await run_in_threadpool(refuse, exc)

    def save() -> Response:
        # The request's own session, used from this thread only while the route waits.
        def write() -> None:
            if not upload.filename:
                # A browser sends an empty, nameless file part when none was chosen.
                raise InvalidInput("the form has no 'file' field with a file in it", field="file")
            actions.upload_evidence(
                case.session,
                case.app,
                store,
                requirement=upload.requirement,
                pledge_id=upload.pledge_id,
                stream=upload.file,
                filename=upload.filename,
                title=upload.title,
                actor=case.actor,
                registry=case.registry,
                now=case.now,
            )

        if failure := attempt(case.session, write):
            return refuse(failure)
        anchor = f"#{dom_id(upload.requirement)}"
        return after_post(f"/applications/{case.app.id}", "evidence-uploaded", anchor)

    try:
        return await run_in_threadpool(save)
    finally:
        upload.close()


@router.post("/applications/{application_id}/events/{trigger}", response_model=None)
def fire_event(case: ApplicationCase, trigger: str, form: FormDep) -> Response:
    """Take a step of the workflow (submit, resubmit, withdraw, appeal) with the page's version."""
    flow = case.registry.for_subject(case.session, case.app).policy.workflows.application
    known = any(t.trigger == trigger for t in flow.transitions)
    anchor = f"#trigger-{trigger}" if known else "#submit"
    comment = field(form, "comment")
    if failure := fire_from(form, case, case.app, trigger):
        if isinstance(failure, GuardRefused):
            comment_input = f"#comment-{trigger}" if known else anchor
            errors = [
                {"text": sentence(r), "href": comment_input if field_of(r) else anchor}
                for r in failure.unmet
            ]
        elif isinstance(failure, StaleVersion):
            errors = [{"text": STALE, "href": "#submit"}]
        else:
            errors = [{"text": sentence(failure.detail), "href": anchor}]
        typed = {"trigger": trigger if known else "", "text": comment}
        return _task_list(case, errors=errors, status=status_of(failure), comment=typed)
    return after_post(f"/applications/{case.app.id}", f"event-{trigger}")
