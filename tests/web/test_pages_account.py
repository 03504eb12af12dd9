from __future__ import annotations

import pyotp
import pytest
from sqlmodel import Session

from svqm.accounts.models import LoginAttempt, Organisation, User, UserSession
from tests.web.pages_helpers import (
    PASSWORD,
    SESSION,
    count,
    csrf_of,
    error_summary,
    form_token,
    make_account,
    make_client,
    replay_cookie,
    sign_in,
)


@pytest.fixture
def client(engine, registry, tmp_path):
    with make_client(engine, registry, tmp_path) as c:
        yield c


def _login(client, email, password, **extra):
    token = form_token(client, "/login")
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token, **extra},
        follow_redirects=False,
    )


def test_applicant_signs_in_and_reaches_the_dashboard(client, session):
    user = make_account(session, "applicant")
    response = _login(client, user.email, PASSWORD)
    assert (response.status_code, response.headers["location"]) == (303, "/dashboard")
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert '<h1 class="govuk-heading-l">Your dashboard</h1>' in page.text
    assert f"Signed in as {user.email}" in page.text


def test_sign_in_goes_back_to_a_local_next_page_only(client, session):
    user = make_account(session, "applicant")
    assert client.get("/dashboard", follow_redirects=False).headers["location"] == (
        "/login?next=/dashboard"
    )
    form = client.get("/login?next=/applications/7")
    assert 'name="next" value="/applications/7"' in form.text
    response = _login(client, user.email, PASSWORD, next="/applications/7")
    assert response.headers["location"] == "/applications/7"
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        client.cookies.clear()
        response = _login(client, user.email, PASSWORD, next=evil)
        assert response.headers["location"] == "/dashboard", evil


