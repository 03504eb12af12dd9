"""Audit booking (policies/svqm.yaml `audit`): three start dates at least 40 working days ahead,
bank holidays skipped; staff confirm one; the evidence deadline is the start; moving it is audited."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import select

from svqm.errors import Conflict, GuardRefused, InvalidInput, PermissionDenied
from svqm.notify.models import OutboxMessage
from svqm.notify.render import build_message
from svqm.workflow import audits, schedule
from svqm.workflow import service as workflow
from svqm.workflow.models import AuditEvent
from tests.workflow.harness import application_in, make_cast

# Monday 24 November 2025: eight calendar weeks on is Monday 19 January 2026, but Christmas Day,
# Boxing Day and New Year's Day are bank holidays in England, so 40 working days end on Thursday 22.
BEFORE_CHRISTMAS = datetime(2025, 11, 24, 9, 0, tzinfo=UTC)
# Monday 16 February 2026: eight weeks on is Monday 13 April; Good Friday (3 April) and Easter
# Monday (6 April) push the earliest start to Wednesday 15 April.
BEFORE_EASTER = datetime(2026, 2, 16, 9, 0, tzinfo=UTC)


def _policy(registry):
    policy = registry.get("svqm").policy
    assert policy.audit is not None
    return policy


def test_eight_working_weeks_skip_christmas_and_new_year(registry):
    policy = _policy(registry)
    assert audits.earliest(policy, policy.audit, BEFORE_CHRISTMAS) == date(2026, 1, 22)
    # Without the three bank holidays it would be the 19th: each one pushes it a working day.
    assert audits.earliest(policy, policy.audit, BEFORE_CHRISTMAS) - date(2026, 1, 19) == (
        timedelta(days=3)
    )


def test_eight_working_weeks_skip_easter(registry):
    policy = _policy(registry)
    assert audits.earliest(policy, policy.audit, BEFORE_EASTER) == date(2026, 4, 15)
    too_soon = audits.refusals(policy, policy.audit, [date(2026, 4, 14)], BEFORE_EASTER)
    assert len(too_soon) == 1
    assert "Tuesday 14 April 2026 is too soon" in too_soon[0]
    assert "Wednesday 15 April 2026" in too_soon[0]
    assert audits.refusals(policy, policy.audit, [date(2026, 4, 15)], BEFORE_EASTER) == []


def test_a_start_date_must_be_a_working_day(registry):
    policy = _policy(registry)
    # Saturday 2 May 2026, and the early May bank holiday (Monday 4 May).
    found = audits.refusals(
        policy, policy.audit, [date(2026, 5, 2), date(2026, 5, 4)], BEFORE_EASTER
    )
    assert [r.field for r in found] == ["dates.0", "dates.1"]
    assert all("not a working day" in r for r in found)


@pytest.fixture
def booking(session, registry):
    cast = make_cast(session)
    app = application_in(
        session, registry, cast, scheme="svqm", level="silver", state="draft", at=BEFORE_EASTER
    )
    return cast, app


DAYS = [date(2026, 4, 20), date(2026, 4, 27), date(2026, 5, 5)]


def test_proposing_names_each_date_too_soon(session, registry, booking):
    cast, app = booking
    with pytest.raises(GuardRefused) as refused:
        audits.propose(
            session,
            app,
            [date(2026, 4, 1), date(2026, 4, 20), date(2026, 4, 14)],
            actor=cast.actor("applicant"),
            registry=registry,
            now=BEFORE_EASTER,
        )
    unmet = refused.value.unmet
    assert [r.field for r in unmet] == ["dates.0", "dates.2"]
    assert "Wednesday 1 April 2026 is too soon" in unmet[0]
    with pytest.raises(InvalidInput, match="propose 3 possible start dates"):
        audits.propose(
            session,
            app,
            DAYS[:2],
            actor=cast.actor("applicant"),
            registry=registry,
            now=BEFORE_EASTER,
        )
    assert audits.current(session, app.id) is None


def test_confirming_sets_the_evidence_deadline_and_moving_it_is_audited(session, registry, booking):
    cast, app = booking
    audits.propose(
        session, app, DAYS, actor=cast.actor("applicant"), registry=registry, now=BEFORE_EASTER
    )
    # Staff hear of the proposal (the assessor assigned and the admins), the applicant does not.
    told = session.exec(select(OutboxMessage).where(OutboxMessage.template == "event")).all()
    assert {m.to_addrs for m in told} == {cast.assessor.email, cast.admin.email}
    with pytest.raises(PermissionDenied):
        audits.confirm(
            session, app, DAYS[0], actor=cast.actor("panel"), registry=registry, now=BEFORE_EASTER
        )
    with pytest.raises(InvalidInput, match="was not proposed"):
        audits.confirm(
            session,
            app,
            date(2026, 6, 1),
            actor=cast.actor("admin"),
            registry=registry,
            now=BEFORE_EASTER,
        )
    audits.confirm(
        session, app, DAYS[1], actor=cast.actor("assessor"), registry=registry, now=BEFORE_EASTER
    )
    start = datetime(2026, 4, 26, 23, 0, tzinfo=UTC)  # midnight UK time (BST) on 27 April
    assert app.audit_starts_at == start
    rows = list(schedule.open_rows(session, "application", app.id))
    evidence = [r for r in rows if r.kind == "audit_evidence"]
    assert len(evidence) == 1
    assert evidence[0].due_at == start
    assert evidence[0].wake_at == start - timedelta(days=28)

    with pytest.raises(Conflict, match="already starts"):
        audits.confirm(
            session, app, DAYS[1], actor=cast.actor("admin"), registry=registry, now=BEFORE_EASTER
        )
    later = BEFORE_EASTER + timedelta(days=2)
    audits.confirm(
        session,
        app,
        DAYS[2],
        actor=cast.actor("admin"),
        registry=registry,
        now=later,
        comment="The finance director is away that week.",
    )
    moved = session.exec(
        select(AuditEvent)
        .where(AuditEvent.subject_id == app.id, AuditEvent.trigger == audits.RESCHEDULE)
        .order_by(AuditEvent.seq)
    ).all()
    assert len(moved) == 1
    assert "from Monday 27 April 2026 to Tuesday 5 May 2026" in moved[0].comment
    assert "finance director" in moved[0].comment
    assert moved[0].actor_id == cast.admin.id
    assert moved[0].source == moved[0].dest == "draft"
    open_now = list(schedule.open_rows(session, "application", app.id))
    evidence = [r for r in open_now if r.kind == "audit_evidence"]
    assert len(evidence) == 1
    assert evidence[0].due_at == datetime(2026, 5, 4, 23, 0, tzinfo=UTC)
    cancelled = [
        r
        for r in schedule.for_subject(session, "application", app.id)
        if r.kind == "audit_evidence" and r.status == "cancelled"
    ]
    assert [r.due_at for r in cancelled] == [start]
    triggers = [
        e.trigger
        for e in session.exec(
            select(AuditEvent).where(AuditEvent.subject_id == app.id).order_by(AuditEvent.seq)
        )
    ]
    assert triggers == [audits.PROPOSE, audits.CONFIRM, audits.RESCHEDULE]


def test_a_level_without_audits_books_none(session, registry):
    cast = make_cast(session)
    app = application_in(
        session, registry, cast, scheme="svqm", level="bronze", state="draft", at=BEFORE_EASTER
    )
    with pytest.raises(InvalidInput, match="Bronze applications of .* book no audit"):
        audits.propose(
            session, app, DAYS, actor=cast.actor("applicant"), registry=registry, now=BEFORE_EASTER
        )


def test_bringing_a_confirmed_audit_forward_is_a_rescheduling_and_the_deadline_follows(
    session, registry, booking
):
    """`svqm demo --audit-starts-today`: the confirmed start moves to today, audited as a
    rescheduling; the evidence deadline and an unanswered invitation's window move with it."""
    from svqm.workflow import consultation
    from svqm.workflow.service import SYSTEM

    cast, app = booking
    policy = _policy(registry)
    with pytest.raises(Conflict, match="no confirmed audit start date"):
        audits.bring_forward(session, app, actor=SYSTEM, registry=registry, now=BEFORE_EASTER)
    audits.propose(
        session, app, DAYS, actor=cast.actor("applicant"), registry=registry, now=BEFORE_EASTER
    )
    with pytest.raises(Conflict, match="no confirmed audit start date"):
        audits.bring_forward(session, app, actor=SYSTEM, registry=registry, now=BEFORE_EASTER)
    audits.confirm(
        session, app, DAYS[0], actor=cast.actor("admin"), registry=registry, now=BEFORE_EASTER
    )
    ((invite, token),) = consultation.invite(
        session,
        policy,
        app,
        [consultation.Invitee(name="Sam Supplier", email="sam@supplier.example")],
        actor_role="admin",
        actor_id=cast.admin.id,
        now=BEFORE_EASTER,
    )
    assert invite.opens_at > BEFORE_EASTER  # not open before the audit starts
    with pytest.raises(PermissionDenied):
        audits.bring_forward(
            session, app, actor=cast.actor("assessor"), registry=registry, now=BEFORE_EASTER
        )
    later = BEFORE_EASTER + timedelta(days=3)  # Thursday 19 February 2026, 09:00
    audits.bring_forward(
        session, app, actor=SYSTEM, registry=registry, now=later, comment="For the demo."
    )
    today = datetime(2026, 2, 19, 0, 0, tzinfo=UTC)  # midnight UK time (GMT)
    assert app.audit_starts_at == today
    assert audits.start_day(policy, app) == date(2026, 2, 19)
    (moved,) = session.exec(
        select(AuditEvent).where(
            AuditEvent.subject_id == app.id, AuditEvent.trigger == audits.RESCHEDULE
        )
    ).all()
    assert "from Monday 20 April 2026 to Thursday 19 February 2026" in moved.comment
    assert "For the demo." in moved.comment
    assert (moved.actor_role, moved.actor_id) == ("system", None)
    evidence = [
        r for r in schedule.open_rows(session, "application", app.id) if r.kind == "audit_evidence"
    ]
    assert [r.due_at for r in evidence] == [today]
    cancelled = [
        r.due_at
        for r in schedule.for_subject(session, "application", app.id)
        if r.kind == "audit_evidence" and r.status == "cancelled"
    ]
    assert cancelled == [datetime(2026, 4, 19, 23, 0, tzinfo=UTC)]
    session.refresh(invite)
    assert invite.opens_at == today <= later  # the form opens now
    assert consultation.follow(session, token, later).problem == ""
    # Started already: nothing to bring forward.
    with pytest.raises(Conflict, match="started on Thursday 19 February 2026"):
        audits.bring_forward(session, app, actor=SYSTEM, registry=registry, now=later)


