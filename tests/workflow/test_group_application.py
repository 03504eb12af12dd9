"""A care group's one application for five of its businesses: shared pledges, one evidence set,
one assessment, and five awards, each its own (certificate number, deadlines, signed credential,
directory entry) and linked to the group."""

from __future__ import annotations

from sqlmodel import Session, col, select

from svqm.accounts import service as accounts
from svqm.credentials.service import check
from svqm.db import writer
from svqm.workflow import service as workflow
from svqm.workflow.effects import members_covered
from svqm.workflow.models import Application, Award
from svqm.workflow.schedule import for_subject
from tests.factories import actor, add_pledges, answer_eligibility, review_all, store_at, upload_all
from tests.web.pages_helpers import PASSWORD, csrf_of, make_account, make_client, sign_in

HOMES = ["Harbour House", "Quay Lodge", "Lighthouse Court", "Anchor View", "Marina Gardens"]


def _token(client, email):
    response = client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_a_care_group_with_five_businesses_applies_once_and_gets_five_awards(
    engine, registry, tmp_path, now
):
    with Session(writer(engine), expire_on_commit=False) as s:
        group = accounts.create_organisation(s, name="Harbour Care Group", sector="social care")
        homes = [
            accounts.create_organisation(s, name=n, sector="social care", parent_id=group.id)
            for n in HOMES
        ]
        stranger = accounts.create_organisation(s, name="Elsewhere Care")
        director = make_account(s, "applicant", group)
        assessor = make_account(s, "assessor")
        panel = make_account(s, "panel")
    home_ids = sorted(h.id for h in homes)
    with make_client(engine, registry, tmp_path) as client:
        headers = _token(client, director.email)
        # Only the group's own members can be covered; a refusal leaves nothing behind.
        refused = client.post(
            "/api/v1/applications",
            json={"scheme": "svqm", "level": "bronze", "members": [*home_ids, stranger.id]},
            headers=headers,
        )
        assert refused.status_code == 422, refused.text
        assert str(stranger.id) in refused.json()["detail"]
        opened = client.post(
            "/api/v1/applications",
            json={"scheme": "svqm", "level": "bronze", "members": home_ids},
            headers=headers,
        )
        assert opened.status_code == 201, opened.text
        app_id = opened.json()["id"]
        assert opened.json()["organisation_id"] == group.id
        issuer = client.app.state.issuers

        with Session(writer(engine), expire_on_commit=False) as s:
            assert s.exec(select(Application)).all() == [s.get(Application, app_id)]
            app = s.get(Application, app_id)
            assert members_covered(s, app_id) == home_ids
            # One set of pledges and one set of evidence, for all five.
            add_pledges(s, registry, app, director, now=now)
            upload_all(s, registry, store_at(tmp_path / "evidence"), app, director, now=now)
            answer_eligibility(s, registry, app, director, now=now)
            workflow.fire(s, app, "submit", actor=actor(director), registry=registry, now=now)
            assert app.assessor_id == assessor.id
            workflow.fire(s, app, "start_review", actor=actor(assessor), registry=registry, now=now)
            review_all(s, registry, app, assessor, now=now)
            workflow.fire(
                s, app, "recommend_award", actor=actor(assessor), registry=registry, now=now
            )
            workflow.fire(
                s,
                app,
                "confirm_award",
                actor=actor(panel),
                registry=registry,
                now=now,
                comment="One assessment for the group",
            )
            s.commit()

        with Session(engine) as s:
            awards = s.exec(select(Award).order_by(col(Award.organisation_id))).all()
            # Five awards from the one application: one per business, none for the group itself.
            assert [a.organisation_id for a in awards] == home_ids
            # Each award hangs on the member's own record of the group's one application.
            records = [s.get(Application, a.application_id) for a in awards]
            assert [r.group_application_id for r in records] == [app_id] * 5
            assert [r.organisation_id for r in records] == home_ids
            assert {r.state for r in records} == {"awarded"}
            assert len({a.certificate_number for a in awards}) == 5
            for award in awards:
                kinds = {d.kind for d in for_subject(s, "award", award.id)}
                assert {"annual_report", "expiry"} <= kinds, kinds
                token = client.get(f"/api/v1/awards/{award.id}/credential").text
                result, named = check(s, registry, issuer, token, now)
                assert result.verdict == "valid"
                assert named is not None
                assert named.id == award.id
                places = accounts.organisation_places(s, [award.organisation_id])
                assert places[award.organisation_id][2] == "Harbour Care Group"

        directory = client.get("/api/v1/awards").json()
        assert sorted(a["organisation_name"] for a in directory) == sorted(HOMES)
        page = client.get("/awards")
        assert page.text.count("Part of Harbour Care Group") == 5
        # The group's people read the application; each business's page shows its own award.
        assert client.get(f"/api/v1/applications/{app_id}", headers=headers).status_code == 200


def test_the_group_page_starts_an_application_for_the_businesses_chosen(engine, registry, tmp_path):
    with Session(writer(engine), expire_on_commit=False) as s:
        group = accounts.create_organisation(s, name="Harbour Care Group")
        homes = [accounts.create_organisation(s, name=n, parent_id=group.id) for n in HOMES[:3]]
        director = make_account(s, "applicant", group)
    with make_client(engine, registry, tmp_path) as client:
        sign_in(client, director.email)
        page = client.get("/group")
        assert "Apply for several businesses at once" in page.text
        none = client.post(
            "/group/applications",
            data={"level": "svqm:bronze", "csrf_token": csrf_of(page.text)},
        )
        assert none.status_code == 422
        assert "choose at least one business" in none.text.lower()
        chosen = [str(homes[0].id), str(homes[2].id)]
        started = client.post(
            "/group/applications",
            data={"level": "svqm:bronze", "members": chosen, "csrf_token": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert started.status_code == 303, started.text
        app_id = int(started.headers["location"].split("/")[2].split("?")[0])
        page = client.get("/group")
        assert f"For {HOMES[0]}, {HOMES[2]}" in page.text
        assert f'href="/applications/{app_id}"' in page.text
    with Session(engine) as s:
        assert members_covered(s, app_id) == sorted([homes[0].id, homes[2].id])
