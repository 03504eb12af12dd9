"""A person acting for several organisations: switching (API and pages), seeing only the one
acted for, invitations by email through the outbox and a real SMTP relay (single use, expiring)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from svqm.accounts import service as accounts
from svqm.accounts.models import Invitation, Membership
from svqm.clock import FixedClock
from svqm.config import Settings
from svqm.notify.dispatch import dispatch, mailer_from
from svqm.web.app import create_app
from tests.notify.mailkit import MAIL_FROM, Relay, free_port
from tests.web.pages_helpers import csrf_of, organisation_id_named

PASSWORD = "correct horse battery"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def relay():
    r = Relay(free_port())
    r.start()
    yield r
    r.stop()


@pytest.fixture
def clock():
    return FixedClock(T0)


@pytest.fixture
def settings(engine, tmp_path, relay):
    return Settings(
        ENV="test",
        DATABASE_URL=engine.url.render_as_string(hide_password=False),
        EVIDENCE_DIR=str(tmp_path / "evidence"),
        VAR_DIR=str(tmp_path),
        BASE_URL="http://svqm.test",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=relay.port,
        SMTP_TIMEOUT_SECONDS=5,
        MAIL_FROM=MAIL_FROM,
        INVITATION_DAYS=7,
    )


@pytest.fixture
def client(engine, registry, settings, clock):
    app = create_app(settings=settings, engine=engine, registry=registry, clock=clock)
    with TestClient(app) as c:
        yield c


def _signup(client: TestClient, name: str) -> tuple[dict[str, str], int, str]:
    email = f"{name.lower().replace(' ', '')}@org.test"
    created = client.post(
        "/api/v1/organisations",
        json={"name": name, "sector": "care", "email": email, "password": PASSWORD},
    )
    assert created.status_code == 202, created.text
    return _token(client, email), organisation_id_named(client, name), email


def _token(client: TestClient, email: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _emailed_token(engine, settings, clock, relay: Relay, to: str) -> str:
    """Send the outbox through the relay; the invitation token from the email sent to `to`."""
    dispatch(engine, mailer_from(settings), settings, clock)
    for delivery in reversed(relay.received):
        if to in delivery.rcpt_tos:
            body = delivery.message.get_body(("plain",)).get_content()
            found = re.search(r"http://svqm\.test/invitations/([\w-]+)", body)
            assert found, body
            return found.group(1)
    raise AssertionError(f"no email to {to}")


def _invite(client, headers, email: str, role: str = "member"):
    return client.post("/api/v1/invitations", json={"email": email, "role": role}, headers=headers)


def test_a_person_in_two_organisations_sees_only_the_one_they_act_for(
    client, engine, settings, clock, relay
):
    alpha, alpha_id, alpha_email = _signup(client, "Alpha Homes")
    beta, beta_id, _ = _signup(client, "Beta Care")
    app_a = client.post(
        "/api/v1/applications", json={"scheme": "svqm", "level": "bronze"}, headers=alpha
    )
    app_b = client.post(
        "/api/v1/applications", json={"scheme": "svqm", "level": "bronze"}, headers=beta
    )
    assert app_a.status_code == app_b.status_code == 201
    a_id, b_id = app_a.json()["id"], app_b.json()["id"]

    # Beta's lead invites Alpha's person, who takes it up with the token from the email.
    invited = _invite(client, beta, alpha_email)
    assert invited.status_code == 201, invited.text
    token = _emailed_token(engine, settings, clock, relay, alpha_email)
    accepted = client.post("/api/v1/invitations/accept", json={"token": token}, headers=alpha)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["organisation_id"] == beta_id

    me = client.get("/api/v1/me", headers=alpha).json()
    assert me["organisation_id"] == alpha_id
    assert {(m["organisation_id"], m["role"]) for m in me["memberships"]} == {
        (alpha_id, "lead"),
        (beta_id, "member"),
    }

    def seen() -> set[int]:
        return {a["id"] for a in client.get("/api/v1/applications", headers=alpha).json()}

    # Acting for Alpha: only Alpha's application, and Beta's is not found.
    assert seen() == {a_id}
    assert client.get(f"/api/v1/applications/{b_id}", headers=alpha).status_code == 404
    assert (
        client.get(f"/api/v1/organisations/{beta_id}/calendar.ics", headers=alpha).status_code
        == 404
    )

    switched = client.post(
        "/api/v1/me/organisation", json={"organisation_id": beta_id}, headers=alpha
    )
    assert switched.status_code == 200, switched.text
    assert switched.json()["organisation_id"] == beta_id
    # Acting for Beta: only Beta's, and Alpha's is now the one not found.
    assert seen() == {b_id}
    assert client.get(f"/api/v1/applications/{a_id}", headers=alpha).status_code == 404
    assert client.get(f"/api/v1/applications/{b_id}", headers=alpha).status_code == 200
    assert (
        client.get(f"/api/v1/organisations/{alpha_id}/calendar.ics", headers=alpha).status_code
        == 404
    )
    # A new application is Beta's, and the person's own row still names Alpha as their home.
    opened = client.post(
        "/api/v1/applications",
        json={"scheme": "svqm-health", "level": "health_bronze"},
        headers=alpha,
    )
    assert opened.status_code == 201, opened.text
    assert opened.json()["organisation_id"] == beta_id
    with Session(engine) as s:
        assert accounts.get_user_by_email(s, alpha_email).organisation_id == alpha_id

    # A member (not a lead) of Beta may not invite for it; nor switch to one they are not in.
    assert _invite(client, alpha, "someone@else.test").status_code == 403
    outsider, outsider_id, _ = _signup(client, "Gamma Trust")
    refused = client.post(
        "/api/v1/me/organisation", json={"organisation_id": outsider_id}, headers=alpha
    )
    assert refused.status_code == 404
    assert client.get("/api/v1/me", headers=alpha).json()["organisation_id"] == beta_id


def test_an_invitation_works_once_and_not_after_it_expires(client, engine, settings, clock, relay):
    alpha, _, _ = _signup(client, "Alpha Homes")
    beta, beta_id, beta_email = _signup(client, "Beta Care")
    gamma, _, gamma_email = _signup(client, "Gamma Trust")
    assert _invite(client, alpha, beta_email).status_code == 201
    token = _emailed_token(engine, settings, clock, relay, beta_email)
    first = client.post("/api/v1/invitations/accept", json={"token": token}, headers=beta)
    assert first.status_code == 200
    again = client.post("/api/v1/invitations/accept", json={"token": token}, headers=gamma)
    assert again.status_code == 409
    assert "already been used" in again.json()["detail"]

    assert _invite(client, alpha, gamma_email).status_code == 201
    late = _emailed_token(engine, settings, clock, relay, gamma_email)
    clock.advance(days=7)
    gamma = _token(client, gamma_email)
    expired = client.post("/api/v1/invitations/accept", json={"token": late}, headers=gamma)
    assert expired.status_code == 409
    assert "expired" in expired.json()["detail"]
    page = client.get(f"/invitations/{late}")
    assert page.status_code == 409
    assert "expired" in page.text
    assert client.get("/invitations/not-a-token").status_code == 404
    with Session(engine) as s:
        gamma_user = accounts.get_user_by_email(s, gamma_email)
        rows = s.exec(select(Membership).where(Membership.user_id == gamma_user.id)).all()
        assert len(rows) == 1  # only their own organisation
        used = s.exec(select(Invitation).where(Invitation.email == beta_email)).one()
        assert used.accepted_at is not None
        # Only the token's hash is kept.
        assert token not in used.token_hash


def _page_sign_in(client: TestClient, email: str) -> None:
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def test_pages_switch_organisation_and_take_up_an_invitation_by_making_an_account(
    client, engine, settings, clock, relay
):
    alpha, alpha_id, alpha_email = _signup(client, "Alpha Homes")
    beta, beta_id, beta_email = _signup(client, "Beta Care")
    a_app = client.post(
        "/api/v1/applications", json={"scheme": "svqm", "level": "bronze"}, headers=alpha
    ).json()["id"]
    b_app = client.post(
        "/api/v1/applications", json={"scheme": "svqm", "level": "bronze"}, headers=beta
    ).json()["id"]

    # Alpha's lead invites a new person through the page; they make their account from the email.
    _page_sign_in(client, alpha_email)
    page = client.get("/account/organisations")
    assert page.status_code == 200
    assert "You are acting for <strong>Alpha Homes" in page.text
    sent = client.post(
        "/account/organisations/invitations",
        data={"email": "new.person@org.test", "role": "lead", "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    token = _emailed_token(engine, settings, clock, relay, "new.person@org.test")
    client.cookies.clear()
    offer = client.get(f"/invitations/{token}")
    assert offer.status_code == 200
    assert "Act for Alpha Homes" in offer.text
    weak = client.post(
        f"/invitations/{token}",
        data={"name": "Nia", "password": "short", "csrf_token": csrf_of(offer.text)},
    )
    assert weak.status_code == 422
    assert "at least" in weak.text
    made = client.post(
        f"/invitations/{token}",
        data={"name": "Nia New", "password": PASSWORD, "csrf_token": csrf_of(weak.text)},
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    dashboard = client.get("/dashboard")
    assert "Alpha Homes" in dashboard.text
    assert client.get(f"/invitations/{token}").status_code == 409

    # Beta's lead invites Alpha's lead, who takes it up signed in and then acts for Beta.
    client.cookies.clear()
    assert _invite(client, beta, alpha_email).status_code == 201
    token = _emailed_token(engine, settings, clock, relay, alpha_email)
    _page_sign_in(client, alpha_email)
    offer = client.get(f"/invitations/{token}")
    joined = client.post(f"/invitations/{token}", data={"csrf_token": csrf_of(offer.text)})
    assert joined.status_code == 200
    assert "acting for it now" in joined.text
    assert "Beta Care" in joined.text
    assert client.get(f"/applications/{b_app}").status_code == 200
    # Alpha's application, while acting for Beta: the offer to act for Alpha, not the page.
    offer = client.get(f"/applications/{a_app}")
    assert offer.status_code == 200
    assert "This application is <strong>Alpha Homes</strong>" in offer.text
    assert "<title>Act for Alpha Homes" in offer.text

    # Switch back to Alpha through the page: Alpha's application only.
    page = client.get("/account/organisations")
    back = client.post(
        "/account/organisations/switch",
        data={"organisation_id": str(alpha_id), "csrf_token": csrf_of(page.text)},
    )
    assert back.status_code == 200
    assert "Alpha Homes" in back.text
    assert client.get(f"/applications/{a_app}").status_code == 200
    assert "Act for Beta Care" in client.get(f"/applications/{b_app}").text
    # An organisation the person is not in cannot be chosen.
    _, gamma_id, _ = _signup(client, "Gamma Trust")
    refused = client.post(
        "/account/organisations/switch",
        data={"organisation_id": str(gamma_id), "csrf_token": csrf_of(page.text)},
    )
    assert refused.status_code == 404
    assert client.get(f"/applications/{a_app}").status_code == 200


def test_a_refused_form_still_shows_the_organisation_acted_for(
    client, engine, settings, clock, relay
):
    alpha, alpha_id, alpha_email = _signup(client, "Alpha Homes")
    beta, beta_id, _ = _signup(client, "Beta Care")
    assert _invite(client, beta, alpha_email).status_code == 201
    token = _emailed_token(engine, settings, clock, relay, alpha_email)
    assert (
        client.post("/api/v1/invitations/accept", json={"token": token}, headers=alpha).status_code
        == 200
    )
    _page_sign_in(client, alpha_email)
    page = client.get("/account/organisations")
    client.post(
        "/account/organisations/switch",
        data={"organisation_id": str(beta_id), "csrf_token": csrf_of(page.text)},
    )
    # A refused write undoes its savepoint and reloads the rows: the page is still Beta's.
    refused = client.post(
        "/applications",
        data={"scheme": "svqm", "level": "svqm:no-such-level", "csrf_token": csrf_of(page.text)},
    )
    assert refused.status_code in (404, 409, 422)
    assert "Beta Care" in refused.text
    assert "Alpha Homes" not in refused.text