def test_the_review_of_an_audited_level_waits_for_a_confirmed_start_date(session, registry):
    """Before: an assessor could start the review with the dates only proposed; dates are booked
    only before the review, so nobody could confirm one after, and the case stuck."""
    cast = make_cast(session)
    app = application_in(
        session, registry, cast, scheme="svqm", level="silver", state="submitted", at=BEFORE_EASTER
    )
    audits.propose(
        session, app, DAYS, actor=cast.actor("applicant"), registry=registry, now=BEFORE_EASTER
    )
    with pytest.raises(GuardRefused) as refused:
        workflow.fire(
            session, app, "start_review", actor=cast.actor("assessor"), registry=registry,
            now=BEFORE_EASTER,
        )  # fmt: skip
    assert [str(r) for r in refused.value.unmet] == [
        "the audit start date is not confirmed yet (the applicant proposes dates, then the "
        "assessor or an admin confirms one)"
    ]
    assert app.state == "submitted"
    audits.confirm(
        session, app, DAYS[0], actor=cast.actor("admin"), registry=registry, now=BEFORE_EASTER
    )
    workflow.fire(
        session, app, "start_review", actor=cast.actor("assessor"), registry=registry,
        now=BEFORE_EASTER,
    )  # fmt: skip
    assert app.state == "under_review"


