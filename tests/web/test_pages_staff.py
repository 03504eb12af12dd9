from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from svqm.accounts import auth
from svqm.accounts.models import Organisation, User
from svqm.clock import utc_now
from svqm.config import Settings
from svqm.db import writer
from svqm.web.app import create_app
from svqm.workflow import awards as award_queries
from svqm.workflow import service as workflow
from svqm.workflow.models import Application, Award
from tests.factories import (
    add_pledges,
    make_org,
    make_user,
    open_app,
    review_all,
    score_all,
    store_at,
    upload_all,
)
from tests.web.pages_helpers import csrf_of, sign_in
from tests.workflow.harness import Cast, award_in

PASSWORD = "correct horse battery staple"


def _version(html: str, action: str = "") -> str:
    """The version field of the page's first form, or of the first form posting to `action` (an
    admin case page also has each invoice's own version)."""
    if action:
        form = html.find(f'action="{action}"')
        assert form >= 0, f"the page has no form for {action}"
        html = html[form:]
    found = re.search(r'name="version" value="(\d+)"', html)
    assert found, "the page has no version field"
    return found.group(1)


@dataclass
class World:
    org_a: Organisation
    org_b: Organisation
    applicant: User
    assessor: User
    assessor2: User
    panel: User
    admin: User
    app_a: Application
    app_b: Application
    award: Award
    engine: object
    registry: object
    store: object

    def sign_in(self, client: TestClient, user: User) -> None:
        client.cookies.clear()
        sign_in(client, user.email, PASSWORD, user.totp_secret)

    def fresh(self, model, ident):
        with Session(self.engine) as s:
            return s.get(model, ident)


def _person(s: Session, role: str, org: Organisation | None = None) -> User:
    user = make_user(s, role, org)
    user.password_hash = auth.hash_password(PASSWORD)
    if auth.needs_second_factor(user):
        auth.ensure_totp_secret(s, user)
    return user


@pytest.fixture
def world(engine, registry, tmp_path) -> World:
    now = utc_now() - timedelta(days=2)
    store = store_at(tmp_path / "evidence")
    with Session(writer(engine), expire_on_commit=False) as s:
        org_a, org_b = make_org(s, "Alpha Trust"), make_org(s, "Beta Care")
        applicant, applicant_b = _person(s, "applicant", org_a), _person(s, "applicant", org_b)
        assessor, assessor2 = _person(s, "assessor"), _person(s, "assessor")
        panel, admin = _person(s, "panel"), _person(s, "admin")
        cast = Cast(org_a, applicant, assessor, panel, admin)
        award = award_in(
            s,
            registry,
            cast,
            scheme="svqm-health",
            level="health_bronze",
            state="active",
            issued=now - timedelta(days=30),
            at=now,
        )
        # Health Silver for Alpha (scored against standards by one assessor: SVQM's own Silver is
        # double-marked), Bronze for Beta; each goes to the assessor with the fewest open
        # applications.
        app_a = open_app(s, registry, applicant, scheme="svqm-health", level="silver", now=now)
        add_pledges(s, registry, app_a, applicant, now=now, count=2)
        upload_all(s, registry, store, app_a, applicant, now=now)
        workflow.fire(
            s, app_a, "submit", actor=workflow.Actor.of(applicant), registry=registry, now=now
        )
        app_b = open_app(s, registry, applicant_b, now=now)
        add_pledges(s, registry, app_b, applicant_b, now=now)
        upload_all(s, registry, store, app_b, applicant_b, now=now)
        workflow.fire(
            s, app_b, "submit", actor=workflow.Actor.of(applicant_b), registry=registry, now=now
        )
        assert (app_a.assessor_id, app_b.assessor_id) == (assessor.id, assessor2.id)
        s.commit()
    return World(
        org_a,
        org_b,
        applicant,
        assessor,
        assessor2,
        panel,
        admin,
        app_a,
        app_b,
        award,
        engine,
        registry,
        store,
    )


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


def _recommended(world: World) -> None:
    """Walk Alpha's application to a recommendation for award, as its assessor would."""
    now = utc_now() - timedelta(days=1)
    with Session(writer(world.engine), expire_on_commit=False) as s:
        app = s.get(Application, world.app_a.id)
        actor = workflow.Actor.of(world.assessor)
        workflow.fire(s, app, "start_review", actor=actor, registry=world.registry, now=now)
        review_all(s, world.registry, app, world.assessor, now=now)
        score_all(s, world.registry, app, world.assessor, now=now)
        workflow.fire(
            s,
            app,
            "recommend_award",
            actor=actor,
            registry=world.registry,
            now=now,
            comment="Strong evidence throughout.",
        )
        s.commit()


