"""Renewal and the next level from the award page: each button shows exactly when the award allows
it (and the level's prerequisite is met), and starting one opens the application with the
organisation's pledges carried into it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from svqm.clock import FixedClock
from svqm.db import session_scope
from svqm.evidence import pledges as pledge_service
from svqm.notify.sweep import sweep
from svqm.workflow.deadlines import add_months
from svqm.workflow.models import Application, Award
from tests.web.award_world import BASE_URL, T0, app_client, issue_award, page_sign_in
from tests.web.pages_helpers import csrf_of


@pytest.fixture
def issued(engine, registry, tmp_path):
    return issue_award(engine, registry, tmp_path, name="Harbour Care Trust")


def _buttons(html: str) -> list[str]:
    return [b.strip() for b in re.findall(r"<button[^>]*>([^<]+)</button>", html)]


def _award(engine, award_id: int) -> Award:
    with Session(engine) as s:
        award = s.get(Award, award_id)
        assert award is not None
        return award


def _page(engine, registry, tmp_path, issued, at):
    with app_client(engine, registry, tmp_path, FixedClock(at)) as client:
        page_sign_in(client, issued.applicant)
        page = client.get(f"/dashboard/awards/{issued.award_id}")
        assert page.status_code == 200
        return page.text


def test_a_new_award_offers_renewal_but_not_the_next_level_before_it_is_held_long_enough(
    engine, registry, tmp_path, issued
):
    text = _page(engine, registry, tmp_path, issued, T0 + timedelta(days=30))
    assert _buttons(text).count("Start renewal") == 1
    assert "Apply for the next level" not in _buttons(text)
    # Gold asks for Silver held 12 months: the page says why, not a button that would be refused.
    assert "Your organisation cannot apply for Gold (Level 3) yet" in text
    assert "A Silver award held for at least 12 months." in text


def test_after_a_year_both_are_offered_and_the_renewal_carries_the_pledges(
    engine, registry, tmp_path, issued
):
    at = add_months(T0, 13)
    with Session(engine) as s:
        award = s.get(Award, issued.award_id)
        assert award is not None
        held = {p.id for p in pledge_service.list_pledges(s, award.application_id)}
    assert held, "the Silver award's application has pledges to carry"
    with app_client(engine, registry, tmp_path, FixedClock(at)) as client:
        page_sign_in(client, issued.applicant)
        page = client.get(f"/dashboard/awards/{issued.award_id}")
        # The reporting forms' buttons aside (a document, or figures against the pledges).
        filing = ("Menu", "Sign out", "File report", "Send figures for review")
        steps = [b for b in _buttons(page.text) if b not in filing]
        assert steps == ["Start renewal", "Apply for the next level"]
        assert "pledges of your awards in force" in page.text
        response = client.post(
            "/applications",
            data={"csrf_token": csrf_of(page.text), "level": "svqm:silver"},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text[:2000]
        new_id = int(response.headers["location"].split("/")[2].split("?")[0])
        with Session(engine) as s:
            app = s.get(Application, new_id)
            assert app is not None
            assert (app.level, app.organisation_id) == ("silver", issued.org.id)
            assert {p.id for p in pledge_service.list_pledges(s, new_id)} == held
        # Back on the award: the renewal is continued, not started twice; the upgrade still offered.
        again = client.get(f"/dashboard/awards/{issued.award_id}")
        assert "Start renewal" not in _buttons(again.text)
        assert f'href="/applications/{new_id}"' in again.text
        assert "Apply for the next level" in _buttons(again.text)
        upgrade = client.post(
            "/applications",
            data={"csrf_token": csrf_of(again.text), "level": "svqm:gold"},
            follow_redirects=False,
        )
        assert upgrade.status_code == 303, upgrade.text[:2000]
        gold_id = int(upgrade.headers["location"].split("/")[2].split("?")[0])
        with Session(engine) as s:
            assert {p.id for p in pledge_service.list_pledges(s, gold_id)} == held
        # Each page says what it is: the same level is a renewal, the next one an application.
        h1 = re.compile(r"<h1[^>]*>\s*([^<]*?)\s*</h1>")
        assert "Silver" in h1.findall(client.get(f"/applications/{new_id}").text)[0]
        assert h1.findall(client.get(f"/applications/{new_id}").text)[0].endswith(
            " renewal application"
        )
        assert h1.findall(client.get(f"/applications/{gold_id}").text)[0].endswith(" application")


def test_after_the_renewal_deadline_renewal_is_still_offered(engine, registry, tmp_path, issued):
    award = _award(engine, issued.award_id)
    late = add_months(award.expires_at, -3) + timedelta(days=2)
    sweep(engine, registry, now=late, base_url=BASE_URL)
    assert _award(engine, issued.award_id).state == "renewal_due"
    text = _page(engine, registry, tmp_path, issued, late)
    assert "Renewal due" in text
    assert "Start renewal" in _buttons(text)


def test_an_expired_or_withdrawn_award_offers_nothing_the_guard_would_refuse(
    engine, registry, tmp_path, issued
):
    award = _award(engine, issued.award_id)
    after = award.expires_at + timedelta(days=3)
    sweep(engine, registry, now=after, base_url=BASE_URL)
    assert _award(engine, issued.award_id).state == "expired"
    text = _page(engine, registry, tmp_path, issued, after)
    # Silver needs a Bronze (or higher) in force, and the expired Silver is not.
    assert "Start renewal" not in _buttons(text)
    assert "Your organisation cannot apply for Silver (Level 2) yet" in text
    with session_scope(engine) as s:
        row = s.exec(select(Award).where(Award.id == issued.award_id)).one()
        row.state = "withdrawn"
        s.add(row)
    text = _page(engine, registry, tmp_path, issued, after)
    assert "Renew or apply for the next level" not in text
    assert not {"Start renewal", "Apply for the next level"} & set(_buttons(text))
