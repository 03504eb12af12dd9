"""JSON: the public directory of awards, one award, and admin actions on an award."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from svqm.errors import NotFound
from svqm.web.deps import ApiUser, Id, NowDep, RegistryDep, SessionDep, actor_of
from svqm.web.schemas import AwardPublic, EventRequest
from svqm.web.views.awards import award_public
from svqm.workflow import awards as award_queries
from svqm.workflow import service as workflow

router = APIRouter(prefix="/api/v1/awards", tags=["awards"])


@router.get("")
def list_awards(
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    level: Annotated[str | None, Query(max_length=64)] = None,
    scheme: Annotated[str | None, Query(max_length=64)] = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    sector: Annotated[str | None, Query(max_length=200)] = None,
    region: Annotated[str | None, Query(max_length=100)] = None,
) -> list[AwardPublic]:
    """The public directory: awards in force and in date, by part of the organisation's name or
    sector, its region, level and scheme."""
    rows = award_queries.directory(
        session,
        registry,
        now=now,
        level=level,
        scheme=scheme,
        name=name,
        sector=sector,
        region=region,
    )
    return [award_public(session, a, registry) for a in rows]


@router.get("/{award_id}")
def read_award(award_id: Id, session: SessionDep, registry: RegistryDep) -> AwardPublic:
    """One award and its status (public, as a certificate is)."""
    return award_public(session, award_queries.get_award(session, award_id), registry)


@router.post("/{award_id}/events/{trigger}")
def fire_award_event(
    award_id: Id,
    trigger: str,
    body: EventRequest,
    user: ApiUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
) -> AwardPublic:
    """Suspend, reinstate, withdraw or restore an award (admins), or file its report."""
    award = award_queries.get_award(session, award_id)
    if user.role == "applicant" and award.organisation_id != user.organisation_id:
        raise NotFound(f"no award {award_id}")
    workflow.fire(
        session,
        award,
        trigger,
        actor=actor_of(user),
        registry=registry,
        now=now,
        comment=body.comment,
        expected_version=body.version,
        visibility=body.visibility,
    )
    return award_public(session, award, registry)
