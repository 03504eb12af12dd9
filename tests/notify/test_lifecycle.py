"""Whole award life cycles under a moving clock: reminders at their offsets, once; what passes fires."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from svqm.db import session_scope
from svqm.workflow import reports
from svqm.workflow.deadlines import add_months
from svqm.workflow.models import Application, AuditEvent, Award
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import fire
from tests.factories import store_at
from tests.notify.timeline import T0, Timeline, deadlines, issue_award, messages
from tests.workflow.harness import application_in, make_cast


def _award(engine: Engine, award_id: int) -> Award:
    with Session(engine) as s:
        award = s.get(Award, award_id)
        assert award is not None
        return award


def _sent(engine: Engine) -> list[tuple[str, str, datetime]]:
    """(deadline kind, 'Nd:role', when enqueued) of every outbox row."""
    out = []
    for m in messages(engine):
        _, kind, _, offset, role = m.key.split(":")
        out.append((kind, f"{offset}:{role}", m.created_at))
    return out


def _file_report(engine, registry, tmp, award_id, cast, when) -> None:
    with session_scope(engine) as s:
        award = s.get(Award, award_id)
        reports.file_report(
            s,
            award,
            store_at(tmp),
            period=str(when.year),
            stream=io.BytesIO(b"our year\n"),
            filename="report.txt",
            title="Annual report",
            actor=cast.actor("applicant"),
            registry=registry,
            now=when,
        )


def test_silver_award_reminds_at_each_offset_once_and_expires_then_restores(
    engine, registry, tmp_path
):
    award_id, cast = issue_award(engine, registry, tmp_path, "silver")
    expires = add_months(T0, 24)
    clock = Timeline(engine, registry)
    report_due = add_months(T0, 12)

    clock.run_until(datetime(2026, 12, 10, tzinfo=UTC))
    _file_report(engine, registry, tmp_path, award_id, cast, datetime(2026, 12, 10, tzinfo=UTC))
    clock.run_until(expires + timedelta(days=1))

    day = timedelta(days=1)
    renewal_due = add_months(expires, -3)
    assert _sent(engine) == [
        # The report was filed after the 30-day reminder, so the 7-day one never went.
        ("annual_report", "30d:applicant", report_due - 30 * day),
        # Twelve months at Silver: eligible to upgrade, and told so.
        ("upgrade_eligibility", "0d:applicant", report_due),
        ("renewal", "60d:applicant", renewal_due - 60 * day),
        ("renewal", "30d:applicant", renewal_due - 30 * day),
        ("renewal", "7d:applicant", renewal_due - 7 * day),
        ("renewal", "0d:applicant", renewal_due),
        ("expiry", "90d:applicant", expires - 90 * day),
        ("expiry", "30d:applicant", expires - 30 * day),
        ("expiry", "7d:applicant", expires - 7 * day),
        ("expiry", "0d:applicant", expires),
    ]
    award = _award(engine, award_id)
    assert award.state == "expired"
    states = {d.kind: d.status for d in deadlines(engine) if d.subject_kind == "award"}
    assert states["upgrade_eligibility"] == "fired"
    assert states["renewal"] == "fired"
    assert states["expiry"] == "fired"
    assert states["restore_window"] == "open"
    # The second year's report was still to come when renewal opened: cancelled, not missed.
    year2 = [d for d in deadlines(engine, "annual_report") if d.occurrence == 1]
    assert [d.status for d in year2] == ["cancelled"]

    # An admin restores it within six months: the expiry moves on a whole cycle from the old one.
    restored_at = expires + timedelta(days=20)
    with session_scope(engine) as s:
        award = s.get(Award, award_id)
        fire(
            s,
            award,
            "restore",
            actor=cast.actor("admin"),
            registry=registry,
            now=restored_at,
            comment="renewal assessment completed",
        )
    award = _award(engine, award_id)
    assert award.state == "active"
    assert award.expires_at == add_months(expires, 24)
    assert [d.status for d in deadlines(engine, "restore_window")] == ["cancelled"]
    assert {d.due_at for d in deadlines(engine, "expiry") if d.status == "open"} == {
        award.expires_at
    }


def test_a_missed_report_is_escalated_then_the_award_is_suspended(engine, registry, tmp_path):
    award_id, _ = issue_award(engine, registry, tmp_path, "silver")
    due = add_months(T0, 12)
    clock = Timeline(engine, registry)
    clock.run_until(due + timedelta(days=40))

    day = timedelta(days=1)
    grace_due = due + 30 * day
    report_rows = [s for s in _sent(engine) if s[0] in ("annual_report", "report_grace")]
    assert report_rows == [
        ("annual_report", "30d:applicant", due - 30 * day),
        ("annual_report", "7d:applicant", due - 7 * day),
        # Overdue: the holder is told and the admins are alerted (escalate_to).
        ("annual_report", "0d:applicant", due),
        ("annual_report", "0d:admin", due),
        ("report_grace", "14d:applicant", grace_due - 14 * day),
        ("report_grace", "7d:applicant", grace_due - 7 * day),
        ("report_grace", "1d:applicant", grace_due - 1 * day),
        ("report_grace", "0d:applicant", grace_due),
    ]
    assert _award(engine, award_id).state == "suspended"
    with Session(engine) as s:
        trail = [
            (e.trigger, e.actor_role, e.at)
            for e in s.exec(
                select(AuditEvent).where(
                    AuditEvent.subject_kind == "award", AuditEvent.subject_id == award_id
                )
            )
        ]
    assert trail == [("mark_report_overdue", "system", due), ("suspend", "system", grace_due)]
    # The overdue email says what happened.
    overdue = next(m for m in messages(engine) if m.key.endswith(":0d:admin"))
    assert "report due" in overdue.context.lower() or "overdue" in overdue.context.lower()


def test_a_sweep_after_downtime_catches_up_once(engine, registry, tmp_path):
    award_id, _ = issue_award(engine, registry, tmp_path, "silver")
    due = add_months(T0, 12)
    # Down from before the 30-day reminder until 5 days before the due date, then two sweeps.
    first = Timeline(engine, registry).sweep_at(due - timedelta(days=5))
    again = Timeline(engine, registry).sweep_at(due - timedelta(days=5))
    assert first.reminders["annual_report"] == 1
    assert again.rows == 0
    keys = [m.key for m in messages(engine)]
    # Of the two missed reminders only the latest (7 days) went; the 30-day one was not sent late.
    assert [k for k in keys if ":annual_report:" in k] == [
        f"award-{award_id}:annual_report:{due:%Y-%m-%d}:7d:applicant"
    ]
    # Down across the due date itself: the action fires once, with no stale reminders.
    Timeline(engine, registry).sweep_at(due + timedelta(days=3))
    Timeline(engine, registry).sweep_at(due + timedelta(days=3))
    assert _award(engine, award_id).state == "report_due"
    keys = [m.key for m in messages(engine) if ":annual_report:" in m.key]
    assert len(keys) == len(set(keys)) == 3  # 7d, and the due notice to applicant and admin


def _refused(engine: Engine, registry: SchemeRegistry, decided: datetime) -> int:
    """An application the panel refuses at `decided` (its appeal window starts)."""
    with session_scope(engine) as s:
        cast = make_cast(s)
        app = application_in(
            s,
            registry,
            cast,
            scheme="svqm",
            level="bronze",
            state="recommended_refusal",
            at=decided - timedelta(days=3),
        )
        fire(s, app, "confirm_refusal", actor=cast.actor("panel"), registry=registry, now=decided)
        assert app.id is not None
        return app.id


@pytest.mark.parametrize(
    ("decided", "last_moment"),
    [
        # Thursday 17 Dec 2026: 25 Dec, 28 Dec (Boxing Day's substitute) and 1 Jan are bank
        # holidays, so the tenth working day is Tuesday 5 Jan 2027; its end is 00:00 GMT = UTC.
        (datetime(2026, 12, 17, 15, 0, tzinfo=UTC), datetime(2027, 1, 6, 0, 0, tzinfo=UTC)),
        # Thursday 18 Mar 2027, across Good Friday, Easter Monday and the clocks going forward
        # (28 Mar): the tenth working day is Monday 5 April, ending 00:00 BST = 23:00 UTC.
        (datetime(2027, 3, 18, 10, 0, tzinfo=UTC), datetime(2027, 4, 5, 23, 0, tzinfo=UTC)),
        # Thursday 22 Oct 2026, across the clocks going back (25 Oct): Thursday 5 Nov ends at
        # 00:00 GMT on the 6th.
        (datetime(2026, 10, 22, 10, 0, tzinfo=UTC), datetime(2026, 11, 6, 0, 0, tzinfo=UTC)),
    ],
)
def test_the_appeal_window_closes_after_ten_working_days_swept_hourly(
    engine, registry, decided, last_moment
):
    app_id = _refused(engine, registry, decided)
    [row] = deadlines(engine, "appeal_window")
    assert row.due_at == last_moment
    clock = Timeline(engine, registry)
    # An hourly sweep from the decision to two days past the end, across any clock change.
    when = decided
    while when <= last_moment + timedelta(days=2):
        clock.sweep_at(when)
        when += timedelta(hours=1)
    sent = _sent(engine)
    assert sent == [
        ("appeal_window", "5d:applicant", last_moment - timedelta(days=5)),
        ("appeal_window", "0d:applicant", last_moment),
    ]
    with Session(engine) as s:
        app = s.get(Application, app_id)
        assert app is not None
        assert app.state == "not_awarded_final"
    fired = [r.fired["close_appeal_window"] for _, r in clock.sweeps]
    assert sum(fired) == 1
