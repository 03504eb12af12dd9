from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from svqm.accounts import service as accounts
from svqm.clock import utc_now
from svqm.config import Settings
from svqm.db import writer
from svqm.web.app import create_app
from tests.factories import make_user
from tests.web.pages_helpers import make_account, sign_in
from tests.workflow.harness import Cast, award_in

PUBLIC_PAGES = [
    "/",
    "/schemes",
    "/schemes/svqm",
    "/schemes/svqm-health",
    "/awards",
    "/accessibility",
]


@pytest.fixture
def client(engine, registry, tmp_path):
    settings = Settings(
        ENV="test",
        DATABASE_URL=engine.url.render_as_string(hide_password=False),
        EVIDENCE_DIR=str(tmp_path / "evidence"),
        VAR_DIR=str(tmp_path),
    )
    with TestClient(create_app(settings=settings, engine=engine, registry=registry)) as c:
        yield c


@pytest.fixture
def awards(engine, registry):
    """One award in each status the directory and the verify page tell apart."""
    now = utc_now()
    made = {}
    with Session(writer(engine), expire_on_commit=False) as s:
        assessor = make_user(s, "assessor")
        for name, sector, level, state, issued_days_ago in [
            ("Alpha Trust", "health", "bronze", "active", 30),
            ("Beta Care", "social care", "silver", "active", 30),
            ("Gamma Supplies", "facilities", "bronze", "suspended", 30),
            ("Delta Homes", "housing", "bronze", "renewed", 30),
            ("Epsilon Works", "construction", "bronze", "withdrawn", 30),
            ("Zeta Foods", "catering", "bronze", "active", 400),
        ]:
            org = accounts.create_organisation(s, name=name, sector=sector)
            cast = Cast(org, None, assessor, None, None)  # type: ignore[arg-type]
            made[name] = award_in(
                s,
                registry,
                cast,
                scheme="svqm",
                level=level,
                state=state,
                issued=now - timedelta(days=issued_days_ago),
                at=now,
            )
        s.commit()
    return made


