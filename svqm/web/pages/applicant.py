"""The applicant's pages: dashboard, application task list, pledges, evidence uploads, submission."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from svqm.accounts.models import Organisation
from svqm.errors import GuardRefused, NotFound, SvqmError
from svqm.evidence import service as evidence_service
from svqm.web.api.evidence import attachment
from svqm.web.deadline_views import DeadlineView, describe
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
from svqm.web.pages import flash_of
from svqm.web.pages.account import page
from svqm.web.pages.applicant_views import (
    DONE,
    EVENT_DONE,
    ROLE_NAMES,
    application_page_response,
    day,
    level_label,
    moment,
    not_found,
    problem,
    sentence,
    state_tag,
    trigger_title,
)
from svqm.workflow import queries, schedule
from svqm.workflow import service as workflow
from svqm.workflow.models import Application
from svqm.workflow.schemes import SchemeRegistry

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

FormText = Annotated[str, Form()]
# --- dashboard --------------------------------------------------------------------------------


def _dashboard(
    request: Request,
    who: PageAuth,
    session: Session,
    registry: SchemeRegistry,
    now: datetime,
    *,
    status_code: int = 200,
    errors: list[dict[str, str]] | None = None,
    chosen: dict[str, str] | None = None,
    flash: dict[str, str] | None = None,
) -> HTMLResponse:
    org = session.get(Organisation, who.user.organisation_id)
    # The deadlines are the schedule's rows, the same ones the reminders and the calendar use.
    rows = schedule.upcoming(session, organisation_id=who.user.organisation_id or 0)
    upcoming = describe(session, registry, rows)
    soonest: dict[tuple[str, int], DeadlineView] = {}
    for view in upcoming:
        soonest.setdefault((view.subject_kind, view.subject_id), view)
    applications = []
    for app in queries.list_applications(session, who.actor):
        policy = registry.for_subject(session, app).policy
        first = soonest.get(("application", app.id or 0))
        applications.append(
            {
                "id": app.id,
                "href": f"/applications/{app.id}",
                "scheme": policy.name,
                "level": level_label(policy.level(app.level)),
                "state": state_tag(policy.workflows.application, app.state),
                "deadline": f"{first.label}: {day(first.due_at)}" if first else "None",
            }
        )
    awards = []
    for award in queries.organisation_awards(session, who.user.organisation_id or 0):
        policy = registry.for_subject(session, award).policy
        awards.append(
            {
                "id": award.id,
                "scheme": policy.name,
                "level": level_label(policy.level(award.level)),
                "certificate": award.certificate_number,
                "state": state_tag(policy.workflows.award, award.state),
                "expires": day(award.expires_at),
                "href": f"/awards/{award.id}/verify",
                "page": f"/dashboard/awards/{award.id}",
            }
        )
    chosen = chosen or {"scheme": "", "level": ""}
    schemes = [
        {"value": sid, "text": s.policy.name, "selected": sid == chosen["scheme"]}
        for sid, s in registry.current.items()
    ]
    # "scheme:level": levels of different schemes share ids and aliases ("Bronze", "silver").
    levels = [
        {
            "group": s.policy.name,
            "options": [
                {
                    "value": f"{sid}:{lv.id}",
                    "text": level_label(lv),
                    "selected": f"{sid}:{lv.id}" == chosen["level"],
                }
                for lv in s.policy.levels
            ],
        }
        for sid, s in registry.current.items()
    ]
    return page(
        request,
        "applicant/dashboard.html",
        auth=who,
        status_code=status_code,
        title="Your dashboard",
        organisation=org.name if org else "",
        applications=applications,
        awards=awards,
        schemes=schemes,
        levels=levels,
        errors=errors,
        flash=flash,
        upcoming=[
            {
                "due": day(v.due_at),
                "label": v.label,
                "what": v.subject,
                "href": v.applicant_path,
                "overdue": v.overdue(now),
            }
            for v in upcoming[:10]
        ],
    )


@router.get("/dashboard")
def dashboard(
    request: Request,
    who: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    done: str = "",
) -> HTMLResponse:
    """The organisation's applications, awards and deadlines, and a form to start applying."""
    if who.user.role != "applicant":
        return problem(
            request,
            who,
            403,
            "This page is for applicants",
            "The dashboard shows an organisation's own applications. Use your own "
            "home page instead.",
        )
    return _dashboard(request, who, session, registry, now, flash=flash_of(done, DONE))


