"""The applicant's form posts on an application: pledges, evidence uploads, workflow events."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from svqm.errors import GuardRefused, StaleVersion, SvqmError
from svqm.evidence.models import PledgeCreate
from svqm.web.deps import (
    Id,
    NowDep,
    PageAuth,
    PageUser,
    RegistryDep,
    SessionDep,
    StoreDep,
    verify_csrf,
)
from svqm.web.errors import status_of
from svqm.web.pages.account import FormText
from svqm.web.pages.applicant import load_application
from svqm.web.pages.applicant_views import (
    PLEDGE_FIELDS,
    STALE,
    application_page_response,
    dom_id,
    not_found,
    sentence,
)
from svqm.web.uploads import read_upload_form
from svqm.workflow import actions
from svqm.workflow import service as workflow
from svqm.workflow.schemes import SchemeRegistry

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)


def _due_date(day_: str, month: str, year: str) -> date | None:
    try:
        return date(int(year), int(month), int(day_))
    except ValueError:
        return None


_PLEDGE_MESSAGES = {
    "theme": "Choose a theme for the pledge",
    "title": "Enter a title for the pledge (up to 200 characters)",
    "description": "The description must be 5,000 characters or fewer",
    "indicator": "Enter the key value indicator (up to 500 characters)",
    "target": "Enter the target (up to 200 characters)",
}


@router.post("/applications/{application_id}/pledges", response_model=None)
def add_pledge(
    application_id: Id,
    request: Request,
    who: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
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
    app = load_application(session, application_id, who)
    if app is None:
        return not_found(request, who)
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
    due = _due_date(typed["day"], typed["month"], typed["year"])
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
        errors.append(
            {"text": "Enter a real due date, for example 31 3 2027", "href": "#due_date-day"}
        )
    status_code = 422
    if not errors:
        try:
            with session.begin_nested():
                actions.add_pledge(session, app, data, actor=who.actor, registry=registry, now=now)
        except SvqmError as exc:
            field = (
                "due_date-day"
                if "due date" in exc.detail
                else ("theme" if "theme" in exc.detail else "pledges")
            )
            errors = [{"text": sentence(exc.detail), "href": f"#{field}"}]
            status_code = status_of(exc)
    if errors:
        return application_page_response(
            request,
            who,
            session,
            registry,
            now,
            app,
            errors=errors,
            status_code=status_code,
            pledge_form=typed,
        )
    return RedirectResponse(f"/applications/{app.id}?done=pledge-added#pledges", status_code=303)


def _refuse_upload(
    request: Request,
    who: PageAuth,
    session: Session,
    registry: SchemeRegistry,
    now: datetime,
    application_id: Id,
    status_code: int,
    upload: dict[str, str],
) -> Response:
    app = load_application(session, application_id, who)
    if app is None:
        return not_found(request, who)
    return application_page_response(
        request, who, session, registry, now, app, status_code=status_code, upload=upload
    )


@router.post("/applications/{application_id}/evidence", response_model=None)
async def upload_evidence(
    application_id: Id,
    request: Request,
    who: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    store: StoreDep,
) -> Response:
    """Upload a file for one checklist slot (multipart: file, requirement, title)."""
    try:
        form = await read_upload_form(request)
    except SvqmError as exc:
        raw = await request.form()
        slot, title = str(raw.get("requirement") or ""), str(raw.get("title") or "")
        text = "Choose a file to upload" if "'file'" in exc.detail else sentence(exc.detail)
        return await run_in_threadpool(
            _refuse_upload,
            request,
            who,
            session,
            registry,
            now,
            application_id,
            status_of(exc),
            {"slot": slot, "title": title[:200], "error": text},
        )

    def save() -> Response:
        # The request's own session, used from this thread only while the route waits.
        app = load_application(session, application_id, who)
        if app is None:
            return not_found(request, who)
        if not form.filename:
            # A browser sends an empty, nameless file part when none was chosen.
            return application_page_response(
                request,
                who,
                session,
                registry,
                now,
                app,
                status_code=422,
                upload={
                    "slot": form.requirement,
                    "title": form.title,
                    "error": "Choose a file to upload",
                },
            )
        try:
            with session.begin_nested():
                actions.upload_evidence(
                    session,
                    app,
                    store,
                    requirement=form.requirement,
                    pledge_id=form.pledge_id,
                    stream=form.file,
                    filename=form.filename,
                    title=form.title,
                    actor=who.actor,
                    registry=registry,
                    now=now,
                )
        except SvqmError as exc:
            return application_page_response(
                request,
                who,
                session,
                registry,
                now,
                app,
                status_code=status_of(exc),
                upload={
                    "slot": form.requirement,
                    "title": form.title,
                    "error": sentence(exc.detail),
                },
            )
        return RedirectResponse(
            f"/applications/{app.id}?done=evidence-uploaded#{dom_id(form.requirement)}",
            status_code=303,
        )

    try:
        return await run_in_threadpool(save)
    finally:
        form.close()


@router.post("/applications/{application_id}/events/{trigger}", response_model=None)
def fire_event(
    application_id: Id,
    trigger: str,
    request: Request,
    who: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    comment: FormText = "",
    version: FormText = "",
) -> Response:
    """Fire a workflow trigger (submit, resubmit, withdraw, appeal) with the page's version."""
    app = load_application(session, application_id, who)
    if app is None:
        return not_found(request, who)
    wf = registry.for_subject(session, app).policy.workflows.application
    known = any(t.trigger == trigger for t in wf.transitions)
    anchor = f"#trigger-{trigger}" if known else "#submit"
    # A form without its version is treated as stale: it cannot prove it saw the latest.
    expected = int(version) if version.strip().isdigit() else -1
    try:
        with session.begin_nested():
            workflow.fire(
                session,
                app,
                trigger,
                actor=who.actor,
                registry=registry,
                now=now,
                comment=comment[:5000],
                expected_version=expected,
            )
    except SvqmError as exc:
        session.refresh(app)
        if isinstance(exc, GuardRefused):
            comment_field = f"#comment-{trigger}" if known else anchor
            errors = [
                {"text": sentence(r), "href": comment_field if "comment" in r else anchor}
                for r in exc.unmet
            ]
        elif isinstance(exc, StaleVersion):
            errors = [{"text": STALE, "href": "#submit"}]
        else:
            errors = [{"text": sentence(exc.detail), "href": anchor}]
        return application_page_response(
            request,
            who,
            session,
            registry,
            now,
            app,
            errors=errors,
            status_code=status_of(exc),
            comment={"trigger": trigger if known else "", "text": comment[:5000]},
        )
    return RedirectResponse(f"/applications/{app.id}?done=event-{trigger}", status_code=303)
