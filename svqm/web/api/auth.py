"""JSON: public sign-up of an organisation, and bearer tokens for the API."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from svqm.accounts import auth
from svqm.errors import NotSignedIn, SvqmError, TooManyAttempts
from svqm.notify import signup
from svqm.web.deps import ApiUser, NowDep, SessionDep, SettingsDep, client_address
from svqm.web.handlers import api_error
from svqm.web.schemas import OrganisationCreate, SignupReceived, TokenRequest, TokenResponse

router = APIRouter(prefix="/api/v1", tags=["sign-in"])


@router.post("/organisations", status_code=status.HTTP_202_ACCEPTED)
def create_organisation(
    body: OrganisationCreate,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> SignupReceived:
    """Register an organisation and its first applicant (public sign-up).

    The answer is the same whether or not the email already has an account (its owner is told by
    email instead), so it cannot be used to find out who is registered. Then sign in for a token.
    """
    signup.register_organisation(
        session,
        name=body.name,
        sector=body.sector,
        email=body.email,
        password=body.password,
        now=now,
        source=client_address(request),
        settings=settings,
        person_name=body.person_name,
    )
    return SignupReceived()


@router.post("/auth/token", response_model=TokenResponse)
def create_token(
    body: TokenRequest, request: Request, session: SessionDep, settings: SettingsDep, now: NowDep
) -> TokenResponse | JSONResponse:
    """Exchange email, password and (for staff) a TOTP code for a bearer token."""
    try:
        source = client_address(request)
        user = auth.authenticate(
            session,
            email=body.email,
            password=body.password,
            now=now,
            settings=settings,
            source=source,
        )
        # A code is good once (a replay is refused), and the first one confirms the enrolment.
        if auth.needs_second_factor(user) and not auth.use_totp(session, user, body.otp or "", now):
            auth.record_failure(session, user.email, now, source)
            raise NotSignedIn("the email, password or code is not right")
    except SvqmError as exc:
        # Answered, not raised: the request's unit of work then commits the failed attempt,
        # so it counts towards the throttle.
        answer = api_error(exc)
        if isinstance(exc, TooManyAttempts):
            answer.headers["Retry-After"] = str(exc.retry_after)
        return answer
    token, row = auth.start_session(
        session, user, kind="api", now=now, settings=settings, mfa_passed=True
    )
    return TokenResponse(access_token=token, expires_at=row.expires_at)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(request: Request, user: ApiUser, session: SessionDep, now: NowDep) -> None:
    """Revoke the token this request carries."""
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    auth.revoke_token(session, token, now)
