"""JSON: the record of judgement of an application: its score history, moderating a
double-marked application's scores, and the decisions of steps that need several members."""

from __future__ import annotations

from fastapi import APIRouter

from svqm.accounts.models import STAFF_ROLES
from svqm.errors import PermissionDenied
from svqm.evidence.models import ModerationCreate
from svqm.web.deps import ApiUser, Id, NowDep, RegistryDep, SessionDep, actor_of
from svqm.web.schemas import (
    DecisionPublic,
    DecisionsPublic,
    ScoreChangePublic,
    ScoreResultPublic,
    StepQuorumPublic,
)
from svqm.web.views.scores import score_result_public
from svqm.workflow import actions, judgement, queries

router = APIRouter(prefix="/api/v1/applications", tags=["judgement"])


@router.get("/{application_id}/score-history")
def read_score_history(
    application_id: Id, user: ApiUser, session: SessionDep, registry: RegistryDep
) -> list[ScoreChangePublic]:
    """Every change to the application's scores, oldest first: staff only. Before both assessors
    of a double-marked level have scored, each reads only their own changes (others none)."""
    actor = actor_of(user)
    app = queries.get_application(session, application_id, actor, registry=registry)
    if user.role not in STAFF_ROLES:
        raise PermissionDenied("the score history is for the assessors, the panel and admins")
    policy = registry.for_subject(session, app).policy
    state = judgement.marking_of(session, policy, app)
    return [
        ScoreChangePublic(
            at=c.at,
            standard=c.standard,
            question=c.question,
            kind=c.kind,
            assessor_id=c.assessor_id,
            actor_id=c.actor_id,
            old=c.old,
            new=c.new,
            note=c.note,
        )
        for c in judgement.score_history(session, state, app, actor.id)
    ]


@router.post("/{application_id}/moderation")
def moderate_score(
    application_id: Id,
    body: ModerationCreate,
    user: ApiUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
) -> ScoreResultPublic:
    """The scheme's moderator records a question's agreed score with a note (double marking:
    once both assessors have scored; 409 before, or at a level one assessor scores)."""
    actor = actor_of(user)
    app = queries.get_application(session, application_id, actor, registry=registry)
    actions.moderate_score(
        session,
        app,
        body,
        actor=actor,
        registry=registry,
        now=now,
    )
    return score_result_public(session, registry, app, actor, staff=True)


@router.get("/{application_id}/decisions")
def read_decisions(
    application_id: Id, user: ApiUser, session: SessionDep, registry: RegistryDep
) -> DecisionsPublic:
    """The steps from the present state that need several members to agree (an appeal decided
    by two independent panel members): how many agree so far, how many more are needed, and
    (for staff) who decided what."""
    app = queries.get_application(session, application_id, actor_of(user), registry=registry)
    policy = registry.for_subject(session, app).policy
    tally = judgement.decisions(session, policy, app)
    staff = user.role in STAFF_ROLES
    return DecisionsPublic(
        steps=[
            StepQuorumPublic(
                trigger=trigger,
                title=title,
                quorum=quorum,
                agreeing=have,
                needed=max(0, quorum - have),
            )
            for trigger, title, quorum, have in tally.steps
        ],
        recorded=[
            DecisionPublic(member_id=v.member_id, trigger=v.trigger, at=v.at, comment=v.comment)
            for v in tally.votes
        ]
        if staff
        else [],
    )