def _names(html: str) -> set[str]:
    return set(re.findall(r'href="/awards/\d+/verify">([^<]+)<', html))


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_every_public_page_has_one_heading_and_a_language(client, awards, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert len(re.findall(r"<h1[\s>]", response.text)) == 1
    assert re.search(r'<html lang="en"', response.text)


def test_verify_and_error_pages_have_one_heading_too(client, awards):
    for path in (
        f"/awards/{awards['Alpha Trust'].id}/verify",
        "/awards/999999/verify",
        "/schemes/nope",
    ):
        response = client.get(path)
        assert len(re.findall(r"<h1[\s>]", response.text)) == 1, path
        assert '<html lang="en"' in response.text


def test_home_says_what_the_service_is_and_where_to_go(client):
    home = client.get("/")
    for link in ('href="/login"', 'href="/signup"', 'href="/schemes/svqm"', 'href="/awards"'):
        assert link in home.text
    assert "Social Value Quality Mark" in home.text
    # The home page's heading is the service's name: its <title> says it once.
    assert "<title>Social value accreditation</title>" in home.text
    assert "<title>Accessibility statement – Social value accreditation</title>" in (
        client.get("/accessibility").text
    )


@pytest.mark.parametrize(("role", "home"), [("applicant", "/dashboard"), ("admin", "/admin")])
def test_home_sends_people_signed_in_to_their_start_page(client, engine, role, home):
    with Session(writer(engine), expire_on_commit=False) as s:
        user = make_account(s, role)
    sign_in(client, user.email, totp_secret=user.totp_secret)
    response = client.get("/", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, home)


def test_the_scheme_page_shows_levels_themes_standards_deadlines_and_workflows(client):
    page = client.get("/schemes/svqm").text
    assert "Bronze" in page
    assert "(also called Level 1)" in page
    assert "Hold Silver for at least 12 months" in page  # Gold's prerequisite
    assert "Is there a documented social value strategy" in page
    assert "10 working days after the application enters Not awarded" in page
    assert "When it passes: close appeal window." in page
    for kind in ("application", "award"):
        assert f'<img src="/schemes/svqm/{kind}.svg"' in page
        assert re.search(rf'<img src="/schemes/svqm/{kind}.svg"\s+alt="[^"]+"', page)
        assert f'href="/schemes/svqm/{kind}.svg?size=full"' in page
    assert "<strong>Confirm award</strong>: from Recommended for award to Awarded, by\n" in page
    health = client.get("/schemes/svqm-health").text
    assert health.count(">Mandatory</strong>") == 3


def test_the_workflow_diagram_is_svg(client):
    response = client.get("/schemes/svqm/application.svg")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(response.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    # Drawn for people: top to bottom, states and steps in the policy's words and who takes
    # each, never the engine's ids or guard names.
    flow = client.app.state.registry.get("svqm").policy.workflows.application
    confirm = next(t for t in flow.transitions if t.trigger == "confirm_award")
    assert confirm.title in response.text
    assert flow.state("recommended_award").title in response.text
    assert "confirm_award" not in response.text
    assert "before_deadline" not in response.text
    # On the page it fits its box: no width or height of its own, only the viewBox, so it
    # scales to the box's width; at full size (the link under it) it keeps its own.
    assert root.get("width") is None
    assert root.get("height") is None
    assert root.get("viewBox")
    full = ET.fromstring(client.get("/schemes/svqm/application.svg?size=full").content)
    width = float(full.get("width", "0").removesuffix("pt"))
    assert 0 < width < 2500, "top to bottom, not one long row"
    assert full.get("viewBox") == root.get("viewBox")
    again = client.get("/schemes/svqm/application.svg")
    assert again.content == response.content
    assert client.get("/schemes/svqm/nothing.svg").status_code == 404
    # The scheme page draws each workflow the scheme has, the report's review too.
    assert client.get("/schemes/svqm/report.svg").status_code == 200
    assert client.get("/schemes/bcorp-style/report.svg").status_code == 404  # it has none
    assert client.get("/schemes/nope/award.svg").status_code == 404


def test_the_directory_lists_only_awards_in_force(client, awards):
    listed = _names(client.get("/awards").text)
    # Zeta Foods is still "active" on record, but its expiry date has passed.
    assert listed == {"Alpha Trust", "Beta Care"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"organisation": "alpha"}, {"Alpha Trust"}),
        ({"sector": "Social"}, {"Beta Care"}),
        ({"level": "silver"}, {"Beta Care"}),
        ({"scheme": "svqm-health"}, set()),
        ({"organisation": "<script>"}, set()),
    ],
)
def test_the_directory_can_be_searched(client, awards, query, expected):
    page = client.get("/awards", params=query).text
    assert _names(page) == expected
    assert "<script>" not in page.split("<main", 1)[1].split("</main>")[0]


@pytest.mark.parametrize(
    ("name", "verdict"),
    [
        ("Alpha Trust", "This award is valid."),
        ("Gamma Supplies", "This award is suspended."),
        ("Delta Homes", "This award has been superseded"),
        ("Epsilon Works", "This award has been withdrawn."),
        ("Zeta Foods", "This award has expired."),  # in force on record, but past its expiry date
    ],
)
def test_the_verify_page_gives_a_plain_verdict(client, awards, name, verdict):
    page = client.get(f"/awards/{awards[name].id}/verify")
    assert page.status_code == 200
    assert verdict in page.text
    assert name in page.text
    assert "Checks run" in page.text


def test_verifying_an_unknown_award_is_a_404_page(client):
    response = client.get("/awards/999999/verify")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")


def test_the_accessibility_statement(client):
    page = client.get("/accessibility").text
    assert "WCAG" in page
    assert "2.2" in page
    assert "level AA" in page
    assert "Reporting a problem" in page
