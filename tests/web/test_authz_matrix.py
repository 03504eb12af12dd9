"""Every route x role x own/other object, read from authz_matrix.yaml (OWASP authorisation matrix)."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
import yaml
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session, select

from svqm.accounts import auth
from svqm.accounts import service as accounts
from svqm.config import Settings
from svqm.db import writer
from svqm.evidence import pledges as pledge_service
from svqm.evidence import service as evidence_service
from svqm.notify import outbox
from svqm.notify.models import OutboxMessage
from svqm.tables import metadata
from svqm.web.app import create_app
from svqm.workflow import messages
from svqm.workflow.invoices import Invoice
from svqm.workflow.models import Award, ReportFile
from svqm.workflow.reports import AnnualReport
from svqm.workflow.service import Actor
from tests.factories import (
    add_pledges,
    make_org,
    make_user,
    open_app,
    store_at,
    upload_all,
    write_charter,
)
from tests.web.pages_helpers import forget_last_code
from tests.workflow.harness import award_in

MATRIX = yaml.safe_load((Path(__file__).parent / "authz_matrix.yaml").read_text())
ROLES = ("anonymous", "applicant", "assessor", "panel", "admin")
PASSWORD = "correct horse battery"
DENIED = {401, 403, 404}


def all_routes(app) -> list[tuple[str, str]]:
    """(METHOD, path) of every route, looking inside routers FastAPI includes lazily."""
    found: set[tuple[str, str]] = set()

    def walk(routes):
        for route in routes:
            original = getattr(route, "original_router", None)
            if original is not None:
                walk(original.routes)
            elif isinstance(route, APIRoute) or (hasattr(route, "methods") and route.methods):
                for method in route.methods - {"HEAD"}:
                    found.add((method, route.path))

    walk(app.routes)
    return sorted(found)


def test_every_route_is_in_the_matrix(tmp_path):
    app = create_app(Settings(ENV="test", VAR_DIR=str(tmp_path)))
    routes = {f"{m} {p}" for m, p in all_routes(app)} - set(MATRIX["unchecked"])
    missing = sorted(routes - set(MATRIX["routes"]))
    assert missing == [], f"add these routes to tests/web/authz_matrix.yaml: {missing}"
    stale = sorted(set(MATRIX["routes"]) - routes)
    assert stale == [], f"these matrix entries name no route: {stale}"


class World:
    """Two organisations with objects, and one person of each role with a signed-in client."""

    def __init__(self, engine, registry, tmp_path, now):
        self.engine = engine
        with Session(writer(engine), expire_on_commit=False) as s:
            self.org_a, self.org_b = make_org(s, "Alpha Trust"), make_org(s, "Beta Care")
            self.users = {
                "applicant": make_user(s, "applicant", self.org_a),
                "applicant_b": make_user(s, "applicant", self.org_b),
                "assessor": make_user(s, "assessor"),
                "assessor_b": make_user(s, "assessor"),
                "panel": make_user(s, "panel"),
                "admin": make_user(s, "admin"),
            }
            for user in self.users.values():
                user.password_hash = auth.hash_password(PASSWORD)
                if auth.needs_second_factor(user):
                    auth.ensure_totp_secret(s, user)
            store = store_at(tmp_path / "evidence")
            # Unanswered eligibility: each application stays at version 1, as the bodies say.
            self.app_a = open_app(s, registry, self.users["applicant"], now=now, eligible=False)
            self.app_b = open_app(s, registry, self.users["applicant_b"], now=now, eligible=False)
            for app, owner in ((self.app_a, "applicant"), (self.app_b, "applicant_b")):
                add_pledges(s, registry, app, self.users[owner], now=now, count=1)
                upload_all(s, registry, store, app, self.users[owner], now=now)
            self.pledge_a = pledge_service.list_pledges(s, self.app_a.id)[0].id
            self.pledge_b = pledge_service.list_pledges(s, self.app_b.id)[0].id
            # Each organisation's own charter, published (version 3).
            write_charter(s, self.org_a, self.users["applicant"], now=now)
            write_charter(s, self.org_b, self.users["applicant_b"], now=now)
            self.app_a.assessor_id = self.users["assessor"].id
            self.app_b.assessor_id = self.users["assessor_b"].id
            self.app_a.state = self.app_b.state = "submitted"
            self.award_a = award_in(
                s,
                registry,
                _Cast(self.org_a),
                scheme="svqm",
                level="bronze",
                state="active",
                issued=now - timedelta(days=30),
                at=now,
            )
            self.award_b = award_in(
                s,
                registry,
                _Cast(self.org_b),
                scheme="svqm",
                level="bronze",
                state="active",
                issued=now - timedelta(days=30),
                at=now,
            )
            # A charter's signatures (a signatory withdraws its own from the award page).
            self.charter_a, self.charter_b = (
                award_in(
                    s,
                    registry,
                    _Cast(org),
                    scheme="northshore-anchor-charter",
                    level="signatory",
                    state="signed",
                    issued=now - timedelta(days=30),
                    at=now,
                    holder_state="signed",
                )
                for org in (self.org_a, self.org_b)
            )
            # A dead letter for the admin's outbox retry.
            outbox.enqueue(
                s,
                key="matrix:dead",
                template="reminder",
                context={},
                to_addrs=["someone@org.test"],
                now=now,
            )
            dead = s.exec(select(OutboxMessage).where(OutboxMessage.key == "matrix:dead")).one()
            dead.status = "dead"
            self.message_id = dead.id
            # A report with figures awaiting review (its award holds no pledge, so none are given).
            report = AnnualReport(
                award_id=self.award_a.id,
                organisation_id=self.award_a.organisation_id,
                scheme=self.award_a.scheme,
                level=self.award_a.level,
                policy_digest=self.award_a.policy_digest,
                deadline_kind="annual_report",
                period="2026",
                filename="",
                sha256="",
                size=0,
                content_type="",
                submitted_at=now,
                state="submitted",
                state_changed_at=now,
            )
            s.add(report)
            s.flush()
            self.report_id = report.id
            # Its one supporting file (its bytes are not in the store: a reader gets a 404).
            supporting = ReportFile(
                report_id=report.id,
                filename="counts.csv",
                sha256="0" * 64,
                size=3,
                content_type="text/csv",
                uploaded_at=now,
            )
            s.add(supporting)
            s.flush()
            self.report_file_id = supporting.id
            # A recorded conflict for the admin to remove.
            self.conflict_id = accounts.declare_conflict(
                s,
                user_id=self.users["assessor_b"].id,
                organisation_id=self.org_a.id,
                reason="matrix",
                recorded_by_id=self.users["admin"].id,
            ).id
            # A message with a file on each case's thread (application and award, each side's).
            self.message_files = {}
            for kind, subject, owner in (
                ("application", self.app_a, "applicant"),
                ("application", self.app_b, "applicant_b"),
                ("award", self.award_a, "applicant"),
                ("award", self.award_b, "applicant_b"),
            ):
                posted = messages.post(
                    s,
                    kind,
                    subject,
                    body="matrix",
                    actor=Actor.of(self.users[owner]),
                    now=now,
                    store=store,
                    file=(io.BytesIO(f"matrix,{subject.id}\n".encode()), "m.csv"),
                )
                self.message_files[(kind, subject.id)] = (
                    messages.thread(s, kind, subject.id)[-1].files[0].id
                )
                assert posted.id is not None
            # An invoice of each application (a payment for the admin to record).
            self.invoices = {}
            for app in (self.app_a, self.app_b):
                invoice = Invoice(
                    number=f"INV-M{app.id:05d}",
                    organisation_id=app.organisation_id,
                    application_id=app.id,
                    scheme=app.scheme,
                    level=app.level,
                    description="matrix",
                    amount_pence=100,
                    vat_pence=20,
                    vat_percent=20,
                    issued_at=now,
                    due_at=now,
                    reference=f"INV-M{app.id:05d}",
                )
                s.add(invoice)
                s.flush()
                self.invoices[app.id] = invoice.id
            self.evidence_a = evidence_service.list_evidence(s, self.app_a.id)[0].id
            self.evidence_b = evidence_service.list_evidence(s, self.app_b.id)[0].id
            s.commit()

    def params(self, role: str, own: bool) -> dict[str, str]:
        """Path parameters naming the role's own objects, or another party's."""
        mine = own or role in ("panel", "admin")
        app, award, evidence, org, pledge, charter = (
            (self.app_a, self.award_a, self.evidence_a, self.org_a, self.pledge_a, self.charter_a)
            if mine
            else (
                self.app_b,
                self.award_b,
                self.evidence_b,
                self.org_b,
                self.pledge_b,
                self.charter_b,
            )
        )
        return {
            "application_id": str(app.id),
            "invoice_id": str(self.invoices[app.id]),
            "award_id": str(award.id),
            "evidence_id": str(evidence),
            "pledge_id": str(pledge),
            "report_id": str(self.report_id),
            "file_id": str(self.report_file_id),
            "organisation_id": str(org.id),
            "message_id": str(self.message_id),
            "conflict_id": str(self.conflict_id),
            "user_id": str(self.users["applicant_b"].id),
            "scheme_id": "svqm",
            "kind": "application",
            "trigger": "withdraw",
            "purpose": "suspension",
            "token": "not-a-set-up-link",
            "id": str(app.id),
            # Named by a route's `params` as "{charter_award_id}": a signature of a charter.
            "charter_award_id": str(charter.id),
            # A file of a message on the application's or the award's thread.
            "app_file_id": str(self.message_files[("application", app.id)]),
            "award_file_id": str(self.message_files[("award", award.id)]),
        }


class _Cast:
    """Enough of tests.workflow.harness.Cast to hold an award."""

    def __init__(self, org):
        self.org = org
        self.assessor = None


def _sign_in(client: TestClient, world: World, role: str) -> str:
    """Sign in through the pages (cookie + form token) and the API (bearer token)."""
    user = world.users[role]
    body = {"email": user.email, "password": PASSWORD}
    if user.totp_secret:
        forget_last_code(world.engine, user.email)
        body["otp"] = pyotp.TOTP(user.totp_secret).now()
    response = client.post("/api/v1/auth/token", json=body)
    assert response.status_code == 200, response.text
    with Session(writer(world.engine), expire_on_commit=False) as s:
        from svqm.accounts.models import User

        token, row = auth.start_session(
            s,
            s.get(User, user.id),
            kind="web",
            now=_utc_now(),
            settings=Settings(),
            mfa_passed=True,
        )
        s.commit()
    client.cookies.set("svqm_session", token)
    client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return row.csrf_token


def _utc_now():
    from svqm.clock import utc_now

    return utc_now()


_COUNTED = [
    t.name for t in metadata.sorted_tables if t.name not in ("user_session", "login_attempt")
]
# Every table's rows in one statement (a statement a table cost the PostgreSQL cases half their time).
_COUNT_ALL = "SELECT " + ", ".join(f'(SELECT count(*) FROM "{name}")' for name in _COUNTED)


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(zip(_COUNTED, conn.execute(text(_COUNT_ALL)).one(), strict=True))


def _state(engine) -> list[tuple]:
    with Session(engine) as s:
        from svqm.workflow.models import Application

        apps = s.exec(select(Application.id, Application.state, Application.version)).all()
        awards = s.exec(select(Award.id, Award.state, Award.version)).all()
    return sorted(apps) + sorted(awards)


@pytest.fixture
def world(engine, registry, tmp_path, now):
    return World(engine, registry, tmp_path, now)


def _expectations() -> list[tuple[str, str, str]]:
    cases = []
    for route, rules in MATRIX["routes"].items():
        for role in ROLES:
            cases.append((route, role, rules.get(role, rules.get("default", "deny"))))
    return cases


@pytest.mark.parametrize("role", ROLES)
def test_matrix_holds_for_every_route(world, engine, registry, tmp_path, role):
    settings = Settings(
        ENV="test",
        DATABASE_URL=engine.url.render_as_string(hide_password=False),
        EVIDENCE_DIR=str(tmp_path / "evidence"),
        VAR_DIR=str(tmp_path),
    )
    failures = []
    with TestClient(
        create_app(settings=settings, engine=engine, registry=registry), follow_redirects=False
    ) as client:
        csrf = _sign_in(client, world, role) if role != "anonymous" else ""
        for route, rules in MATRIX["routes"].items():
            rule = rules.get(role, rules.get("default", "deny"))
            # A route without object ids has no "another party's object" to try.
            for own in (True, False) if "{" in route else (True,):
                expect = _expected(rule, own)
                if expect is None:
                    continue
                method, template = route.split(" ", 1)
                base = world.params(role, own)
                # A route's own parameter, or (written "{name}") another of the world's objects.
                given = MATRIX.get("params", {}).get(route, {})
                values = {**base, **{k: base.get(str(v).strip("{}"), v) for k, v in given.items()}}
                path = re.sub(r"\{(\w+)\}", lambda m, v=values: v[m.group(1)], template)
                before = (_counts(engine), _state(engine)) if expect == "deny" else None
                response = client.request(method, path, **_body(route, method, path, csrf))
                status = response.status_code
                login_redirect = status in (302, 303) and "/login" in response.headers.get(
                    "location", ""
                )
                denied = status in DENIED or login_redirect
                if status >= 500 or (expect != "any" and (expect == "deny") != denied):
                    failures.append(
                        f"{role} {'own' if own else 'other'} {method} {path}: "
                        f"expected {expect}, got {status}"
                    )
                if before is not None and before != (_counts(engine), _state(engine)):
                    failures.append(f"{role} {method} {path}: a denied request changed data")
    assert failures == [], "\n".join(failures)


def _expected(rule: str, own: bool) -> str | None:
    """allow / deny for this rule and object; None when the pair is not meaningful."""
    if rule in ("allow", "any"):
        return rule
    if rule == "deny":
        return "deny"
    if rule == "own":
        return "allow" if own else "deny"
    raise ValueError(f"unknown matrix rule {rule!r}")


def _body(route: str, method: str, path: str, csrf: str) -> dict:
    """A well-formed body, so a refusal inside the endpoint is not hidden behind a 422."""
    if method == "GET":
        return {}
    given = MATRIX.get("bodies", {}).get(route, {})
    if path.startswith("/api/"):
        kwargs: dict = (
            {"json": given.get("json", {})} if "json" in given or "data" not in given else {}
        )
    else:
        kwargs = {"data": {"csrf_token": csrf, **given.get("data", {})}}
    if "data" in given and path.startswith("/api/"):
        kwargs["data"] = given["data"]
    if "file" in given:
        kwargs["files"] = {
            "file": (given["file"]["name"], given["file"]["content"].encode(), "text/plain")
        }
    return kwargs