def _post(client: TestClient, url: str, page: str, **fields: str):
    data = {"csrf_token": csrf_of(page), **fields}
    return client.post(url, data=data, follow_redirects=False)


# --- assessor -----------------------------------------------------------------------------------


def test_an_assessor_sees_only_their_own_queue(client, world):
    world.sign_in(client, world.assessor)
    queue = client.get("/assess")
    assert queue.status_code == 200
    assert f'href="/assess/{world.app_a.id}"' in queue.text
    assert "Alpha Trust" in queue.text
    assert "Beta Care" not in queue.text
    other = client.get(f"/assess/{world.app_b.id}")
    assert other.status_code == 404
    assert other.headers["content-type"].startswith("text/html")
    assert "Page not found" in other.text
    filtered = client.get("/assess", params={"state": "draft"})
    assert "Alpha Trust" not in filtered.text
    assert "No applications match" in filtered.text


def test_a_refused_page_still_shows_who_is_signed_in(client, world):
    """The error page of a request refused after the sign-in lookup (its unit of work rolled
    back) names the person and carries their session's form token, as their pages do."""
    world.sign_in(client, world.assessor)
    token = csrf_of(client.get("/assess").text)
    for path, status in ((f"/assess/{world.app_b.id}", 404), ("/dashboard", 403)):
        refused = client.get(path)
        assert refused.status_code == status, path
        assert f"Signed in as {world.assessor.email} (assessor)" in refused.text
        assert csrf_of(refused.text) == token


def test_asking_for_more_information_is_kept_until_the_case_is_sent_back(client, world):
    world.sign_in(client, world.assessor)
    url = f"/assess/{world.app_a.id}"
    page = client.get(url)
    started = _post(client, f"{url}/events/start_review", page.text, version=_version(page.text))
    assert (started.status_code, started.headers["location"]) == (303, f"{url}?done=start_review")
    page = client.get(started.headers["location"])
    assert "Done: start review." in page.text
    assert "Status changed from Submitted to Under review" in page.text  # the case's history
    assert "Start review: Submitted to Under review" not in page.text
    assert re.search(r"Text file, \d+ bytes, uploaded", page.text)  # one size formatter
    assert "Bytes" not in page.text
    item = re.search(r'action="/assess/\d+/evidence/(\d+)/review"', page.text).group(1)
    reviewed = _post(
        client,
        f"{url}/evidence/{item}/review",
        page.text,
        version=_version(page.text),
        decision="more_information",
        comment="Please add the figures for last year.",
    )
    assert reviewed.status_code == 303
    assert world.fresh(Application, world.app_a.id).state == "under_review"
    page = client.get(reviewed.headers["location"])
    assert "Your review has been saved." in page.text
    assert "Please add the figures for last year." in page.text
    sent = _post(client, f"{url}/hand-back", page.text, version=_version(page.text))
    assert sent.status_code == 303
    assert world.fresh(Application, world.app_a.id).state == "changes_requested"
    assert "More information requested" in client.get(sent.headers["location"]).text


def test_a_review_without_a_comment_is_refused_with_an_error_summary(client, world):
    world.sign_in(client, world.assessor)
    url = f"/assess/{world.app_a.id}"
    page = client.get(url)
    _post(client, f"{url}/events/start_review", page.text, version=_version(page.text))
    page = client.get(url)
    item = re.search(r'action="/assess/\d+/evidence/(\d+)/review"', page.text).group(1)
    refused = _post(
        client,
        f"{url}/evidence/{item}/review",
        page.text,
        version=_version(page.text),
        decision="rejected",
        comment="",
    )
    assert refused.status_code == 422
    assert "govuk-error-summary" in refused.text
    assert "a comment is required" in refused.text
    assert f'href="#comment-{item}"' in refused.text
    assert world.fresh(Application, world.app_a.id).state == "under_review"


def test_scoring_every_question_shows_the_running_result(client, world, registry):
    world.sign_in(client, world.assessor)
    url = f"/assess/{world.app_a.id}"
    page = client.get(url)
    _post(client, f"{url}/events/start_review", page.text, version=_version(page.text))
    page = client.get(url)
    assert "Fail" in page.text
    assert "Questions not scored yet" in page.text
    policy = registry.get("svqm-health").policy
    scores = {
        f"score-{sid}-{q.id}": str(q.max_score)
        for sid in policy.level("silver").standards
        for q in policy.standard(sid).questions
    }
    saved = _post(client, f"{url}/scores", page.text, version=_version(page.text), **scores)
    assert saved.status_code == 303
    page = client.get(saved.headers["location"])
    assert "Your scores have been saved." in page.text
    assert "Overall <strong>100.0%</strong>" in page.text
    assert ">Pass</strong>" in page.text
    assert "Questions not scored yet" not in page.text


