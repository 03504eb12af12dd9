"""Helpers for page tests: an app client, form tokens, signing in through the pages, accounts."""

from __future__ import annotations

import html as html_lib
import itertools
import re
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from svqm.accounts import auth
from svqm.accounts import service as accounts
from svqm.accounts.models import Organisation, User
from svqm.clock import Clock, utc_now
from svqm.config import Settings
from svqm.web.app import create_app
from svqm.workflow.schemes import SchemeRegistry

PASSWORD = "correct horse battery"
SESSION = "svqm_session"  # COOKIE_SECURE is off in tests, so no __Host- prefix
_n = itertools.count(1)


def make_client(
    engine: Engine,
    registry: SchemeRegistry,
    tmp_path: Path,
    *,
    address: str = "testclient",
    clock: Clock | None = None,
    **overrides: Any,
) -> TestClient:
    """A client of a new app on the test database; use it as a context manager.

    `address` is the client address the app sees (sign-in throttling counts by it)."""
    settings = Settings(
        ENV="test",
        DATABASE_URL=engine.url.render_as_string(hide_password=False),
        EVIDENCE_DIR=str(tmp_path / "evidence"),
        VAR_DIR=str(tmp_path),
        **overrides,
    )
    app = create_app(settings=settings, engine=engine, registry=registry, clock=clock)
    return TestClient(app, client=(address, 50000))


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "input":
            self.inputs.append(dict(attrs))


def hidden_values(html: str, name: str) -> list[str]:
    """Every value of the inputs called `name` on the page, in order."""
    parser = _Inputs()
    parser.feed(html)
    return [i.get("value") or "" for i in parser.inputs if i.get("name") == name]


def csrf_of(html: str) -> str:
    tokens = hidden_values(html, "csrf_token")
    assert tokens, "the page has no form with a csrf_token"
    assert len(set(tokens)) == 1, "a page's forms should all carry the same token"
    return tokens[0]


def form_token(client: TestClient, path: str) -> str:
    """GET a page and read the hidden csrf_token of its forms."""
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code, response.text[:500])
    return csrf_of(response.text)


def error_summary(html: str) -> str:
    """The text of the page's error summary ('' if it has none)."""
    match = re.search(r'<div class="govuk-error-summary".*?</ul>', html, re.S)
    if not match:
        return ""
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(0))).strip()
    return html_lib.unescape(text)


def forget_last_code(engine: Engine, email: str) -> None:
    """Let the person's current code be used again. A code is good once (the replay guard, tested
    in test_pages_account.py), but these helpers sign one person in many times within one
    30-second step, or at a frozen app time."""
    with engine.begin() as conn:
        conn.execute(
            update(User).where(col(User.email) == email.strip().lower()).values(totp_last_step=None)
        )


def totp_code(secret: str, step: int = 0, at: datetime | None = None) -> str:
    """The code of the current 30-second step, or of the next one (`step=1`): a code is good once,
    so a test signing one person in twice within a step uses the next step's code. `at` is the
    app's (frozen) time, if it has one."""
    return pyotp.TOTP(secret).at(at or utc_now(), counter_offset=step)


def api_token(client: TestClient, user: User, password: str = PASSWORD, step: int = 0) -> str:
    """A bearer token for the user (staff give the code of `step`, at the app's time)."""
    body = {"email": user.email, "password": password}
    if user.totp_secret:
        if not step:
            forget_last_code(client.app.state.engine, user.email)
        body["otp"] = totp_code(user.totp_secret, step, client.app.state.clock.now())
    response = client.post("/api/v1/auth/token", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def sign_in(
    client: TestClient,
    email: str,
    password: str = PASSWORD,
    totp_secret: str | None = None,
    step: int = 0,
) -> None:
    """Sign in through the pages; staff also give the code from their authenticator."""
    token = form_token(client, "/login")
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[:500]
    if totp_secret is None:
        return
    assert response.headers["location"].startswith("/login/second-factor")
    if not step:
        forget_last_code(client.app.state.engine, email)
    token = form_token(client, "/login/second-factor")
    response = client.post(
        "/login/second-factor",
        data={
            "code": totp_code(totp_secret, step, client.app.state.clock.now()),
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[:500]


def replay_cookie(client: TestClient, value: str, name: str = SESSION) -> None:
    """Put a cookie value back in the client's jar, as a copied cookie would be replayed."""
    client.cookies.delete(name)
    client.cookies.set(name, value, domain="testserver.local", path="/")


def make_account(
    session: Session, role: str, org: Organisation | None = None, password: str = PASSWORD
) -> User:
    """A user with a password (and, for staff, a TOTP secret), committed for the app to see."""
    n = next(_n)
    if role == "applicant" and org is None:
        org = accounts.create_organisation(session, name=f"Organisation {n}", sector="health")
    user = accounts.add_user(
        session,
        email=f"{role}{n}@example.test",
        role=role,
        organisation_id=org.id if org else None,
        password=password,
    )
    if auth.needs_second_factor(user):
        auth.ensure_totp_secret(session, user)
    session.commit()
    return user


def count(engine: Engine, model: Any, *where: Any) -> int:
    """Rows of a table, read in a short session of its own (so no lock is held afterwards)."""
    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(model).where(*where)).one()


def organisation_id_named(client: TestClient, name: str) -> int:
    """The id of the organisation with this name. Sign-up answers the same (202, no ids) whether
    or not the email was known, so tests that signed up through the API look it up here."""
    with Session(client.app.state.engine) as s:
        found = s.exec(select(Organisation.id).where(Organisation.name == name)).one()
    assert found is not None
    return int(found)
