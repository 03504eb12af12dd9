"""The panel's pages: decisions to confirm or overturn, and appeals.

Also the case file the assessor, the panel and admins all read (evidence, scores, history), and
the trigger forms their pages share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, col, select
from starlette.datastructures import FormData

from svqm.accounts.models import Organisation, User
from svqm.errors import NotFound, SvqmError
from svqm.evidence import requirements as evidence_requirements
from svqm.evidence import service as evidence_service
from svqm.evidence.models import Score
from svqm.web.deps import Id, NowDep, PageAuth, PageUser, RegistryDep, SessionDep, verify_csrf
from svqm.web.pages import flash_of
from svqm.web.pages.public import (
    FormDep,
    after_post,
    attempt,
    error_page,
    field,
    only,
    show,
    version_of,
)
from svqm.workflow import deadlines, queries
from svqm.workflow import service as workflow
from svqm.workflow.models import Application
from svqm.workflow.schemes import SchemeRegistry

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

# --- what the assessor, the panel and admins all read of a case --------------------------------


@dataclass
class TriggerForm:
    trigger: str
    title: str
    ready: bool
    unmet: list[str]
    needs_comment: bool


def trigger_forms(
    session: Session,
    subject: workflow.Subject,
    auth: PageAuth,
    registry: SchemeRegistry,
    now: datetime,
) -> list[TriggerForm]:
    """The triggers the person may fire now, and those not ready yet with every unmet reason."""
    ready, unmet = workflow.available(
        session, subject, actor=auth.actor, registry=registry, now=now
    )
    flow = registry.for_subject(session, subject).policy.workflows.of(workflow.kind_of(subject))
    return [
        TriggerForm(
            t.trigger,
            t.title,
            t.trigger in ready,
            unmet.get(t.trigger, []),
            "has_comment" in t.guards,
        )
        for t in flow.transitions
        if subject.state in t.source and (t.trigger in ready or t.trigger in unmet)
    ]


def trigger_titles(registry: SchemeRegistry) -> dict[str, str]:
    """Success messages for `?done=<trigger>`, from the policies' own transition titles."""
    flows = [
        w
        for s in registry.current.values()
        for w in (s.policy.workflows.application, s.policy.workflows.award)
    ]
    return {t.trigger: f"Done: {t.title.lower()}." for wf in flows for t in wf.transitions}


def fire_from(
    form: FormData,
    session: Session,
    subject: workflow.Subject,
    trigger: str,
    auth: PageAuth,
    registry: SchemeRegistry,
    now: datetime,
) -> SvqmError | None:
    """Fire a trigger with the posted comment and version; a refusal undoes it all."""

    def write() -> None:
        version, comment = version_of(form), field(form, "comment")
        workflow.fire(
            session,
            subject,
            trigger,
            actor=auth.actor,
            registry=registry,
            now=now,
            comment=comment,
            expected_version=version,
        )

    return attempt(session, write)


def organisation_name(session: Session, organisation_id: Id) -> str:
    org = session.get(Organisation, organisation_id)
    return org.name if org else f"Organisation {organisation_id}"


def organisation_names(session: Session, ids: set[int]) -> dict[int, str]:
    """Names of these organisations, in one query."""
    if not ids:
        return {}
    rows = session.exec(
        select(Organisation.id, Organisation.name).where(col(Organisation.id).in_(ids))
    )
    return {int(oid): name for oid, name in rows if oid is not None}


def people(session: Session, ids: set[int | None]) -> dict[int, str]:
    """Display names of the people who acted on a case."""
    users = [session.get(User, uid) for uid in ids if uid is not None]
    return {u.id: f"{u.name or u.email} ({u.role})" for u in users if u is not None and u.id}


def next_deadline(
    session: Session, registry: SchemeRegistry, app: Application, now: datetime
) -> dict[str, Any] | None:
    """The soonest running deadline of an application, with its label."""
    policy = registry.for_subject(session, app).policy
    assert app.id is not None
    running = queries.open_deadlines(session, app.id)
    if not running:
        return None
    return {"label": deadlines.deadline(policy, running[0][0]).label, "due_at": running[0][1]}


def _scores(session: Session, application_id: Id) -> dict[str, int]:
    """The current score of every question, keyed 'standard/question' (no service lists them)."""
    rows = session.exec(select(Score).where(Score.application_id == application_id))
    return {f"{r.standard}/{r.question}": r.score for r in rows}


def case_context(
    session: Session, registry: SchemeRegistry, app: Application, auth: PageAuth, now: datetime
) -> dict[str, Any]:
    """Everything about one application that a reviewer, the panel or an admin reads."""
    assert app.id is not None
    policy = registry.for_subject(session, app).policy
    level = policy.level(app.level)
    slots = evidence_requirements.checklist(
        session, application_id=app.id, policy=policy, level=level
    )
    items = {i.id: i for s in slots for i in s.items if i.id is not None}
    reviews = evidence_service.reviews_of(session, list(items))
    events = workflow.history(session, app)
    actors = {e.actor_id for e in events} | {r.reviewer_id for r in reviews} | {app.assessor_id}
    result = evidence_service.score_result(
        session, application_id=app.id, policy=policy, level=level
    )
    context = {
        "app": app,
        "policy": policy,
        "level": level,
        "state": policy.workflows.application.state(app.state),
        "organisation": organisation_name(session, app.organisation_id),
        "slots": slots,
        "evidence_items": items,
        "reviews": reviews,
        "events": events,
        "state_titles": {s.name: s.title for s in policy.workflows.application.states},
        "names": people(session, actors),
        "standards": [policy.standard(sid) for sid in level.standards],
        "result": result,
        "scores": _scores(session, app.id),
        "deadline": next_deadline(session, registry, app, now),
        "forms": trigger_forms(session, app, auth, registry, now),
    }
    return context | {"ctx": context}