def test_a_score_that_is_not_a_number_is_refused_and_nothing_is_saved(client, world):
    world.sign_in(client, world.assessor)
    url = f"/assess/{world.app_a.id}"
    page = client.get(url)
    _post(client, f"{url}/events/start_review", page.text, version=_version(page.text))
    page = client.get(url)
    refused = _post(
        client,
        f"{url}/scores",
        page.text,
        version=_version(page.text),
        **{"score-plan-strategy": "1", "score-plan-stakeholder_map": "lots"},
    )
    assert refused.status_code == 422
    assert 'href="#score-plan-stakeholder_map"' in refused.text
    out_of_range = _post(
        client,
        f"{url}/scores",
        page.text,
        version=_version(page.text),
        **{"score-plan-strategy": "1", "score-plan-board_oversight": "7"},
    )
    assert out_of_range.status_code == 422
    assert "is 0 to 1 (got 7)" in out_of_range.text
    assert "plan/strategy" in client.get(url).text  # still unscored: nothing was kept


def test_recommending_is_refused_with_every_unmet_reason(client, world):
    world.sign_in(client, world.assessor)
    url = f"/assess/{world.app_a.id}"
    page = client.get(url)
    _post(client, f"{url}/events/start_review", page.text, version=_version(page.text))
    page = client.get(url)
    assert 'id="trigger-recommend_award-unmet"' in page.text
    refused = _post(client, f"{url}/events/recommend_award", page.text, version=_version(page.text))
    assert refused.status_code == 422
    summary = refused.text.split('data-module="govuk-error-summary"', 1)[1].split("</ul>")[0]
    assert "cannot &#39;recommend_award&#39; yet" in summary
    assert "evidence not accepted" in summary
    assert "not scored yet: plan/strategy" in summary
    assert world.fresh(Application, world.app_a.id).state == "under_review"


def test_a_stale_form_is_a_conflict(client, world):
    world.sign_in(client, world.assessor)
    url = f"/assess/{world.app_a.id}"
    page = client.get(url)
    stale = _post(
        client, f"{url}/events/start_review", page.text, version=str(int(_version(page.text)) - 1)
    )
    assert stale.status_code == 409
    assert "govuk-error-summary" in stale.text


# --- panel --------------------------------------------------------------------------------------


def test_the_panel_confirms_a_recommendation_and_the_award_is_made(client, world):
    _recommended(world)
    world.sign_in(client, world.panel)
    queue = client.get("/panel")
    assert "Recommended for award (1)" in queue.text
    assert f'href="/panel/{world.app_a.id}"' in queue.text
    page = client.get(f"/panel/{world.app_a.id}")
    assert "Strong evidence throughout." in page.text
    assert "100.0%" in page.text
    confirmed = _post(
        client,
        f"/panel/{world.app_a.id}/events/confirm_award",
        page.text,
        version=_version(page.text),
    )
    assert confirmed.status_code == 303
    with Session(world.engine) as s:
        assert [a.level for a in award_queries.organisation_awards(s, world.org_a.id)] == [
            "silver",
            "health_bronze",
        ]
    assert "Done: confirm award." in client.get(confirmed.headers["location"]).text


def test_an_assessor_turned_panel_member_cannot_decide_their_own_case(client, world):
    _recommended(world)
    with Session(writer(world.engine)) as s:
        s.get(User, world.assessor.id).role = "panel"
        s.commit()
    world.sign_in(client, world.assessor)
    page = client.get(f"/panel/{world.app_a.id}")
    # The page offers no decision (the service says so); a forged post is refused all the same.
    assert page.status_code == 200
    assert 'action="/panel/' not in page.text
    refused = _post(
        client,
        f"/panel/{world.app_a.id}/events/confirm_award",
        page.text,
        version=str(world.fresh(Application, world.app_a.id).version),
    )
    assert refused.status_code == 403
    assert "govuk-error-summary" in refused.text
    assert "cannot decide it: another panel member must" in refused.text
    assert "four eyes" not in refused.text.lower()
    assert world.fresh(Application, world.app_a.id).state == "recommended_award"


# --- admin --------------------------------------------------------------------------------------


def test_an_admin_adds_an_assessor_and_sees_the_authenticator_setup_once(client, world):
    world.sign_in(client, world.admin)
    page = client.get("/admin/users")
    added = _post(
        client,
        "/admin/users",
        page.text,
        email="new.assessor@staff.test",
        name="Nia New",
        role="assessor",
        organisation_id="",
        password=PASSWORD,
    )
    assert added.status_code == 200
    assert "otpauth://totp/" in added.text
    assert 'src="data:image/svg+xml;base64,' in added.text
    again = client.get("/admin/users")
    assert "new.assessor@staff.test" in again.text
    assert "otpauth://" not in again.text
    duplicate = _post(
        client,
        "/admin/users",
        again.text,
        email="new.assessor@staff.test",
        role="assessor",
        password=PASSWORD,
    )
    assert duplicate.status_code == 422
    assert "already exists" in duplicate.text


