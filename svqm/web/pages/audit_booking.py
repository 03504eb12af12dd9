"""The audit start date: the applicant proposes dates (a task of the application), the assessor
or an admin confirms one, or moves it; and the assessor's calendar of audits (.ics)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from svqm.errors import GuardRefused, InvalidInput, PermissionDenied
from svqm.web.deps import CSRF, ApplicationCase, AssessorPage, Case, SettingsDep
from svqm.web.errors import status_of
from svqm.web.format import sentence
from svqm.web.forms import FormDep, attempt, date_of, field, version_of
from svqm.web.security import CalendarResponse
from svqm.web.ui import Errors, after_post, flash_of, render
from svqm.web.views import applicant as applicant_views
from svqm.web.views import audits as views
from svqm.web.views.calendar import assessor_feed
from svqm.workflow import audits

router = APIRouter(dependencies=[CSRF], include_in_schema=False)

DONE = {
    "proposed": "Dates proposed. We have told the scheme, who will confirm one.",
    "confirmed": "Audit start date confirmed. The organisation has been told.",
}


def _page(
    case: Case,
    *,
    status: int = 200,
    errors: Errors = None,
    flash: dict[str, str] | None = None,
    typed: list[dict[str, str]] | None = None,
    comment: str = "",
) -> HTMLResponse:
    tasks = applicant_views.task_list(case.session, case.registry, case.app, case.actor, case.now)
    booking = views.booking(case.session, case.registry, case.app, case.actor, case.now)
    count = booking.proposals
    if typed is None:
        typed = (
            [
                {"day": str(d.day), "month": str(d.month), "year": str(d.year)}
                for d in booking.proposed
            ]
            if booking.status == audits.PROPOSED and booking.may_propose
            else []
        )
        typed += [{"day": "", "month": "", "year": ""}] * (count - len(typed))
    context: dict[str, Any] = {**tasks.context(), **booking.context()}
    return render(
        case.request,
        "tasks/audit_dates.html",
        auth=case.auth,
        title="Audit start date",
        status=status,
        errors=errors,
        flash=flash,
        typed=typed,
        comment=comment,
        **context,
    )


@router.get("/applications/{application_id}/audit-dates")
def audit_dates(case: ApplicationCase, done: str = "") -> HTMLResponse:
    """The booking: the dates proposed, the start confirmed, and the form each side uses."""
    return _page(case, flash=flash_of(done, DONE))


@router.post("/applications/{application_id}/audit-dates", response_model=None)
def propose_dates(case: ApplicationCase, form: FormDep) -> Response:
    """The applicant proposes the policy's number of start dates (GOV.UK date inputs)."""
    if case.actor.role != "applicant":
        raise PermissionDenied("the organisation proposes its audit dates")
    booking = views.booking(case.session, case.registry, case.app, case.actor, case.now)
    typed: list[dict[str, str]] = []
    days: list[date] = []
    errors: list[dict[str, str]] = []
    for n in range(booking.proposals):
        parts = {p: field(form, f"date{n}-{p}", limit=10) for p in ("day", "month", "year")}
        typed.append(parts)
        found = date_of(parts["day"], parts["month"], parts["year"])
        if found is None:
            text = f"Enter date {n + 1} as a real date, for example 27 4 2026"
            errors.append({"text": text, "href": f"#date{n}-day"})
        else:
            days.append(found)
    if errors:
        return _page(case, status=422, errors=errors, typed=typed)

    def write() -> None:
        audits.propose(
            case.session,
            case.app,
            days,
            actor=case.actor,
            registry=case.registry,
            now=case.now,
            expected_version=version_of(form),
        )

    if failure := attempt(case.session, write):
        if isinstance(failure, GuardRefused):
            errors = [
                {"text": sentence(r), "href": f"#{_input_of(getattr(r, 'field', None))}"}
                for r in failure.unmet
            ]
        else:
            errors = [{"text": sentence(failure.detail), "href": "#date0-day"}]
        return _page(case, status=status_of(failure), errors=errors, typed=typed)
    return after_post(f"/applications/{case.app.id}/audit-dates", "proposed")


def _input_of(where: str | None) -> str:
    """The first box of the date input a refusal names ('dates.1' is the second date)."""
    if where and where.startswith("dates."):
        return f"date{where.removeprefix('dates.')}-day"
    return "date0-day"


@router.post("/applications/{application_id}/audit-dates/confirm", response_model=None)
def confirm_date(case: ApplicationCase, form: FormDep) -> Response:
    """The assessor or an admin confirms one of the proposed dates (again, to move the audit)."""
    if case.actor.role not in ("assessor", "admin"):
        raise PermissionDenied("the assessor or an admin confirms the audit date")
    chosen = field(form, "date", limit=10)
    comment = field(form, "comment", limit=2000)
    try:
        day = date.fromisoformat(chosen)
    except ValueError:
        day = None
    if day is None:
        errors = [{"text": "Choose the date the audit starts", "href": "#date"}]
        return _page(case, status=422, errors=errors, comment=comment)

    def write() -> None:
        audits.confirm(
            case.session,
            case.app,
            day,
            actor=case.actor,
            registry=case.registry,
            now=case.now,
            comment=comment,
            expected_version=version_of(form),
        )

    if failure := attempt(case.session, write):
        href = "#date" if isinstance(failure, InvalidInput) else "#main-content"
        errors = [{"text": sentence(failure.detail), "href": href}]
        return _page(case, status=status_of(failure), errors=errors, comment=comment)
    return after_post(f"/applications/{case.app.id}/audit-dates", "confirmed")


@router.get("/assess/calendar.ics", response_model=None)
def assessor_calendar(page: AssessorPage, settings: SettingsDep) -> Response:
    """The assessor's audits and the deadlines of the applications assigned to them."""
    body = assessor_feed(
        page.session, page.registry, page.auth.user, base_url=settings.BASE_URL, now=page.now
    )
    return CalendarResponse(body)