def test_a_level_with_no_audit_starts_its_review_without_dates(session, registry):
    cast = make_cast(session)
    app = application_in(
        session, registry, cast, scheme="svqm", level="bronze", state="submitted", at=BEFORE_EASTER
    )
    workflow.fire(
        session, app, "start_review", actor=cast.actor("assessor"), registry=registry,
        now=BEFORE_EASTER,
    )  # fmt: skip
    assert app.state == "under_review"


def test_the_booking_emails_give_the_dates_as_the_services_account_not_as_someones_words(
    session, registry, booking
):
    cast, app = booking
    audits.propose(
        session, app, DAYS, actor=cast.actor("applicant"), registry=registry, now=BEFORE_EASTER
    )
    told = session.exec(select(OutboxMessage).where(OutboxMessage.template == "event")).all()
    assert told
    for row in told:
        text = build_message(row, mail_from="svqm <noreply@svqm.test>").get_body(("plain",))
        body = text.get_content()
        assert "Monday 20 April 2026" in body
        assert "In their words" not in body  # before: "In their words: Proposed audit start …"
    # A row written before the intro was stored reads as it did.
    old = told[0]
    context = json.loads(old.context)
    context.pop("comment_intro")
    old.context = json.dumps(context)
    body = build_message(old, mail_from="svqm <noreply@svqm.test>").get_body(("plain",))
    assert "In their words: " in body.get_content()
