"""JSON: who is asking and the organisations they act for, switching between them, and
invitations to act for one."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict, Field

from svqm.accounts import auth, members
from svqm.accounts import service as accounts
from svqm.accounts.models import User
from svqm.notify import invitations
from svqm.web.deps import ApiUser, NowDep, SessionDep, SettingsDep
from svqm.web.schemas import DbId

router = APIRouter(prefix="/api/v1", tags=["memberships"])


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MembershipPublic(BaseModel):
    organisation_id: int
    name: str
    role: str
    parent_id: int | None


class MePublic(BaseModel):
    id: int
    email: str
    name: str
    role: str
    # The organisation this token acts for now (None for staff without one).
    organisation_id: int | None
    memberships: list[MembershipPublic]
    # Staff: event emails come as one daily digest.
    email_digest: bool


class MeUpdate(_In):
    name: str | None = Field(default=None, max_length=200)
    email_digest: bool | None = None


class SwitchRequest(_In):
    organisation_id: DbId


class InvitationCreate(_In):
    email: str = Field(min_length=3, max_length=254)
    role: str = Field(default="member", max_length=20)


class InvitationPublic(BaseModel):
    id: int
    organisation_id: int
    email: str
    role: str
    expires_at: datetime


class InvitationAccept(_In):
    token: str = Field(min_length=1, max_length=200)


def _me(session: SessionDep, user: User) -> MePublic:
    lines = members.memberships_of(session, user.id)
    return MePublic(
        id=user.id or 0,
        email=user.email,
        name=user.name,
        role=user.role,
        organisation_id=user.organisation_id,
        memberships=[MembershipPublic(**line.__dict__) for line in lines],
        email_digest=user.email_digest,
    )


@router.get("/me")
def read_me(user: ApiUser, session: SessionDep) -> MePublic:
    """The caller, the organisation their token acts for, and every one they may act for."""
    return _me(session, user)


@router.patch("/me")
def update_me(body: MeUpdate, user: ApiUser, session: SessionDep) -> MePublic:
    """Change the caller's name, and (staff only) whether their event emails come as one daily
    digest (`email_digest`; reminders, deadlines and decisions always come at once)."""
    accounts.update_profile(session, user, name=body.name, email_digest=body.email_digest)
    return _me(session, user)


@router.post("/me/organisation")
def switch_organisation(
    request: Request, body: SwitchRequest, user: ApiUser, session: SessionDep, now: NowDep
) -> MePublic:
    """Act for another of the caller's organisations with this token from now on."""
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    row = auth.session_of(session, token)
    assert row is not None  # the token was just resolved by ApiUser
    members.switch_organisation(session, row, user, body.organisation_id)
    return _me(session, user)


@router.post("/invitations", status_code=status.HTTP_201_CREATED)
def create_invitation(
    body: InvitationCreate,
    user: ApiUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> InvitationPublic:
    """Invite someone by email to act for the caller's organisation (its leads only)."""
    members.require_lead(session, user, user.organisation_id or 0)
    token, row = members.invite(
        session,
        organisation_id=user.organisation_id or 0,
        email=body.email,
        role=body.role,
        invited_by=user,
        now=now,
        valid_for=timedelta(days=settings.INVITATION_DAYS),
    )
    invitations.send_invitation(
        session, row, token, inviter=user, base_url=settings.BASE_URL, now=now
    )
    return InvitationPublic(
        id=row.id or 0,
        organisation_id=row.organisation_id,
        email=row.email,
        role=row.role,
        expires_at=row.expires_at,
    )


@router.post("/invitations/accept")
def accept_invitation(
    body: InvitationAccept, user: ApiUser, session: SessionDep, now: NowDep
) -> MembershipPublic:
    """Take up an invitation (once, before it expires): the caller may then act for its
    organisation too."""
    membership = members.accept_invitation(session, body.token, user, now)
    line = next(
        m
        for m in members.memberships_of(session, user.id)
        if m.organisation_id == membership.organisation_id
    )
    return MembershipPublic(**line.__dict__)
