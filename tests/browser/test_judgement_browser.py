"""The record of judgement in a browser (issue 18, items 5 and 6), with the opt-in settings on:
an appeal one of two needed panel members has decided, and a double-marked Silver application
awaiting moderation, on the panel's, assessor's, admin's and moderator's pages; axe-core finds
nothing and no page is wider than the screen at 320 px. Screenshots at 1280 and 320 px go to
var/screenshots/i18-moderation/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pyotp
import pytest
from playwright.sync_api import Page, expect
from sqlmodel import Session

from svqm.clock import utc_now
from svqm.db import make_engine
from svqm.evidence.models import ScoreCreate
from svqm.workflow import actions
from svqm.workflow import service as workflow
from svqm.workflow.schemes import load_registry
from svqm.workflow.service import Actor
from tests import factories
from tests.browser import conftest
from tests.judgement_policies import judgement_policies
from tests.web.pages_helpers import PASSWORD, make_account
from tests.workflow.harness import application_in

SHOTS = conftest.REPO / "var" / "screenshots" / "i18-moderation"


@pytest.fixture(scope="module")
def _judgement_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    policies = judgement_policies(tmp_path_factory.mktemp("judgement-policies"))
    with conftest.serving_policies(policies):
        yield policies


@pytest.fixture(scope="module")
def live_server(_judgement_env: Path, live_server: str) -> str:
    return live_server


@pytest.fixture(scope="module")
def world(live_server: str, live_server_env: dict[str, str], _judgement_env: Path):
    """An appeal one member has decided, and a Silver application both assessors have scored
    (they differ widely on one question)."""
    registry = load_registry(_judgement_env)
    engine = make_engine(live_server_env["SVQM_DATABASE_URL"])
    store = factories.store_at(live_server_env["SVQM_EVIDENCE_DIR"])
    now = utc_now()
    with Session(engine) as s:
        applicant, first, second, decider, voter, panel, admin = (
            make_account(s, role)
            for role in ("applicant", "assessor", "assessor", "panel", "panel", "panel", "admin")
        )
        app = factories.open_app(s, registry, applicant, now=now)
        factories.add_pledges(s, registry, app, applicant, now=now)
        factories.upload_all(s, registry, store, app, applicant, now=now)
        workflow.fire(s, app, "submit", actor=Actor.of(applicant), registry=registry, now=now)
        app.assessor_id = first.id
        for trigger, who, comment in (
            ("start_review", first, ""),
            (
                "recommend_refusal",
                first,
                "The delivery plans do not show how pledges are measured.",
            ),
            ("confirm_refusal", decider, ""),
            ("appeal", applicant, "Each plan names its measure on page 2."),
            ("uphold_appeal", voter, "The plans do name their measures."),
        ):
            workflow.fire(
                s, app, trigger, actor=Actor.of(who), registry=registry, now=now, comment=comment
            )
        silver = application_in(
            s,
            registry,
            SimpleNamespace(org=SimpleNamespace(id=applicant.organisation_id), assessor=first),
            scheme="svqm",
            level="silver",
            state="under_review",
            at=now,
        )
        silver.second_assessor_id = second.id
        s.add(silver)
        s.flush()
        policy = registry.get("svqm").policy
        for who, off in ((first, 0), (second, 3)):
            for sid in policy.level("silver").standards:
                for q in policy.standard(sid).questions:
                    wide = (sid, q.id) == ("plan", "stakeholder_map")
                    actions.score_question(
                        s,
                        silver,
                        ScoreCreate(
                            standard=sid,
                            question=q.id,
                            score=q.max_score - (off if wide else 0),
                            note="Seen in the strategy" if who is first else "",
                        ),
                        actor=Actor.of(who),
                        registry=registry,
                        now=now,
                    )
        s.commit()
        people = {
            "panel": (panel.email, panel.totp_secret),
            "admin": (admin.email, admin.totp_secret),
            "second": (second.email, second.totp_secret),
        }
        ids = {"appeal": app.id, "silver": silver.id}
    engine.dispose()
    return SimpleNamespace(base=live_server, people=people, **ids)


def _sign_in(page: Page, base: str, email: str, secret: str | None) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login/second-factor"))
    page.get_by_label("Security code").fill(pyotp.TOTP(secret or "").now())
    page.get_by_role("button", name="Continue").click()
    expect(page).not_to_have_url(re.compile(r"/login"))


def _check(page: Page, axe, name: str) -> None:
    """No axe-core violation; no wider than the screen at 320 px; a screenshot at each width."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 320):
        page.set_viewport_size({"width": width, "height": 900})
        page.reload()
        violations = axe(page)
        assert not violations, violations
        wide = page.evaluate("() => document.documentElement.scrollWidth")
        assert wide <= width, f"{name} is {wide} px wide at {width} px"
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)


def test_the_panel_sees_who_has_decided_and_both_assessors_scores(world, new_page, axe):
    page = new_page(bypass_csp=True)  # only so axe can inject its script
    _sign_in(page, world.base, *world.people["panel"])
    page.goto(f"{world.base}/panel/{world.appeal}")
    needed = page.locator("#decisions-needed")
    expect(needed).to_contain_text("Uphold appeal: 1 of 2 members agree; 1 more needed")
    expect(page.locator("#decisions-recorded")).to_contain_text("The plans do name their measures.")
    _check(page, axe, "panel-appeal")
    page.goto(f"{world.base}/panel/{world.silver}")
    expect(page.locator("#marking-table")).to_contain_text("For the moderator")
    expect(page.locator("#score-history")).to_contain_text("Seen in the strategy")
    _check(page, axe, "panel-silver-scores")


def test_the_moderator_records_the_agreed_score(world, new_page, axe):
    page = new_page(bypass_csp=True)  # only so axe can inject its script
    _sign_in(page, world.base, *world.people["admin"])
    page.goto(f"{world.base}/admin/applications/{world.silver}")
    expect(page.locator("#moderate-link")).to_be_visible()
    _check(page, axe, "admin-silver")
    page.goto(f"{world.base}/moderate/{world.silver}")
    _check(page, axe, "moderate-before")
    form = page.locator("#moderate-plan-stakeholder_map")
    form.get_by_label("2", exact=True).check()
    form.get_by_label(re.compile("^Why this is the agreed score")).fill(
        "The map covers staff only."
    )
    form.get_by_role("button", name=re.compile("Record the agreed score")).click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text(
        "agreed score has been recorded"
    )
    expect(page.locator("#to-agree")).to_be_visible()
    expect(page.get_by_text("Every question has its agreed score.")).to_be_visible()
    expect(page.locator("#score-history")).to_contain_text("The map covers staff only.")
    _check(page, axe, "moderate-after")


def test_the_second_assessor_scores_without_reviewing_evidence(world, new_page, axe):
    page = new_page(bypass_csp=True)  # only so axe can inject its script
    _sign_in(page, world.base, *world.people["second"])
    page.goto(f"{world.base}/assess/{world.silver}")
    expect(page.locator("#second-assessor")).to_be_visible()
    expect(page.locator("#double-marking")).to_contain_text("Second assessor")
    _check(page, axe, "second-assessor")