def test_staff_must_give_the_second_factor_before_any_page(client, session):
    admin = make_account(session, "admin")
    response = _login(client, admin.email, PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/login/second-factor"
    # Password alone: every signed-in page sends them back to the second factor.
    blocked = client.get("/dashboard", follow_redirects=False)
    assert blocked.status_code == 303
    assert blocked.headers["location"] == "/login/second-factor?next=/dashboard"
    wrong = client.post(
        "/login/second-factor",
        data={"code": "000000", "csrf_token": form_token(client, "/login/second-factor")},
    )
    assert wrong.status_code == 401
    assert "Enter the 6-digit code" in error_summary(wrong.text)
    assert client.get("/dashboard", follow_redirects=False).status_code == 303
    token = form_token(client, "/login/second-factor")
    done = client.post(
        "/login/second-factor",
        data={"code": pyotp.TOTP(admin.totp_secret).now(), "csrf_token": token},
        follow_redirects=False,
    )
    assert (done.status_code, done.headers["location"]) == (303, "/admin")
    # Now signed in: the applicant dashboard answers, with a 403 page for an admin.
    page = client.get("/dashboard", follow_redirects=False)
    assert page.status_code == 403
    assert "text/html" in page.headers["content-type"]


def test_enrolment_shows_the_qr_code_and_uri_until_a_code_is_confirmed(client, session):
    panel = make_account(session, "panel")
    _login(client, panel.email, PASSWORD)
    page = client.get("/login/second-factor")
    assert page.status_code == 200
    assert "Set up your authenticator app" in page.text
    assert '<img src="data:image/svg+xml;base64,' in page.text
    assert 'alt="QR code to add this account to an authenticator app' in page.text
    assert "otpauth://totp/" in page.text
    assert f"secret={panel.totp_secret}" in page.text
    client.post(
        "/login/second-factor",
        data={"code": pyotp.TOTP(panel.totp_secret).now(), "csrf_token": csrf_of(page.text)},
    )
    with Session(client.app.state.engine) as s:
        assert s.get(User, panel.id).totp_confirmed_at is not None
    client.post("/logout", data={"csrf_token": form_token(client, "/login")})
    _login(client, panel.email, PASSWORD)
    again = client.get("/login/second-factor")
    assert "Enter your security code" in again.text
    assert "otpauth://" not in again.text
    assert "data:image/svg" not in again.text


def test_the_second_factor_gives_a_new_session_and_the_old_one_dies(client, session):
    assessor = make_account(session, "assessor")
    replay_cookie(client, "planted-by-an-attacker")
    _login(client, assessor.email, PASSWORD)
    pending = client.cookies.get(SESSION)
    assert pending
    assert pending != "planted-by-an-attacker"
    token = form_token(client, "/login/second-factor")
    response = client.post(
        "/login/second-factor",
        data={"code": pyotp.TOTP(assessor.totp_secret).now(), "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    full = client.cookies.get(SESSION)
    assert full
    assert full != pending
    # Replaying the password-only session gets nothing: back to the sign-in page.
    replay_cookie(client, pending)
    replay = client.get("/dashboard", follow_redirects=False)
    assert (replay.status_code, replay.headers["location"]) == (303, "/login?next=/dashboard")


def test_sign_out_revokes_the_session_on_the_server(client, session):
    user = make_account(session, "applicant")
    sign_in(client, user.email)
    copied = client.cookies.get(SESSION)
    token = form_token(client, "/dashboard")
    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/login?done=signed-out")
    assert response.headers["clear-site-data"] == '"cookies", "storage"'
    assert SESSION not in client.cookies
    assert "You have signed out." in client.get("/login?done=signed-out").text
    replay_cookie(client, copied)
    replay = client.get("/dashboard", follow_redirects=False)
    assert (replay.status_code, replay.headers["location"]) == (303, "/login?next=/dashboard")
    assert count(client.app.state.engine, UserSession, UserSession.revoked_at.is_(None)) == 0


def test_a_post_without_the_form_token_is_refused_and_changes_nothing(client, session, engine):
    user = make_account(session, "applicant")
    refused = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert refused.status_code == 403
    assert count(engine, UserSession) == 0
    sign_in(client, user.email)
    refused = client.post("/applications", data={"scheme": "svqm", "level": "bronze"})
    assert refused.status_code == 403
    from svqm.workflow.models import Application

    assert count(engine, Application) == 0
    assert client.post("/logout", data={}).status_code == 403
    assert client.get("/dashboard").status_code == 200  # still signed in


def test_a_token_from_another_session_is_refused(engine, registry, tmp_path, session):
    from svqm.workflow.models import Application

    alice, bob = make_account(session, "applicant"), make_account(session, "applicant")
    with make_client(engine, registry, tmp_path) as a, make_client(engine, registry, tmp_path) as b:
        sign_in(a, alice.email)
        sign_in(b, bob.email)
        bobs_token = form_token(b, "/dashboard")
        refused = a.post(
            "/applications", data={"scheme": "svqm", "level": "bronze", "csrf_token": bobs_token}
        )
        assert refused.status_code == 403
        # A signed-out visitor's token is no good for a signed-in session either.
        anon = make_client(engine, registry, tmp_path)
        with anon:
            visitor_token = form_token(anon, "/login")
        assert (
            a.post(
                "/applications",
                data={"scheme": "svqm", "level": "bronze", "csrf_token": visitor_token},
            ).status_code
            == 403
        )
    assert count(engine, Application) == 0


def test_a_cross_site_post_is_refused(client, session, engine):
    from svqm.workflow.models import Application

    user = make_account(session, "applicant")
    sign_in(client, user.email)
    token = form_token(client, "/dashboard")
    refused = client.post(
        "/applications",
        data={"scheme": "svqm", "level": "bronze", "csrf_token": token},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert refused.status_code == 403
    assert count(engine, Application) == 0
    same_site = client.post(
        "/applications",
        data={"scheme": "svqm", "level": "bronze", "csrf_token": token},
        headers={"Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )
    assert same_site.status_code == 303


def test_wrong_passwords_are_throttled_across_app_instances(engine, registry, tmp_path, session):
    user = make_account(session, "applicant")
    with (
        make_client(engine, registry, tmp_path / "one") as one,
        make_client(engine, registry, tmp_path / "two") as two,
    ):
        statuses = [_login(one, user.email, "wrong password 1").status_code for _ in range(3)]
        statuses += [_login(two, user.email, "wrong password 2").status_code for _ in range(3)]
        assert statuses == [401, 401, 401, 401, 401, 429]
        # The right password, on the first instance: still refused, counted in the database.
        response = _login(one, user.email, PASSWORD)
        assert response.status_code == 429
        assert "too many failed sign-ins" in error_summary(response.text)
        assert SESSION not in one.cookies
    assert count(engine, LoginAttempt) == 5
    assert count(engine, UserSession) == 0


def test_unknown_email_and_wrong_password_look_the_same(client, session):
    user = make_account(session, "applicant")
    unknown = _login(client, "nobody@example.test", PASSWORD)
    wrong = _login(client, user.email, "not the password")
    assert unknown.status_code == wrong.status_code == 401
    assert error_summary(unknown.text) == error_summary(wrong.text)
    assert error_summary(wrong.text) == (
        "There is a problem Enter a correct email address and password"
    )
    # The email typed is kept; the password never is.
    assert f'value="{user.email}"' in wrong.text
    assert "not the password" not in wrong.text


def test_sign_up_creates_the_organisation_and_signs_in(client, engine):
    token = form_token(client, "/signup")
    response = client.post(
        "/signup",
        data={
            "organisation": "Harbour Care Group",
            "sector": "social care",
            "email": "Owner@Harbour.example",
            "password": "a long enough secret",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert (response.status_code, response.headers["location"]) == (
        303,
        "/dashboard?done=signed-up",
    )
    page = client.get("/dashboard?done=signed-up")
    assert page.status_code == 200
    assert "Harbour Care Group" in page.text
    assert "Your organisation is registered and you are signed in." in page.text
    with Session(engine) as s:
        from sqlmodel import select

        user = s.exec(select(User).where(User.email == "owner@harbour.example")).one()
        org = s.get(Organisation, user.organisation_id)
    assert (user.role, org.name, org.sector) == ("applicant", "Harbour Care Group", "social care")


def test_sign_up_problems_keep_what_was_typed(client, engine):
    token = form_token(client, "/signup")
    response = client.post(
        "/signup",
        data={
            "organisation": "Northgate Facilities",
            "sector": "",
            "email": "ops@northgate.example",
            "password": "short",
            "csrf_token": token,
        },
    )
    assert response.status_code == 422
    assert "a password needs at least 8 characters" in error_summary(response.text).lower()
    assert 'href="#password"' in response.text
    assert 'value="Northgate Facilities"' in response.text
    assert count(engine, Organisation) == 0
    empty = client.post(
        "/signup",
        data={
            "organisation": "",
            "email": "",
            "password": "",
            "csrf_token": csrf_of(response.text),
        },
    )
    assert empty.status_code == 422
    summary = error_summary(empty.text)
    assert "Enter your organisation name" in summary
    assert "Enter your email address" in summary


def test_the_session_cookie_is_httponly_lax_and_ends_with_the_browser(client, session):
    user = make_account(session, "applicant")
    response = _login(client, user.email, PASSWORD)
    cookie = next(
        v
        for k, v in response.headers.multi_items()
        if k == "set-cookie" and v.startswith(f"{SESSION}=")
    )
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert "httponly" in attributes
    assert "samesite=lax" in cookie.lower()
    assert "path=/" in cookie.lower()
    assert not attributes & {"max-age", "expires"}