def test_an_admin_reassigns_an_application(client, world):
    world.sign_in(client, world.admin)
    url = f"/admin/applications/{world.app_a.id}"
    page = client.get(url)
    assert f'<option value="{world.assessor2.id}"' in page.text
    moved = _post(
        client,
        f"{url}/assessor",
        page.text,
        version=_version(page.text, f"{url}/assessor"),
        assessor_id=str(world.assessor2.id),
    )
    assert moved.status_code == 303
    assert world.fresh(Application, world.app_a.id).assessor_id == world.assessor2.id
    assert "The assessor has been assigned." in client.get(moved.headers["location"]).text


def test_a_declared_conflict_takes_the_assessor_off_the_list(client, world):
    world.sign_in(client, world.admin)
    page = client.get("/admin/conflicts")
    declared = _post(
        client,
        "/admin/conflicts",
        page.text,
        user_id=str(world.assessor2.id),
        organisation_id=str(world.org_a.id),
        reason="Was a trustee until 2025",
    )
    assert declared.status_code == 303
    assert "Was a trustee until 2025" in client.get("/admin/conflicts").text
    page = client.get(f"/admin/applications/{world.app_a.id}")
    assert f'<option value="{world.assessor.id}"' in page.text
    assert f'<option value="{world.assessor2.id}"' not in page.text


def test_a_suspended_award_leaves_the_public_directory(client, world):
    assert "Alpha Trust" in client.get("/awards").text
    world.sign_in(client, world.admin)
    page = client.get(f"/admin/awards/{world.award.id}/events/suspend")
    suspended = _post(
        client,
        f"/admin/awards/{world.award.id}/events/suspend",
        page.text,
        version=_version(page.text),
        comment="Complaint under investigation",
        confirmed="yes",
    )
    assert suspended.status_code == 303
    assert world.fresh(Award, world.award.id).state == "suspended"
    client.cookies.clear()
    assert "Alpha Trust" not in client.get("/awards").text
    assert "This award is suspended." in client.get(f"/awards/{world.award.id}/verify").text


def test_suspending_without_a_comment_is_refused(client, world):
    world.sign_in(client, world.admin)
    page = client.get(f"/admin/awards/{world.award.id}/events/suspend")
    refused = _post(
        client,
        f"/admin/awards/{world.award.id}/events/suspend",
        page.text,
        version=_version(page.text),
        comment="",
        confirmed="yes",
    )
    assert refused.status_code == 422
    assert "a comment explaining this step" in refused.text
    assert world.fresh(Award, world.award.id).state == "active"


def test_disabling_a_user_signs_them_out_everywhere(client, world):
    world.sign_in(client, world.assessor2)
    theirs = dict(client.cookies)
    world.sign_in(client, world.admin)
    page = client.get(f"/admin/users/{world.assessor2.id}/disable")
    disabled = _post(
        client, f"/admin/users/{world.assessor2.id}/disable", page.text, confirmed="yes"
    )
    assert disabled.status_code == 303
    assert "signed out everywhere" in client.get(disabled.headers["location"]).text
    assert world.fresh(User, world.assessor2.id).active is False
    client.cookies.clear()
    client.cookies.update(theirs)
    again = client.get("/assess", follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"].startswith("/login")


@pytest.mark.parametrize("who", ["applicant", "assessor", "panel"])
def test_only_admins_may_use_the_admin_pages(client, world, who):
    world.sign_in(client, getattr(world, who))
    for path in (
        "/admin",
        "/admin/users",
        "/admin/applications",
        f"/admin/applications/{world.app_a.id}",
        "/admin/conflicts",
        "/admin/awards",
    ):
        response = client.get(path)
        assert response.status_code == 403, path
        assert response.headers["content-type"].startswith("text/html")


def test_each_role_is_kept_to_its_own_pages(client, world):
    world.sign_in(client, world.panel)
    assert client.get("/assess").status_code == 403
    world.sign_in(client, world.assessor)
    assert client.get("/panel").status_code == 403
    assert client.get(f"/panel/{world.app_a.id}").status_code == 403
    client.cookies.clear()
    signed_out = client.get("/assess", follow_redirects=False)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"].startswith("/login")


def test_a_post_without_the_form_token_is_refused(client, world):
    world.sign_in(client, world.admin)
    refused = client.post(
        "/admin/conflicts",
        data={"user_id": str(world.assessor2.id), "organisation_id": str(world.org_a.id)},
    )
    assert refused.status_code == 403
    assert "Page not" not in client.get("/admin/conflicts").text
    assert "No conflicts have been declared." in client.get("/admin/conflicts").text
