from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from svqm.accounts import service as accounts
from svqm.db import session_scope
from svqm.notify.models import OutboxMessage
from svqm.notify.sweep import sweep
from svqm.workflow import schedule
from svqm.workflow.deadlines import add_months
from svqm.workflow.models import Award
from svqm.workflow.schedule import ScheduledDeadline
from svqm.workflow.schemes import SchemeRegistry
from tests.notify.timeline import BASE, T0
from tests.workflow.harness import Cast, application_in, award_in, make_cast


def _scenario(engine: Engine, registry: SchemeRegistry) -> dict[str, int]:
    # An application under review, a Silver award whose members hear of its annual report, and
    # a Gold award of an organisation with nobody to tell, already late for its reminders.
    with session_scope(engine) as s:
        org = accounts.create_organisation(s, name="Kind & Co <Ltd>", sector="health")
        quiet = accounts.create_organisation(s, name="Nobody Home", sector="health")
        staff = {
            role: accounts.add_user(s, email=f"{role}@example.test", role=role)
            for role in ("assessor", "panel", "admin")
        }
        first = accounts.add_user(
            s, email="first@example.test", role="applicant", organisation_id=org.id
        )
        gone = accounts.add_user(
            s, email="gone@example.test", role="applicant", organisation_id=org.id
        )
        gone.active = False
        accounts.add_user(s, email="second@example.test", role="applicant", organisation_id=org.id)
        accounts.add_user(s, email="admin2@example.test", role="admin")
        cast = Cast(org, first, staff["assessor"], staff["panel"], staff["admin"])
        policy = registry.get("svqm").policy
        app = application_in(
            s, registry, cast, scheme="svqm", level="silver", state="submitted", at=T0
        )
        # Silver is double-marked: the second assessor hears of the steps, but the review's
        # reminders are the first's alone (the first takes the steps), so none is addressed here.
        app.second_assessor_id = accounts.add_user(
            s, email="second-assessor@example.test", role="assessor"
        ).id
        issued = add_months(T0, -11)
        award = award_in(
            s, registry, cast, scheme="svqm", level="silver", state="active", issued=issued, at=T0
        )
        quiet_cast = Cast(quiet, None, None, staff["panel"], staff["admin"])  # type: ignore[arg-type]
        late = award_in(
            s,
            registry,
            quiet_cast,
            scheme="svqm",
            level="gold",
            state="active",
            issued=add_months(T0, -12) + timedelta(days=27),
            at=T0,
        )
        for subject in (app, award, late):
            schedule.sync(s, policy, subject, T0)
        return {"app": app.id, "award": award.id, "late": late.id}


def _outbox(engine: Engine) -> list[tuple[Any, ...]]:
    with Session(engine) as s:
        rows = s.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
        return [
            (
                m.key,
                m.template,
                m.to_addrs,
                m.status,
                m.last_error,
                m.organisation_id,
                m.deadline_id is not None,
                m.created_at,
                _decoded(m.context),
            )
            for m in rows
        ]


def _decoded(text: str) -> dict[str, Any]:
    """A stored context, which must be exactly the text `json.dumps(..., sort_keys=True)` writes
    for it (the sweep encodes the values its messages share once, and the rest around them)."""
    context = json.loads(text)
    assert text == json.dumps(context, sort_keys=True)
    return context


def _deadlines(engine: Engine) -> list[tuple[Any, ...]]:
    with Session(engine) as s:
        rows = s.exec(select(ScheduledDeadline).order_by(col(ScheduledDeadline.id))).all()
        return [
            (d.subject_kind, d.subject_id, d.kind, d.status, d.reminded, d.wake_at, d.outcome)
            for d in rows
        ]


