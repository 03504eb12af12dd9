from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlmodel import Session
from starlette.routing import Match

from svqm.config import Settings
from svqm.db import writer
from svqm.web.app import ROUTERS, create_app
from tests.web.pages_helpers import api_token, form_token, make_account, make_client, sign_in


@pytest.fixture
def client(engine, registry):
    settings = Settings(ENV="test", DATABASE_URL=engine.url.render_as_string(hide_password=False))
    with TestClient(create_app(settings=settings, engine=engine, registry=registry)) as c:
        yield c


def test_healthz(client):
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_schemes_follow_the_contract(client):
    response = client.get("/api/v1/schemes")
    assert response.status_code == 200
    schemes = {s["id"]: s for s in response.json()}
    assert set(schemes) == {
        "svqm",
        "svqm-health",
        "bcorp-style",
        "iip-style",
        "iso17021-style",
        "northshore-anchor-charter",
    }
    svqm = schemes["svqm"]
    assert svqm["name"] == "Social Value Quality Mark"
    assert [lv["name"] for lv in svqm["levels"]] == ["Bronze", "Silver", "Gold", "Platinum"]
    bronze, silver = svqm["levels"][0], svqm["levels"][1]
    assert bronze == {
        "id": "bronze",
        "name": "Bronze",
        "aliases": ["Level 1"],
        "rank": 1,
        "validity_months": 12,
        "standards": [],
    }
    assert silver["validity_months"] == 24
    assert silver["standards"] == ["plan", "demonstrate", "calculate", "report", "eco_system"]
    assert len(svqm["levels"][3]["standards"]) == 9
    assert len(svqm["themes"]) == 9
    plan = next(s for s in svqm["standards"] if s["id"] == "plan")
    question = plan["questions"][0]
    assert set(question) == {"id", "text", "weight", "mandatory", "max_score", "rubric"}
    # What each score means, one entry per score from 0 to the question's maximum.
    assert list(question["rubric"]) == [str(n) for n in range(question["max_score"] + 1)]
    assert all(question["rubric"].values())
    health_themes = {t["id"]: t["mandatory"] for t in schemes["svqm-health"]["themes"]}
    assert sum(health_themes.values()) == 3


def test_unknown_scheme_is_a_json_404(client):
    response = client.get("/api/v1/schemes/nope")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert "no scheme 'nope'" in response.json()["detail"]


def test_an_address_no_page_answers_is_told_in_plain_words(client):
    """Not the framework's "Not Found": what to check, on the page and in the API's envelope."""
    page = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert "Page not found" in page.text
    assert "If you typed the web address, check it is correct" in page.text
    assert ">Not Found<" not in page.text
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.json()["error"] == "not_found"
    assert api.json()["detail"].startswith("there is no page at this address")
    wrong = client.delete("/healthz")
    assert wrong.status_code == 405
    assert wrong.json()["detail"] == "this address does not take that kind of request"


def test_production_serves_no_api_docs(engine, registry):
    settings = Settings(ENV="production")
    with TestClient(create_app(settings=settings, engine=engine, registry=registry)) as c:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert c.get(path).status_code == 404
    with TestClient(
        create_app(settings=Settings(ENV="test"), engine=engine, registry=registry)
    ) as c:
        assert c.get("/openapi.json").status_code == 200


def test_every_page_names_the_service_favicon_and_it_is_served(client):
    page = client.get("/")
    assert '<link rel="icon" href="/static/app/favicon.svg" type="image/svg+xml">' in page.text
    icon = client.get("/static/app/favicon.svg")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.content.startswith(b"<svg")


def _paths(candidates):
    from fastapi.routing import APIRoute, _IncludedRouter

    for c in candidates:
        if isinstance(c, _IncludedRouter):
            yield from _paths(c.effective_candidates())
        elif isinstance(c.original_route, APIRoute):
            yield c.path


def test_the_route_index_answers_as_fastapi_matches(engine, registry):
    """Each included router skips only paths none of its routes matches: for every route's
    path (its parameters filled in), near misses and unknown paths, each router answers as
    FastAPI's own matching does (FULL, PARTIAL for another method, or NONE)."""
    from svqm.web import app as app_module

    settings = Settings(ENV="test", DATABASE_URL=engine.url.render_as_string(hide_password=False))
    app = create_app(settings=settings, engine=engine, registry=registry)
    indexed = [r for r in app.router.routes if isinstance(r, app_module._IndexedRouter)]
    assert len(indexed) == len(app_module.ROUTERS)
    samples = {"/", "/nope", "/api", "/api/v1", "/static/app/x.css", "/assess/", "/assess/x/y"}
    for r in indexed:
        for path in _paths(r.effective_candidates()):
            filled = re.sub(r"\{[^}:]+:path\}", "a/b", re.sub(r"\{[^}:]+\}", "7", path))
            samples |= {filled, filled + "/", filled.rstrip("/") or "/", filled[:-1] or "/"}
    assert len(samples) > 300
    skipped = 0
    for path in sorted(samples):
        for method in ("GET", "POST"):
            for r in indexed:
                scope = {"type": "http", "path": path, "root_path": "", "method": method}
                expected = super(app_module._IndexedRouter, r).matches(dict(scope))
                got = r.matches(dict(scope))
                assert got[0] == expected[0], (path, method, r.original_router)
                skipped += expected[0] == Match.NONE
    assert skipped > 0


