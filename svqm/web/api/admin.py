"""JSON for admins: staff accounts and declared conflicts of interest."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.responses import JSONResponse

from svqm.accounts import auth
from svqm.accounts import service as accounts
from svqm.accounts.models import User
from svqm.errors import NotFound
from svqm.web.deps import Id, NowDep, RegistryDep, SessionDep, SettingsDep, actor_of, api_role
from svqm.web.schemas import (
    BulkAssign,
    BulkDone,
    BulkRefusal,
    BulkRemind,
    ConflictCreate,
    EnrolmentLinkPublic,
    StaffCreate,
    UserPublic,
)
from svqm.web.views.bulk import BulkResult, run_bulk
from svqm.workflow import people
from svqm.workflow.service import Actor

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
AdminUser = Annotated[User, Depends(api_role("admin"))]


def user_public(user: User, uri: str | None = None) -> UserPublic:
    return UserPublic(
        id=user.id or 0,
        email=user.email,
        name=user.name,
        role=user.role,
        organisation_id=user.organisation_id,
        active=user.active,
        otpauth_uri=uri,
    )


@router.get("/users")
def list_users(admin: AdminUser, session: SessionDep) -> list[UserPublic]:
    """Every user."""
    return [user_public(u) for u in accounts.list_users(session)]


@router.post("/users", status_code=status.HTTP_201_CREATED)
def create_user(
    body: StaffCreate, admin: AdminUser, session: SessionDep, settings: SettingsDep
) -> UserPublic:
    """Add a user; staff get a TOTP secret, returned once as an otpauth URI."""
    user = accounts.add_user(
        session,
        email=body.email,
        role=body.role,
        name=body.name,
        organisation_id=body.organisation_id,
        password=body.password,
    )
    uri = None
    if auth.needs_second_factor(user):
        auth.ensure_totp_secret(session, user)
        uri = auth.totp_uri(user, settings.TOTP_ISSUER)
    return user_public(user, uri)


@router.post("/users/{user_id}/enrolment-link", status_code=status.HTTP_201_CREATED)
def enrolment_link(
    user_id: Id, admin: AdminUser, session: SessionDep, settings: SettingsDep, now: NowDep
) -> EnrolmentLinkPublic:
    """A single-use, expiring link for a staff member to set up their authenticator (shown once)."""
    user = accounts.get_user(session, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    token = auth.issue_enrolment_link(session, user, by=admin, now=now, settings=settings)
    return EnrolmentLinkPublic(
        link=settings.BASE_URL.rstrip("/") + f"/enrol/{token}",
        expires_at=now + timedelta(hours=settings.ENROLMENT_LINK_HOURS),
    )


@router.post("/users/{user_id}/disable")
def disable_user(user_id: Id, admin: AdminUser, session: SessionDep, now: NowDep) -> UserPublic:
    """Disable a user and end every session and token they have."""
    user = accounts.get_user(session, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    people.disable_user(session, user_id, actor=Actor.of(admin), now=now)
    return user_public(user)


@router.post("/conflicts", status_code=status.HTTP_201_CREATED)
def declare_conflict(body: ConflictCreate, admin: AdminUser, session: SessionDep) -> dict[str, int]:
    """Record that a user may not assess or decide an organisation's applications."""
    row = accounts.declare_conflict(
        session,
        user_id=body.user_id,
        organisation_id=body.organisation_id,
        reason=body.reason,
        recorded_by_id=admin.id,
    )
    return {"id": row.id or 0}


def _bulk_answer(result: BulkResult) -> JSONResponse:
    """200 with each line's outcome: those done, and those refused with why (nothing changed)."""
    body = BulkDone(
        done=result.done,
        refused=[BulkRefusal(id=i, reason=why) for i, why in result.refused],
    )
    return JSONResponse(body.model_dump(), status_code=status.HTTP_200_OK)


@router.post("/applications/assign", response_model=BulkDone)
def bulk_assign(
    body: BulkAssign, admin: AdminUser, session: SessionDep, registry: RegistryDep, now: NowDep
) -> JSONResponse:
    """Assign up to 50 applications to one assessor, each at the version given, each on its own
    (audited; a refused line, e.g. changed since or a conflict of interest, is named with why)."""
    lines = list(dict.fromkeys((line.id, line.version) for line in body.applications))
    result = run_bulk(
        session, registry, actor_of(admin), now, "assign", lines, assessor_id=body.assessor_id
    )
    return _bulk_answer(result)


@router.post("/applications/remind", response_model=BulkDone)
def bulk_remind(
    body: BulkRemind, admin: AdminUser, session: SessionDep, registry: RegistryDep, now: NowDep
) -> JSONResponse:
    """Send the organisations of up to 50 open applications a reminder (emailed, audited), each
    at the version given, each on its own; a refused line is named with why."""
    lines = list(dict.fromkeys((line.id, line.version) for line in body.applications))
    result = run_bulk(
        session, registry, actor_of(admin), now, "remind", lines, message=body.message
    )
    return _bulk_answer(result)