@router.post("/applications", response_model=None)
def start_application(
    request: Request,
    who: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    scheme: FormText = "",
    level: FormText = "",
) -> Response:
    """Open an application for a level, then show it."""
    if who.user.role != "applicant":
        return problem(
            request,
            who,
            403,
            "This page is for applicants",
            "Only an applicant organisation can start an application here.",
        )
    chosen = {"scheme": scheme, "level": level}
    scheme_id, level_id = scheme, level
    if ":" in level:
        scheme_id, _, level_id = level.partition(":")
        if scheme and scheme != scheme_id:
            names = {sid: s.policy.name for sid, s in registry.current.items()}
            text = (
                f"The level you chose is a level of {names.get(scheme_id, 'another scheme')}"
                f". Choose a level listed under {names.get(scheme, 'the scheme you chose')}"
                f", or change the scheme"
            )
            return _dashboard(
                request,
                who,
                session,
                registry,
                now,
                status_code=422,
                errors=[{"text": text, "href": "#level"}],
                chosen=chosen,
            )
    try:
        with session.begin_nested():
            app = workflow.open_application(
                session,
                organisation_id=who.user.organisation_id or 0,
                scheme_id=scheme_id[:64],
                level=level_id[:64],
                actor=who.actor,
                registry=registry,
                now=now,
            )
    except SvqmError as exc:
        errors = [{"text": sentence(exc.detail), "href": "#level"}]
        if isinstance(exc, GuardRefused):
            errors += [{"text": sentence(r), "href": "#level"} for r in exc.unmet]
        return _dashboard(
            request,
            who,
            session,
            registry,
            now,
            errors=errors,
            status_code=422 if isinstance(exc, NotFound) else status_of(exc),
            chosen=chosen,
        )
    return RedirectResponse(f"/applications/{app.id}?done=opened", status_code=303)


# --- the application page ---------------------------------------------------------------------


def load_application(session: Session, application_id: Id, who: PageAuth) -> Application | None:
    try:
        return queries.get_application(session, application_id, who.actor)
    except NotFound:
        return None


@router.get("/applications/{application_id}", response_model=None)
def application_page(
    application_id: Id,
    request: Request,
    who: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    done: str = "",
) -> Response:
    """The application as a task list: pledges, evidence, submission (read-only for staff)."""
    app = load_application(session, application_id, who)
    if app is None:
        return not_found(request, who)
    flash = flash_of(done, DONE)
    if flash is None and done.startswith("event-"):
        trigger = done.removeprefix("event-")
        wf = registry.for_subject(session, app).policy.workflows.application
        if any(t.trigger == trigger for t in wf.transitions):
            flash = {
                "type": "success",
                "text": EVENT_DONE.get(trigger, f"{trigger_title(wf, trigger)}: done."),
            }
    return application_page_response(request, who, session, registry, now, app, flash=flash)


@router.get("/applications/{application_id}/history", response_model=None)
def history_page(
    application_id: Id,
    request: Request,
    who: PageUser,
    session: SessionDep,
    registry: RegistryDep,
) -> Response:
    """The application's audit trail, newest first."""
    app = load_application(session, application_id, who)
    if app is None:
        return not_found(request, who)
    policy = registry.for_subject(session, app).policy
    wf = policy.workflows.application
    states = {s.name: s.title for s in wf.states}
    events = [
        {
            "when": moment(e.at),
            "what": trigger_title(wf, e.trigger),
            "who": "You"
            if e.actor_id is not None and e.actor_id == who.user.id
            else ROLE_NAMES.get(e.actor_role, e.actor_role),
            "source": states.get(e.source, e.source),
            "dest": states.get(e.dest, e.dest),
            "moved": e.source != e.dest,
            "comment": e.comment,
        }
        for e in reversed(workflow.history(session, app))
    ]
    return page(
        request,
        "applicant/history.html",
        auth=who,
        title=f"History of application {app.id}",
        events=events,
        app={"id": app.id, "scheme": policy.name, "level": level_label(policy.level(app.level))},
    )


@router.get("/evidence/{evidence_id}/download", response_model=None)
def download_evidence(
    evidence_id: Id, request: Request, who: PageUser, session: SessionDep, store: StoreDep
) -> Response:
    """The stored file of one evidence version, for those who may see its application."""
    try:
        item = evidence_service.get_evidence(session, evidence_id)
        queries.get_application(session, item.application_id, who.actor)
    except NotFound:
        return not_found(request, who)
    return attachment(str(store.path_for(item.sha256)), item.filename, item.content_type)