def filter_options(registry: SchemeRegistry) -> dict[str, dict[str, str]]:
    """The choices of the state, level and scheme filters, from every current scheme."""
    states: dict[str, str] = {}
    levels: dict[str, str] = {}
    for s in registry.current.values():
        for st in s.policy.workflows.application.states:
            states.setdefault(st.name, st.title)
        for lv in sorted(s.policy.levels, key=lambda lv: lv.rank):
            levels.setdefault(lv.id, lv.name)
    schemes = {sid: s.policy.name for sid, s in registry.current.items()}
    return {"states": states, "levels": levels, "schemes": schemes}


def application_rows(
    session: Session,
    registry: SchemeRegistry,
    apps: list[Application],
    now: datetime,
    due_by: date | None = None,
) -> list[dict[str, Any]]:
    """Lines of a queue: organisation, scheme, level, state, next deadline."""
    rows = []
    # One query for every name: the identity map holds rows weakly, so per-row gets re-query.
    names = organisation_names(session, {a.organisation_id for a in apps})
    for app in apps:
        policy = registry.for_subject(session, app).policy
        deadline = next_deadline(session, registry, app, now)
        if due_by is not None and (deadline is None or deadline["due_at"].date() > due_by):
            continue
        row = {"app": app, "organisation": names.get(app.organisation_id, "")}
        row |= {"scheme": policy.name, "level": policy.level(app.level).name, "deadline": deadline}
        rows.append(row | {"state": policy.workflows.application.state(app.state).title})
    return rows


# --- the panel's pages ---------------------------------------------------------------------------


def _panel_states(registry: SchemeRegistry) -> list[str]:
    """Application states in which the panel has a decision to make, in policy order."""
    states: list[str] = []
    for s in registry.current.values():
        for t in s.policy.workflows.application.transitions:
            if "panel" in t.roles:
                states += [src for src in t.source if src not in states]
    return states


@router.get("/panel")
def decisions(
    request: Request,
    auth: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    done: str = "",
) -> HTMLResponse:
    """Recommendations awaiting a decision, and appeals, grouped by where they stand."""
    if denied := only(request, auth, "panel"):
        return denied
    apps: list[Application] = []
    for state in _panel_states(registry):
        filters = queries.ApplicationFilter(state=state)
        apps += queries.list_applications(session, auth.actor, filters)
    # Each application follows the policy it started under: keep those whose own workflow
    # offers the panel a step now.
    rows = [(a.id or 0, a.state, a.policy_digest) for a in apps]
    offered = workflow.offered_for_rows(session, rows, role="panel", registry=registry)
    waiting = {aid for aid, _, triggers in offered if triggers}
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in application_rows(session, registry, [a for a in apps if a.id in waiting], now):
        groups.setdefault(row["state"], []).append(row)
    flash = flash_of(done, trigger_titles(registry))
    return show(
        request, "panel/queue.html", auth, "Decisions for the panel", flash=flash, groups=groups
    )


def _screen(
    request: Request,
    auth: PageAuth,
    session: Session,
    registry: SchemeRegistry,
    now: datetime,
    app: Application,
    **page: Any,
) -> HTMLResponse:
    """The decision screen; `page` carries a failure (with its href) or a flash message."""
    context = case_context(session, registry, app, auth, now)
    title = f"Decide on the application from {context['organisation']}"
    return show(request, "panel/case.html", auth, title, **page, **context)


def load_case(
    request: Request, auth: PageAuth, session: Session, application_id: Id, role: str
) -> Application | HTMLResponse:
    """The application if the person has the role and may see it; else a 403 or 404 page."""
    if denied := only(request, auth, role):
        return denied
    try:
        return queries.get_application(session, application_id, auth.actor)
    except NotFound as exc:
        return error_page(request, exc, auth)


@router.get("/panel/{application_id}")
def case(
    request: Request,
    application_id: Id,
    auth: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    done: str = "",
) -> HTMLResponse:
    """The application, the assessor's recommendation and comments, scores, evidence, decisions."""
    app = load_case(request, auth, session, application_id, "panel")
    if isinstance(app, Response):
        return app
    flash = flash_of(done, trigger_titles(registry))
    return _screen(request, auth, session, registry, now, app, flash=flash)


@router.post("/panel/{application_id}/events/{trigger}")
def decide(
    request: Request,
    application_id: Id,
    trigger: str,
    auth: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    form: FormDep,
) -> Response:
    """Confirm or overturn a recommendation, or uphold or dismiss an appeal (four eyes apply)."""
    app = load_case(request, auth, session, application_id, "panel")
    if isinstance(app, Response):
        return app
    if failure := fire_from(form, session, app, trigger, auth, registry, now):
        href = f"#trigger-{trigger}"
        return _screen(request, auth, session, registry, now, app, failure=failure, href=href)
    return after_post(f"/panel/{application_id}", trigger)
