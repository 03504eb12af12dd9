"""JSON: one pledge of the organisation's register, revised or withdrawn while an application holding
it is still being prepared."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from svqm.evidence import pledges as pledge_service
from svqm.evidence.models import PledgePublic, PledgeUpdate
from svqm.web.deps import ApiUser, Id, NowDep, RegistryDep, SessionDep, actor_of
from svqm.workflow import actions

router = APIRouter(prefix="/api/v1/pledges", tags=["pledges"])


@router.patch("/{pledge_id}")
def update_pledge(
    pledge_id: Id,
    body: PledgeUpdate,
    user: ApiUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
) -> PledgePublic:
    """Revise a pledge (any of the fields it was made with); 409 once no editable application holds it."""
    pledge = pledge_service.get_pledge(session, pledge_id)
    actions.revise_pledge(session, pledge, body, actor=actor_of(user), registry=registry, now=now)
    return PledgePublic.model_validate(pledge, from_attributes=True)


@router.delete("/{pledge_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_pledge(
    pledge_id: Id, user: ApiUser, session: SessionDep, registry: RegistryDep, now: NowDep
) -> Response:
    """Withdraw a pledge from the application preparing it (retire it, if carried in)."""
    pledge = pledge_service.get_pledge(session, pledge_id)
    actions.withdraw_pledge(session, pledge, actor=actor_of(user), registry=registry, now=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
