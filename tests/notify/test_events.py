"""Event emails: each step the policy says to tell is one outbox row a role, sent once over SMTP."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from svqm.accounts.models import Organisation
from svqm.clock import FixedClock
from svqm.config import Settings
from svqm.db import session_scope
from svqm.evidence import service as evidence_service
from svqm.evidence.models import EvidenceItem, ReviewCreate
from svqm.notify.dispatch import dispatch, mailer_from
from svqm.notify.models import OutboxMessage
from svqm.notify.recipients import due_text
from svqm.notify.render import build_message
from svqm.workflow import actions
from svqm.workflow.invoices import Invoice, pounds
from svqm.workflow.models import Award, application_reference
from svqm.workflow.service import assign_assessor, fire
from tests.factories import make_user, store_at
from tests.notify.mailkit import MAIL_FROM
from tests.workflow.harness import application_in, make_cast, satisfy

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
BASE = "http://127.0.0.1:8115"
SCHEMES = ["svqm", "svqm-health", "bcorp-style", "iip-style", "iso17021-style"]


def _events(engine: Engine) -> list[OutboxMessage]:
    with Session(engine) as s:
        return list(
            s.exec(
                select(OutboxMessage)
                .where(col(OutboxMessage.template) == "event")
                .order_by(col(OutboxMessage.id))
            )
        )


def _step(session, registry, cast, app, trigger, tmp, now, comment=""):
    policy = registry.get(app.scheme).policy
    t = policy.workflows.application.transition(trigger, app.state)
    assert t is not None, (trigger, app.state)
    when, needed = satisfy(session, policy, registry, store_at(tmp), cast, app, t, now)
    role = next(r for r in t.roles if r != "system") if t.roles != ["system"] else "system"
    fire(
        session,
        app,
        trigger,
        actor=cast.actor(role),
        registry=registry,
        now=when,
        comment=comment or needed,
    )


def test_svqm_walk_tells_each_party_once_with_the_exact_page(engine, registry, tmp_path, relay):
    with session_scope(engine) as s:
        cast = make_cast(s)
        cast.applicant.name, cast.assessor.name = "Ann Applicant", "Sam Assessor"
        other = make_user(s, "assessor")
        other.name = "Olu Other"
        app = application_in(s, registry, cast, scheme="svqm", level="silver", state="draft", at=T0)
        app.assessor_id = None
        _step(s, registry, cast, app, "submit", tmp_path, T0)
        # Silver is double-marked: submit assigns two assessors, each told it is theirs.
        assert (app.assessor_id, app.second_assessor_id) == (cast.assessor.id, other.id)
        third = make_user(s, "assessor")
        third.name = "Tia Third"
        admin = cast.actor("admin")
        assign_assessor(s, app, third.id, actor=admin, registry=registry, now=T0)
        assign_assessor(s, app, cast.assessor.id, actor=admin, registry=registry, now=T0)
        # An admin choosing the second assessor tells the new second one, not the first.
        assign_assessor(s, app, third.id, actor=admin, registry=registry, now=T0, second=True)
        _step(s, registry, cast, app, "start_review", tmp_path, T0)
        items = s.exec(
            select(EvidenceItem)
            .where(EvidenceItem.application_id == app.id)
            .order_by(col(EvidenceItem.id))
        ).all()
        first, second = items[0], items[1]
        # Two requests collected, then one hand-back sending both.
        evidence_service.review_evidence(
            s,
            first,
            ReviewCreate(decision="more_information", comment="Pledges too vague"),
            reviewer_id=cast.assessor.id,
            now=T0,
        )
        actions.review_evidence(
            s,
            app,
            second,
            ReviewCreate(decision="more_information", comment="Show the hours volunteered"),
            actor=cast.actor("assessor"),
            registry=registry,
            now=T0,
        )
        assert app.state == "under_review"  # collected until the assessor hands back
        fire(
            s,
            app,
            "request_changes",
            actor=cast.actor("assessor"),
            registry=registry,
            now=T0,
            comment="Two things, please",
        )
        assert app.state == "changes_requested"
        app_id, first_title, second_title = app.id, first.title, second.title
        assessor_email, other_email, third_email = cast.assessor.email, other.email, third.email
        applicant_email = cast.applicant.email
        panel_email = cast.panel.email
        organisation = s.get(Organisation, app.organisation_id).name
        invoice = s.exec(select(Invoice).where(Invoice.application_id == app.id)).one()
        invoice_id, invoice_number = invoice.id, invoice.number
        invoice_total, invoice_vat = pounds(invoice.total_pence), pounds(invoice.vat_pence)
        invoice_due = due_text(invoice.due_at)

    rows = _events(engine)
    by_key = {r.key: r for r in rows}
    title = f"Silver application {application_reference(app_id)}"
    assert [(r.key.split(":")[-1], r.to_addrs, json.loads(r.context)["subject"]) for r in rows] == [
        ("applicant", applicant_email, f"{title}: received"),
        ("assessor", assessor_email, f"{title}: assigned to you for assessment"),
        ("second_assessor", other_email, f"{title}: assigned to you as the second assessor"),
        ("assessor", third_email, f"{title}: assigned to you for assessment"),
        ("assessor", assessor_email, f"{title}: assigned to you for assessment"),
        ("second_assessor", third_email, f"{title}: assigned to you as the second assessor"),
        ("applicant", applicant_email, f"{title}: More information requested"),
    ]
    # Each of the two is told their part when assigned; the organisation is told nothing of it.
    parts = [json.loads(r.context)["part"] for r in rows]
    assert [p.split(":")[0] for p in parts] == [
        "",
        "You are its first assessor",
        "You are its second assessor",
        "You are its first assessor",
        "You are its first assessor",
        "You are its second assessor",
        "",
    ]
    asked = json.loads(rows[6].context)
    assert asked["items"] == [
        {"title": first_title, "comment": "Pledges too vague"},
        {"title": second_title, "comment": "Show the hours volunteered"},
    ]
    assert asked["path"] == f"/applications/{app_id}"
    assert [d["label"] for d in asked["deadlines"]] == ["Reply to the request for more information"]
    # Both assessors' emails open their case page.
    assert {json.loads(r.context)["path"] for r in rows[1:6]} == {f"/assess/{app_id}"}

    settings = Settings(
        SMTP_HOST="127.0.0.1", SMTP_PORT=relay.port, MAIL_FROM=MAIL_FROM, BASE_URL=BASE
    )
    clock = FixedClock(T0 + timedelta(minutes=1))
    assert dispatch(engine, mailer_from(settings), settings, clock).sent == 7
    assert dispatch(engine, mailer_from(settings), settings, clock).sent == 0
    assert sorted(relay.keys().values()) == [1] * 7
    mails = {d.key: d.message for d in relay.received}
    request = mails[rows[6].key]
    text = request.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith("Hello Ann Applicant,\n")
    assert "What is asked for (2 items):" in text
    assert "In their words: Two things, please" in text  # the covering note, once
    assert text.count("Pledges too vague") == 1
    assert text.count("Show the hours volunteered") == 1
    assert f"  - {first_title}: Pledges too vague" in text
    assert f"  - {second_title}: Show the hours volunteered" in text
    assert f"Open it here: {BASE}/applications/{app_id}" in text
    assert "svqm@svqm.localhost" in text
    html = request.get_body(("html",)).get_content()
    assert f'<a href="{BASE}/applications/{app_id}">' in html
    receipt = mails[next(k for k in by_key if k.endswith(":applicant"))]
    assert application_reference(app_id) in receipt["Subject"]
    # The organisation reads what happened to it, then what comes next: the step's own words
    # and the invoice the step issued (only to the payer, only on the step that issued it).
    said = receipt.get_body(("plain",)).get_content().replace("\r\n", "\n")
    reference = application_reference(app_id)
    assert said.startswith(
        f"Hello Ann Applicant,\n\nWe have received your Silver application (reference {reference}).\n"
    )
    assert "\nWhat happens next\nAn assessor will now review it.\n" in said
    assert (
        f"We have sent you invoice {invoice_number} for {invoice_total} (including VAT of "
        f"{invoice_vat}). Please pay it by {invoice_due}, by bank transfer quoting {invoice_number}."
    ) in said
    assert f"Download the invoice: {BASE}/invoices/{invoice_id}.pdf" in said
    assert "Submit application. Done by the organisation on Monday 2 March 2026." in said
    receipt_html = receipt.get_body(("html",)).get_content()
    assert f'<a href="{BASE}/invoices/{invoice_id}.pdf">{invoice_number}</a>' in receipt_html
    assert "We have received your Silver application" in receipt_html
    for row in rows[1:]:
        mail = mails[row.key].get_body(("plain",)).get_content()
        assert "invoice" not in mail.lower(), row.key
        assert "invoice" not in json.loads(row.context)
    assert (
        f"The status of your Silver application (reference {reference}) is now More information "
        "requested.\n"
    ) in text
    assert '"' not in text
    assert "\nWhat happens next\nAnswer each item on the application's page" in text
    assigned = mails[rows[1].key].get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert assigned.startswith(
        f"Hello Sam Assessor,\n\nYou have been assigned the Silver application (reference "
        f"{application_reference(app_id)}) of {organisation} to assess.\n"
    )
    assert "\nYou are its first assessor: you review the evidence" in assigned
    assert f"{BASE}/assess/{app_id}" in assigned
    second_assigned = mails[rows[2].key]
    assert second_assigned["To"] == other_email
    assert second_assigned["Subject"].endswith("assigned to you as the second assessor")
    body = second_assigned.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert body.startswith("Hello Olu Other,\n")
    assert f"Open it here: {BASE}/assess/{app_id}" in body
    assert panel_email not in {d.rcpt_tos[0] for d in relay.received}


def test_svqm_decision_and_award_say_reasons_deadline_and_certificate(engine, registry, tmp_path):
    with session_scope(engine) as s:
        cast = make_cast(s)
        app = application_in(
            s, registry, cast, scheme="svqm", level="silver", state="under_review", at=T0
        )
        _step(s, registry, cast, app, "recommend_refusal", tmp_path, T0, "Targets unmeasured")
        _step(s, registry, cast, app, "confirm_refusal", tmp_path, T0)
        _step(s, registry, cast, app, "appeal", tmp_path, T0, "We measured them: see page 3")
        # An appeal is decided by a panel member who did not take the decision.
        fresh = dataclasses.replace(cast, panel=make_user(s, "panel"))
        _step(s, registry, fresh, app, "uphold_appeal", tmp_path, T0, "The appeal succeeds")
        award = s.exec(select(Award).where(Award.application_id == app.id)).one()
        app_id, award_id = app.id, award.id
    rows = [(r.key.split(":")[-1], json.loads(r.context)) for r in _events(engine)]
    title = f"Silver application {application_reference(app_id)}"
    assert [(role, c["subject"]) for role, c in rows] == [
        ("panel", f"{title}: Recommended for refusal"),
        ("applicant", f"{title}: Not awarded"),
        ("assessor", f"{title}: Not awarded"),
        ("panel", f"{title}: Appeal under review"),
        ("admin", f"{title}: Appeal under review"),
        ("applicant", f"{title}: Awarded"),
        ("assessor", f"{title}: Awarded"),
    ]
    refusal = rows[1][1]
    assert refusal["comment"] == ""  # the panel confirmed without words; the reasons came before
    assert [d["label"] for d in refusal["deadlines"]] == ["Last day to appeal"]
    assert "appeal" in refusal["notice"]
    assert rows[3][1]["comment"] == "We measured them: see page 3"
    assert rows[3][1]["path"] == f"/panel/{app_id}"
    awarded = rows[5][1]
    assert awarded["comment"] == "The appeal succeeds"
    assert awarded["certificate_path"] == f"/awards/{award_id}/certificate"
    assert awarded["verify_path"] == f"/awards/{award_id}/verify"
    assert awarded["award_path"] == f"/dashboard/awards/{award_id}"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_step_a_policy_says_to_tell_is_told_once_to_each_role(
    engine, registry, tmp_path, scheme
):
    policy = registry.get(scheme).policy
    told = [t for t in policy.workflows.application.transitions if t.notify]
    assert told, f"{scheme} tells nobody of anything"
    with session_scope(engine) as s:
        cast = make_cast(s)
        for t in told:
            # A step only for self-service levels (or only for the others) on a level it is for.
            level = next(
                lv.id
                for lv in policy.levels
                if t.self_service is None or lv.self_service == t.self_service
            )
            app = application_in(
                s, registry, cast, scheme=scheme, level=level, state=t.source[0], at=T0
            )
            _step(s, registry, cast, app, t.trigger, tmp_path, T0)
            keys = sorted(r.key.rsplit(":", 1)[1] for r in _events_in(s, app.id))
            assert keys == sorted(set(t.notify)), t.trigger
            for row in _events_in(s, app.id):
                role = row.key.rsplit(":", 1)[1]
                context = json.loads(row.context)
                assert context["path"].endswith(f"/{app.id}") or role == "admin"
                assert context["contact"] == policy.contact
                assert row.to_addrs, (t.trigger, role)


def _events_in(session: Session, app_id: int | None) -> list[OutboxMessage]:
    return list(
        session.exec(
            select(OutboxMessage).where(
                col(OutboxMessage.key).startswith(f"event:application-{app_id}:")
            )
        )
    )


def test_renewal_opened_by_the_system_says_how_to_start_it(engine, registry):
    from svqm.workflow.service import SYSTEM
    from tests.workflow.harness import award_in

    with session_scope(engine) as s:
        cast = make_cast(s)
        award = award_in(
            s, registry, cast, scheme="svqm", level="silver", state="active", issued=T0, at=T0
        )
        fire(s, award, "open_renewal", actor=SYSTEM, registry=registry, now=T0,
             comment="renewal passed on 2026-03-02")  # fmt: skip
        award_id = award.id
    [row] = _events(engine)
    context = json.loads(row.context)
    assert row.key.endswith(":applicant")
    assert context["subject"].endswith(": Renewal due")
    assert context["path"] == f"/dashboard/awards/{award_id}"
    assert context["notice"].startswith("To renew, choose Start an application")
    assert context["comment"] == ""
    assert context["done_text"].startswith("Done automatically on ")
    # The email opens with the policy's words for the step, not the trigger's name.
    assert context["step"] == "Time to renew"
    text = build_message(row, mail_from="svqm@example.test").get_body(("plain",)).get_content()
    opening = text.split("\n")[2]
    assert opening == "The status of your Silver award (certificate T-1) is now Renewal due."
    assert "\nWhat happens next\nTo renew, choose Start an application" in text
    assert "\nTime to renew. Done automatically on " in text
    assert "Open renewal" not in text
    assert "invoice" not in text.lower()  # this scheme's renewal opening invoices nothing
    # A row written before the email said what happened in a sentence reads as it did, unquoted.
    old = json.loads(row.context)
    del old["happened"], old["next_text"]
    row.context = json.dumps(old)
    text = build_message(row, mail_from="svqm@example.test").get_body(("plain",)).get_content()
    opening = text.split("\n")[2]
    assert opening.startswith("Time to renew: the Silver award (T-1) of Organisation ")
    assert opening.endswith(" is now Renewal due.")
