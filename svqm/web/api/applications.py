"""JSON: applications, their pledges, evidence checklist, scores, history and workflow events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from svqm.accounts.models import STAFF_ROLES, User
from svqm.evidence import pledges as pledge_service
from svqm.evidence import requirements as evidence_requirements
from svqm.evidence import service as evidence_service
from svqm.evidence.models import EvidencePublic, PledgeCreate, PledgePublic, ScoreCreate
from svqm.web.deps import (
    ApiUser,
    Id,
    NowDep,
    RegistryDep,
    SessionDep,
    StoreDep,
    UploaderUser,
    actor_of,
)
from svqm.web.forms import read_upload_form
from svqm.web.schemas import (
    ApplicationCreate,
    ApplicationPublic,
    AssignRequest,
    DeadlinePublic,
    EventRequest,
    EvidenceCreated,
    HistoryEvent,
    RequirementPublic,
    ScoreResultPublic,
)
from svqm.web.views.scores import score_result_public
from svqm.workflow import actions, judgement, queries
from svqm.workflow import service as workflow
from svqm.workflow.effects import members_covered
from svqm.workflow.models import Application
from svqm.workflow.schemes import SchemeRegistry

router = APIRouter(prefix="/api/v1/applications", tags=["applications"])


def application_public(
    session: Session,
    app: Application,
    *,
    actor: workflow.Actor,
    registry: SchemeRegistry,
    now: datetime,
) -> ApplicationPublic:
    """An application as the caller sees it: what they may fire now and what is unmet."""
    ready, unmet = workflow.available(session, app, actor=actor, registry=registry, now=now)
    assert app.id is not None
    return ApplicationPublic(
        id=app.id,
        organisation_id=app.organisation_id,
        scheme=app.scheme,
        scheme_version=app.scheme_version,
        level=app.level,
        state=app.state,
        version=app.version,
        triggers=ready,
        unmet=unmet,
        deadlines=[
            DeadlinePublic(kind=k, due_at=d) for k, d in queries.open_deadlines(session, app.id)
        ],
        assessor_id=app.assessor_id,
        second_assessor_id=app.second_assessor_id,
        created_at=app.created_at,
        state_changed_at=app.state_changed_at,
    )


def _load(
    session: Session, application_id: int, user: User, registry: SchemeRegistry
) -> Application:
    return queries.get_application(session, application_id, actor_of(user), registry=registry)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_application(
    body: ApplicationCreate,
    user: ApiUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    response: Response,
) -> ApplicationPublic:
    """Open an application for a level (by id, name or alias such as 'Level 1'); a group's may
    cover some of its member organisations (`members`), each then awarded on its own."""
    actor = actor_of(user)
    app = workflow.open_application(
        session,
        organisation_id=user.organisation_id or 0,
        scheme_id=body.scheme,
        level=body.level,
        actor=actor,
        registry=registry,
        now=now,
        members=body.members,
    )
    response.headers["Location"] = f"/api/v1/applications/{app.id}"
    return application_public(session, app, actor=actor, registry=registry, now=now)


@router.get("")
def list_applications(
    user: ApiUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    state: str | None = None,
    level: str | None = None,
    scheme: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[ApplicationPublic]:
    """The caller's applications: their organisation's, an assessor's queue, or all for admins."""
    actor = actor_of(user)
    rows = queries.list_applications(
        session,
        actor,
        queries.ApplicationFilter(state=state, level=level, scheme=scheme),
        registry=registry,
        limit=limit,
        offset=offset,
    )
    return [application_public(session, a, actor=actor, registry=registry, now=now) for a in rows]


@router.get("/{application_id}", response_model=ApplicationPublic)
def read_application(
    application_id: Id, user: ApiUser, session: SessionDep, registry: RegistryDep, now: NowDep
) -> Response:
    """One application, with the triggers the caller may fire and every unmet requirement."""
    app = _load(session, application_id, user, registry)
    body = application_public(session, app, actor=actor_of(user), registry=registry, now=now)
    # The bytes FastAPI's response model writes (its dump_json of the model), here: returned as
    # the model, it would be validated again first, in a second trip to the thread pool.
    return Response(body.model_dump_json(by_alias=True), media_type="application/json")


@router.get("/{application_id}/history")
def read_history(
    application_id: Id, user: ApiUser, session: SessionDep, registry: RegistryDep
) -> list[HistoryEvent]:
    """The application's audit events, oldest first (before both assessors of a double-marked
    level have scored, neither's scoring is shown to the other)."""
    app = _load(session, application_id, user, registry)
    staff = actor_of(user).role != "applicant"
    policy = registry.for_subject(session, app).policy
    state = judgement.marking_of(session, policy, app)
    return [
        HistoryEvent(
            at=e.at,
            actor_id=e.actor_id,
            actor_role=e.actor_role,
            trigger=e.trigger,
            source=e.source,
            dest=e.dest,
            comment=e.comment if staff or e.visibility != "internal" else "",
            visibility=e.visibility,
        )
        for e in judgement.visible_events(workflow.history(session, app), state, user.id)
        if staff or e.visibility != "internal" or e.source != e.dest
    ]


