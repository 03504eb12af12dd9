"""JSON: an award's annual reports, and filing one (multipart, streamed to the store like evidence)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from svqm.accounts.models import User
from svqm.errors import Conflict, NotFound, PermissionDenied
from svqm.reporting import filings
from svqm.web.deps import (
    ApiUser,
    Id,
    NowDep,
    RegistryDep,
    SessionDep,
    StoreDep,
    UploaderUser,
    actor_of,
    glance,
)
from svqm.web.forms import read_figures, read_report_form
from svqm.web.schemas import FigurePublic, ReportFilePublic, ReportPublic, ReportReview
from svqm.workflow import awards as award_queries
from svqm.workflow import progress, reports
from svqm.workflow.models import FILED, AnnualReport, Award
from svqm.workflow.schemes import SchemeRegistry

router = APIRouter(prefix="/api/v1/awards", tags=["awards"])

_MULTIPART = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ReportFigures"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "period"],
                    "properties": {
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "a document filing's one file, or a report with "
                            "figures' supporting files (up to 20)",
                        },
                        "figures": {
                            "type": "string",
                            "description": "a report with figures: the JSON list of figures "
                            "per pledge (pledge_id, actual, narrative, private)",
                        },
                        "period": {"type": "string", "description": "the year reported on"},
                        "title": {"type": "string"},
                        "deadline": {
                            "type": "string",
                            "description": "which filing deadline this is for, when the scheme "
                            "has several (B Corp-style: annual_fee, updated_assessment)",
                        },
                    },
                }
            },
        },
    }
}


def reporting_award(session: Session, award_id: int, user: User) -> Award:
    """The award, if this person may read and file its reports: its holder's applicants, admins.

    Another organisation's award is not found, never forbidden: that would say it exists.
    """
    if user.role not in ("applicant", "admin"):
        raise PermissionDenied(f"a {user.role} may not see or file annual reports")
    award = award_queries.get_award(session, award_id)
    if user.role == "applicant" and award.organisation_id != user.organisation_id:
        raise NotFound(f"no award {award_id}")
    return award


def report_public(
    session: Session,
    registry: SchemeRegistry,
    report: AnnualReport,
    award: Award,
    figures: list[progress.PledgeProgress] | None = None,
) -> ReportPublic:
    policy = registry.for_subject(session, award).policy
    return ReportPublic(
        review=progress.review_of(policy, report),
        state=report.state,
        files=[
            ReportFilePublic(
                id=f.id or 0, filename=f.filename, size=f.size, content_type=f.content_type
            )
            for f in progress.files_of(session, report.id or 0)
        ],
        review_comment=report.review_comment,
        progress=[
            FigurePublic(
                pledge_id=f.pledge_id, actual=f.actual, narrative=f.narrative, private=f.private
            )
            for f in figures or []
        ],
        id=report.id or 0,
        award_id=report.award_id,
        deadline_kind=report.deadline_kind,
        period=report.period,
        title=report.title,
        filename=report.filename,
        sha256=report.sha256,
        size=report.size,
        content_type=report.content_type,
        submitted_at=report.submitted_at,
        award_state=award.state,
    )


def may_file(award_id: Id, request: Request, user: UploaderUser) -> User:
    """The filer, once they may file for this award: checked before the body is read, so
    nobody else's file is received at all."""
    with glance(request) as session:
        reporting_award(session, award_id, user)
    return user


Filer = Annotated[User, Depends(may_file)]


@router.get("/{award_id}/reports")
def list_reports(
    award_id: Id, user: ApiUser, session: SessionDep, registry: RegistryDep
) -> list[ReportPublic]:
    """The award's annual reports, newest first."""
    award = reporting_award(session, award_id, user)
    rows = filings.reports_of(session, award_id)
    figures = progress.figures_of(session, [r.id for r in rows if r.id is not None])
    return [report_public(session, registry, r, award, figures.get(r.id or 0)) for r in rows]


@router.post("/{award_id}/reports", status_code=status.HTTP_201_CREATED, openapi_extra=_MULTIPART)
async def file_report(
    award_id: Id,
    request: Request,
    user: Filer,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    store: StoreDep,
) -> ReportPublic:
    """File a report: JSON figures per pledge (`period`, `deadline`, `progress`), or multipart:
    a document (one `file`, `period`, `title`, `deadline`), or figures (`figures`: the JSON list
    of `progress`) with any number of supporting `file` parts, each through the evidence store's
    checks. On time it meets the deadline; figures enter the scheme's report workflow."""
    if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
        body = await read_figures(request)

        def save_figures() -> ReportPublic:
            award = reporting_award(session, award_id, user)
            figures = [progress.Figure(**f.model_dump()) for f in body.progress]
            report = progress.file_figures(
                session,
                award,
                period=body.period,
                figures=figures,
                actor=actor_of(user),
                registry=registry,
                now=now,
                deadline=body.deadline,
            )
            rows = progress.figures_of(session, [report.id or 0])[report.id or 0]
            return report_public(session, registry, report, award, rows)

        return await run_in_threadpool(save_figures)
    form = await read_report_form(request)

    def save() -> ReportPublic:
        # The request's unit of work connects only now that the body is in.
        award = reporting_award(session, award_id, user)
        if form.figures is not None:
            report = progress.file_figures(
                session,
                award,
                period=form.figures.period,
                figures=[progress.Figure(**f.model_dump()) for f in form.figures.progress],
                actor=actor_of(user),
                registry=registry,
                now=now,
                deadline=form.figures.deadline,
                store=store,
                files=form.files,
            )
            rows = progress.figures_of(session, [report.id or 0])[report.id or 0]
            return report_public(session, registry, report, award, rows)
        report = reports.file_report(
            session,
            award,
            store,
            period=form.period,
            stream=form.file,
            filename=form.filename,
            title=form.title,
            actor=actor_of(user),
            registry=registry,
            now=now,
            deadline=form.deadline or None,
        )
        return report_public(session, registry, report, award)

    try:
        return await run_in_threadpool(save)
    finally:
        form.close()


@router.post("/{award_id}/reports/{report_id}/review")
def review_report(
    award_id: Id,
    report_id: Id,
    body: ReportReview,
    user: ApiUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
) -> ReportPublic:
    """An assessor or an admin accepts a report's figures, or asks for more information."""
    if user.role not in ("assessor", "admin"):
        raise PermissionDenied("reports are reviewed by an assessor or an admin")
    award = award_queries.get_award(session, award_id)
    report = progress.get_report(session, award_id, report_id)
    if report.state == FILED:
        raise Conflict("this report is a document filing: it has no figures to review")
    progress.review_report(
        session,
        report,
        body.decision,
        comment=body.comment,
        visibility=body.visibility,
        actor=actor_of(user),
        registry=registry,
        now=now,
    )
    rows = progress.figures_of(session, [report_id])[report_id]
    return report_public(session, registry, report, award, rows)
