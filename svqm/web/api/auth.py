"""JSON: public sign-up of an organisation, and bearer tokens for the API."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from svqm.accounts import auth
from svqm.accounts import service as accounts
from svqm.errors import NotSignedIn, SvqmError
from svqm.web.deps import ApiUser, NowDep, SessionDep, SettingsDep
from svqm.web.handlers import api_error
from svqm.web.schemas import OrganisationCreate, OrganisationPublic, TokenRequest, TokenResponse

router = APIRouter(prefix="/api/v1", tags=["sign-in"])


@router.post("/organisations", status_code=status.HTTP_201_CREATED)
def create_organisation(body: OrganisationCreate, session: SessionDep) -> OrganisationPublic:
    """Register an organisation and its first applicant (public sign-up)."""
    org = accounts.create_organisation(session, name=body.name, sector=body.sector)
    user = accounts.add_user(
        session,
        email=body.email,
        role="applicant",
        organisation_id=org.id,
        password=body.password,
        name="",
    )
    return OrganisationPublic(
        id=org.id or 0, name=org.name, sector=org.sector, user_id=user.id or 0
    )


@router.post("/auth/token", response_model=TokenResponse)
def create_token(
    body: TokenRequest, session: SessionDep, settings: SettingsDep, now: NowDep
) -> TokenResponse | JSONResponse:
    """Exchange email, password and (for staff) a TOTP code for a bearer token."""
    try:
        user = auth.authenticate(
            session, email=body.email, password=body.password, now=now, settings=settings
        )
        if auth.needs_second_factor(user) and not auth.verify_totp(user, body.otp or "", now):
            auth.record_failure(session, user.email, now)
            raise NotSignedIn("the email, password or code is not right")
    except SvqmError as exc:
        # Answered, not raised: the request's unit of work then commits the failed attempt,
        # so it counts towards the throttle.
        return api_error(exc)
    token, row = auth.start_session(
        session, user, kind="api", now=now, settings=settings, mfa_passed=True
    )
    return TokenResponse(access_token=token, expires_at=row.expires_at)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(request: Request, user: ApiUser, session: SessionDep, now: NowDep) -> None:
    """Revoke the token this request carries."""
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    auth.revoke_token(session, token, now)
