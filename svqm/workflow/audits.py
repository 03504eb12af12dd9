"""Audit booking: the applicant proposes start dates, the scheme's staff confirm (or move) one.

Which levels are audited, how many dates, how far ahead (in working days, the scheme's bank
holidays skipped) and in which states is the policy's `audit`. The confirmed date is the
application's `audit_starts_at`, the anchor of its `audit_start` deadlines (the evidence is due
then); confirming, and moving a confirmed date, are audit events of the application. A
demonstration may bring a confirmed start forward to today (`bring_forward`, `svqm demo
--audit-starts-today`), recorded as a rescheduling.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Column, Text
from sqlmodel import Field, Session, SQLModel, col, select

from svqm.db import UtcDateTime
from svqm.errors import (
    Conflict,
    GuardRefused,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Reason,
    StaleVersion,
)
from svqm.policy import AuditBooking, Policy
from svqm.workflow import consultation, events, schedule
from svqm.workflow import deadlines as arithmetic
from svqm.workflow.models import Application, AuditEvent
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor, record_change

PROPOSED, CONFIRMED, REPLACED = "proposed", "confirmed", "replaced"
# The audit events of a booking (the application's state does not move).
PROPOSE, CONFIRM, RESCHEDULE = "propose_audit_dates", "confirm_audit_date", "reschedule_audit"


class AuditProposal(SQLModel, table=True):
    """One round of proposed start dates; the newest round of an application is its booking."""

    __tablename__ = "audit_proposal"

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id", index=True)
    # The proposed days, ISO dates separated by commas, in the order given.
    dates: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default=PROPOSED, max_length=20)
    proposed_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    proposed_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    confirmed_day: date | None = None
    confirmed_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    confirmed_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )

    @property
    def days(self) -> list[date]:
        return [date.fromisoformat(d) for d in self.dates.split(",") if d]


def day_text(day: date) -> str:
    """'Monday 2 March 2026'."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def rule_for(policy: Policy, app: Application) -> AuditBooking:
    """The policy's booking rule, or InvalidInput when the application's level books no audit."""
    if policy.audit is None or not policy.audited(app.level):
        level = policy.level(app.level).name
        raise InvalidInput(f"{level} applications of {policy.name} book no audit")
    return policy.audit


def earliest(policy: Policy, rule: AuditBooking, now: datetime) -> date:
    """The first day an audit may start if booked `now`: the lead time in working days on from
    today (scheme time zone), itself a working day."""
    s = policy.settings
    tz = arithmetic.zone(s.time_zone)
    # add_working_days gives the end of the last working day counted; that day is the earliest.
    end = arithmetic.add_working_days(
        now, rule.lead_working_days, s.holiday_country, s.holiday_subdivision, tz
    )
    day = end.astimezone(tz).date() - timedelta(days=1)
    while not arithmetic.is_working_day(day, s.holiday_country, s.holiday_subdivision):
        day += timedelta(days=1)
    return day


def refusals(policy: Policy, rule: AuditBooking, days: Sequence[date], now: datetime) -> list[str]:
    """Why each proposed day cannot be an audit start, naming the day (empty: all are fine)."""
    s = policy.settings
    first = earliest(policy, rule, now)
    out: list[str] = []
    for n, day in enumerate(days):
        where = f"dates.{n}"
        if day < first:
            out.append(
                Reason(
                    f"{day_text(day)} is too soon: the audit can start on {day_text(first)} at "
                    f"the earliest ({rule.lead_working_days} working days ahead, bank holidays "
                    "not counted)",
                    field=where,
                )
            )
        elif not arithmetic.is_working_day(day, s.holiday_country, s.holiday_subdivision):
            out.append(
                Reason(
                    f"{day_text(day)} is not a working day (a weekend or a bank holiday)",
                    field=where,
                )
            )
    if len(set(days)) != len(days):
        out.append(Reason("each proposed date must be a different day", field="dates"))
    return out


def current(session: Session, application_id: int) -> AuditProposal | None:
    """The application's newest round of proposed dates, if any."""
    return session.exec(
        select(AuditProposal)
        .where(AuditProposal.application_id == application_id)
        .order_by(col(AuditProposal.id).desc())
    ).first()


def rounds(session: Session, application_id: int) -> list[AuditProposal]:
    """Every round of proposals of the application, oldest first."""
    return list(
        session.exec(
            select(AuditProposal)
            .where(AuditProposal.application_id == application_id)
            .order_by(col(AuditProposal.id))
        )
    )


def start_moment(policy: Policy, day: date) -> datetime:
    """The start of the day in the scheme's time zone, as UTC: when the audit starts."""
    tz = arithmetic.zone(policy.settings.time_zone)
    return datetime.combine(day, time(0, 0), tzinfo=tz).astimezone(UTC)


