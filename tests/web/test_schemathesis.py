"""Schemathesis over the JSON API's OpenAPI schema: every operation, signed in, in-process (SECURITY 3.2).

How it is put together:

- The schema is the app's own OpenAPI document (``create_app().openapi()``, what ``/openapi.json``
  serves), loaded once at import with ``schemathesis.openapi.from_dict`` so that Schemathesis can make
  one pytest item per operation. Each case is sent in-process to the app of the running world with
  ``case.call(app=app)`` (Schemathesis' ASGI transport). ``schemathesis.pytest.from_fixture`` would
  build the app in a fixture instead, but Schemathesis 4.32.5's lazy loader sets
  ``request.node._nodeid``, which pytest 9.2 no longer has (AttributeError on every run).
- The document declares SPEC's error envelope ``{"error", "detail"[, "unmet"]}`` for the error
  statuses of every /api operation (``svqm.web.openapi``; FastAPI alone documents only 200/201 and
  its own 422 ``HTTPValidationError``, which the app never sends). So every response check stays on:
  a status the document does not declare, a body off its schema, or a 5xx fails.
- A world is a migrated database (a copy of conftest's Alembic-migrated SQLite template, or the
  PostgreSQL test database emptied) seeded through the API: an organisation with its applicant, an
  awarded application (pledges, evidence, reviews, an award), a draft one ready to submit, and an
  admin, an assessor and a panel member with TOTP secrets and bearer tokens. Worlds: SQLite as the
  admin (sees everything), SQLite as the applicant, PostgreSQL as the admin. The operations of a
  world share it, so what one operation changes the next one sees, as in a real session.
- In valid requests, ids and names are often ones the world holds (``flatmap_case``): random ids
  almost never exist, and the fuzz would only ever see 404.
- Found so far, pinned below as explicit cases: ids too large for the database and strings holding
  U+0000 were 500s; the served document described every 422 as FastAPI's, not as the app's.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime

import pyotp
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from svqm.accounts import auth
from svqm.accounts import service as accounts
from svqm.config import Settings
from svqm.db import make_engine, writer
from svqm.tables import metadata
from svqm.web.app import create_app

PASSWORD = "correct horse battery"
APPLICANT = "fuzz@org.test"


def served_openapi() -> dict:
    """The document /openapi.json serves (the app is never started: no database, no files)."""
    return create_app(settings=Settings(ENV="test", VAR_DIR="/nonexistent")).openapi()


schema = schemathesis.openapi.from_dict(served_openapi())

# Every response check but the stateful and auth-probing ones. Not `positive_data_acceptance`: a
# request valid by the schema is refused by design when a guard or the state says no (409, 422).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
# Ids and names of the seeded world, by parameter or body field, so that generated requests reach
# real objects and pass the first checks too (a random id or theme almost never exists).
KNOWN: dict[str, list] = {}


def _one_of_known(name: str, value):
    known = KNOWN.get(name)
    if known and type(value) is type(known[0]):
        return st.one_of(st.just(value), st.sampled_from(known), st.sampled_from(known))
    return st.just(value)


@schema.hook
def flatmap_case(context, case):
    """In a valid request, each id or name the world knows (path parameter or JSON body field) is
    the generated value or, twice as often, a real one. Invalid requests are left alone: a real
    value could make them valid. So are multipart bodies: Schemathesis relabels an edited body
    holding a file as invalid, and would then expect it refused."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return st.just(case)
    json_body = isinstance(case.body, dict) and case.media_type == "application/json"
    body = case.body if json_body else {}
    if not any(name in KNOWN for name in (*case.path_parameters, *body)):
        return st.just(case)

    def fields(values: dict):
        return st.fixed_dictionaries({k: _one_of_known(k, v) for k, v in values.items()})

    def rebuilt(parts):
        case.path_parameters, new_body = parts
        if body:
            case.body = new_body
        return case

    return st.tuples(fields(case.path_parameters), fields(body)).map(rebuilt)


# ---------------------------------------------------------------------------------------------
# The world


def _staff(engine, role: str) -> tuple[str, str]:
    with Session(writer(engine)) as s:
        user = accounts.add_user(s, email=f"{role}@staff.test", role=role, password=PASSWORD)
        secret = auth.ensure_totp_secret(s, user)
        s.commit()
        return user.email, secret


