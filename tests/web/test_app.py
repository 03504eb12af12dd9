from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from svqm.config import Settings
from svqm.web.app import create_app


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