def start_day(policy: Policy, app: Application) -> date | None:
    """The confirmed start day of the application's audit, if any."""
    if app.audit_starts_at is None:
        return None
    return app.audit_starts_at.astimezone(arithmetic.zone(policy.settings.time_zone)).date()


def _in_booking_state(policy: Policy, rule: AuditBooking, app: Application) -> None:
    if app.state not in rule.states:
        workflow = policy.workflows.application
        allowed = " or ".join(workflow.state(s).title for s in rule.states)
        raise Conflict(
            f"audit dates are booked while the application is {allowed} "
            f"(it is {workflow.state(app.state).title})"
        )


def _tell(
    session: Session,
    policy: Policy,
    app: Application,
    event: AuditEvent,
    roles: Sequence[str],
    what: str,
    now: datetime,
    comment: str,
) -> None:
    """The booking's email, through the listeners (the outbox), in this transaction."""
    told = tuple(r for r in roles if r != "assessor" or app.assessor_id is not None)
    events.publish(
        session,
        events.Notice(
            kind="application",
            subject=app,
            event=event,
            policy=policy,
            roles=told,
            now=now,
            comment=comment,
            what=what,
        ),
    )


def propose(
    session: Session,
    app: Application,
    days: Sequence[date],
    *,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
    expected_version: int | None = None,
) -> AuditProposal:
    """The applicant proposes start dates; an earlier unconfirmed round is replaced, and a
    confirmed date stays until staff confirm one of the new ones (a request to move it).

    Raises InvalidInput for a level without audits, the wrong number of dates; GuardRefused
    naming each day too soon or not a working day; Conflict out of the booking states.
    """
    if actor.role != "applicant" or actor.organisation_id != app.organisation_id:
        if actor.role == "applicant":
            raise NotFound(f"no application {app.id}")
        raise PermissionDenied("only the applicant organisation proposes audit dates")
    policy = registry.for_subject(session, app).policy
    rule = rule_for(policy, app)
    _in_booking_state(policy, rule, app)
    if expected_version is not None and expected_version != app.version:
        raise StaleVersion(f"application {app.id} changed since you read it; reload it")
    if len(days) != rule.proposals:
        raise InvalidInput(
            f"propose {rule.proposals} possible start dates (you gave {len(days)})", field="dates"
        )
    problems = refusals(policy, rule, days, now)
    if problems:
        raise GuardRefused(f"{len(problems)} proposed date(s) cannot be used", problems)
    assert app.id is not None
    before = current(session, app.id)
    if before is not None and before.status == PROPOSED:
        before.status = REPLACED
        session.add(before)
    row = AuditProposal(
        application_id=app.id,
        dates=",".join(d.isoformat() for d in days),
        proposed_by_id=actor.id,
        proposed_at=now,
    )
    session.add(row)
    text = "Proposed audit start dates: " + "; ".join(day_text(d) for d in days)
    event = record_change(
        session, app, PROPOSE, actor=actor, registry=registry, now=now, comment=text
    )
    _tell(session, policy, app, event, rule.notify_proposed, "audit_proposed", now, text)
    return row


def confirm(
    session: Session,
    app: Application,
    day: date,
    *,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
    comment: str = "",
    expected_version: int | None = None,
) -> AuditEvent:
    """Staff confirm one of the newest proposed dates as the audit's start.

    A first confirmation is `confirm_audit_date`; confirming when a date was already confirmed
    moves it (`reschedule_audit`, old and new date in the event). The deadlines counted from the
    start move with it, and so do the consultation's unanswered invitations.
    """
    if actor.role not in ("assessor", "admin"):
        raise PermissionDenied(f"a {actor.role} may not confirm audit dates")
    policy = registry.for_subject(session, app).policy
    rule = rule_for(policy, app)
    if actor.role not in rule.confirmed_by:
        raise PermissionDenied(f"a {actor.role} may not confirm audit dates")
    if actor.role == "assessor" and actor.id != app.assessor_id:
        raise PermissionDenied("only the assessor assigned to this application may confirm it")
    _in_booking_state(policy, rule, app)
    if expected_version is not None and expected_version != app.version:
        raise StaleVersion(f"application {app.id} changed since you read it; reload it")
    assert app.id is not None
    proposal = current(session, app.id)
    if proposal is None:
        raise Conflict("the applicant has proposed no audit dates yet")
    if day not in proposal.days:
        offered = "; ".join(day_text(d) for d in proposal.days)
        raise InvalidInput(
            f"{day_text(day)} was not proposed; choose one of {offered}", field="date"
        )
    before = start_day(policy, app)
    if before == day:
        raise Conflict(f"the audit already starts on {day_text(day)}")
    proposal.status = CONFIRMED
    proposal.confirmed_day, proposal.confirmed_by_id, proposal.confirmed_at = day, actor.id, now
    session.add(proposal)
    app.audit_starts_at = start_moment(policy, day)
    session.add(app)
    if before is None:
        what, text = CONFIRM, f"Audit start date confirmed: {day_text(day)}"
    else:
        what, text = RESCHEDULE, f"Audit moved from {day_text(before)} to {day_text(day)}"
    if comment.strip():
        text = f"{text}\n{comment.strip()}"
    event = record_change(session, app, what, actor=actor, registry=registry, now=now, comment=text)
    _follow_start(session, policy, app, now)
    _tell(session, policy, app, event, rule.notify_confirmed, "audit_confirmed", now, text)
    return event


