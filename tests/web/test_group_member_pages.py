"""The pledges page of a group's application: the applicant chooses whether a pledge is every
member's or one member's own, and the list says whose each one is."""

from __future__ import annotations

from sqlmodel import Session, select

from svqm.accounts import service as accounts
from svqm.db import writer
from svqm.evidence.models import Pledge
from svqm.workflow import service as workflow
from tests.factories import actor
from tests.web.pages_helpers import csrf_of, make_account, make_client, sign_in

HOMES = ["Harbour House", "Quay Lodge", "Lighthouse Court"]


def _form(page_text, **extra):
    return {
        "csrf_token": csrf_of(page_text),
        "theme": "health",
        "title": "A memory cafe every week",
        "indicator": "people attending",
        "unit": "people",
        "baseline": "0",
        "target": "20",
        "due_date-day": "31",
        "due_date-month": "3",
        "due_date-year": "2099",
        **extra,
    }


def test_the_pledges_page_adds_a_members_own_pledge(engine, registry, tmp_path, now):
    with Session(writer(engine), expire_on_commit=False) as s:
        group = accounts.create_organisation(s, name="Harbour Care Group")
        homes = [accounts.create_organisation(s, name=n, parent_id=group.id) for n in HOMES]
        outsider = accounts.create_organisation(s, name="Elsewhere Care")
        director = make_account(s, "applicant", group)
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
        s.commit()
    quay = homes[1].id
    with make_client(engine, registry, tmp_path) as client:
        sign_in(client, director.email)
        url = f"/applications/{app.id}/pledges"
        page = client.get(url)
        assert "Whose pledge is it?" in page.text
        assert '<option value="" selected>All members (shared)</option>' in page.text
        assert f'<option value="{quay}">Quay Lodge</option>' in page.text

        refused = client.post(url, data=_form(page.text, organisation_id=str(outsider.id)))
        assert refused.status_code == 422
        assert "not a member this application covers" in refused.text
        assert 'href="#organisation_id"' in refused.text
        # The choice is kept on the refused form.
        bad = client.post(url, data=_form(page.text, organisation_id=str(quay), target=""))
        assert bad.status_code == 422
        assert f'<option value="{quay}" selected>Quay Lodge</option>' in bad.text

        added = client.post(url, data=_form(page.text, organisation_id=str(quay)))
        assert added.status_code in (200, 303), added.text
        shared = client.post(url, data=_form(page.text, title="Shared by the homes"))
        assert shared.status_code in (200, 303), shared.text
        page = client.get(url)
        assert "Quay Lodge&#39;s own" in page.text or "Quay Lodge's own" in page.text
        assert "Shared by every member" in page.text
    with Session(engine) as s:
        owners = {p.title: p.organisation_id for p in s.exec(select(Pledge)).all()}
    assert owners == {"A memory cafe every week": quay, "Shared by the homes": group.id}


def test_an_organisations_own_application_asks_not_whose_pledge(engine, registry, tmp_path, now):
    with Session(writer(engine), expire_on_commit=False) as s:
        person = make_account(s, "applicant")
        app = workflow.open_application(
            s,
            organisation_id=person.organisation_id,
            scheme_id="svqm",
            level="bronze",
            actor=actor(person),
            registry=registry,
            now=now,
        )
        s.commit()
    with make_client(engine, registry, tmp_path) as client:
        sign_in(client, person.email)
        page = client.get(f"/applications/{app.id}/pledges")
        assert "Add a pledge" in page.text
        assert "Whose pledge is it?" not in page.text
