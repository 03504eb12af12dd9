"""The daily digest: a staff member who chose it gets their event emails and messages held and
sent as one email a day, each held email in exactly one digest however many sweeps run;
reminders and decisions still come at once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from svqm.accounts import service as accounts
from svqm.db import session_scope
from svqm.notify import messages as notify_messages
from svqm.notify.models import DIGESTED, HELD, PENDING, OutboxMessage
from svqm.notify.render import build_message
from svqm.notify.sweep import sweep
from svqm.workflow.models import application_reference
from svqm.workflow.schedule import ScheduledDeadline
from tests.notify.test_events import _step
from tests.workflow.harness import application_in, make_cast

# 10:00 in London: after the hour the digest goes (07:00 UK time).
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
BASE = "http://127.0.0.1:8116"


def _rows(engine, address: str) -> list[OutboxMessage]:
    with Session(engine) as s:
        return list(
            s.exec(
                select(OutboxMessage)
                .where(col(OutboxMessage.to_addrs) == address)
                .order_by(col(OutboxMessage.id))
            )
        )


def test_held_emails_go_once_in_one_digest_a_day_and_reminders_and_decisions_never_wait(
    engine, registry, tmp_path
):
    with session_scope(engine) as s:
        cast = make_cast(s)
        cast.assessor.name, cast.panel.name = "Sam Assessor", "Pia Panel"
        accounts.update_profile(s, cast.assessor, email_digest=True)
        accounts.update_profile(s, cast.panel, email_digest=True)
        app = application_in(s, registry, cast, scheme="svqm", level="bronze", state="draft", at=T0)
        _step(s, registry, cast, app, "submit", tmp_path, T0)
        notify_messages.post(
            s,
            "application",
            app,
            body="Is anything missing?",
            actor=cast.actor("applicant"),
            registry=registry,
            now=T0,
        )
        _step(s, registry, cast, app, "start_review", tmp_path, T0)
        _step(s, registry, cast, app, "recommend_award", tmp_path, T0)
        # The panel's decision tells the assessor at once, digest or not.
        _step(s, registry, cast, app, "confirm_award", tmp_path, T0, comment="Clear.")
        # Another application waits for its review: its reminder is never held either.
        other = application_in(
            s, registry, cast, scheme="svqm", level="bronze", state="draft", at=T0
        )
        _step(s, registry, cast, other, "submit", tmp_path, T0)
        review_due = s.exec(
            select(ScheduledDeadline.due_at).where(
                ScheduledDeadline.subject_id == other.id,
                ScheduledDeadline.kind == "assessor_review",
            )
        ).one()
        assessor, panel = cast.assessor.email, cast.panel.email
        applicant = cast.applicant.email

    held = [r for r in _rows(engine, assessor) if r.status == HELD]
    assert {r.template for r in held} == {"event", "message"}
    assert len(held) >= 3  # two submissions and the applicant's message
    decision = [r for r in _rows(engine, assessor) if r.template == "event" and r.status != HELD]
    assert [json.loads(r.context)["step"] for r in decision] == ["Confirm award"]
    assert decision[0].status == PENDING
    assert any(r.status == HELD for r in _rows(engine, panel))
    # The organisation's people are never held back.
    assert {r.status for r in _rows(engine, applicant)} == {PENDING}

    # Repeated sweeps at the same time and later that day: one digest each, every held email
    # in it once.
    for _ in range(3):
        sweep(engine, registry, now=T0 + timedelta(hours=1), base_url=BASE)
    sweep(engine, registry, now=T0 + timedelta(hours=5), base_url=BASE)
    [digest] = [r for r in _rows(engine, assessor) if r.template == "digest"]
    items = json.loads(digest.context)["items"]
    assert len(items) == len(held)
    assert {r.status for r in _rows(engine, assessor) if r.id in {h.id for h in held}} == {DIGESTED}
    assert len([r for r in _rows(engine, panel) if r.template == "digest"]) == 1
    email = build_message(digest, mail_from="svqm@example.test", base_url=BASE)
    text = email.get_body(("plain",)).get_content()
    assert text.startswith("Hello Sam Assessor,")
    assert f"{BASE}/applications/{app.id}/messages" in text
    assert "a message from" in text
    assert email["Subject"].startswith(f"Your daily summary: {len(held)} emails")

    # A message after today's digest waits for tomorrow's, and is in that one only.
    with session_scope(engine) as s:
        notify_messages.post(
            s,
            "application",
            s.get(type(app), app.id),
            body="One more thing.",
            actor=cast.actor("applicant"),
            registry=registry,
            now=T0 + timedelta(hours=6),
        )
    sweep(engine, registry, now=T0 + timedelta(hours=7), base_url=BASE)
    assert len([r for r in _rows(engine, assessor) if r.template == "digest"]) == 1
    for _ in range(2):
        sweep(engine, registry, now=T0 + timedelta(days=1), base_url=BASE)
    digests = [r for r in _rows(engine, assessor) if r.template == "digest"]
    assert len(digests) == 2
    assert [i["subject"] for i in json.loads(digests[1].context)["items"]] == [
        f"Bronze application {application_reference(app.id)}: a message from {cast.applicant.email}"
    ]
    assert not [r for r in _rows(engine, assessor) if r.status == HELD]

    # The review's reminder to the assessor goes at once, digest or not.
    sweep(engine, registry, now=review_due - timedelta(days=7, hours=-1), base_url=BASE)
    reminders = [r for r in _rows(engine, assessor) if r.template == "reminder"]
    assert reminders
    assert {r.status for r in reminders} == {PENDING}