def _token(client, email: str, secret: str | None = None) -> dict[str, str]:
    body = {"email": email, "password": PASSWORD}
    if secret:
        body["otp"] = pyotp.TOTP(secret).now()
    response = client.post("/api/v1/auth/token", json=body)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _fresh_token(engine, email: str, settings_: Settings) -> dict[str, str]:
    """A token made straight in the database (no password hashing), for POST /auth/logout."""
    with Session(writer(engine)) as s:
        user = accounts.get_user_by_email(s, email)
        assert user is not None
        token, _ = auth.start_session(
            s, user, kind="api", now=datetime.now(UTC), settings=settings_, mfa_passed=True
        )
        s.commit()
    return {"Authorization": f"Bearer {token}"}


def _ok(response, status: int = 200):
    assert response.status_code == status, response.text
    return response.json()


def _bronze_ready(client, headers) -> int:
    """A Bronze application with six pledges and a file in every slot of its checklist."""
    app_id = _ok(
        client.post(
            "/api/v1/applications", headers=headers, json={"scheme": "svqm", "level": "Level 1"}
        ),
        201,
    )["id"]
    asked = _ok(client.get(f"/api/v1/applications/{app_id}/eligibility", headers=headers))
    _ok(
        client.put(
            f"/api/v1/applications/{app_id}/eligibility",
            headers=headers,
            json={
                "sector": asked["questions"]["sectors"][0]["id"],
                "turnover_band": asked["questions"]["turnover_bands"][0]["id"],
                "industries": [],
            },
        )
    )
    themes = [t["id"] for t in _ok(client.get("/api/v1/schemes/svqm"))["themes"]]
    for theme in themes[:6]:
        _ok(
            client.post(
                f"/api/v1/applications/{app_id}/pledges",
                headers=headers,
                json={
                    "theme": theme,
                    "title": f"Pledge on {theme}",
                    "description": "",
                    "indicator": "n",
                    "target": "10",
                    "due_date": "2030-01-01",
                },
            ),
            201,
        )
    for slot in _ok(client.get(f"/api/v1/applications/{app_id}/requirements", headers=headers)):
        _ok(
            client.post(
                f"/api/v1/applications/{app_id}/evidence",
                headers=headers,
                data={"requirement": slot["id"], "title": slot["title"]},
                files={"file": ("evidence.txt", f"{slot['id']}\n".encode(), "text/plain")},
            ),
            201,
        )
    return app_id


def _fire(client, headers, app_id: int, trigger: str, comment: str = "") -> dict:
    return _ok(
        client.post(
            f"/api/v1/applications/{app_id}/events/{trigger}",
            headers=headers,
            json={"comment": comment},
        )
    )


def _award(client, tokens, app_id: int) -> None:
    """Submit, review, accept every file, recommend and confirm: the application is awarded."""
    _fire(client, tokens["applicant"], app_id, "submit")
    _fire(client, tokens["assessor"], app_id, "start_review")
    for item in _ok(
        client.get(f"/api/v1/applications/{app_id}/evidence", headers=tokens["assessor"])
    ):
        _ok(
            client.post(
                f"/api/v1/evidence/{item['id']}/review",
                headers=tokens["assessor"],
                json={"decision": "accepted", "comment": "fine"},
            )
        )
    _fire(client, tokens["assessor"], app_id, "recommend_award")
    assert _fire(client, tokens["panel"], app_id, "confirm_award", "agreed")["state"] == "awarded"


def _seed(app, engine) -> dict[str, dict[str, str]]:
    with TestClient(app) as client:
        staff = {role: _staff(engine, role) for role in ("admin", "assessor", "panel")}
        _ok(
            client.post(
                "/api/v1/organisations",
                json={
                    "name": "Fuzz Org",
                    "sector": "health",
                    "email": APPLICANT,
                    "password": PASSWORD,
                },
            ),
            202,
        )
        tokens = {"applicant": _token(client, APPLICANT)}
        tokens |= {role: _token(client, email, secret) for role, (email, secret) in staff.items()}
        _award(client, tokens, _bronze_ready(client, tokens["applicant"]))
        _bronze_ready(client, tokens["applicant"])
        _know(client, app, tokens["admin"])
    return tokens


