"""An application's tasks, each on its own page: organisation details, pledges, each evidence
item, then check your answers with the declaration, and the confirmation with the reference."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from svqm.errors import GuardRefused, InvalidInput, NotFound, StaleVersion, SvqmError
from svqm.evidence.models import PledgeCreate
from svqm.web.deps import CSRF, ApplicantCase, ApplicationCase, Case, StoreDep
from svqm.web.errors import status_of
from svqm.web.format import sentence, step_phrase
from svqm.web.forms import (
    PLEDGE_INPUTS,
    FormDep,
    attempt,
    field,
    fire_from,
    parse_pledge,
    pledge_typed,
    read_upload_form,
)
from svqm.web.ui import Errors, after_post, flash_of, render
from svqm.web.views import applicant as views
from svqm.web.views import invoices as invoice_views
from svqm.web.views.applicant import TaskList
from svqm.workflow import actions

router = APIRouter(dependencies=[CSRF], include_in_schema=False)

DONE = {
    "pledge-added": "Pledge added.",
    "pledge-revised": "Pledge changed.",
    "pledge-withdrawn": "Pledge withdrawn.",
    "pledge-retired": "Pledge retired: this application will not carry it forward.",
    "evidence-uploaded": "Evidence uploaded.",
}
STALE = (
    "This application changed since you loaded the page. The page now shows the latest "
    "version: check it and try again"
)
# The input of the pledge form that each field of a refused pledge is typed in.
_PLEDGE_INPUTS = {
    "theme": "theme",
    "due_date": "due_date-day",
    "organisation_id": "organisation_id",
}


def _view(case: Case, theme: str = "", member: str = "") -> TaskList:
    return views.task_list(
        case.session, case.registry, case.app, case.actor, case.now, theme=theme, member=member
    )


def _page(
    case: Case, name: str, view: TaskList, title: str, *, status: int = 200, **context: Any
) -> HTMLResponse:
    return render(
        case.request,
        f"tasks/{name}.html",
        auth=case.auth,
        title=title,
        status=status,
        **view.context(),
        **context,
    )


@router.get("/applications/{application_id}/organisation")
def organisation_task(case: ApplicationCase) -> HTMLResponse:
    """The organisation the application is made for."""
    return _page(case, "organisation", _view(case), "Organisation details")


def _pledges(
    case: Case,
    *,
    status: int = 200,
    errors: Errors = None,
    flash: dict[str, str] | None = None,
    pledge_form: dict[str, str] | None = None,
) -> HTMLResponse:
    pledge_form = pledge_form or dict.fromkeys(
        (*PLEDGE_INPUTS, "day", "month", "year", "organisation_id"), ""
    )
    view = _view(case, pledge_form["theme"], pledge_form.get("organisation_id", ""))
    return _page(
        case,
        "pledges",
        view,
        "Pledges",
        status=status,
        errors=errors,
        flash=flash,
        pledge_form=pledge_form,
    )


@router.get("/applications/{application_id}/pledges")
def pledges_task(case: ApplicationCase, done: str = "") -> HTMLResponse:
    """The application's pledges, and the form to add one."""
    return _pledges(case, flash=flash_of(done, DONE))


def _evidence(
    case: Case,
    slot: str,
    *,
    status: int = 200,
    flash: dict[str, str] | None = None,
    upload: dict[str, str] | None = None,
) -> HTMLResponse:
    view = _view(case)
    found = next((s for s in view.slots if s["id"] == slot), None)
    if found is None:
        raise NotFound("this application asks for no such evidence")
    upload = upload or {"title": "", "note": "", "error": ""}
    where = "note" if upload.get("note_error") else "file"
    errors = (
        [{"text": upload["error"], "href": f"#{found['dom']}-{where}"}] if upload["error"] else None
    )
    return _page(
        case,
        "evidence",
        view,
        found["title"],
        status=status,
        errors=errors,
        flash=flash,
        upload=upload,
        s=found,
    )


@router.get("/applications/{application_id}/evidence/{slot}")
def evidence_task(case: ApplicationCase, slot: str, done: str = "") -> HTMLResponse:
    """One evidence item: what it asks for, the files uploaded, and the form for a new one."""
    return _evidence(case, slot, flash=flash_of(done, DONE))


# --- check your answers, the declaration, the confirmation --------------------------------------


def _check(case: Case, *, status: int = 200, errors: Errors = None) -> HTMLResponse:
    view = _view(case)
    title = (
        f"Check your answers before you {step_phrase(view.primary.title)}"
        if view.primary
        else ("Check your answers")
    )
    return _page(case, "check", view, title, status=status, errors=errors)


