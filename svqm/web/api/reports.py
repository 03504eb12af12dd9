"""JSON: an award's annual reports, and filing one (multipart, streamed to the store like evidence)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from svqm.accounts.models import User
from svqm.errors import NotFound, PermissionDenied
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
from svqm.web.forms import read_report_form
from svqm.web.schemas import ReportPublic
from svqm.workflow import awards as award_queries
from svqm.workflow import reports
from svqm.workflow.models import Award

router = APIRouter(prefix="/api/v1/awards", tags=["awards"])

_MULTIPART = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "period"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "period": {"type": "string", "description": "the year reported on"},
                        "title": {"type": "string"},
                        "deadline": {
                            "type": "string",
                            "description": "which filing deadline this is for, when the scheme "
                            "has several (B Corp-style: annual_fee, updated_assessment)",
                        },
                    },
                }
            }
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


def report_public(report: reports.AnnualReport, award: Award) -> ReportPublic:
    return ReportPublic(
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
def list_reports(award_id: Id, user: ApiUser, session: SessionDep) -> list[ReportPublic]:
    """The award's annual reports, newest first."""
    award = reporting_award(session, award_id, user)
    return [report_public(r, award) for r in filings.reports_of(session, award_id)]


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
    """File a report (multipart: file, period, title, deadline); on time it meets the deadline."""
    form = await read_report_form(request)

    def save() -> ReportPublic:
        # The request's unit of work connects only now that the body is in.
        award = reporting_award(session, award_id, user)
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
        return report_public(report, award)

    try:
        return await run_in_threadpool(save)
    finally:
        form.close()