def _context(subject: str, role: str, kind: str, due: datetime, days: int, **more: str):
    award = subject.startswith("award")
    titles = {
        "award-1": ("Kind & Co <Ltd>", "Silver award (T-2)"),
        "award-2": ("Nobody Home", "Gold award (T-3)"),
        "application-1": ("Kind & Co <Ltd>", "Silver application APP-000001"),
    }
    page = f"/dashboard/awards/{subject[-1]}" if award else "/applications/1"
    links = {
        "applicant": (page, "/dashboard"),
        "assessor": ("/assess/1", "/assess"),
        "admin": ("/admin/awards" if award else "/admin/applications/1", "/admin/deadlines"),
    }
    labels = {"annual_report": "Annual report", "assessor_review": "Assessor review"}
    organisation, title = titles[subject]
    return {
        "audience": role,
        "contact": CONTACT,
        "days_before": days,
        "due_at": due.isoformat(),
        "due_text": f"{due:%A} {due.day} {due:%B %Y}",
        "home_link": BASE + links[role][1],
        "kind": kind,
        "greeting_fallback": f"{organisation} team" if role == "applicant" else "",
        "label": labels[kind],
        "names": [],
        "link": BASE + links[role][0],
        "on_due_text": more.get("on_due", ""),
        "organisation": organisation,
        "outcome": more.get("outcome", ""),
        "scheme": "Social Value Quality Mark",
        "subject_title": title,
    }


CONTACT = (
    "Questions about your case? Write to svqm@svqm.localhost (the Social Value Quality Mark team)."
)
OVERDUE = "the award becomes 'Annual report overdue'"
FIRED = "the award is now 'Annual report overdue' (it was 'Active')"
MEMBERS = "first@example.test, second@example.test"
ADMINS = "admin@example.test, admin2@example.test"
ASSESSOR = "assessor@example.test"


def _row(key: str, to: str, org: int, when: datetime, context: dict[str, Any]) -> tuple[Any, ...]:
    template = "reminder" if context["days_before"] else "due"
    status, error = ("pending", "") if to else ("dead", "nobody to send it to")
    return (key, template, to, status, error, org, True, when, context)


def test_sweep_messages_say_exactly_this_once_and_deadlines_move_on(engine, registry):
    assert _scenario(engine, registry) == {"app": 1, "award": 1, "late": 2}
    sweeps = [T0 + timedelta(days=d) for d in (22, 30, 30, 40)]  # one twice: nothing new
    for when in sweeps:
        sweep(engine, registry, now=when, base_url=BASE)
    late, award, review = (
        datetime(2026, 2, 1, 9, tzinfo=UTC),
        datetime(2026, 2, 5, 9, tzinfo=UTC),
        datetime(2026, 2, 2, 9, tzinfo=UTC),
    )
    first, second, fourth = sweeps[0], sweeps[1], sweeps[3]
    assert _outbox(engine) == [
        # Both its reminders were missed: only the latest goes out (to nobody: dead at once).
        _row("award-2:annual_report:2026-02-01:7d:applicant", "", 2, first,
             _context("award-2", "applicant", "annual_report", late, 7, on_due=OVERDUE)),
        _row("award-1:annual_report:2026-02-05:30d:applicant", MEMBERS, 1, first,
             _context("award-1", "applicant", "annual_report", award, 30, on_due=OVERDUE)),
        _row("application-1:assessor_review:2026-02-02:7d:assessor", ASSESSOR, 1, first,
             _context("application-1", "assessor", "assessor_review", review, 7)),
        _row("award-1:annual_report:2026-02-05:7d:applicant", MEMBERS, 1, second,
             _context("award-1", "applicant", "annual_report", award, 7, on_due=OVERDUE)),
        _row("application-1:assessor_review:2026-02-02:0d:assessor", ASSESSOR, 1, second,
             _context("application-1", "assessor", "assessor_review", review, 0)),
        _row("application-1:assessor_review:2026-02-02:0d:admin", ADMINS, 1, second,
             _context("application-1", "admin", "assessor_review", review, 0)),
        # Told after the deadline fired: the award is overdue now, and says so.
        _row("award-2:annual_report:2026-02-01:0d:applicant", "", 2, second,
             _context("award-2", "applicant", "annual_report", late, 0, outcome=FIRED)),
        _row("award-2:annual_report:2026-02-01:0d:admin", ADMINS, 2, second,
             _context("award-2", "admin", "annual_report", late, 0, outcome=FIRED)),
        _row("award-1:annual_report:2026-02-05:0d:applicant", MEMBERS, 1, fourth,
             _context("award-1", "applicant", "annual_report", award, 0, outcome=FIRED)),
        _row("award-1:annual_report:2026-02-05:0d:admin", ADMINS, 1, fourth,
             _context("award-1", "admin", "annual_report", award, 0, outcome=FIRED)),
    ]  # fmt: skip
    left = "the award left the deadline's states"
    fired = "fired mark_report_overdue"
    assert _deadlines(engine) == [
        ("application", 1, "assessor_review", "passed", "7", None, "passed"),
        ("award", 1, "annual_report", "fired", "30,7", None, fired),
        ("award", 1, "renewal", "open", "", datetime(2026, 9, 6, 9, tzinfo=UTC), ""),
        ("award", 1, "expiry", "open", "", datetime(2026, 11, 7, 9, tzinfo=UTC), ""),
        ("award", 1, "upgrade_eligibility", "cancelled", "", None, left),
        ("award", 2, "annual_report", "fired", "30,7", None, fired),
        ("award", 2, "renewal", "open", "", datetime(2026, 9, 2, 9, tzinfo=UTC), ""),
        ("award", 2, "expiry", "open", "", datetime(2026, 11, 3, 9, tzinfo=UTC), ""),
        ("award", 2, "upgrade_eligibility", "cancelled", "", None, left),
        ("award", 2, "report_grace", "open", "", datetime(2026, 2, 20, 9, tzinfo=UTC), ""),
        ("award", 1, "report_grace", "open", "", datetime(2026, 3, 2, 9, tzinfo=UTC), ""),
    ]
    with Session(engine) as s:
        assert [s.get(Award, i).state for i in (1, 2)] == ["report_due", "report_due"]


