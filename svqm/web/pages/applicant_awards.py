"""The award holder's pages: an award's deadlines and annual reports, filing the year's report, and
the organisation's deadline calendar (.ics) downloaded with the page session.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from svqm.accounts.models import Organisation
from svqm.errors import Conflict, InvalidInput, NotFound, SvqmError
from svqm.web.calendar import CalendarResponse, organisation_feed
from svqm.web.deadline_views import describe, status_tag
from svqm.web.deps import (
    Id,
    NowDep,
    PageAuth,
    PageUser,
    RegistryDep,
    SessionDep,
    SettingsDep,
    StoreDep,
    verify_csrf,
)
from svqm.web.errors import status_of
from svqm.web.pages import flash_of
from svqm.web.pages.account import page
from svqm.web.pages.applicant_views import (
    day,
    file_size,
    level_label,
    not_found,
    problem,
    sentence,
    state_tag,
)
from svqm.web.uploads import read_report_form
from svqm.workflow import queries, reports, schedule
from svqm.workflow.deadlines import add_months
from svqm.workflow.models import Award
from svqm.workflow.schemes import SchemeRegistry

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

DONE = {"report-filed": "Annual report filed. Thank you."}
_FILE, _PERIOD = "#report-file", "#period"


def _applicants_only(request: Request, who: PageAuth) -> Response | None:
    if who.user.role == "applicant":
        return None
    return problem(
        request,
        who,
        403,
        "This page is for applicants",
        "Award holders' reports and deadlines are on their own dashboard. Use your own home "
        "page instead.",
    )


def _own_award(session: Session, award_id: int, who: PageAuth) -> Award | None:
    """The award if it is the person's organisation's (anything else is simply not found)."""
    try:
        award = queries.get_award(session, award_id)
    except NotFound:
        return None
    return award if award.organisation_id == who.user.organisation_id else None


def _period_of(due: datetime) -> str:
    """The reporting year that ends at `due`, as '2026-27'."""
    start = add_months(due, -12)
    return f"{start.year}-{due.year % 100:02d}"


def _award_page(
    request: Request,
    who: PageAuth,
    session: Session,
    registry: SchemeRegistry,
    now: datetime,
    award: Award,
    *,
    status_code: int = 200,
    errors: list[dict[str, str]] | None = None,
    entered: dict[str, str] | None = None,
    flash: dict[str, str] | None = None,
) -> Response:
    policy = registry.for_subject(session, award).policy
    assert award.id is not None
    rows = describe(session, registry, schedule.for_subject(session, "award", award.id))
    # What can be filed now: each filing deadline of the scheme that a filing would meet on time,
    # or that is overdue and whose late filing the award's state allows (the same test the
    # filing itself applies).
    filings = []
    for d in reports.filing_deadlines(policy):
        late, on_time = reports.filing_status(policy, award, d)
        if late or on_time:
            row = next((r for r in rows if r.kind == d.kind and r.status == "open"), None)
            filings.append(
                {
                    "kind": d.kind,
                    "label": d.label,
                    "overdue": late,
                    "due": day(row.due_at) if row else "",
                    "period": _period_of(row.due_at) if row else "",
                }
            )
    entered = entered or {
        "period": next((f["period"] for f in filings if f["period"]), ""),
        "title": "",
        "deadline": filings[0]["kind"] if len(filings) == 1 else "",
    }
    labels = {d.kind: d.label for d in reports.filing_deadlines(policy)}
    context: dict[str, Any] = {
        "award": {
            "id": award.id,
            "scheme": policy.name,
            "level": level_label(policy.level(award.level)),
            "certificate": award.certificate_number,
            "state": state_tag(policy.workflows.award, award.state),
            "issued": day(award.issued_at),
            "expires": day(award.expires_at),
            "verify": f"/awards/{award.id}/verify",
        },
        "deadlines": [
            {"label": r.label, "due": day(r.due_at), "tag": status_tag(r, now)}
            for r in reversed(rows)
        ],
        "reports": [
            {
                "period": r.period,
                "for": labels.get(r.deadline_kind, r.deadline_kind),
                "title": r.title,
                "filename": r.filename,
                "size": file_size(r.size),
                "filed": day(r.submitted_at),
            }
            for r in reports.reports_of(session, award.id)
        ],
        "filings": filings,
        "several_filings": len(reports.filing_deadlines(policy)) > 1,
        "entered": entered,
    }
    org = session.get(Organisation, award.organisation_id)
    return page(
        request,
        "applicant/award.html",
        auth=who,
        status_code=status_code,
        title=f"{context['award']['level']} award",
        organisation=org.name if org else "",
        errors=errors,
        flash=flash,
        **context,
    )


@router.get("/dashboard/calendar.ics", response_model=None)
def calendar_download(
    request: Request,
    who: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    """The organisation's deadline feed, as the API serves it, for a browser signed in."""
    if denied := _applicants_only(request, who):
        return denied
    org = session.get(Organisation, who.user.organisation_id)
    if org is None:
        return not_found(request, who)
    return CalendarResponse(
        organisation_feed(session, registry, org, base_url=settings.BASE_URL, now=now)
    )


