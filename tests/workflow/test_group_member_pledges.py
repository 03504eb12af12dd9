"""A group's application: pledges shared by every member plus a member's own. The member's own
pledge belongs to it in the register, is made on the group's application, and only that member's
award (public page, credential) carries it; the others carry the shared ones alone."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

from sqlmodel import Session, col, select

from svqm.accounts import service as accounts
from svqm.credentials.service import facts_of
from svqm.db import writer
from svqm.evidence.models import Pledge
from svqm.workflow import commitments
from svqm.workflow import service as workflow
from svqm.workflow.models import Application, Award
from tests.factories import actor, add_pledges, answer_eligibility, review_all, store_at, upload_all
from tests.web.pages_helpers import PASSWORD, make_account, make_client

HOMES = ["Harbour House", "Quay Lodge", "Lighthouse Court", "Anchor View", "Marina Gardens"]
OWN = "Quay Lodge hosts a weekly memory cafe for the village"


def _token(client, email):
    response = client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _pledge(title, **extra):
    return {
        "theme": "health",
        "title": title,
        "indicator": "people attending",
        "unit": "people",
        "baseline": 0,
        "target": "20",
        "due_date": "2099-03-31",
        **extra,
    }


def _claims(token: str) -> dict:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_a_members_own_pledge_is_on_that_members_award_only(engine, registry, tmp_path, now):
    with Session(writer(engine), expire_on_commit=False) as s:
        group = accounts.create_organisation(s, name="Harbour Care Group", sector="social care")
        homes = [
            accounts.create_organisation(s, name=n, sector="social care", parent_id=group.id)
            for n in HOMES
        ]
        outsider_org = accounts.create_organisation(s, name="Elsewhere Care")
        director = make_account(s, "applicant", group)
        manager = make_account(s, "applicant", homes[1])
        outsider = make_account(s, "applicant", outsider_org)
        assessor = make_account(s, "assessor")
        panel = make_account(s, "panel")
    home_ids = [h.id for h in homes]
    quay = homes[1].id
    with make_client(engine, registry, tmp_path) as client:
        headers = _token(client, director.email)
        opened = client.post(
            "/api/v1/applications",
            json={"scheme": "svqm", "level": "bronze", "members": home_ids},
            headers=headers,
        )
        assert opened.status_code == 201, opened.text
        app_id = opened.json()["id"]
        url = f"/api/v1/applications/{app_id}/pledges"

        # A member the application does not cover (the outsider, or the group itself is fine).
        stranger = client.post(
            url, json=_pledge("Not ours", organisation_id=outsider_org.id), headers=headers
        )
        assert stranger.status_code == 422, stranger.text
        assert "organisation_id" in stranger.json()["detail"]
        assert "Quay Lodge" in stranger.json()["detail"]
        # A person of another organisation (a member's own manager, or an outsider) cannot add
        # a pledge to the group's application, for a member or at all.
        for person in (manager, outsider):
            refused = client.post(
                url,
                json=_pledge("Sneaked in", organisation_id=quay),
                headers=_token(client, person.email),
            )
            assert refused.status_code == 404, refused.text

        own = client.post(url, json=_pledge(OWN, organisation_id=quay), headers=headers)
        assert own.status_code == 201, own.text
        assert own.json()["organisation_id"] == quay
        assert own.json()["application_id"] == app_id
        listed = client.get(url, headers=headers).json()
        assert [p["organisation_id"] for p in listed if p["title"] == OWN] == [quay]
        # The group changes its member's pledge on its application; the member's manager cannot.
        own_id = own.json()["id"]
        changed = client.patch(f"/api/v1/pledges/{own_id}", json={"target": "25"}, headers=headers)
        assert changed.status_code == 200, changed.text
        denied = client.patch(
            f"/api/v1/pledges/{own_id}",
            json={"target": "99"},
            headers=_token(client, manager.email),
        )
        assert denied.status_code == 403, denied.text
        assert (
            client.patch(
                f"/api/v1/pledges/{own_id}",
                json={"target": "99"},
                headers=_token(client, outsider.email),
            ).status_code
            == 404
        )

        with Session(writer(engine), expire_on_commit=False) as s:
            app = s.get(Application, app_id)
            assert s.get(Pledge, own_id).organisation_id == quay
            add_pledges(s, registry, app, director, now=now)
            upload_all(s, registry, store_at(tmp_path / "evidence"), app, director, now=now)
            answer_eligibility(s, registry, app, director, now=now)
            for trigger, who in (("submit", director), ("start_review", assessor)):
                workflow.fire(s, app, trigger, actor=actor(who), registry=registry, now=now)
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
            awards = {a.organisation_id: a for a in s.exec(select(Award)).all()}
            assert sorted(awards) == sorted(home_ids)
            later = now + timedelta(days=1)
            for home in homes:
                titles = {
                    p.title for p in commitments.commitments(s, registry, home.id, later).pledges
                }
                # Every award carries the six shared pledges; only Quay Lodge's carries its own.
                assert len(titles - {OWN}) == 6
                assert (OWN in titles) is (home.id == quay)
                facts = {p[1] for p in facts_of(s, awards[home.id], registry).pledges}
                assert facts == titles
            own_now = next(
                p for p in commitments.award_pledges(s, [awards[quay]]) if p.id == own_id
            )
            assert own_now.target == "25"
            tokens = {
                h: client.get(f"/api/v1/awards/{awards[h].id}/credential").text
                for h in (quay, homes[0].id)
            }
        assert OWN in json.dumps(_claims(tokens[quay]))
        assert OWN not in json.dumps(_claims(tokens[homes[0].id]))
        page = client.get(f"/organisations/{quay}")
        assert page.status_code == 200
        assert OWN in page.text
        other = client.get(f"/organisations/{homes[0].id}")
        assert other.status_code == 200
        assert OWN not in other.text
        assert "Pledge 1 on" in other.text
        # The directory's theme filter finds the members' awards by their pledges' themes.
        themed = client.get("/api/v1/awards", params={"theme": "health"}).json()
        assert sorted(a["organisation_name"] for a in themed) == sorted(HOMES)


def test_a_member_id_on_an_organisations_own_application_is_refused(
    engine, registry, tmp_path, now
):
    with Session(writer(engine), expire_on_commit=False) as s:
        org = accounts.create_organisation(s, name="Solo Care")
        other = accounts.create_organisation(s, name="Other Care")
        person = make_account(s, "applicant", org)
    with make_client(engine, registry, tmp_path) as client:
        headers = _token(client, person.email)
        app_id = client.post(
            "/api/v1/applications", json={"scheme": "svqm", "level": "bronze"}, headers=headers
        ).json()["id"]
        url = f"/api/v1/applications/{app_id}/pledges"
        refused = client.post(url, json=_pledge("x", organisation_id=other.id), headers=headers)
        assert refused.status_code == 422
        assert "organisation_id" in refused.json()["detail"]
        assert "not a group's application" in refused.json()["detail"]
        # Its own id is its own pledge, as with none.
        mine = client.post(url, json=_pledge("y", organisation_id=org.id), headers=headers)
        assert mine.status_code == 201
        assert mine.json()["organisation_id"] == org.id
    with Session(engine) as s:
        assert [p.title for p in s.exec(select(Pledge).order_by(col(Pledge.id)))] == ["y"]


def test_members_sharing_a_pledge_each_read_their_own_accepted_figures(
    engine, registry, tmp_path, now
):
    """A shared pledge is one row held by every member's award: the figures one member reported
    (accepted) are on its page, not on the other members'."""
    from svqm.workflow.models import AnnualReport
    from svqm.workflow.progress import PledgeProgress

    with Session(writer(engine), expire_on_commit=False) as s:
        group = accounts.create_organisation(s, name="Harbour Care Group")
        homes = [accounts.create_organisation(s, name=n, parent_id=group.id) for n in HOMES[:2]]
        director = make_account(s, "applicant", group)
        assessor = make_account(s, "assessor")
        panel = make_account(s, "panel")
        app = workflow.open_application(
            s,
            organisation_id=group.id,
            scheme_id="svqm",
            level="bronze",
            actor=actor(director),
            registry=registry,
            now=now,
            members=[h.id for h in homes],
        )
        add_pledges(s, registry, app, director, now=now)
        upload_all(s, registry, store_at(tmp_path / "evidence"), app, director, now=now)
        answer_eligibility(s, registry, app, director, now=now)
        for trigger, who in (("submit", director), ("start_review", assessor)):
            workflow.fire(s, app, trigger, actor=actor(who), registry=registry, now=now)
        review_all(s, registry, app, assessor, now=now)
        for trigger, who in (("recommend_award", assessor), ("confirm_award", panel)):
            workflow.fire(s, app, trigger, actor=actor(who), registry=registry, now=now)
        first = s.exec(select(Award).where(Award.organisation_id == homes[0].id)).one()
        shared = commitments.award_pledges(s, [first])[0].id
        report = AnnualReport(
            award_id=first.id,
            organisation_id=homes[0].id,
            scheme=first.scheme,
            level=first.level,
            policy_digest=first.policy_digest,
            deadline_kind="annual_report",
            period="2026",
            filename="",
            sha256="",
            size=0,
            content_type="",
            submitted_at=now,
            state="accepted",
            published=True,
        )
        s.add(report)
        s.flush()
        s.add(PledgeProgress(report_id=report.id, pledge_id=shared, actual=7))
        s.commit()
    later = now + timedelta(days=1)
    with Session(engine) as s:
        read = {
            h.id: {
                p.id: [(g.period, g.actual) for g in p.progress]
                for p in commitments.commitments(s, registry, h.id, later).pledges
            }
            for h in homes
        }
    assert read[homes[0].id][shared] == [("2026", 7.0)]
    assert read[homes[1].id][shared] == []
