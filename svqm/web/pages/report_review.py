"""Assessors' and admins' pages: the reports with figures waiting for review, and reviewing one
(accept, or ask for more information with a comment) through the service the API uses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response

from svqm.accounts import service as accounts
from svqm.errors import Conflict, NotFound
from svqm.evidence.pledges import figure
from svqm.reporting import filings
from svqm.web.deps import CSRF, Id, Page, StoreDep, page_for
from svqm.web.errors import status_of
from svqm.web.format import day, file_size, report_tag, sentence
from svqm.web.forms import FormDep, attempt, field
from svqm.web.security import attachment
from svqm.web.ui import Errors, after_post, flash_of, render
from svqm.workflow import awards as award_queries
from svqm.workflow import commitments, progress
from svqm.workflow.models import FILED, AnnualReport, Award

router = APIRouter(dependencies=[CSRF], include_in_schema=False)

ReviewerPage = Annotated[Page, Depends(page_for("assessor", "admin"))]
DONE = {
    "accepted": "Report accepted. Its figures now show on the organisation's public page.",
    "more_information": "More information asked for. The holder sees your comment on their award page.",
}
DECISIONS = {"accepted", "more_information"}


@router.get("/reports")
def queue(page: ReviewerPage) -> HTMLResponse:
    """The reports with figures waiting for review, oldest first."""
    rows = [
        {
            "id": r.id,
            "organisation": accounts.organisation_name(page.session, a.organisation_id),
            "period": r.period,
            "title": r.title,
            "filed": day(r.submitted_at),
        }
        for r, a in filings.awaiting_review(page.session, page.registry)
    ]
    return render(
        page.request, "assessor/reports.html", auth=page.auth, title="Reports to review", rows=rows
    )


def _report_page(
    page: Page,
    report: AnnualReport,
    award: Award,
    *,
    status: int = 200,
    errors: Errors = None,
    entered: dict[str, str] | None = None,
    flash: dict[str, str] | None = None,
) -> HTMLResponse:
    assert report.id is not None
    policy = page.registry.for_subject(page.session, award).policy
    held = {p.id: p for p in commitments.award_pledges(page.session, [award])}
    figures: list[dict[str, Any]] = []
    for f in progress.figures_of(page.session, [report.id])[report.id]:
        p = held.get(f.pledge_id)
        figures.append(
            {
                "pledge": p.title if p else f"Pledge {f.pledge_id}",
                "indicator": p.indicator if p else "",
                "target": figure(p.target, p.unit) if p else "",
                "actual": figure(f.actual, p.unit if p else ""),
                "below": bool(p and p.target_value is not None and f.actual < p.target_value),
                "narrative": f.narrative,
                "private": f.private,
            }
        )
    return render(
        page.request,
        "assessor/report.html",
        auth=page.auth,
        title=f"Report {report.period}",
        status=status,
        errors=errors,
        flash=flash,
        organisation=accounts.organisation_name(page.session, award.organisation_id),
        report={
            "id": report.id,
            "period": report.period,
            "title": report.title,
            "filed": day(report.submitted_at),
            "review": report_tag(policy, report.state),
            "open": progress.review_of(policy, report) == "awaiting_review",
            "comment": report.review_comment,
            "filename": report.filename,
            "size": file_size(report.size) if report.filename else "",
            # Its supporting files, each a download (never shown inline, never public).
            "files": [
                {
                    "name": f.filename,
                    "size": file_size(f.size),
                    "href": f"/reports/{report.id}/files/{f.id}",
                }
                for f in progress.files_of(page.session, report.id)
            ],
        },
        figures=figures,
        entered=entered or {"decision": "", "comment": ""},
    )


def _report(page: Page, report_id: int) -> tuple[AnnualReport, Award]:
    report = filings.get_report(page.session, report_id)
    return report, award_queries.get_award(page.session, report.award_id)


@router.get("/reports/{report_id}")
def report_page(report_id: Id, page: ReviewerPage, done: str = "") -> HTMLResponse:
    """One report: its figures per pledge against the targets, its file, and the review form."""
    report, award = _report(page, report_id)
    return _report_page(page, report, award, flash=flash_of(done, DONE))


@router.get("/reports/{report_id}/file", response_model=None)
def report_file(report_id: Id, page: ReviewerPage, store: StoreDep) -> Response:
    """The report's supporting file, as a download (never rendered inline)."""
    report, _ = _report(page, report_id)
    if not report.filename:
        raise NotFound(f"report {report_id} has no file")
    return attachment(str(store.path_for(report.sha256)), report.filename, report.content_type)


@router.get("/reports/{report_id}/files/{file_id}", response_model=None)
def report_supporting_file(
    report_id: Id, file_id: Id, page: ReviewerPage, store: StoreDep
) -> Response:
    """One of a report's supporting files, as a download (never rendered inline)."""
    report, _ = _report(page, report_id)
    found = progress.get_file(page.session, report.id or 0, file_id)
    if not store.exists(found.sha256):
        raise NotFound(f"the file {found.filename} is missing from the store")
    return attachment(str(store.path_for(found.sha256)), found.filename, found.content_type)


@router.post("/reports/{report_id}/review", response_model=None)
def review(report_id: Id, page: ReviewerPage, form: FormDep) -> Response:
    """Accept the report, or ask for more information with a comment."""
    report, award = _report(page, report_id)
    entered = {"decision": field(form, "decision", limit=40), "comment": field(form, "comment")}
    decision = entered["decision"]
    if decision not in DECISIONS:
        return _report_page(
            page,
            report,
            award,
            status=422,
            errors=[{"text": "Choose whether to accept the report", "href": "#decision"}],
            entered=entered,
        )
    if report.state == FILED:
        exc = Conflict("this report is a document filing: it has no figures to review")
        return _report_page(
            page,
            report,
            award,
            status=409,
            errors=[{"text": sentence(exc.detail), "href": "#review"}],
            entered=entered,
        )

    def write() -> None:
        progress.review_report(
            page.session,
            report,
            "accepted" if decision == "accepted" else "more_information",
            comment=entered["comment"],
            actor=page.actor,
            registry=page.registry,
            now=page.now,
        )

    if failure := attempt(page.session, write):
        href = "#comment" if failure.field == "comment" else "#review"
        text = (
            "Say what is missing: a comment is required unless accepting"
            if failure.field == "comment"
            else sentence(failure.detail)
        )
        report, award = _report(page, report_id)
        return _report_page(
            page,
            report,
            award,
            status=status_of(failure),
            errors=[{"text": text, "href": href}],
            entered=entered,
        )
    return after_post(f"/reports/{report_id}", decision)
