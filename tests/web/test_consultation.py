"""Stakeholder consultation: the assessor invites stakeholders once the audit start is confirmed;
each answers once on a public form of their own; a used, expired or forged link gets a clear
page; the answers are staff-only; reminders go out before it closes."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import select

from svqm.accounts.models import Organisation
from svqm.clock import FixedClock
from svqm.db import session_scope
from svqm.notify.models import OutboxMessage
from svqm.notify.sweep import sweep
from svqm.workflow import audits
from svqm.workflow.consultation import ConsultationInvite
from svqm.workflow.models import Application
from svqm.workflow.service import Actor
from tests.web.award_world import app_client, bearer, page_sign_in
from tests.web.pages_helpers import csrf_of, error_summary, make_account
from tests.workflow.harness import application_in

BOOKED = datetime(2026, 2, 16, 9, 0, tzinfo=UTC)
START = date(2026, 4, 20)  # Monday; the form opens then and closes 21 days later
OPEN = datetime(2026, 4, 21, 10, 0, tzinfo=UTC)
ANSWERS = {"relationship": "Supplier", "awareness": "4", "impact": "5", "trust": "3"}


class _Cast:
    pass


@pytest.fixture
def world(engine, registry):
    with session_scope(engine) as s:
        org = s.merge(Organisation(name="Harbour Care Trust", sector="health"))
        s.flush()
        cast = _Cast()
        cast.org = org
        cast.applicant = make_account(s, "applicant", org)
        cast.assessor = make_account(s, "assessor")
        cast.admin = make_account(s, "admin")
        cast.panel = make_account(s, "panel")
        app = application_in(
            s, registry, cast, scheme="svqm", level="silver", state="submitted", at=BOOKED
        )
        audits.propose(
            s,
            app,
            [START, START + timedelta(days=8), START + timedelta(days=15)],
            actor=Actor.of(cast.applicant),
            registry=registry,
            now=BOOKED,
        )
        audits.confirm(s, app, START, actor=Actor.of(cast.assessor), registry=registry, now=BOOKED)
        s.commit()
        cast.app_id = app.id
        return cast


def _clock(client) -> FixedClock:
    return client.app.state.clock


@pytest.fixture
def client(engine, registry, tmp_path):
    with app_client(engine, registry, tmp_path, FixedClock(BOOKED + timedelta(days=1))) as c:
        yield c


def _links(engine, template: str = "consultation_invite") -> dict[str, str]:
    with session_scope(engine) as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.template == template)).all()
        return {m.to_addrs: json.loads(m.context)["path"] for m in rows}


def _invite(client, world, emails):
    staff = bearer(client, world.assessor)
    body = {"invitees": [{"name": f"Person {n}", "email": e} for n, e in enumerate(emails)]}
    return client.post(
        f"/api/v1/applications/{world.app_id}/consultation/invitations", json=body, headers=staff
    )


def test_one_answer_per_link_then_a_clear_page(client, engine, world):
    made = _invite(client, world, ["ann@partner.test", "bo@partner.test"])
    assert made.status_code == 201, made.text
    assert made.json()["invited"] == 2
    links = _links(engine)
    assert set(links) == {"ann@partner.test", "bo@partner.test"}
    ann = links["ann@partner.test"]
    early = client.get(ann)
    assert early.status_code == 409
    assert "not open yet" in early.text
    assert "20 April 2026" in early.text

    _clock(client).at = OPEN  # the audit has started: the form is open
    form = client.get(ann)
    assert form.status_code == 200
    assert "Your view of Harbour Care Trust" in form.text
    token = csrf_of(form.text)
    missing = client.post(ann, data={"csrf_token": token, "relationship": "Supplier"})
    assert missing.status_code == 422
    assert "How well does the organisation tell you" in error_summary(missing.text)
    done = client.post(ann, data={"csrf_token": token, **ANSWERS})
    assert done.status_code == 200
    assert "Thank you" in done.text
    again = client.post(ann, data={"csrf_token": token, **ANSWERS})
    assert again.status_code == 409
    assert "already answered" in again.text
    assert client.get(ann).status_code == 409

    forged = client.get(ann[:-4] + "abcd")
    assert forged.status_code == 404
    assert "This link does not work" in forged.text
    assert client.post("/consultation/x", data={"csrf_token": token}).status_code == 404
    assert client.get("/consultation/" + "a" * 300).status_code == 404

    _clock(client).at = OPEN + timedelta(days=30)  # closed at the end of 10 May
    late = client.get(links["bo@partner.test"])
    assert late.status_code == 410
    assert "has closed" in late.text

    summary = client.get(
        f"/api/v1/applications/{world.app_id}/consultation", headers=bearer(client, world.admin)
    ).json()
    assert summary["answered"] == 1
    rated = {q["id"]: q["mean"] for q in summary["questions"] if q["kind"] == "rating"}
    assert rated == {"awareness": 4.0, "impact": 5.0, "trust": 3.0}
    # Silver is assessed on Report, not Trust (Gold adds it): the answers count toward Report.
    assert summary["standards"] == ["Report"]
    with session_scope(engine) as s:
        app = s.get(Application, world.app_id)
        app.level = "gold"
        s.add(app)
    gold = client.get(
        f"/api/v1/applications/{world.app_id}/consultation", headers=bearer(client, world.admin)
    ).json()
    assert gold["standards"] == ["Report", "Trust"]


def test_the_answers_are_hidden_from_the_applicant(client, engine, world):
    _invite(client, world, ["ann@partner.test"])
    _clock(client).at = OPEN
    link = _links(engine)["ann@partner.test"]
    form = client.get(link)
    client.post(link, data={"csrf_token": csrf_of(form.text), **ANSWERS, "comments": "SECRET-X"})
    me = bearer(client, world.applicant)
    api = client.get(f"/api/v1/applications/{world.app_id}/consultation", headers=me)
    assert api.status_code == 404
    assert "SECRET-X" not in api.text
    page_sign_in(client, world.applicant)
    for path in (
        f"/applications/{world.app_id}",
        f"/applications/{world.app_id}/history",
        f"/assess/{world.app_id}/consultation",
    ):
        response = client.get(path)
        assert "SECRET-X" not in response.text, path
    assert client.get(f"/assess/{world.app_id}/consultation").status_code == 403
    page_sign_in(client, world.assessor)
    staff = client.get(f"/assess/{world.app_id}/consultation")
    assert staff.status_code == 200
    assert "SECRET-X" in staff.text
    assert re.search(r'id="answered">1', staff.text)
    case = client.get(f"/assess/{world.app_id}")
    assert "Stakeholder consultation" in case.text
    assert "Stakeholders invited: 1. Answered: 1" in case.text


def test_inviting_waits_for_the_audit_date_and_refuses_bad_addresses(client, engine, world):
    bad = _invite(client, world, ["not-an-address", "ann@partner.test", "ann@partner.test"])
    assert bad.status_code == 422
    unmet = bad.json()["unmet"]
    assert "'not-an-address' is not an email address" in unmet[0]
    assert "invited already" in unmet[1]
    page_sign_in(client, world.assessor)
    case = client.get(f"/assess/{world.app_id}")
    assert "No stakeholders have been invited yet." in case.text
    # Two sentences, not run together ("The audit starts on … 2026.No stakeholders").
    assert re.search(r"(starts on [^.<]+|not confirmed yet)\.\s+No stakeholders", case.text)
    assert "0 of 0" not in case.text
    page = client.get(f"/assess/{world.app_id}/consultation")
    sent = client.post(
        f"/assess/{world.app_id}/consultation",
        data={"csrf_token": csrf_of(page.text), "email": "cy@staff.test", "group": "internal"},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert set(_links(engine)) == {"cy@staff.test"}
    with session_scope(engine) as s:
        app = s.get(Application, world.app_id)
        app.audit_starts_at = None
        s.add(app)
        s.commit()
    assert _invite(client, world, ["dee@partner.test"]).status_code == 409


def test_reminders_before_the_close_carry_a_working_link(client, engine, registry, world):
    _invite(client, world, ["ann@partner.test", "bo@partner.test"])
    _clock(client).at = OPEN
    link = _links(engine)["bo@partner.test"]
    form = client.get(link)
    client.post(link, data={"csrf_token": csrf_of(form.text), **ANSWERS})
    # The form closes at midnight after Sunday 10 May; 7 days before is 4 May.
    report = sweep(engine, registry, now=datetime(2026, 5, 4, 8, 0, tzinfo=UTC), base_url="")
    assert report.reminders["consultation"] == 1
    again = sweep(engine, registry, now=datetime(2026, 5, 4, 9, 0, tzinfo=UTC), base_url="")
    assert again.reminders["consultation"] == 0
    reminders = _links(engine, "consultation_reminder")
    assert set(reminders) == {"ann@partner.test"}
    _clock(client).at = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    assert client.get(reminders["ann@partner.test"]).status_code == 200
    sweep(engine, registry, now=datetime(2026, 5, 9, 8, 0, tzinfo=UTC), base_url="")
    with session_scope(engine) as s:
        row = s.exec(
            select(ConsultationInvite).where(ConsultationInvite.email == "ann@partner.test")
        ).one()
        assert row.reminded == "7,2"
        assert row.remind_at is None