@router.get("/dashboard/awards/{award_id}", response_model=None)
def award_page(
    award_id: Id,
    request: Request,
    who: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    done: str = "",
) -> Response:
    """One of the organisation's awards: its deadlines, its reports, and the form to file one."""
    if denied := _applicants_only(request, who):
        return denied
    award = _own_award(session, award_id, who)
    if award is None:
        return not_found(request, who)
    flash = flash_of(done, DONE)
    return _award_page(request, who, session, registry, now, award, flash=flash)


def _refusal(exc: SvqmError) -> dict[str, str]:
    """The error summary entry for a refused report, pointing at the field it is about."""
    if exc.detail.startswith("period") or "reporting period" in exc.detail:
        return {"text": "Enter the period the report covers, for example 2026-27", "href": _PERIOD}
    if "'file'" in exc.detail:
        return {"text": "Choose the report file to upload", "href": _FILE}
    if exc.detail.startswith("deadline"):
        return {"text": "Choose what you are filing", "href": "#deadline"}
    if isinstance(exc, Conflict):
        return {"text": sentence(exc.detail), "href": "#reports"}
    return {"text": sentence(exc.detail), "href": _FILE}


@router.post("/dashboard/awards/{award_id}/reports", response_model=None)
async def file_report(
    award_id: Id,
    request: Request,
    who: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    store: StoreDep,
) -> Response:
    """File the year's report (multipart: file, period, title) and go back to the award."""
    if denied := _applicants_only(request, who):
        return denied
    # The request's own session, used from a worker thread only while the route waits.
    award = await run_in_threadpool(_own_award, session, award_id, who)
    if award is None:
        return not_found(request, who)
    raw = await request.form()
    entered = {k: str(raw.get(k) or "")[:200] for k in ("period", "title", "deadline")}

    def refuse(exc: SvqmError) -> Response:
        return _award_page(
            request,
            who,
            session,
            registry,
            now,
            award,
            status_code=status_of(exc),
            errors=[_refusal(exc)],
            entered=entered,
        )

    try:
        form = await read_report_form(request)
    except SvqmError as exc:
        return await run_in_threadpool(refuse, exc)

    def save() -> Response:
        try:
            if not form.filename:
                # A browser sends an empty, nameless file part when none was chosen.
                raise InvalidInput("the form has no 'file' field with a file in it")
            with session.begin_nested():
                reports.file_report(
                    session,
                    award,
                    store,
                    period=form.period,
                    stream=form.file,
                    filename=form.filename,
                    title=form.title,
                    actor=who.actor,
                    registry=registry,
                    now=now,
                    deadline=form.deadline or None,
                )
        except SvqmError as exc:
            return refuse(exc)
        return RedirectResponse(
            f"/dashboard/awards/{award_id}?done=report-filed#reports", status_code=303
        )

    try:
        return await run_in_threadpool(save)
    finally:
        form.close()