def bring_forward(
    session: Session,
    app: Application,
    *,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
    comment: str = "",
) -> AuditEvent:
    """Move the confirmed audit start to today (the scheme's day, from its first moment), as if
    the weeks of lead time had passed: what a demonstration needs to reach the consultation.

    Recorded like any rescheduling (`reschedule_audit`, old and new date in the event); the
    deadlines counted from the start and the consultation's unanswered invitations move with
    it. Only an admin or the system may do it; raises Conflict when no audit start is confirmed
    or it has started already.
    """
    if actor.role not in ("admin", "system"):
        raise PermissionDenied(f"a {actor.role} may not bring an audit forward")
    policy = registry.for_subject(session, app).policy
    rule = rule_for(policy, app)
    before = start_day(policy, app)
    if before is None:
        raise Conflict(f"application {app.id} has no confirmed audit start date")
    today = now.astimezone(arithmetic.zone(policy.settings.time_zone)).date()
    if before <= today:
        raise Conflict(f"the audit of application {app.id} started on {day_text(before)}")
    assert app.id is not None
    app.audit_starts_at = start_moment(policy, today)
    session.add(app)
    text = f"Audit moved from {day_text(before)} to {day_text(today)}"
    if comment.strip():
        text = f"{text}\n{comment.strip()}"
    event = record_change(
        session, app, RESCHEDULE, actor=actor, registry=registry, now=now, comment=text
    )
    _follow_start(session, policy, app, now)
    _tell(session, policy, app, event, rule.notify_confirmed, "audit_confirmed", now, text)
    return event


def _follow_start(session: Session, policy: Policy, app: Application, now: datetime) -> None:
    """The deadlines counted from the start are opened again on the new date; the
    consultation's unanswered invitations follow it."""
    assert app.id is not None
    moved = [
        r.id
        for r in schedule.open_rows(session, "application", app.id)
        if r.id is not None and _anchored_on_start(policy, r.kind)
    ]
    if moved:
        schedule.close_ids(session, moved, "cancelled", now, "the audit start date moved")
    schedule.sync(session, policy, app, now)
    consultation.follow_start(session, policy, app)


def _anchored_on_start(policy: Policy, kind: str) -> bool:
    d = policy.deadline(kind)
    return d is not None and d.anchor == "audit_start"


def booked(session: Session, application_ids: Sequence[int]) -> dict[int, AuditProposal]:
    """The newest round of each application that has one."""
    ids = list(set(application_ids))
    if not ids:
        return {}
    found: dict[int, AuditProposal] = {}
    rows = session.exec(
        select(AuditProposal)
        .where(col(AuditProposal.application_id).in_(ids))
        .order_by(col(AuditProposal.id))
    )
    for row in rows:
        found[row.application_id] = row
    return found


def assigned_audits(
    session: Session, assessor_id: int, *, limit: int = 1000
) -> tuple[list[Application], list[schedule.ScheduledDeadline]]:
    """The assessor's applications with a confirmed audit start (soonest first), and the open
    deadlines of every application assigned to them: their calendar."""
    apps = list(
        session.exec(
            select(Application)
            .where(
                Application.assessor_id == assessor_id,
                col(Application.audit_starts_at).is_not(None),
            )
            .order_by(col(Application.audit_starts_at), col(Application.id))
            .limit(limit)
        )
    )
    mine = select(Application.id).where(Application.assessor_id == assessor_id)
    rows = list(
        session.exec(
            select(schedule.ScheduledDeadline)
            .where(
                schedule.ScheduledDeadline.subject_kind == "application",
                col(schedule.ScheduledDeadline.subject_id).in_(mine),
                schedule.ScheduledDeadline.status == schedule.OPEN,
            )
            .order_by(col(schedule.ScheduledDeadline.due_at))
            .limit(limit)
        )
    )
    return apps, rows
