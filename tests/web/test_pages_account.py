from __future__ import annotations

import re

import pyotp
import pytest
from sqlmodel import Session

from svqm.accounts.models import Organisation, User, UserSession
from svqm.clock import FixedClock, utc_now
from svqm.notify.models import OutboxMessage
from tests.web.pages_helpers import (
    PASSWORD,
    SESSION,
    api_token,
    count,
    csrf_of,
    error_summary,
    form_token,
    make_account,
    make_client,
    replay_cookie,
    sign_in,
    totp_code,
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


def test_the_password_alone_never_shows_the_second_factor_secret(client, session):
    """Before: the second-factor page showed the QR code and secret to anyone with the password."""
    panel = make_account(session, "panel")
    _login(client, panel.email, PASSWORD)
    page = client.get("/login/second-factor")
    assert page.status_code == 200
    assert "Enter your security code" in page.text
    for secret_shown in ("otpauth://", "data:image/svg", panel.totp_secret):
        assert secret_shown not in page.text
    assert "ask an administrator for a new set-up link" in page.text.lower()
    # The owner, who was given the key once (by `svqm user add`), confirms it with a first code.
    client.post(
        "/login/second-factor",
        data={"code": pyotp.TOTP(panel.totp_secret).now(), "csrf_token": csrf_of(page.text)},
    )
    with Session(client.app.state.engine) as s:
        assert s.get(User, panel.id).totp_confirmed_at is not None


def test_a_staff_account_without_a_key_gets_none_by_signing_in(client, session):
    panel = make_account(session, "panel")
    panel.totp_secret = None
    session.add(panel)
    session.commit()
    _login(client, panel.email, PASSWORD)
    page = client.get("/login/second-factor")
    assert "does not have an authenticator app set up yet" in page.text
    with Session(client.app.state.engine) as s:
        assert s.get(User, panel.id).totp_secret is None


def test_an_enrolment_link_works_once_and_expires(engine, registry, tmp_path, session):
    clock = FixedClock(utc_now())
    admin, panel = make_account(session, "admin"), make_account(session, "panel")
    old_secret = panel.totp_secret
    with make_client(engine, registry, tmp_path, clock=clock) as client:
        sign_in(client, admin.email, totp_secret=admin.totp_secret)
        assert client.app.state.clock is clock
        made = client.post(
            f"/admin/users/{panel.id}/enrolment-link",
            data={"csrf_token": form_token(client, "/admin/users")},
        )
        assert made.status_code == 200
        link = re.search(r'id="enrolment-link"[^>]*>([^<]+)<', made.text).group(1)
        path = link.replace("http://127.0.0.1:8000", "")
        assert path.startswith("/enrol/")
        client.post("/logout", data={"csrf_token": csrf_of(made.text)})
        # Opening it (a mail scanner would) shows no key and uses nothing up.
        opened = client.get(path)
        assert opened.status_code == 200
        assert "otpauth://" not in opened.text
        shown = client.post(path, data={"csrf_token": csrf_of(opened.text)})
        assert shown.status_code == 200
        with Session(engine) as s:
            fresh = s.get(User, panel.id)
        assert fresh.totp_secret != old_secret
        assert fresh.totp_confirmed_at is None
        assert f"secret={fresh.totp_secret}" in shown.text
        again = client.post(path, data={"csrf_token": csrf_of(opened.text)})
        assert again.status_code == 404
        assert fresh.totp_secret not in again.text
        # The old app's codes stop working; the new key's first code confirms it.
        refused = client.post(
            "/api/v1/auth/token",
            json={
                "email": panel.email,
                "password": PASSWORD,
                "otp": totp_code(old_secret, 0, clock.at),
            },
        )
        assert refused.status_code == 401
        # A second link, left past its lifetime, is refused too.
        late = client.post(
            f"/api/v1/admin/users/{panel.id}/enrolment-link",
            headers={"Authorization": "Bearer " + api_token(client, admin, step=1)},
        )
        assert late.status_code == 201, late.text
        clock.advance(hours=25)
        expired = client.get(late.json()["link"].replace("http://127.0.0.1:8000", ""))
        assert expired.status_code == 404


def test_a_code_from_the_api_confirms_the_enrolment(client, session):
    assessor = make_account(session, "assessor")
    got = client.post(
        "/api/v1/auth/token",
        json={
            "email": assessor.email,
            "password": PASSWORD,
            "otp": pyotp.TOTP(assessor.totp_secret).now(),
        },
    )
    assert got.status_code == 200
    with Session(client.app.state.engine) as s:
        assert s.get(User, assessor.id).totp_confirmed_at is not None


def test_a_code_is_good_once_on_the_api_and_the_page(client, session):
    """Before: the same code worked twice on the API and then on the page."""
    admin = make_account(session, "admin")
    totp = pyotp.TOTP(admin.totp_secret)
    code = totp.now()
    body = {"email": admin.email, "password": PASSWORD, "otp": code}
    first = client.post("/api/v1/auth/token", json=body)
    again = client.post("/api/v1/auth/token", json=body)
    assert (first.status_code, again.status_code) == (200, 401)
    _login(client, admin.email, PASSWORD)
    page = client.post(
        "/login/second-factor",
        data={"code": code, "csrf_token": form_token(client, "/login/second-factor")},
        follow_redirects=False,
    )
    assert page.status_code == 401
    # The previous step's code (still inside the drift window) is older than the one used.
    previous = totp.at(utc_now(), counter_offset=-1)
    older = client.post("/api/v1/auth/token", json={**body, "otp": previous})
    assert older.status_code == 401
    # The next step's code is new, so it is accepted once.
    following = totp.at(utc_now(), counter_offset=1)
    assert client.post("/api/v1/auth/token", json={**body, "otp": following}).status_code == 200


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


def test_wrong_passwords_slow_the_address_across_app_instances(engine, registry, tmp_path, session):
    user = make_account(session, "applicant")
    clock = FixedClock(utc_now())
    with (
        make_client(engine, registry, tmp_path / "one", clock=clock) as one,
        make_client(engine, registry, tmp_path / "two", clock=clock) as two,
    ):
        statuses = [_login(one, user.email, "wrong password 1").status_code for _ in range(2)]
        statuses += [_login(two, user.email, "wrong password 2").status_code for _ in range(2)]
        # Three free tries from one address, then a wait: counted in the database, so the
        # second instance sees the first one's failures.
        assert statuses == [401, 401, 401, 429]
        response = _login(one, user.email, PASSWORD)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "1"
        assert "wait 1 seconds" in error_summary(response.text).lower()
        assert SESSION not in one.cookies
        # Waiting is enough: slowed, not locked.
        clock.advance(seconds=1)
        assert _login(two, user.email, PASSWORD).status_code == 303
    assert count(engine, UserSession) == 1


def test_a_stranger_cannot_lock_the_owner_out(engine, registry, tmp_path, session):
    """Before: five wrong passwords from anywhere refused the right one for 15 minutes."""
    admin = make_account(session, "admin")
    clock = FixedClock(utc_now())

    def client_at(address):
        return make_client(
            engine,
            registry,
            tmp_path / address,
            address=address,
            clock=clock,
            LOGIN_ACCOUNT_CEILING=9,
        )

    with client_at("10.0.0.1") as owner:
        # The owner has signed in from their address before.
        assert _login(owner, admin.email, PASSWORD).status_code == 303
    # Strangers guess from three addresses, three each: 9 failures, the account's ceiling.
    for n in range(3):
        with client_at(f"10.6.6.{n}") as stranger:
            tries = [_login(stranger, admin.email, f"guess {n}-{k}!").status_code for k in range(4)]
            # Each address is slowed after its free tries (the last: past the ceiling too).
            assert tries == [401, 401, 401, 429]
    with client_at("10.7.7.7") as newcomer:
        refused = _login(newcomer, admin.email, PASSWORD)
        assert refused.status_code == 429
        assert "under attack" in error_summary(refused.text)
    # The owner, from their own address, still gets in with the right password.
    with client_at("10.0.0.1") as owner:
        assert _login(owner, admin.email, PASSWORD).status_code == 303


def test_one_address_is_limited_across_accounts_and_sign_ups(engine, registry, tmp_path, session):
    clock = FixedClock(utc_now())
    with make_client(engine, registry, tmp_path, address="10.9.9.9", clock=clock) as client:
        answers = [
            _login(client, f"person{n}@example.test", "wrong password!").status_code
            for n in range(31)
        ]
        assert answers[:30] == [401] * 30
        assert answers[30] == 429
        signups = []
        for n in range(11):
            signups.append(
                client.post(
                    "/signup",
                    data={
                        "person_name": "Sam Spam",
                        "organisation": f"Spam Org {n}",
                        "email": f"spam{n}@spam.example",
                        "password": PASSWORD,
                        "csrf_token": form_token(client, "/signup"),
                    },
                    follow_redirects=False,
                ).status_code
            )
        assert signups == [303] * 10 + [429]
    with make_client(engine, registry, tmp_path, address="10.1.1.1", clock=clock) as other:
        assert _login(other, "person1@example.test", "wrong password!").status_code == 401


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


def _sign_up(client, email, organisation="Harbour Care Group", password="a long enough secret"):
    return client.post(
        "/signup",
        data={
            "person_name": "Hana Harbour",
            "organisation": organisation,
            "sector": "social care",
            "email": email,
            "password": password,
            "csrf_token": form_token(client, "/signup"),
        },
        follow_redirects=False,
    )


def test_sign_up_creates_the_organisation_and_asks_to_sign_in(client, engine):
    response = _sign_up(client, "Owner@Harbour.example")
    assert (response.status_code, response.headers["location"]) == (303, "/login?done=signed-up")
    page = client.get("/login?done=signed-up")
    assert "Sign in with that email address and your password" in page.text
    with Session(engine) as s:
        from sqlmodel import select

        user = s.exec(select(User).where(User.email == "owner@harbour.example")).one()
        org = s.get(Organisation, user.organisation_id)
        mail = s.exec(select(OutboxMessage)).all()
    assert (user.role, org.name, org.sector) == ("applicant", "Harbour Care Group", "social care")
    assert user.name == "Hana Harbour"
    assert [(m.template, m.to_addrs) for m in mail] == [("signup_welcome", user.email)]
    sign_in(client, "owner@harbour.example", "a long enough secret")
    assert "Harbour Care Group" in client.get("/dashboard").text


def test_sign_up_answers_the_same_for_a_known_email_and_tells_its_owner(client, engine, session):
    """Before: 'a user with email ... already exists' told anyone who had an account."""
    known = make_account(session, "applicant")
    new = _sign_up(client, "someone-new@harbour.example", "New Org")
    again = _sign_up(client, known.email, "Copycat Org")
    assert (new.status_code, new.headers["location"]) == (
        again.status_code,
        again.headers["location"],
    )
    assert new.content == again.content
    with Session(engine) as s:
        from sqlmodel import select

        names = set(s.exec(select(Organisation.name)).all())
        mail = s.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert "Copycat Org" not in names
    assert [(m.template, m.to_addrs) for m in mail][-1] == ("signup_exists", known.email)
    # The API too: the same 202 either way.
    body = {"name": "Api Org", "sector": "", "password": "a long enough secret"}
    fresh = client.post("/api/v1/organisations", json={**body, "email": "api-new@org.example"})
    taken = client.post("/api/v1/organisations", json={**body, "email": known.email})
    assert (fresh.status_code, fresh.json()) == (taken.status_code, taken.json())
    assert fresh.status_code == 202


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("password", "at least 12 characters"),
        ("12345678", "at least 12 characters"),
        ("            ", "only spaces"),
        ("abc\x00defghijklmnop", "control characters"),
        ("password1234", "too easy to guess"),
        ("qwertyuiop123", "too easy to guess"),
        ("Harbour Care Group", "must not contain your email, name or organisation"),
        ("harbour-care-2026", "made mostly of your email, name or organisation"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(client, engine, password, why):
    """Before: "password", "12345678", eight spaces, a NUL and the organisation's name passed."""
    refused = _sign_up(client, "owner@harbour.example", password=password)
    assert refused.status_code == 422
    assert why in error_summary(refused.text)
    assert count(engine, Organisation) == 0


def test_sign_up_problems_keep_what_was_typed(client, engine):
    token = form_token(client, "/signup")
    response = client.post(
        "/signup",
        data={
            "person_name": "Nia North",
            "organisation": "Northgate Facilities",
            "sector": "",
            "email": "ops@northgate.example",
            "password": "short",
            "csrf_token": token,
        },
    )
    assert response.status_code == 422
    assert "a password needs at least 12 characters" in error_summary(response.text).lower()
    assert 'href="#password"' in response.text
    assert 'value="Northgate Facilities"' in response.text
    assert 'value="Nia North"' in response.text
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
    assert "Enter your name" in summary


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
