"""The organisation's own charter through the pages: the dashboard links to it, each pillar and
the priorities have a form with clear errors, publishing makes it public (its own page, and the
organisation's page once it holds an award), and the admin's case page links to it where it
meets a checklist item."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pytest

from svqm.clock import FixedClock
from svqm.db import session_scope
from svqm.evidence import requirements
from svqm.evidence.charter import organisation_pledges
from svqm.workflow import actions
from svqm.workflow import service as workflow
from tests.factories import actor, add_pledges, open_app, store_at
from tests.web.award_world import app_client, page_sign_in
from tests.web.pages_helpers import csrf_of, error_summary, make_account

NOW = datetime(2026, 2, 16, 9, 0, tzinfo=UTC)


@pytest.fixture
def world(engine, registry, tmp_path):
    with session_scope(engine) as s:
        applicant = make_account(s, "applicant")
        admin = make_account(s, "admin")
        other = make_account(s, "applicant")
        app = open_app(s, registry, applicant, scheme="svqm-health", level="health_bronze", now=NOW)
        add_pledges(s, registry, app, applicant, now=NOW)
        pledges = [p.id for p in organisation_pledges(s, applicant.organisation_id)]
        s.commit()
        return {
            "applicant": applicant,
            "admin": admin,
            "other": other,
            "org": applicant.organisation_id,
            "app": app.id,
            "pledges": pledges,
        }


@pytest.fixture
def client(engine, registry, tmp_path):
    with app_client(engine, registry, tmp_path, FixedClock(NOW)) as c:
        yield c


def _post(client, path: str, data: dict[str, str | list[str]]):
    form = client.get(path)
    assert form.status_code == 200, form.text[:300]
    version = re.search(r'name="version" value="(\d+)"', form.text)
    assert version
    return client.post(
        path,
        data={"csrf_token": csrf_of(form.text), "version": version.group(1), **data},
        follow_redirects=False,
    )


def _write_all(client, pledges: list[int]) -> None:
    done = _post(
        client,
        "/charter/pillars/place",
        {"entries-0-name": "Northshore ICB", "entries-0-kind": "icb"},
    )
    assert done.status_code == 303, done.text[:500]
    people = {"entries-0-name": "Ada Lead", "entries-0-role": "Sponsor", "text": "Monthly."}
    assert _post(client, "/charter/pillars/people", people).status_code == 303
    vision = {"statements-vision": "Healthier lives", "statements-mission": "Act locally"}
    assert _post(client, "/charter/pillars/vision", vision).status_code == 303
    principles = {"items": "Wellbeing and equity\n\nTransparency\n"}
    assert _post(client, "/charter/pillars/principles", principles).status_code == 303
    priority = {
        "p0-title": "Local jobs",
        "p0-target": "50 local hires",
        "p0-outcome": "Fewer people out of work",
        "p0-day": "31",
        "p0-month": "3",
        "p0-year": "2027",
        "p0-pledges": [str(pledges[0]), str(pledges[1])],
    }
    assert _post(client, "/charter/priorities", priority).status_code == 303


def test_the_applicant_writes_each_pillar_and_publishes(client, world):
    page_sign_in(client, world["applicant"])
    assert 'href="/charter"' in client.get("/dashboard").text
    first = client.get("/charter")
    assert first.status_code == 200
    assert "Not started" in first.text
    for name in ("Your place", "Your people", "Your vision and mission", "Priorities"):
        assert name in first.text
    assert client.get(f"/organisations/{world['org']}/charter").status_code == 404

    bad = _post(client, "/charter/pillars/place", {"entries-0-name": "X", "entries-0-kind": "moon"})
    assert bad.status_code == 422
    assert "is not one of" in error_summary(bad.text)
    assert 'href="#entries-0-kind"' in bad.text
    assert 'id="entries-0-kind"' in bad.text
    no_role = _post(client, "/charter/pillars/people", {"entries-0-name": "Ada"})
    assert no_role.status_code == 422
    assert 'href="#entries-0-role"' in no_role.text
    bad_date = _post(
        client,
        "/charter/priorities",
        {"p0-title": "T", "p0-target": "t", "p0-day": "31", "p0-month": "2", "p0-year": "2027"},
    )
    assert bad_date.status_code == 422
    assert 'href="#p0-target_date"' in bad_date.text

    _write_all(client, world["pledges"])
    overview = client.get("/charter")
    assert "Not published yet" in overview.text
    assert "Northshore ICB" in overview.text
    assert "Transparency" in overview.text
    version = re.search(r'name="version" value="(\d+)"', overview.text).group(1)
    published = client.post(
        "/charter/publish",
        data={"csrf_token": csrf_of(overview.text), "version": version},
        follow_redirects=False,
    )
    assert published.status_code == 303
    assert "Published (revision 1)" in client.get("/charter").text

    public = client.get(f"/organisations/{world['org']}/charter")
    assert public.status_code == 200
    for words in (
        "Northshore ICB",
        "Integrated care board",
        "Ada Lead",
        "Healthier lives",
        "Transparency",
        "Local jobs",
        "50 local hires by 31 March 2027",
    ):
        assert words in public.text
    # No award yet: its pledges are not public, so the priority names none.
    assert "No pledges named" in public.text

    # A change after publishing is private until published again.
    assert _post(client, "/charter/pillars/principles", {"items": "Only this"}).status_code == 303
    assert "Changes not yet published (revision 1 is published)" in client.get("/charter").text
    public = client.get(f"/organisations/{world['org']}/charter")
    assert "Transparency" in public.text
    assert "Only this" not in public.text


def test_publishing_an_unfinished_charter_lists_what_it_lacks(client, world):
    page_sign_in(client, world["applicant"])
    assert (
        _post(
            client,
            "/charter/pillars/place",
            {"entries-0-name": "Northshore ICB", "entries-0-kind": "icb"},
        ).status_code
        == 303
    )
    overview = client.get("/charter")
    version = re.search(r'name="version" value="(\d+)"', overview.text).group(1)
    refused = client.post(
        "/charter/publish", data={"csrf_token": csrf_of(overview.text), "version": version}
    )
    assert refused.status_code == 422
    summary = error_summary(refused.text)
    assert "Your people: add at least one" in summary
    assert "Priorities: add at least one" in summary
    assert 'href="#pillars-people"' in refused.text
    assert 'id="pillars-people"' in refused.text


def test_staff_have_no_charter_to_write(client, world):
    page_sign_in(client, world["admin"])
    assert client.get("/charter").status_code in (403, 404)


def test_the_published_charter_meets_two_items_and_shows_on_the_award_holders_page(
    client, world, engine, registry, tmp_path
):
    page_sign_in(client, world["applicant"])
    _write_all(client, world["pledges"])
    overview = client.get("/charter")
    version = re.search(r'name="version" value="(\d+)"', overview.text).group(1)
    client.post("/charter/publish", data={"csrf_token": csrf_of(overview.text), "version": version})
    # Everything but the two items the charter meets, then the self-service submission.
    store = store_at(tmp_path / "evidence")
    with session_scope(engine) as s:
        from svqm.workflow.models import Application

        app = s.get(Application, world["app"])
        policy = registry.for_subject(s, app).policy
        slots = requirements.checklist(
            s, application_id=app.id, policy=policy, level=policy.level(app.level)
        )
        for slot in slots:
            if not slot.met_by_charter:
                actions.upload_evidence(
                    s,
                    app,
                    store,
                    requirement=slot.id,
                    pledge_id=None,
                    stream=io.BytesIO(b"evidence\n"),
                    filename="e.txt",
                    title="",
                    actor=actor(world["applicant"]),
                    registry=registry,
                    now=NOW,
                )
        assert sum(s.met_by_charter for s in slots) == 2
        workflow.fire(
            s,
            app,
            "submit_self_service",
            actor=actor(world["applicant"]),
            registry=registry,
            now=NOW,
        )
        s.commit()
    item = client.get(f"/applications/{world['app']}/evidence/legacy_statement")
    assert "Met by the published charter" in item.text
    assert "published charter meets this item" in item.text

    page = client.get(f"/organisations/{world['org']}")
    assert page.status_code == 200
    assert 'id="charter"' in page.text
    assert "Northshore ICB" in page.text
    # The priority's pledges are public now, each linked to its place on the page.
    for pid in world["pledges"][:2]:
        assert f'href="/organisations/{world["org"]}#pledge-{pid}"' in page.text
        assert f'id="pledge-{pid}"' in page.text

    page_sign_in(client, world["admin"])
    case = client.get(f"/admin/applications/{world['app']}")
    assert case.status_code == 200
    assert f'href="/organisations/{world["org"]}/charter"' in case.text
    assert "Met by the published charter" in case.text


def _publish(client) -> None:
    overview = client.get("/charter")
    version = re.search(r'name="version" value="(\d+)"', overview.text).group(1)
    published = client.post(
        "/charter/publish",
        data={"csrf_token": csrf_of(overview.text), "version": version},
        follow_redirects=False,
    )
    assert published.status_code == 303, published.text[:500]


def test_the_public_charter_speaks_of_the_organisation_and_keeps_line_breaks(client, world):
    page_sign_in(client, world["applicant"])
    _write_all(client, world["pledges"])
    vision = {
        "statements-vision": "Healthier lives.\nFairer chances.",
        "statements-mission": "Act locally",
    }
    assert _post(client, "/charter/pillars/vision", vision).status_code == 303
    people = {
        "entries-0-name": "Ada Lead",
        "entries-0-role": "Sponsor",
        "text": "Monthly forums.\nA yearly survey.",
    }
    assert _post(client, "/charter/pillars/people", people).status_code == 303
    _publish(client)

    own = client.get("/charter").text
    assert "Your place" in own
    assert re.search(r'class="[^"]*app-multiline[^"]*">Healthier lives\.\nFairer chances\.<', own)

    public = client.get(f"/organisations/{world['org']}/charter").text
    headings = re.findall(r'<h2 class="govuk-heading-m" id="charter-\w+">(.*?)</h2>', public)
    assert headings == [
        "Its place",
        "Its people",
        "Its vision and mission",
        "Its principles for social value",
        "Priorities",
    ]
    for own_words in ("Your place", "Your people", "Your vision", "Your principles"):
        assert own_words not in public
    assert "How it engages staff, patients and communities" in public
    assert "How you engage" not in public
    assert re.search(
        r'<dd class="[^"]*app-multiline[^"]*">Healthier lives\.\nFairer chances\.</dd>', public
    )
    assert re.search(
        r'<p class="[^"]*app-multiline[^"]*">Monthly forums\.\nA yearly survey\.', public
    )
    api = client.get(f"/api/v1/organisations/{world['org']}/charter/published").json()
    assert [p["public_name"] for p in api["pillars"]][:2] == ["Its place", "Its people"]
