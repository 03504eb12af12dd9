"""A care group and its businesses: the group's people see their applications, awards and
deadlines together (reading only); regions shown and filtered in the directory and the admin
dashboard."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import Session, select

from svqm.accounts import members
from svqm.accounts.models import Organisation
from svqm.db import writer
from svqm.workflow.models import AnnualReport
from tests.web.pages_helpers import (
    PASSWORD,
    csrf_of,
    make_account,
    make_client,
    organisation_id_named,
    sign_in,
)
from tests.workflow.harness import award_in


class _Holder:
    def __init__(self, org):
        self.org = org
        self.assessor = None


def _token(client, email):
    response = client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _signup(client, name):
    email = f"{name.lower().replace(' ', '')}@org.test"
    created = client.post(
        "/api/v1/organisations",
        json={"name": name, "sector": "care", "email": email, "password": PASSWORD},
    )
    assert created.status_code == 202, created.text
    return email, organisation_id_named(client, name)


def _active_bronze(engine, registry, organisation_id, now):
    """A Bronze award in force for the organisation, issued ten days ago."""
    with Session(writer(engine), expire_on_commit=False) as s:
        award = award_in(
            s,
            registry,
            _Holder(s.get(Organisation, organisation_id)),
            scheme="svqm",
            level="bronze",
            state="active",
            issued=now - timedelta(days=10),
            at=now,
        )
        s.commit()
    return award


def test_group_staff_see_their_businesses_together_and_change_none(engine, registry, tmp_path, now):
    with make_client(engine, registry, tmp_path) as client:
        lead_email, group_id = _signup(client, "Harbour Care Group")
        _, outsider_id = _signup(client, "Other Care")
        outsider = _token(client, "othercare@org.test")
        other_app = client.post(
            "/api/v1/applications", json={"scheme": "svqm", "level": "bronze"}, headers=outsider
        ).json()["id"]

        # The group's lead adds three businesses on the group page; they lead each one.
        sign_in(client, lead_email)
        page = client.get("/group")
        assert page.status_code == 200
        assert "No business belongs to Harbour Care Group yet" in page.text
        for name in ("Harbour House", "Quay Lodge", "Lighthouse Court"):
            added = client.post(
                "/group/members",
                data={
                    "name": name,
                    "sector": "social care",
                    "region": "Greater Manchester",
                    "csrf_token": csrf_of(page.text),
                },
                follow_redirects=False,
            )
            assert added.status_code == 303, added.text
        refused = client.post(
            "/group/members",
            data={"name": "Nowhere", "region": "Atlantis", "csrf_token": csrf_of(page.text)},
        )
        assert refused.status_code == 422
        assert "choose a region" in refused.text.lower()

        headers = _token(client, lead_email)
        me = client.get("/api/v1/me", headers=headers).json()
        business = {m["name"]: m["organisation_id"] for m in me["memberships"]}
        assert set(business) == {
            "Harbour Care Group",
            "Harbour House",
            "Quay Lodge",
            "Lighthouse Court",
        }
        assert {m["parent_id"] for m in me["memberships"] if m["name"] != "Harbour Care Group"} == {
            group_id
        }
        apps = {}
        for name in ("Harbour House", "Quay Lodge", "Lighthouse Court"):
            client.post(
                "/api/v1/me/organisation", json={"organisation_id": business[name]}, headers=headers
            )
            opened = client.post(
                "/api/v1/applications", json={"scheme": "svqm", "level": "bronze"}, headers=headers
            )
            assert opened.status_code == 201, opened.text
            apps[name] = opened.json()["id"]
        _active_bronze(engine, registry, business["Quay Lodge"], now)

        # Acting for the group: every business's application, never the outsider's.
        client.post("/api/v1/me/organisation", json={"organisation_id": group_id}, headers=headers)
        listed = client.get("/api/v1/applications", headers=headers).json()
        # The three drafts, and the application behind Quay Lodge's award; never the outsider's.
        assert set(apps.values()) <= {a["id"] for a in listed}
        assert {a["organisation_id"] for a in listed} == {
            business[n] for n in ("Harbour House", "Quay Lodge", "Lighthouse Court")
        }
        assert client.get(f"/api/v1/applications/{other_app}", headers=headers).status_code == 404
        one = client.get(f"/api/v1/applications/{apps['Quay Lodge']}", headers=headers)
        assert one.status_code == 200
        assert one.json()["triggers"] == []
        # Reading only: a pledge or a trigger through the group is refused and writes nothing.
        pledge = client.post(
            f"/api/v1/applications/{apps['Quay Lodge']}/pledges",
            json={
                "theme": "employment",
                "title": "t",
                "indicator": "n",
                "target": "1",
                "due_date": "2031-01-01",
            },
            headers=headers,
        )
        assert pledge.status_code in (403, 404)
        fired = client.post(
            f"/api/v1/applications/{apps['Quay Lodge']}/events/withdraw",
            json={"comment": "", "version": 1},
            headers=headers,
        )
        assert fired.status_code in (403, 404)
        assert (
            client.get(f"/api/v1/applications/{apps['Quay Lodge']}", headers=headers).json()[
                "state"
            ]
            == "draft"
        )

        # The group page lists the three businesses with their applications and the award.
        client.post(
            "/account/organisations/switch",
            data={"organisation_id": str(group_id), "csrf_token": csrf_of(page.text)},
        )
        page = client.get("/group")
        for name, app_id in apps.items():
            assert name in page.text
            assert f'href="/applications/{app_id}"' in page.text
        assert "Other Care" not in page.text
        assert "Bronze" in page.text
        assert re.search(r"Bronze[^<]*\(T-\d+\)</a>", page.text)
        assert client.get(f"/applications/{apps['Harbour House']}").status_code == 200
        assert client.get(f"/applications/{other_app}").status_code == 404

        # A business's own person sees their business only, not its siblings nor the group's.
        with Session(writer(engine), expire_on_commit=False) as s:
            house = s.get(Organisation, business["Harbour House"])
            person = make_account(s, "applicant", house)
        own = _token(client, person.email)
        seen = {a["id"] for a in client.get("/api/v1/applications", headers=own).json()}
        assert seen == {apps["Harbour House"]}
        with Session(engine) as s:
            assert members.get_membership(s, person.id, group_id) is None


def test_regions_are_shown_and_filtered_in_the_directory_and_the_admin_dashboard(
    engine, registry, tmp_path, now
):
    with Session(writer(engine), expire_on_commit=False) as s:
        north = Organisation(name="Northern Homes", sector="care", region="Greater Manchester")
        south = Organisation(name="Southern Homes", sector="care", region="Kent and Medway")
        s.add_all([north, south])
        s.flush()
        for org in (north, south):
            award_in(
                s,
                registry,
                _Holder(org),
                scheme="svqm",
                level="bronze",
                state="active",
                issued=now - timedelta(days=10),
                at=now,
            )
        lead = make_account(s, "applicant", north)
        admin = make_account(s, "admin")
    with make_client(engine, registry, tmp_path) as client:
        everything = client.get("/awards")
        assert "Northern Homes" in everything.text
        assert "Southern Homes" in everything.text
        assert "Kent and Medway" in everything.text
        kent = client.get("/awards", params={"region": "Kent and Medway"})
        assert "Southern Homes" in kent.text
        assert "Northern Homes" not in kent.text
        api = client.get("/api/v1/awards", params={"region": "Greater Manchester"}).json()
        assert [a["organisation_name"] for a in api] == ["Northern Homes"]

        # A lead changes their organisation's region; a region off the list is refused.
        sign_in(client, lead.email)
        page = client.get("/account/organisations")
        bad = client.post(
            "/account/organisations/region",
            data={"region": "Atlantis", "csrf_token": csrf_of(page.text)},
        )
        assert bad.status_code == 422
        moved = client.post(
            "/account/organisations/region",
            data={"region": "Kent and Medway", "csrf_token": csrf_of(page.text)},
        )
        assert moved.status_code == 200
        assert "Region saved" in moved.text
        assert '<option value="Kent and Medway" selected>' in moved.text
        assert '<option value="West Yorkshire">' in moved.text
        kent = client.get("/awards", params={"region": "Kent and Medway"})
        assert "Northern Homes" in kent.text

        client.cookies.clear()
        sign_in(client, admin.email, totp_secret=admin.totp_secret)
        whole = client.get("/admin")
        assert whole.status_code == 200
        assert 'id="region-shown"' not in whole.text
        nowhere = client.get("/admin", params={"region": "West Yorkshire"})
        assert "organisations in <strong>West Yorkshire" in nowhere.text
        assert 'id="table-awards"' not in nowhere.text
        kent_admin = client.get("/admin", params={"region": "Kent and Medway"})
        assert 'id="table-awards"' in kent_admin.text
    with Session(engine) as s:
        assert s.exec(select(Organisation.region).where(Organisation.id == north.id)).one() == (
            "Kent and Medway"
        )


def test_a_link_to_another_of_ones_organisations_offers_to_act_for_it_and_comes_back(
    engine, registry, tmp_path, now
):
    """An email about a business's award links to its page; its group's lead, acting for the
    group, is offered to act for the business and lands on the award (not a 'not found').
    Someone outside the business still gets 'not found', and a form sent while acting for
    another organisation changes nothing."""
    with make_client(engine, registry, tmp_path) as client:
        lead_email, group_id = _signup(client, "Harbour Care Group")
        outsider_email, _ = _signup(client, "Other Care")
        sign_in(client, lead_email)
        page = client.get("/group")
        added = client.post(
            "/group/members",
            data={
                "name": "Quay Lodge",
                "sector": "social care",
                "region": "Greater Manchester",
                "csrf_token": csrf_of(page.text),
            },
            follow_redirects=False,
        )
        assert added.status_code == 303, added.text
        lodge_id = organisation_id_named(client, "Quay Lodge")
        award = _active_bronze(engine, registry, lodge_id, now)
        # Still acting for the group (adding a business does not switch).
        dashboard = client.get("/dashboard")
        assert "Harbour Care Group" in dashboard.text

        group_app = client.post(
            "/api/v1/applications",
            json={"scheme": "svqm", "level": "bronze"},
            headers=_token(client, lead_email),
        ).json()["id"]
        offer = client.get(f"/dashboard/awards/{award.id}")
        assert offer.status_code == 200, offer.text
        assert "This award is <strong>Quay Lodge</strong>" in offer.text
        assert "You are acting for <strong>Harbour Care Group</strong>" in offer.text
        assert f'name="next" value="/dashboard/awards/{award.id}"' in offer.text
        assert "Act for Quay Lodge" in offer.text

        # A report sent for the award while acting for the group is refused and stores nothing.
        refused = client.post(
            f"/dashboard/awards/{award.id}/reports",
            data={"period": "2026-27", "title": "Year one", "csrf_token": csrf_of(offer.text)},
            files={"file": ("report.pdf", b"%PDF-1.4 year one", "application/pdf")},
        )
        assert refused.status_code == 409
        assert "Act for Quay Lodge" in refused.text
        assert 'name="next" value=""' in refused.text

        # Taking the offer: acting for the business, back on the award's own page.
        offer = client.get(f"/dashboard/awards/{award.id}")
        moved = client.post(
            "/account/organisations/switch",
            data={
                "organisation_id": str(lodge_id),
                "next": f"/dashboard/awards/{award.id}",
                "csrf_token": csrf_of(offer.text),
            },
            follow_redirects=False,
        )
        assert moved.status_code == 303
        assert moved.headers["location"] == f"/dashboard/awards/{award.id}?done=switched"
        shown = client.get(moved.headers["location"])
        assert shown.status_code == 200
        assert "Act for Quay Lodge" not in shown.text
        # What happened is said on the page it comes back to (a page with no banner of its own).
        assert "You are now acting for this organisation." in shown.text
        assert "govuk-notification-banner--success" in shown.text
        assert award.certificate_number in shown.text
        # Acting for the business now, the group's own application offers the way back.
        back = client.get(f"/applications/{group_app}")
        assert back.status_code == 200
        assert "This application is <strong>Harbour Care Group</strong>" in back.text
        assert "You are acting for <strong>Quay Lodge</strong>" in back.text
        # A `next` off this site is never followed: the person's home page instead.
        away = client.post(
            "/account/organisations/switch",
            data={
                "organisation_id": str(group_id),
                "next": "//evil.example/",
                "csrf_token": csrf_of(shown.text),
            },
            follow_redirects=False,
        )
        assert away.status_code == 303
        assert away.headers["location"].startswith("/dashboard")

        # Someone who is not in the business: the award is simply not found.
        client.cookies.clear()
        sign_in(client, outsider_email)
        assert client.get(f"/dashboard/awards/{award.id}").status_code == 404
        assert client.get(f"/applications/{group_app}").status_code == 404
    with Session(engine) as s:
        assert s.exec(select(AnnualReport).where(AnnualReport.award_id == award.id)).first() is None


def test_coming_back_after_switching_keeps_the_pages_own_query_and_fragment():
    from svqm.web.ui import with_done

    assert with_done("/dashboard/awards/3", "switched") == "/dashboard/awards/3?done=switched"
    assert (
        with_done("/applications/7/pledges?theme=env&done=pledge-added#add", "switched")
        == "/applications/7/pledges?theme=env&done=switched#add"
    )
