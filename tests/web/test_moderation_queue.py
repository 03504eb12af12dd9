"""The moderator's list (issue 18): double-marked applications whose two assessors' scores differ
beyond the threshold and wait for moderation, for the policy's moderator (an admin for SVQM),
linked from the staff navigation; a moderated application leaves it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlmodel import Session

from svqm.accounts.models import Organisation
from svqm.clock import utc_now
from svqm.evidence.models import ModerationCreate, ScoreCreate
from svqm.workflow import actions
from svqm.workflow.models import Application
from svqm.workflow.service import Actor
from tests.web.pages_helpers import make_account, make_client, sign_in
from tests.workflow.harness import application_in


@pytest.fixture
def client(engine, registry, tmp_path):
    with make_client(engine, registry, tmp_path) as c:
        yield c


@pytest.fixture
def world(engine, registry):
    """A Silver application both assessors scored, three points apart on one question."""
    now = utc_now()
    with Session(engine) as s:
        applicant, first, second, panel, admin = (
            make_account(s, role)
            for role in ("applicant", "assessor", "assessor", "panel", "admin")
        )
        org = s.get(Organisation, applicant.organisation_id)
        org.name = "Moorside Homes Ltd"
        s.add(org)
        app = application_in(
            s,
            registry,
            SimpleNamespace(org=org, assessor=first),
            scheme="svqm",
            level="silver",
            state="under_review",
            at=now,
        )
        app.second_assessor_id = second.id
        s.add(app)
        s.flush()
        policy = registry.get("svqm").policy
        for who, off in ((first, 0), (second, 3)):
            for sid in policy.level("silver").standards:
                for q in policy.standard(sid).questions:
                    wide = (sid, q.id) == ("plan", "stakeholder_map")
                    actions.score_question(
                        s,
                        app,
                        ScoreCreate(
                            standard=sid, question=q.id, score=q.max_score - (off if wide else 0)
                        ),
                        actor=Actor.of(who),
                        registry=registry,
                        now=now,
                    )
        s.commit()
        people = SimpleNamespace(
            **{
                name: SimpleNamespace(id=u.id, email=u.email, secret=u.totp_secret)
                for name, u in (("first", first), ("panel", panel), ("admin", admin))
            }
        )
        return SimpleNamespace(app_id=app.id, people=people)


def _queue(html: str) -> str:
    return html.split("<h1", 1)[1].split("</main>", 1)[0]


def test_the_moderator_sees_the_application_and_the_navigation_links_to_the_list(client, world):
    admin = world.people.admin
    sign_in(client, admin.email, totp_secret=admin.secret)
    home = client.get("/admin")
    assert 'href="/moderate"' in home.text
    page = client.get("/moderate")
    assert page.status_code == 200
    shown = _queue(page.text)
    assert f'href="/moderate/{world.app_id}"' in shown
    assert "Moorside Homes Ltd" in shown
    assert "Social Value Quality Mark, Silver" in shown
    assert "1 application waiting for moderation" in shown


def test_a_panel_member_is_not_this_schemes_moderator(client, world):
    panel = world.people.panel
    sign_in(client, panel.email, totp_secret=panel.secret)
    page = client.get("/moderate")
    assert page.status_code == 200
    assert f"/moderate/{world.app_id}" not in _queue(page.text)
    assert "Nothing is waiting for you to moderate." in page.text


def test_an_assessor_has_no_list(client, world):
    first = world.people.first
    sign_in(client, first.email, totp_secret=first.secret)
    assert client.get("/moderate").status_code == 403


def test_a_moderated_application_leaves_the_list(client, engine, registry, world):
    with Session(engine) as s:
        app = s.get(Application, world.app_id)
        actions.moderate_score(
            s,
            app,
            ModerationCreate(
                standard="plan", question="stakeholder_map", score=2, note="Staff only mapped."
            ),
            actor=Actor(world.people.admin.id, "admin"),
            registry=registry,
            now=utc_now(),
        )
        s.commit()
    admin = world.people.admin
    sign_in(client, admin.email, totp_secret=admin.secret)
    page = client.get("/moderate")
    assert f"/moderate/{world.app_id}" not in _queue(page.text)
    assert "Nothing is waiting for you to moderate." in page.text