@router.get("/applications/{application_id}/check")
def check_answers(case: ApplicantCase) -> HTMLResponse:
    """Everything the application says, with links to change it, then the declaration."""
    return _check(case)


@router.post("/applications/{application_id}/check", response_model=None)
def send_application(case: ApplicantCase, form: FormDep) -> Response:
    """Accept the declaration and take the primary step (submit, resubmit)."""
    view = _view(case)
    if view.primary is None or field(form, "trigger") != view.primary.trigger:
        text = "This application cannot be sent now: its status changed. Check it and try again"
        return _check(case, status=409, errors=[{"text": text, "href": "#main-content"}])
    if field(form, "declaration") != "yes":
        text = "Confirm the declaration to send your application"
        return _check(case, status=422, errors=[{"text": text, "href": "#declaration"}])
    trigger = view.primary.trigger
    if failure := fire_from(form, case, case.app, trigger):
        if isinstance(failure, GuardRefused):
            errors = [{"text": sentence(r), "href": "#unmet"} for r in failure.unmet]
        elif isinstance(failure, StaleVersion):
            errors = [{"text": STALE, "href": "#main-content"}]
        else:
            errors = [{"text": sentence(failure.detail), "href": "#main-content"}]
        return _check(case, status=status_of(failure), errors=errors)
    return RedirectResponse(f"/applications/{case.app.id}/sent?step={trigger}", status_code=303)


@router.get("/applications/{application_id}/sent")
def confirmation(case: ApplicantCase, step: str = "") -> HTMLResponse:
    """The confirmation page: the application is sent, with its reference."""
    view = _view(case)
    flow = case.registry.for_subject(case.session, case.app).policy.workflows.application
    known = next((t for t in flow.transitions if t.trigger == step and t.primary), None)
    # The step's own words: what just happened (the first sentence of its `done` text) is the
    # heading, the rest is what happens next; a step that invoices shows the invoice to pay.
    done = known.done_text if known else ""
    heading = done.split(". ")[0].rstrip(".") if known else "Application sent"
    unpaid = [
        i
        for i in invoice_views.of_application(case.session, case.registry, case.app.id or 0)
        if i["kind"] == "invoice" and i["status"] == "unpaid"
    ]
    return _page(
        case,
        "confirmation",
        view,
        heading,
        heading=heading,
        next_text=known.done_next if known else "",
        invoice=unpaid[-1] if unpaid and known and "issue_invoice" in known.effects else None,
    )


# --- pledges and evidence --------------------------------------------------------------------


@router.post("/applications/{application_id}/pledges", response_model=None)
def add_pledge(case: ApplicationCase, form: FormDep) -> Response:
    """Add a pledge (theme, title, description, key value indicator, unit, baseline, target, due)."""
    typed = pledge_typed(form)
    values, errors = parse_pledge(typed)
    # A group's application: whose pledge it is ("" every member's, or one member's own).
    typed["organisation_id"] = member = field(form, "organisation_id", limit=20)
    if member and not member.isdigit():
        errors.append({"text": "Choose whose pledge it is", "href": "#organisation_id"})
    values["organisation_id"] = int(member) if member.isdigit() else None
    status = 422

    def write() -> None:
        actions.add_pledge(
            case.session,
            case.app,
            PledgeCreate(**values),
            actor=case.actor,
            registry=case.registry,
            now=case.now,
        )

    if not errors and (failure := attempt(case.session, write)):
        href = f"#{_PLEDGE_INPUTS.get(failure.field or '', 'pledges')}"
        errors = [{"text": sentence(failure.detail), "href": href}]
        status = status_of(failure)
    if errors:
        return _pledges(case, errors=errors, status=status, pledge_form=typed)
    return after_post(f"/applications/{case.app.id}/pledges", "pledge-added")


@router.post("/applications/{application_id}/evidence", response_model=None)
async def upload_evidence(case: ApplicationCase, form: FormDep, store: StoreDep) -> Response:
    """Upload a file for one checklist slot (multipart: file, requirement, title)."""
    slot, title = field(form, "requirement"), field(form, "title", limit=200)
    note = field(form, "note", limit=2000)

    def refuse(exc: SvqmError) -> Response:
        text = "Choose a file to upload" if exc.field == "file" else sentence(exc.detail)
        upload = {"title": title, "note": note, "error": text}
        if exc.field == "note":
            upload["note_error"] = text
        return _evidence(case, slot, status=status_of(exc), upload=upload)

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
                note=upload.note,
            )

        if failure := attempt(case.session, write):
            return refuse(failure)
        return after_post(f"/applications/{case.app.id}/evidence/{slot}", "evidence-uploaded")

    try:
        return await run_in_threadpool(save)
    finally:
        upload.close()
