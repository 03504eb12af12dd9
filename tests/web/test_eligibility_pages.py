"""Eligibility through the pages: the task on the applicant's task list, the answers form
(choices from the policy), and the admin's decision on a case-by-case industry from the case page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from svqm.accounts.models import Organisation, User
from svqm.clock import FixedClock
from svqm.db import session_scope
from svqm.workflow import eligibility
from tests.web.award_world import app_client, page_sign_in
from tests.web.pages_helpers import csrf_of, error_summary, make_account
from tests.workflow.harness import application_in

NOW = datetime(2026, 2, 16, 9, 0, tzinfo=UTC)


@dataclass
class World:
    applicant: User
    admin: User
    app_id: int
    org_id: int


@pytest.fixture
def world(engine, registry):
    with session_scope(engine) as s:
        org = s.merge(Organisation(name="Quayside Fast Food Ltd", sector="retail"))
        s.flush()
        applicant = make_account(s, "applicant", org)
        admin = make_account(s, "admin")

        class _Cast:
            pass

        cast = _Cast()
        cast.org, cast.assessor = org, None
        app = application_in(
            s, registry, cast, scheme="svqm", level="bronze", state="draft", at=NOW
        )
        s.commit()
        return World(applicant, admin, app.id, org.id)


@pytest.fixture
def client(engine, registry, tmp_path):
    with app_client(engine, registry, tmp_path, FixedClock(NOW)) as c:
        yield c


def test_the_applicant_answers_and_an_admin_approves_with_conditions(client, engine, world):
    page_sign_in(client, world.applicant)
    tasks = client.get(f"/applications/{world.app_id}")
    assert f'href="/applications/{world.app_id}/eligibility"' in tasks.text
    form = client.get(f"/applications/{world.app_id}/eligibility")
    assert form.status_code == 200
    assert "Which sector is your organisation in?" in form.text
    assert 'value="fast_food"' in form.text
    # Nothing chosen: each question is named.
    empty = client.post(
        f"/applications/{world.app_id}/eligibility",
        data={"csrf_token": csrf_of(form.text), "version": "1"},
    )
    assert empty.status_code == 422
    assert "Choose your organisation's sector" in error_summary(empty.text)
    assert "Choose your organisation's turnover" in error_summary(empty.text)
    sent = client.post(
        f"/applications/{world.app_id}/eligibility",
        data={
            "csrf_token": csrf_of(form.text),
            "version": "1",
            "sector": "retail",
            "turnover_band": "to_10m",
            "industries": "fast_food",
        },
    )
    assert sent.status_code == 200, sent.text[:500]
    assert "it will decide before you can send your application" in sent.text
    page = client.get(f"/applications/{world.app_id}/eligibility")
    assert "Waiting for the scheme to decide (case by case)" in page.text

    page_sign_in(client, world.admin)
    case = client.get(f"/admin/applications/{world.app_id}")
    assert "Decide the eligibility" in case.text
    decide = client.get(f"/applications/{world.app_id}/eligibility")
    assert "Record the decision" in decide.text
    no_words = client.post(
        f"/applications/{world.app_id}/eligibility/decision",
        data={"csrf_token": csrf_of(decide.text), "version": "2", "decision": "approve"},
    )
    assert no_words.status_code == 422
    assert "give the conditions agreed upfront" in error_summary(no_words.text).lower()
    done = client.post(
        f"/applications/{world.app_id}/eligibility/decision",
        data={
            "csrf_token": csrf_of(decide.text),
            "version": "2",
            "decision": "approve",
            "conditions": "Healthy menu pledge counts toward the health theme.",
        },
    )
    assert done.status_code == 200, done.text[:500]
    assert "Eligible, on the conditions agreed" in done.text
    with session_scope(engine) as s:
        row = eligibility.answers(s, world.app_id)
        assert (row.decision, row.conditions) == (
            "approved",
            "Healthy menu pledge counts toward the health theme.",
        )
        # The directory's sector is the scheme's word for the one chosen.
        assert s.get(Organisation, world.org_id).sector == "Retail, hospitality and leisure"


def test_the_applicant_cannot_decide_and_another_organisation_sees_nothing(client, engine, world):
    with session_scope(engine) as s:
        other_org = s.merge(Organisation(name="Elsewhere Ltd", sector=""))
        s.flush()
        other = make_account(s, "applicant", other_org)
        s.commit()
    page_sign_in(client, other)
    assert client.get(f"/applications/{world.app_id}/eligibility").status_code == 404
    page_sign_in(client, world.applicant)
    form = client.get(f"/applications/{world.app_id}/eligibility")
    refused = client.post(
        f"/applications/{world.app_id}/eligibility/decision",
        data={"csrf_token": csrf_of(form.text), "decision": "approve", "conditions": "x"},
    )
    assert refused.status_code in (403, 404)


def _text(html: str, pattern: str) -> str:
    """The words of the first element the pattern finds, tags and spacing left out."""
    found = re.search(pattern, html, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(0))).strip() if found else ""


@pytest.mark.parametrize(
    ("industries", "outcome", "banner", "task"),
    [
        ([], "eligible", "Your organisation is eligible.", "Completed"),
        (["fast_food"], "awaiting_decision", "it will decide before you can send", "In progress"),
        (["controversial_weapons"], "excluded", "this application cannot be sent", "In progress"),
    ],
)
def test_save_and_continue_goes_on_to_the_task_list_with_the_answers_saved(
    client, engine, world, industries, outcome, banner, task
):
    """Before: "Save and continue" saved the answers and showed the eligibility page again.
    It goes on to the task list, as starting the application does, saying what they mean."""
    page_sign_in(client, world.applicant)
    form = client.get(f"/applications/{world.app_id}/eligibility")
    sent = client.post(
        f"/applications/{world.app_id}/eligibility",
        data={
            "csrf_token": csrf_of(form.text),
            "version": "1",
            "sector": "retail",
            "turnover_band": "to_10m",
            "industries": industries,
        },
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text[:500]
    assert sent.headers["location"] == f"/applications/{world.app_id}?done=eligibility-{outcome}"
    tasks = client.get(sent.headers["location"])
    assert tasks.status_code == 200
    shown = _text(
        tasks.text,
        r'<div class="govuk-notification-banner govuk-notification-banner--success.*?</p>',
    )
    assert shown.startswith("Success Eligibility answers saved.")
    assert banner in shown
    assert _text(tasks.text, r'<div [^>]*id="task-eligibility-status">.*?</div>') == task
    with session_scope(engine) as s:
        row = eligibility.answers(s, world.app_id)
        assert (row.sector, row.turnover_band, row.industry_ids) == ("retail", "to_10m", industries)