@router.get("/{application_id}/requirements")
def read_requirements(
    application_id: Id, user: ApiUser, session: SessionDep, registry: RegistryDep
) -> list[RequirementPublic]:
    """The evidence checklist: every slot the level asks for and whether it is satisfied."""
    app = _load(session, application_id, user, registry)
    policy = registry.for_subject(session, app).policy
    slots = evidence_requirements.checklist(
        session,
        application_id=application_id,
        policy=policy,
        level=policy.level(app.level),
        members=members_covered(session, application_id),
    )
    return [
        RequirementPublic(
            id=s.id,
            requirement=s.requirement_id,
            title=s.title,
            pledge_id=s.pledge_id,
            standard=s.standard_id,
            organisation_id=s.member_id,
            satisfied=s.satisfied,
            status=s.status,
            evidence=[i.id or 0 for i in s.items],
        )
        for s in slots
    ]


@router.get("/{application_id}/pledges")
def list_pledges(
    application_id: Id, user: ApiUser, session: SessionDep, registry: RegistryDep
) -> list[PledgePublic]:
    """The application's pledges, with what it does with each (made, carried, revised, retired)."""
    _load(session, application_id, user, registry)
    return [
        PledgePublic.model_validate(
            {**p.model_dump(), "disposition": link.disposition}, from_attributes=False
        )
        for p, link in pledge_service.application_pledges(session, application_id)
    ]


@router.post("/{application_id}/pledges", status_code=status.HTTP_201_CREATED)
def create_pledge(
    application_id: Id,
    body: PledgeCreate,
    user: ApiUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
) -> PledgePublic:
    """Add a pledge (theme, title, description, key value indicator, target, due date)."""
    app = _load(session, application_id, user, registry)
    pledge = actions.add_pledge(
        session, app, body, actor=actor_of(user), registry=registry, now=now
    )
    return PledgePublic.model_validate(pledge, from_attributes=True)


@router.get("/{application_id}/evidence")
def list_evidence(
    application_id: Id, user: ApiUser, session: SessionDep, registry: RegistryDep
) -> list[EvidencePublic]:
    """Every version of every evidence item."""
    _load(session, application_id, user, registry)
    return [
        EvidencePublic.model_validate(i, from_attributes=True)
        for i in evidence_service.list_evidence(session, application_id)
    ]


@router.post(
    "/{application_id}/evidence",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "requirement": {"type": "string"},
                            "pledge_id": {"type": "integer"},
                            "organisation_id": {"type": "integer"},
                            "title": {"type": "string"},
                            "note": {"type": "string", "maxLength": 1000},
                        },
                    }
                }
            },
        }
    },
)
async def upload_evidence(
    application_id: Id,
    request: Request,
    user: UploaderUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    store: StoreDep,
) -> EvidenceCreated:
    """Upload a file (multipart: file, requirement or pledge_id, title, and an optional note for
    the assessor of at most 1,000 characters; on a group's application, organisation_id names
    the member a per-member item is for), streamed to the store.

    The request's unit of work connects only once the body is in: the file streams in without
    the database's write lock held.
    """
    form = await read_upload_form(request)

    def save() -> EvidenceCreated:
        app = _load(session, application_id, user, registry)
        item = actions.upload_evidence(
            session,
            app,
            store,
            requirement=form.requirement,
            pledge_id=form.pledge_id,
            stream=form.file,
            filename=form.filename,
            title=form.title,
            actor=actor_of(user),
            registry=registry,
            now=now,
            note=form.note,
            member_id=form.organisation_id,
        )
        return EvidenceCreated(
            id=item.id or 0,
            sha256=item.sha256,
            size=item.size,
            content_type=item.content_type,
            version=item.version,
            slot=item.slot,
            filename=item.filename,
        )

    try:
        return await run_in_threadpool(save)
    finally:
        form.close()


@router.get("/{application_id}/scores")
def read_scores(
    application_id: Id, user: ApiUser, session: SessionDep, registry: RegistryDep
) -> ScoreResultPublic:
    """The result against the level's standards, explained; at a double-marked level, staff
    also read the two assessors' scoring (each assessor only their own until both are in)."""
    app = _load(session, application_id, user, registry)
    return score_result_public(
        session, registry, app, actor_of(user), staff=user.role in STAFF_ROLES
    )


@router.post("/{application_id}/scores")
def score_question(
    application_id: Id,
    body: ScoreCreate,
    user: ApiUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
) -> ScoreResultPublic:
    """The assigned assessor scores one question; answers the running result."""
    app = _load(session, application_id, user, registry)
    actions.score_question(session, app, body, actor=actor_of(user), registry=registry, now=now)
    return read_scores(application_id, user, session, registry)


@router.post("/{application_id}/events/{trigger}")
def fire_event(
    application_id: Id,
    trigger: str,
    body: EventRequest,
    user: ApiUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
) -> ApplicationPublic:
    """Fire a workflow trigger; 409 if not allowed now or stale, 422 listing every unmet guard."""
    app = _load(session, application_id, user, registry)
    workflow.fire(
        session,
        app,
        trigger,
        actor=actor_of(user),
        registry=registry,
        now=now,
        comment=body.comment,
        expected_version=body.version,
        visibility=body.visibility,
    )
    return application_public(session, app, actor=actor_of(user), registry=registry, now=now)


@router.post("/{application_id}/assessor")
def assign_assessor(
    application_id: Id,
    body: AssignRequest,
    user: ApiUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
) -> ApplicationPublic:
    """An admin assigns or reassigns the assessor (`second`: a double-marked level's second)."""
    app = _load(session, application_id, user, registry)
    workflow.assign_assessor(
        session,
        app,
        body.assessor_id,
        actor=actor_of(user),
        registry=registry,
        now=now,
        expected_version=body.version,
        second=body.second,
    )
    return application_public(session, app, actor=actor_of(user), registry=registry, now=now)
