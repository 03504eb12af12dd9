"""The award holder's pages: an award's deadlines and filings, filing the year's report, and the
organisation's deadline calendar (.ics) downloaded with the page session."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from svqm.accounts import service as accounts
from svqm.errors import Conflict, InvalidInput, InvalidUpload, NotFound, SvqmError
from svqm.web.deps import CSRF, ApplicantPage, OwnAward, Page, SettingsDep, StoreDep
from svqm.web.errors import status_of
from svqm.web.format import sentence
from svqm.web.forms import (
    FormDep,
    attempt,
    field,
    figures_typed,
    parse_figures,
    read_report_form,
)
from svqm.web.security import CalendarResponse
from svqm.web.ui import Errors, after_post, flash_of, render
from svqm.web.views.awards import holder_award
from svqm.web.views.calendar import organisation_feed
from svqm.web.views.triggers import done_messages, holder_steps
from svqm.workflow import commitments, progress, reports
from svqm.workflow.models import Award

router = APIRouter(dependencies=[CSRF], include_in_schema=False)

DONE = {
    "report-filed": "Annual report filed. Thank you.",
    "figures-filed": "Figures filed. An assessor will review them.",
}
# Each field of a refused filing and the input of the form it is typed in.
_INPUTS = {"period": "#period", "deadline": "#deadline", "file": "#report-file"}
_INPUT_TEXT = {
    "period": "Enter the period the report covers, for example 2026-27",
    "file": "Choose the report file to upload",
    "deadline": "Choose what you are filing",
}


def _award_page(
    page: Page,
    award: Award,
    *,
    status: int = 200,
    errors: Errors = None,
    entered: dict[str, str] | None = None,
    flash: dict[str, str] | None = None,
    figures_entered: dict[str, str] | None = None,
) -> HTMLResponse:
    view = holder_award(page.session, page.registry, award, page.now)
    return render(
        page.request,
        "applicant/award.html",
        auth=page.auth,
        title=f"{view.award['level']} award",
        status=status,
        errors=errors,
        flash=flash,
        organisation=view.organisation,
        award=view.award,
        deadlines=view.deadlines,
        reports=view.reports,
        filings=view.filings,
        several_filings=view.several_filings,
        next_steps=view.next_steps,
        steps=holder_steps(page.session, award, page.actor, page.registry, page.now),
        themes=view.themes,
        pledges=view.pledges,
        entered=entered or view.entered(),
        figures_entered=figures_entered or view.figures_entered(),
        sent_back=view.sent_back,
    )


@router.get("/dashboard/calendar.ics", response_model=None)
def calendar_download(page: ApplicantPage, settings: SettingsDep) -> Response:
    """The organisation's deadline feed, as the API serves it, for a browser signed in."""
    org = accounts.get_organisation(page.session, page.auth.user.organisation_id)
    if org is None:
        raise NotFound("no organisation")
    feed = organisation_feed(
        page.session, page.registry, org, base_url=settings.BASE_URL, now=page.now
    )
    return CalendarResponse(feed)


@router.get("/dashboard/awards/{award_id}", response_model=None)
def award_page(held: OwnAward, done: str = "") -> Response:
    """One of the organisation's awards: its deadlines, its reports, and the form to file one."""
    page, award = held
    # After a step of the holder's own (award_steps), its own policy's words for it.
    flow = page.registry.for_subject(page.session, award).policy.workflows.award
    messages = done_messages([flow]) | DONE
    return _award_page(page, award, flash=flash_of(done, messages))


def _refusal(exc: SvqmError) -> dict[str, str]:
    """The error summary entry for a refused filing, pointing at the input it is about."""
    if exc.field in _INPUTS:
        return {"text": _INPUT_TEXT[exc.field], "href": _INPUTS[exc.field]}
    if isinstance(exc, Conflict):
        return {"text": sentence(exc.detail), "href": "#reports"}
    return {"text": sentence(exc.detail), "href": _INPUTS["file"]}


@router.post("/dashboard/awards/{award_id}/reports", response_model=None)
async def file_report(held: OwnAward, form: FormDep, store: StoreDep) -> Response:
    """File the year's report (multipart: file, period, title) and go back to the award."""
    page, award = held
    entered = {k: field(form, k, limit=200) for k in ("period", "title", "deadline")}

    def refuse(exc: SvqmError) -> Response:
        return _award_page(
            page, award, status=status_of(exc), errors=[_refusal(exc)], entered=entered
        )

    try:
        upload = await read_report_form(page.request)
    except SvqmError as exc:
        return await run_in_threadpool(refuse, exc)

    def save() -> Response:
        # The request's own session, used from a worker thread only while the route waits.
        def write() -> None:
            if not upload.filename:
                # A browser sends an empty, nameless file part when none was chosen.
                raise InvalidInput("the form has no 'file' field with a file in it", field="file")
            reports.file_report(
                page.session,
                award,
                store,
                period=upload.period,
                stream=upload.file,
                filename=upload.filename,
                title=upload.title,
                actor=page.actor,
                registry=page.registry,
                now=page.now,
                deadline=upload.deadline or None,
            )

        if failure := attempt(page.session, write):
            return refuse(failure)
        return after_post(f"/dashboard/awards/{award.id}", "report-filed", "#reports")

    try:
        return await run_in_threadpool(save)
    finally:
        upload.close()


# Each field of refused figures and the input of the figures form it is typed in.
_FIGURE_INPUTS = {
    "period": "#figures-period",
    "deadline": "#figures-deadline",
    "file": "#figures-file",
}


@router.post("/dashboard/awards/{award_id}/figures", response_model=None)
def file_figures(held: OwnAward, form: FormDep, store: StoreDep) -> Response:
    """File the year's figures, per pledge (actual, narrative, private), with supporting files
    (each checked by the evidence store), through the service the API's filing uses."""
    page, award = held
    pledge_ids = [p.id for p in commitments.award_pledges(page.session, [award])]
    typed = figures_typed(form, pledge_ids)
    figures, errors = parse_figures(typed, pledge_ids)

    def refuse(errs: list[dict[str, str]], status: int = 422) -> Response:
        return _award_page(page, award, status=status, errors=errs, figures_entered=typed)

    if errors:
        return refuse(errors)
    # The supporting files: any number (the form's one input takes several).
    attached = [u for u in form.getlist("file") if isinstance(u, UploadFile) and u.filename]

    def write() -> None:
        progress.file_figures(
            page.session,
            award,
            period=typed["period"],
            figures=figures,
            actor=page.actor,
            registry=page.registry,
            now=page.now,
            deadline=typed["deadline"] or None,
            store=store,
            files=[(u.file, u.filename or "") for u in attached],
        )

    if failure := attempt(page.session, write):
        href = _FIGURE_INPUTS.get(failure.field or "", "#figures")
        if isinstance(failure, InvalidUpload):
            href = _FIGURE_INPUTS["file"]
        return refuse([{"text": sentence(failure.detail), "href": href}], status_of(failure))
    return after_post(f"/dashboard/awards/{award.id}", "figures-filed", "#reports")