def _know(client, app, admin) -> None:
    apps = _ok(client.get("/api/v1/applications", headers=admin))
    users = _ok(client.get("/api/v1/admin/users", headers=admin))
    policies = [s.policy for s in app.state.registry.current.values()]
    per_app = {
        name: [
            item
            for a in apps
            for item in _ok(client.get(f"/api/v1/applications/{a['id']}/{name}", headers=admin))
        ]
        for name in ("evidence", "pledges", "requirements")
    }
    KNOWN.clear()
    KNOWN.update(
        application_id=[a["id"] for a in apps],
        evidence_id=[e["id"] for e in per_app["evidence"]],
        pledge_id=[p["id"] for p in per_app["pledges"]],
        requirement=sorted({r["id"] for r in per_app["requirements"]}),
        award_id=[a["id"] for a in _ok(client.get("/api/v1/awards"))],
        user_id=[u["id"] for u in users],
        assessor_id=[u["id"] for u in users],
        organisation_id=sorted({a["organisation_id"] for a in apps}),
        scheme_id=[p.id for p in policies],
        scheme=[p.id for p in policies],
        level=sorted(
            {name for p in policies for lv in p.levels for name in (lv.id, lv.name, *lv.aliases)}
        ),
        theme=sorted({t.id for p in policies for t in p.themes}),
        standard=sorted({s.id for p in policies for s in p.standards}),
        question=sorted({q.id for p in policies for s in p.standards for q in s.questions}),
        trigger=sorted(
            {
                t.trigger
                for p in policies
                for flow in (p.workflows.application, p.workflows.award)
                for t in flow.transitions
            }
        ),
    )
    assert all(KNOWN.values()), KNOWN


def _database(backend: str, request, tmp) -> Engine:
    """A migrated, empty database: a copy of the Alembic-migrated SQLite template, or PostgreSQL."""
    if backend == "sqlite":
        path = tmp / "svqm.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return make_engine(f"sqlite:///{path}")
    engine = make_engine(request.getfixturevalue("postgres_url"))
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    return engine


def _app(engine, registry, tmp):
    settings_ = Settings(
        ENV="test",
        DATABASE_URL=engine.url.render_as_string(hide_password=False),
        EVIDENCE_DIR=str(tmp / "evidence"),
        VAR_DIR=str(tmp),
        MAX_UPLOAD_BYTES=200_000,
    )
    return create_app(settings=settings_, engine=engine, registry=registry), settings_


@pytest.fixture(
    scope="module",
    params=[
        "sqlite-admin",
        "sqlite-applicant",
        pytest.param("postgres-admin", marks=pytest.mark.postgres),
    ],
)
def world(request, registry, tmp_path_factory):
    """(app, the persona's headers, a maker of fresh headers for the persona) on a seeded database."""
    backend, persona = request.param.split("-")
    tmp = tmp_path_factory.mktemp(request.param)
    engine = _database(backend, request, tmp)
    app, settings_ = _app(engine, registry, tmp)
    tokens = _seed(app, engine)
    email = APPLICANT if persona == "applicant" else f"{persona}@staff.test"
    yield app, tokens[persona], lambda: _fresh_token(engine, email, settings_)
    engine.dispose()


# ---------------------------------------------------------------------------------------------
# The fuzz


@schema.parametrize()
# On a busy 2-core machine drawing cases is slow, and Schemathesis filters some draws: not faults.
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_keeps_to_the_schema(case, world):
    app, headers, fresh = world
    if case.operation.path == "/api/v1/auth/logout":
        headers = fresh()  # logout revokes the token it carries; the persona's must live on
    response = case.call(app=app, headers=headers)
    case.validate_response(response, headers=headers, checks=CHECKS)


# ---------------------------------------------------------------------------------------------
# What the fuzz found, pinned as explicit cases (sent through Schemathesis, with the same checks)


@dataclass
class Small:
    app: object
    admin: dict[str, str]
    applicant: dict[str, str]
    application_id: int