def test_a_fastapi_with_other_router_internals_routes_without_the_index(
    engine, registry, monkeypatch
):
    """The index reads FastAPI's private router internals; a FastAPI release without them must
    leave routing as FastAPI does it (every page still answers), not fail every request."""
    from svqm.web import app as app_module

    def gone(self):  # as if FastAPI no longer kept the routes' version this way
        raise AttributeError("_get_routes_version")

    monkeypatch.setattr(app_module._IndexedRouter, "index", gone)
    settings = Settings(ENV="test", DATABASE_URL=engine.url.render_as_string(hide_password=False))
    app = create_app(settings=settings, engine=engine, registry=registry)
    assert not [r for r in app.router.routes if isinstance(r, app_module._IndexedRouter)]
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/schemes").status_code in (200, 303)
        assert client.get("/no-such-page").status_code == 404


def test_an_app_builds_its_copy_of_a_route_only_when_a_request_reaches_it(engine, registry):
    """FastAPI works each included route out again for each app (its dependencies, its body
    model): 0.2 s of CPU an app for all of them. The route index reads the routers' own routes,
    so a new app has built none, and a request builds those of the routers it is matched in."""
    from svqm.web import app as app_module

    settings = Settings(ENV="test", DATABASE_URL=engine.url.render_as_string(hide_password=False))
    app = create_app(settings=settings, engine=engine, registry=registry)
    indexed = [r for r in app.router.routes if isinstance(r, app_module._IndexedRouter)]
    assert indexed
    assert all(r._effective_candidates_version is None for r in indexed)
    with TestClient(app) as client:
        assert client.get("/schemes").status_code == 200
    built = [r for r in indexed if r._effective_candidates_version is not None]
    assert 0 < len(built) < len(indexed) / 4


def _typed_path_routes(app):
    """(method, path with every parameter filled) for each route with a path parameter that is
    not text: its typed parameters given "abc", its text ones "x"."""

    def params(dependant):
        yield from dependant.path_params
        for sub in dependant.dependencies:
            yield from params(sub)

    for router in ROUTERS:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            typed = {p.name for p in params(route.dependant) if p.field_info.annotation is not str}
            if not typed:
                continue
            path = re.sub(
                r"\{([^}:]+)(:[^}]*)?\}",
                lambda m, typed=typed: "abc" if m.group(1) in typed else "x",
                route.path,
            )
            for method in sorted(route.methods & {"GET", "POST"}):
                yield method, path


def test_a_path_parameter_off_its_type_is_not_found_on_every_route(engine, registry, tmp_path):
    """Before: `/organisations/abc` answered 422 "Path.organisation_id: Input should be a valid
    integer" on the page and in the API. The address names nothing: the plain 404 page for a
    person, the API's 404 envelope for a program, on every route whose path takes an id."""
    with Session(writer(engine), expire_on_commit=False) as session:
        admin = make_account(session, "admin")
    with make_client(engine, registry, tmp_path) as client:
        token = api_token(client, admin)
        sign_in(client, admin.email, totp_secret=admin.totp_secret, step=1)
        csrf = form_token(client, "/account")
        routes = sorted(set(_typed_path_routes(client.app)))
        assert len(routes) > 60
        pages = api = 0
        for method, path in routes:
            headers = {"Authorization": f"Bearer {token}"} if path.startswith("/api/") else {}
            form = {"csrf_token": csrf} if method == "POST" and not headers else None
            answer = client.request(
                method, path, headers=headers, data=form, follow_redirects=False
            )
            assert answer.status_code != 422, (method, path, answer.text[:300])
            if answer.status_code != 404:
                # Refused before the address is read: a page of another role.
                assert answer.status_code == 403, (method, path, answer.status_code)
                continue
            if answer.headers["content-type"].startswith("application/json"):
                api += 1
                assert answer.json()["error"] == "not_found", (method, path)
                assert "'abc'" in answer.json()["detail"], (method, path)
            else:
                assert not path.startswith("/api/"), (method, path)
                pages += 1
                assert "Page not found" in answer.text, (method, path)
                assert "valid integer" not in answer.text, (method, path)
        assert pages > 40
        assert api > 40
    # Signed out, the public organisation page and its API say the same.
    with make_client(engine, registry, tmp_path) as client:
        page = client.get("/organisations/abc")
        assert page.status_code == 404
        assert "Page not found" in page.text
        assert "If you typed the web address, check it is correct" in page.text
        answer = client.get("/api/v1/organisations/abc")
        assert answer.status_code == 404
        assert answer.json() == {"error": "not_found", "detail": "no organisation 'abc'"}
        long = client.get("/api/v1/organisations/" + "a" * 500)
        assert long.status_code == 404
        assert long.json()["detail"] == "no organisation '" + "a" * 39 + "…'"


def test_bad_query_and_body_input_is_still_422(engine, registry, tmp_path):
    """Only the path is an address: a query or body off its type is what someone sent (422)."""
    with Session(writer(engine), expire_on_commit=False) as session:
        admin = make_account(session, "admin")
    with make_client(engine, registry, tmp_path) as client:
        headers = {"Authorization": f"Bearer {api_token(client, admin)}"}
        query = client.get("/api/v1/applications", params={"limit": "abc"}, headers=headers)
        body = client.post("/api/v1/auth/token", json={"email": 3})
    for answer in (query, body):
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"] == "invalid_input"
    assert "limit" in query.json()["detail"]
