"""An award issued through the panel's `confirm_award` (so its deadline rows exist), people who can
sign in to see it, and an app whose clock the test sets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from svqm.accounts.models import Organisation, User
from svqm.clock import FixedClock
from svqm.config import Settings
from svqm.db import session_scope
from svqm.web.app import create_app
from svqm.workflow.schedule import ScheduledDeadline, for_subject
from svqm.workflow.schemes import SchemeRegistry
from tests.factories import make_org, make_user
from tests.notify.timeline import T0 as TIMELINE_T0
from tests.notify.timeline import confirmed_award
from tests.web.pages_helpers import PASSWORD, forget_last_code, form_token, make_account
from tests.workflow.harness import Cast

# The moment every award of these tests is issued (the same as the notify timelines).
T0 = TIMELINE_T0
BASE_URL = "https://svqm.example.org"


@dataclass
class Issued:
    award_id: int
    org: Organisation
    applicant: User
    admin: User


def issue_award(
    engine: Engine, registry: SchemeRegistry, tmp: Path, *, level: str = "silver", name: str = ""
) -> Issued:
    """An organisation with an applicant who can sign in, and its award issued at T0."""
    with session_scope(engine) as s:
        org = make_org(s, name or None)
        applicant = make_account(s, "applicant", org)
        admin = make_account(s, "admin")
        cast = Cast(org, applicant, make_user(s, "assessor"), make_user(s, "panel"), admin)
        award = confirmed_award(s, registry, cast, tmp / "seed", level)
        assert award.id is not None
        return Issued(award.id, org, applicant, admin)


def award_rows(engine: Engine, award_id: int) -> list[ScheduledDeadline]:
    """Every deadline row of the award, in due order."""
    with Session(engine) as s:
        return for_subject(s, "award", award_id)


def app_client(
    engine: Engine, registry: SchemeRegistry, tmp: Path, clock: FixedClock, **settings: object
) -> TestClient:
    """A client of an app on the test database whose clock the test holds."""
    config = Settings(
        ENV="test",
        DATABASE_URL=engine.url.render_as_string(hide_password=False),
        EVIDENCE_DIR=str(tmp / "evidence"),
        VAR_DIR=str(tmp),
        BASE_URL=BASE_URL,
        **settings,
    )
    return TestClient(create_app(settings=config, engine=engine, registry=registry, clock=clock))


def code_for(client: TestClient, user: User) -> str:
    """The staff member's TOTP code at the app's (fixed) time, which is what the app checks
    (usable again: these tests sign one person in many times at one frozen time)."""
    assert user.totp_secret
    forget_last_code(client.app.state.engine, user.email)
    return pyotp.TOTP(user.totp_secret).at(client.app.state.clock.now())


def bearer(client: TestClient, user: User) -> dict[str, str]:
    """An API token's header for a user made with make_account (staff give their code)."""
    body = {"email": user.email, "password": PASSWORD}
    if user.totp_secret:
        body["otp"] = code_for(client, user)
    response = client.post("/api/v1/auth/token", json=body)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def page_sign_in(client: TestClient, user: User) -> None:
    """Sign in through the pages; staff give the code for the app's time."""
    client.cookies.clear()
    token = form_token(client, "/login")
    form = {"email": user.email, "password": PASSWORD, "csrf_token": token}
    response = client.post("/login", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text[:500]
    if not user.totp_secret:
        return
    token = form_token(client, "/login/second-factor")
    response = client.post(
        "/login/second-factor",
        data={"code": code_for(client, user), "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[:500]