@pytest.fixture
def small(engine, registry, tmp_path) -> Small:
    """An admin, an organisation with its applicant, and a draft application."""
    app, _ = _app(engine, registry, tmp_path)
    with TestClient(app) as client:
        admin_email, secret = _staff(engine, "admin")
        _ok(
            client.post(
                "/api/v1/organisations",
                json={"name": "Small Org", "sector": "", "email": APPLICANT, "password": PASSWORD},
            ),
            202,
        )
        applicant = _token(client, APPLICANT)
        admin = _token(client, admin_email, secret)
        application = _ok(
            client.post(
                "/api/v1/applications",
                headers=applicant,
                json={"scheme": "svqm", "level": "bronze"},
            ),
            201,
        )
    return Small(app, admin, applicant, application["id"])


def _refusals(small: Small, probes) -> list[str]:
    """Send each probe; describe every one answered with a 5xx or off the documented contract."""
    problems = []
    for who, method, path, kwargs in probes:
        case = schema[path][method].Case(**kwargs)
        headers = getattr(small, who) if who else None
        sent = {k: v for k, v in kwargs.items() if k in ("query", "body")}
        label = f"{who or 'anonymous'}: {method} {case.formatted_path} {sent or ''}".rstrip()
        try:
            response = case.call(app=small.app, headers=headers)
        except Exception as exc:  # Starlette re-raises what the app did not handle (a 500)
            problems.append(
                f"{label} -> 500, unhandled {type(exc).__name__}: {str(exc).splitlines()[0]}"
            )
            continue
        try:
            case.validate_response(response, headers=headers, checks=CHECKS)
        except FailureGroup as group:
            titles = "; ".join(failure.title for failure in group.exceptions)
            problems.append(f"{label} -> {response.status_code}: {titles}")
    return problems


def _id_probes(small: Small, n: int):
    app = small.application_id
    apps = "/api/v1/applications/{application_id}"
    pledge = {
        "theme": "x",
        "title": "t",
        "description": "",
        "indicator": "n",
        "target": "1",
        "due_date": "2030-01-01",
    }
    return [
        *(
            ("admin", "GET", f"{apps}{tail}", {"path_parameters": {"application_id": n}})
            for tail in ("", "/history", "/requirements", "/pledges", "/evidence", "/scores")
        ),
        (
            "admin",
            "POST",
            f"{apps}/pledges",
            {"path_parameters": {"application_id": n}, "body": pledge},
        ),
        (
            "admin",
            "POST",
            f"{apps}/scores",
            {
                "path_parameters": {"application_id": n},
                "body": {"standard": "s", "question": "q", "score": 1},
            },
        ),
        (
            "admin",
            "POST",
            f"{apps}/events/{{trigger}}",
            {"path_parameters": {"application_id": n, "trigger": "withdraw"}, "body": {}},
        ),
        (
            "admin",
            "POST",
            f"{apps}/assessor",
            {"path_parameters": {"application_id": n}, "body": {"assessor_id": 1}},
        ),
        (
            "admin",
            "POST",
            f"{apps}/assessor",
            {"path_parameters": {"application_id": app}, "body": {"assessor_id": n}},
        ),
        (
            "applicant",
            "POST",
            f"{apps}/evidence",
            {
                "path_parameters": {"application_id": n},
                "media_type": "multipart/form-data",
                "body": {"file": b"hello\n", "requirement": "executive_commitment"},
            },
        ),
        ("admin", "GET", "/api/v1/applications", {"query": {"offset": n}}),
        (
            "admin",
            "GET",
            "/api/v1/evidence/{evidence_id}/file",
            {"path_parameters": {"evidence_id": n}},
        ),
        (
            "admin",
            "POST",
            "/api/v1/evidence/{evidence_id}/review",
            {"path_parameters": {"evidence_id": n}, "body": {"decision": "accepted"}},
        ),
        (None, "GET", "/api/v1/awards/{award_id}", {"path_parameters": {"award_id": n}}),
        (
            "admin",
            "POST",
            "/api/v1/awards/{award_id}/events/{trigger}",
            {"path_parameters": {"award_id": n, "trigger": "suspend"}, "body": {"comment": "c"}},
        ),
        (
            "admin",
            "POST",
            "/api/v1/admin/users/{user_id}/disable",
            {"path_parameters": {"user_id": n}},
        ),
        (
            "admin",
            "POST",
            "/api/v1/admin/users",
            {
                "body": {
                    "email": "new@staff.test",
                    "role": "applicant",
                    "organisation_id": n,
                    "password": PASSWORD,
                }
            },
        ),
        (
            "admin",
            "POST",
            "/api/v1/admin/conflicts",
            {"body": {"user_id": n, "organisation_id": 1}},
        ),
        (
            "admin",
            "POST",
            "/api/v1/admin/conflicts",
            {"body": {"user_id": 1, "organisation_id": n}},
        ),
    ]


