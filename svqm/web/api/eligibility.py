"""JSON: an application's eligibility questions, the organisation's answers, and an admin's
decision on a case-by-case industry."""

from __future__ import annotations

from fastapi import APIRouter

from svqm.web.deps import ApiUser, Id, NowDep, RegistryDep, SessionDep, actor_of
from svqm.web.schemas import EligibilityDecisionRequest, EligibilityPublic, EligibilityRequest
from svqm.web.views import eligibility as views
from svqm.workflow import queries, screening

router = APIRouter(prefix="/api/v1/applications", tags=["eligibility"])


@router.get("/{application_id}/eligibility")
def read_eligibility(
    application_id: Id, user: ApiUser, session: SessionDep, registry: RegistryDep
) -> EligibilityPublic:
    """The scheme's eligibility questions (`asked` false: it asks none), the answers given, and
    what they come to; `unmet` is what stops the application being submitted."""
    actor = actor_of(user)
    app = queries.get_application(session, application_id, actor, registry=registry)
    return views.public(session, registry, app)


@router.put("/{application_id}/eligibility")
def answer_eligibility(
    application_id: Id,
    body: EligibilityRequest,
    user: ApiUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
) -> EligibilityPublic:
    """The organisation answers (again, to change them) while the application is a draft; 422
    naming each choice that is not the policy's, 409 once it is sent."""
    actor = actor_of(user)
    app = queries.get_application(session, application_id, actor, registry=registry)
    screening.answer(
        session,
        app,
        sector=body.sector,
        turnover_band=body.turnover_band,
        industries=body.industries,
        actor=actor,
        registry=registry,
        now=now,
        expected_version=body.version,
    )
    return views.public(session, registry, app)


@router.post("/{application_id}/eligibility/decision")
def decide_eligibility(
    application_id: Id,
    body: EligibilityDecisionRequest,
    user: ApiUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
) -> EligibilityPublic:
    """An admin approves a case-by-case industry with the conditions agreed upfront, or refuses
    it with the reason (409 when there is none to decide)."""
    actor = actor_of(user)
    app = queries.get_application(session, application_id, actor, registry=registry)
    screening.decide(
        session,
        app,
        approve=body.decision == "approve",
        conditions=body.conditions,
        actor=actor,
        registry=registry,
        now=now,
        expected_version=body.version,
    )
    return views.public(session, registry, app)
