"""The second assessor of a double-marked application (SVQM Silver, `assessors: 2`) can follow
the links in the emails they are sent: each opens for them, and not for an assessor who does not
assess the application (issue 18)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from svqm.accounts.models import Organisation, User
from svqm.accounts.service import person_name
from svqm.clock import FixedClock
from svqm.db import session_scope
from svqm.notify.models import OutboxMessage
from svqm.workflow.service import fire
from tests.web.award_world import app_client, page_sign_in
from tests.web.pages_helpers import make_account
from tests.workflow.harness import Cast, application_in

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_the_second_assessors_email_links_open_for_them_only(engine, registry, tmp_path):
    with session_scope(engine) as s:
        org = s.merge(Organisation(name="Quayside Care Partnership", sector="health"))
        s.flush()
        cast = Cast(
            org,
            make_account(s, "applicant", org),
            make_account(s, "assessor"),
            make_account(s, "panel"),
            make_account(s, "admin"),
        )
        second, outsider = make_account(s, "assessor"), make_account(s, "assessor")
        app = application_in(
            s, registry, cast, scheme="svqm", level="silver", state="recommended_refusal", at=NOW
        )
        app.second_assessor_id = second.id
        s.add(app)
        s.flush()
        fire(
            s,
            app,
            "confirm_refusal",
            actor=cast.actor("panel"),
            registry=registry,
            now=NOW,
            comment="The forecast gives no figures.",
        )
        app_id, emails = app.id, (cast.assessor.email, second.email)
        admin_email = cast.admin.email
    with Session(engine) as s:
        rows = s.exec(select(OutboxMessage).where(col(OutboxMessage.template) == "event")).all()
        people = {
            u.email: u
            for u in s.exec(
                select(User).where(col(User.email).in_([*emails, outsider.email, admin_email]))
            )
        }
    told = {r.to_addrs: json.loads(r.context)["path"] for r in rows}
    # Both assessors are told of the panel's decision, each by a row of their own.
    assert told[emails[0]] == told[emails[1]] == f"/assess/{app_id}"
    with app_client(engine, registry, tmp_path, FixedClock(NOW)) as client:
        page_sign_in(client, people[second.email])
        opened = client.get(told[second.email])
        assert opened.status_code == 200, opened.text[:400]
        assert "Quayside Care Partnership" in opened.text
        page_sign_in(client, people[outsider.email])
        assert client.get(told[second.email]).status_code in (403, 404)
        # The admin's list and the case page name both assessors, not only the first.
        page_sign_in(client, people[admin_email])
        first_name = person_name(people[emails[0]])
        second_name = person_name(people[emails[1]])
        listed = client.get("/admin/applications").text
        assert f"{first_name} and {second_name}" in listed
        case = client.get(f"/admin/applications/{app_id}").text
        assert f'id="second-assessor-name">{second_name}<' in case