def test_ids_the_database_cannot_hold_are_refused_not_500(small, engine):
    """Found by the fuzz: an id the schema allowed but the column cannot hold (beyond 64 bits on
    SQLite, 32 on PostgreSQL) reached the database and came back as a 500 (OverflowError,
    NumericValueOutOfRange), on public routes too. Every route and body field taking an id, by name.
    Expected: 404 (no such object) or 422, in the error envelope."""
    n = 2**63 if engine.dialect.name == "sqlite" else 2**31
    problems = _refusals(small, _id_probes(small, n))
    assert not problems, "\n".join(problems)


def _nul_probes(small: Small):
    app = {"application_id": small.application_id}
    nul = "a\x00b"
    return [
        (None, "GET", "/api/v1/awards", {"query": {"level": nul}}),
        (None, "GET", "/api/v1/awards", {"query": {"scheme": nul}}),
        (
            None,
            "POST",
            "/api/v1/auth/token",
            {"body": {"email": f"{nul}@org.test", "password": "x"}},
        ),
        (
            None,
            "POST",
            "/api/v1/organisations",
            {"body": {"name": nul, "sector": "", "email": "nul@org.test", "password": PASSWORD}},
        ),
        ("admin", "GET", "/api/v1/applications", {"query": {"state": nul}}),
        (
            "applicant",
            "POST",
            "/api/v1/applications/{application_id}/pledges",
            {
                "path_parameters": app,
                "body": {
                    "theme": "employment",
                    "title": nul,
                    "description": "",
                    "indicator": "n",
                    "target": "1",
                    "due_date": "2030-01-01",
                },
            },
        ),
        (
            "admin",
            "POST",
            "/api/v1/admin/users",
            {
                "body": {
                    "email": "nul@staff.test",
                    "role": "assessor",
                    "name": nul,
                    "password": PASSWORD,
                }
            },
        ),
        (
            "admin",
            "POST",
            "/api/v1/admin/conflicts",
            {"body": {"user_id": 1, "organisation_id": 1, "reason": nul}},
        ),
        (
            "applicant",
            "POST",
            "/api/v1/applications/{application_id}/evidence",
            {
                "path_parameters": app,
                "media_type": "multipart/form-data",
                "body": {"file": b"hello\n", "requirement": "executive_commitment", "title": nul},
            },
        ),
        (
            "applicant",
            "POST",
            "/api/v1/applications/{application_id}/events/{trigger}",
            {"path_parameters": {**app, "trigger": "withdraw"}, "body": {"comment": nul}},
        ),
    ]


def test_nul_characters_are_refused_not_500(small):
    """Found by the fuzz, on PostgreSQL: a string holding U+0000 is valid JSON and valid by the
    schema, but PostgreSQL refuses it in text ("PostgreSQL text fields cannot contain NUL (0x00)
    bytes"), and the request was a 500, on public routes too (sign-in, sign-up, the award
    directory). Expected: a 4xx in the error envelope (422 invalid_input)."""
    problems = _refusals(small, _nul_probes(small))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # the document, not the database
def test_served_openapi_describes_the_error_bodies_sent(small):
    """Found by the fuzz: /openapi.json documented every 422 as FastAPI's HTTPValidationError
    (`{"detail": [{"loc", "msg", "type"}]}`) while the app sends SPEC's envelope
    (`{"error": "invalid_input", "detail": "<text>"}`), and no other error status at all, so a
    client built from the document could not read the API's errors. Checked on the document as
    served, through the app."""
    served = schemathesis.openapi.from_asgi("/openapi.json", small.app)
    case = served["/api/v1/applications"]["POST"].Case(body={"scheme": "svqm"})
    response = case.call(headers=small.applicant)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_input"
    case.validate_response(
        response,
        headers=small.applicant,
        checks=[status_code_conformance, response_schema_conformance],
    )
    signed_out = served["/api/v1/applications"]["GET"].Case()
    response = signed_out.call()
    assert response.status_code == 401
    signed_out.validate_response(
        response, checks=[status_code_conformance, response_schema_conformance]
    )
