"""People have names: the account page and PATCH /api/v1/me change one's name, staff choose the
daily digest there (applicants may not: 422), and the welcome email greets the person by name."""

from __future__ import annotations

from sqlmodel import Session, select

from svqm.accounts.models import User
from svqm.notify.models import OutboxMessage
from svqm.notify.render import build_message
from tests.web.pages_helpers import PASSWORD, csrf_of, error_summary, sign_in
from tests.web.test_api import client, staff, token  # noqa: F401


def _user(engine, email: str) -> User:
    with Session(engine) as s:
        return s.exec(select(User).where(User.email == email)).one()


def test_names_and_the_digest_through_the_api_and_the_welcome_email(client, engine):  # noqa: F811
    signed = client.post(
        "/api/v1/organisations",
        json={
            "name": "Named Works",
            "sector": "health",
            "email": "ann@named.test",
            "password": PASSWORD,
            "person_name": "Ann Named",
        },
    )
    assert signed.status_code == 202
    with Session(engine) as s:
        welcome = s.exec(
            select(OutboxMessage).where(OutboxMessage.template == "signup_welcome")
        ).one()
    text = build_message(welcome, mail_from="svqm@example.test").get_body(("plain",)).get_content()
    assert text.startswith("Hello Ann Named,")

    applicant = token(client, "ann@named.test")
    renamed = client.patch("/api/v1/me", headers=applicant, json={"name": "  Ann   Newname "})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Ann Newname"
    assert set(renamed.json()) >= {"id", "email", "name", "role", "memberships"}
    for body in ({"name": "   "}, {"email_digest": True}, {"name": "x" * 201}, {"nick": "a"}):
        refused = client.patch("/api/v1/me", headers=applicant, json=body)
        assert refused.status_code == 422, (body, refused.text)
    assert _user(engine, "ann@named.test").name == "Ann Newname"
    assert _user(engine, "ann@named.test").email_digest is False

    email, secret = staff(engine, "assessor")
    assessor = token(client, email, secret)
    chose = client.patch("/api/v1/me", headers=assessor, json={"email_digest": True})
    assert chose.status_code == 200, chose.text
    assert chose.json()["email_digest"] is True
    assert client.get("/api/v1/me", headers=assessor).json()["email_digest"] is True


def test_the_account_page_edits_the_name_and_staff_choose_the_digest(client, engine):  # noqa: F811
    client.post(
        "/api/v1/organisations",
        json={
            "name": "Page Works",
            "sector": "health",
            "email": "pat@page.test",
            "password": PASSWORD,
        },
    )
    sign_in(client, "pat@page.test")
    page = client.get("/account")
    assert page.status_code == 200
    assert 'action="/account/name"' in page.text
    assert 'action="/account/emails"' not in page.text
    assert 'href="/account"' in client.get("/dashboard").text
    token_ = csrf_of(page.text)
    empty = client.post("/account/name", data={"name": "  ", "csrf_token": token_})
    assert empty.status_code == 422
    assert "Enter your name" in error_summary(empty.text)
    saved = client.post(
        "/account/name", data={"name": "Pat Page", "csrf_token": token_}, follow_redirects=False
    )
    assert (saved.status_code, saved.headers["location"]) == (303, "/account?done=name")
    assert "Pat Page" in client.get("/account").text
    refused = client.post("/account/emails", data={"email_digest": "yes", "csrf_token": token_})
    assert refused.status_code == 422
    assert _user(engine, "pat@page.test").email_digest is False

    client.cookies.clear()
    email, secret = staff(engine, "panel")
    sign_in(client, email, PASSWORD, secret)
    page = client.get("/account")
    assert 'action="/account/emails"' in page.text
    chose = client.post(
        "/account/emails",
        data={"email_digest": "yes", "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert chose.status_code == 303
    assert _user(engine, email).email_digest is True
    assert "One daily summary" in client.get("/account?done=emails").text
