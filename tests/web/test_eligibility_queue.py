"""The admin's queue of eligibility decisions (issue 18): an application naming a case-by-case
industry waits on /admin until an admin decides; `svqm demo` leaves one there."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from svqm.accounts.models import Organisation
from svqm.clock import FixedClock
from svqm.db import session_scope
from svqm.demo import seed_demo
from svqm.workflow import eligibility, screening
from svqm.workflow.service import Actor
from tests.web.award_world import app_client, page_sign_in
from tests.web.pages_helpers import make_account

NOW = datetime(2026, 2, 16, 9, 0, tzinfo=UTC)


@pytest.fixture
def client(engine, registry, tmp_path):
    with app_client(engine, registry, tmp_path, FixedClock(NOW)) as c:
        yield c


def test_the_demo_leaves_a_case_by_case_decision_in_the_admins_queue(
    client, engine, registry, tmp_path, monkeypatch
):
    monkeypatch.setenv("SVQM_EVIDENCE_DIR", str(tmp_path / "demo-evidence"))
    from svqm.config import get_settings

    get_settings.cache_clear()
    with session_scope(engine) as s:
        report = seed_demo(s, registry=registry, now=NOW)
        admin = make_account(s, "admin")
    get_settings.cache_clear()
    assert "applicant@eastgate.demo.svqm.test" in report
    with session_scope(engine, write=False) as s:
        (waiting,) = eligibility.waiting(s, registry)
    assert waiting.organisation == "Eastgate Catering Ltd"
    assert waiting.industries == ("Fast food",)

    page_sign_in(client, admin)
    home = client.get("/admin")
    assert home.status_code == 200
    queue = home.text.split('id="eligibility-waiting"')[1].split("<h2")[0]
    assert f'href="/applications/{waiting.application_id}/eligibility"' in queue
    assert "Eastgate Catering Ltd" in queue
    assert "Fast food" in queue


def test_a_decision_takes_the_case_off_the_queue(client, engine, registry):
    from tests.factories import open_app

    with session_scope(engine) as s:
        org = s.merge(Organisation(name="Quayside Fast Food Ltd", sector="retail"))
        s.flush()
        applicant = make_account(s, "applicant", org)
        admin = make_account(s, "admin")
        app = open_app(s, registry, applicant, now=NOW, eligible=False)
        screening.answer(
            s,
            app,
            sector="retail",
            turnover_band="under_1m",
            industries=("fast_food",),
            actor=Actor(applicant.id, "applicant", org.id),
            registry=registry,
            now=NOW,
        )
        app_id = app.id
    page_sign_in(client, admin)
    assert "Quayside Fast Food Ltd" in client.get("/admin").text
    with session_scope(engine) as s:
        assert [w.application_id for w in eligibility.waiting(s, registry)] == [app_id]
        screening.decide(
            s,
            s.get(type(app), app_id),
            approve=True,
            conditions="No sponsorship of children's events.",
            actor=Actor(admin.id, "admin"),
            registry=registry,
            now=NOW,
        )
    with session_scope(engine, write=False) as s:
        assert eligibility.waiting(s, registry) == []
    page = client.get("/admin").text
    assert "Quayside Fast Food Ltd" not in page
    assert "no organisation waits for a case-by-case decision" in page
