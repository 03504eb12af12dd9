"""JSON: the public directory of awards, one award, and admin actions on an award."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import Session

from svqm.accounts.models import Organisation
from svqm.errors import NotFound
from svqm.web.deps import ApiUser, Id, NowDep, RegistryDep, SessionDep, actor_of
from svqm.web.schemas import AwardPublic, EventRequest
from svqm.workflow import queries
from svqm.workflow import service as workflow
from svqm.workflow.models import Award
from svqm.workflow.schemes import SchemeRegistry

router = APIRouter(prefix="/api/v1/awards", tags=["awards"])


def award_public(session: Session, award: Award, registry: SchemeRegistry) -> AwardPublic:
    policy = registry.for_subject(session, award).policy
    org = session.get(Organisation, award.organisation_id)
    return AwardPublic(
        id=award.id or 0,
        organisation_id=award.organisation_id,
        organisation_name=org.name if org else "",
        scheme=award.scheme,
        scheme_version=award.scheme_version,
        level=award.level,
        level_name=policy.level(award.level).name,
        state=award.state,
        certificate_number=award.certificate_number,
        issued_at=award.issued_at,
        expires_at=award.expires_at,
        supersedes_id=award.supersedes_id,
        verify_url=f"/awards/{award.id}/verify",
        certificate_url=f"/awards/{award.id}/certificate",
        credential_url=f"/api/v1/awards/{award.id}/credential",
    )


@router.get("")
def list_awards(
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    level: Annotated[str | None, Query(max_length=64)] = None,
    scheme: Annotated[str | None, Query(max_length=64)] = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    sector: Annotated[str | None, Query(max_length=200)] = None,
) -> list[AwardPublic]:
    """The public directory: awards in force and in date, by part of the organisation's name or
    sector, level and scheme."""
    rows = queries.directory(
        session, registry, now=now, level=level, scheme=scheme, name=name, sector=sector
    )
    return [award_public(session, a, registry) for a in rows]


@router.get("/{award_id}")
def read_award(award_id: Id, session: SessionDep, registry: RegistryDep) -> AwardPublic:
    """One award and its status (public, as a certificate is)."""
    return award_public(session, queries.get_award(session, award_id), registry)


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
    award = queries.get_award(session, award_id)
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
    )
    return award_public(session, award, registry)