def test_a_state_changed_earlier_in_the_batch_silences_a_reminder_it_ended(engine, registry):
    # The report's grace period ran out before the renewal's first reminder, and one late sweep
    # sees both: the award is suspended first, which ends the renewal deadline.
    expires = add_months(T0 + timedelta(days=100), 3)
    with session_scope(engine) as s:
        cast = make_cast(s)
        award = award_in(
            s,
            registry,
            cast,
            scheme="svqm",
            level="silver",
            state="report_due",
            issued=add_months(expires, -24),
            at=T0,
        )
        schedule.sync(s, registry.get("svqm").policy, award, T0)
        award_id = award.id
    wakes = {d[2]: d[5] for d in _deadlines(engine)}
    assert wakes["report_grace"] < wakes["renewal"] < T0 + timedelta(days=45)

    sweep(engine, registry, now=T0 + timedelta(days=45), base_url=BASE)

    assert [m[0] for m in _outbox(engine)] == [
        f"award-{award_id}:report_grace:2026-02-04:0d:applicant"
    ]
    assert [d[3] for d in _deadlines(engine)] == ["fired", "cancelled", "cancelled"]


def test_a_reminder_goes_at_the_very_moment_it_comes(engine, registry):
    # Swept exactly 30 days before the award's report is due (its row wakes then): the 30-day
    # reminder goes; a microsecond earlier the row is not due and nothing is sent.
    _scenario(engine, registry)
    due = datetime(2026, 2, 5, 9, tzinfo=UTC)
    moment = due - timedelta(days=30)
    key = "award-1:annual_report:2026-02-05:30d:applicant"
    sweep(engine, registry, now=moment - timedelta(microseconds=1), base_url=BASE)
    assert key not in [row[0] for row in _outbox(engine)]
    sweep(engine, registry, now=moment, base_url=BASE)
    assert key in [row[0] for row in _outbox(engine)]
    rows = [r for r in _deadlines(engine) if r[:3] == ("award", 1, "annual_report")]
    assert [(r[4], r[5]) for r in rows if r[3] == "open"] == [("30", due - timedelta(days=7))]
