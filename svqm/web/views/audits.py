"""What the audit booking and the stakeholder consultation pages and API show of an application."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from svqm.accounts import service as accounts
from svqm.policy import Policy
from svqm.web.schemas import (
    AuditBookingPublic,
    ConsultationPublic,
    ConsultationQuestionPublic,
    InvitationPublic,
)
from svqm.workflow import audits, consultation
from svqm.workflow.models import Application
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor


@dataclass(frozen=True)
class Booking:
    """An application's audit booking as its pages read it."""

    policy: Policy
    app: Application
    proposed: list[date]
    status: str
    start: date | None
    earliest: date
    lead_working_days: int
    proposals: int
    open_now: bool
    may_propose: bool
    may_confirm: bool
    rounds: int

    def public(self) -> AuditBookingPublic:
        assert self.app.id is not None
        return AuditBookingPublic(
            application_id=self.app.id,
            proposed=self.proposed,
            status=self.status,
            start_date=self.start,
            earliest=self.earliest,
            lead_working_days=self.lead_working_days,
            proposals=self.proposals,
        )

    def context(self) -> dict[str, Any]:
        """The template's words: days as people read them."""
        return {
            "booking": self,
            "proposed_text": [audits.day_text(d) for d in self.proposed],
            "start_text": audits.day_text(self.start) if self.start else "",
            "earliest_text": audits.day_text(self.earliest),
        }


def booking(
    session: Session, registry: SchemeRegistry, app: Application, actor: Actor, now: datetime
) -> Booking:
    """The booking of an audited application (InvalidInput for a level without audits)."""
    policy = registry.for_subject(session, app).policy
    rule = audits.rule_for(policy, app)
    assert app.id is not None
    row = audits.current(session, app.id)
    open_now = app.state in rule.states
    staff_may = actor.role in rule.confirmed_by and (
        actor.role == "admin" or actor.id == app.assessor_id
    )
    return Booking(
        policy=policy,
        app=app,
        proposed=row.days if row else [],
        status=row.status if row else "none",
        start=audits.start_day(policy, app),
        earliest=audits.earliest(policy, rule, now),
        lead_working_days=rule.lead_working_days,
        proposals=rule.proposals,
        open_now=open_now,
        may_propose=open_now
        and actor.role == "applicant"
        and actor.organisation_id == app.organisation_id,
        may_confirm=open_now and staff_may and row is not None,
        rounds=len(audits.rounds(session, app.id)),
    )


def audited(session: Session, registry: SchemeRegistry, app: Application) -> bool:
    """Whether the application's level books an audit."""
    return registry.for_subject(session, app).policy.audited(app.level)


def staff_summary(
    session: Session, registry: SchemeRegistry, app: Application
) -> dict[str, Any] | None:
    """Where an audited application's booking stands, for the scheme's staff: a sentence and
    whether a proposed date waits to be confirmed (None at a level that books no audit)."""
    policy = registry.for_subject(session, app).policy
    if not policy.audited(app.level) or app.id is None:
        return None
    day = audits.start_day(policy, app)
    if day is not None:
        return {"text": f"The audit starts on {audits.day_text(day)}.", "to_confirm": False}
    row = audits.current(session, app.id)
    if row is not None and row.days:
        n = len(row.days)
        return {
            "text": f"The organisation has proposed {n} start date{'s' if n != 1 else ''}.",
            "to_confirm": True,
        }
    return {"text": "The organisation has not proposed audit start dates yet.", "to_confirm": False}


def start_text(session: Session, registry: SchemeRegistry, app: Application) -> str:
    """'Monday 2 March 2026' once the audit start is confirmed, else ''."""
    policy = registry.for_subject(session, app).policy
    day = audits.start_day(policy, app)
    return audits.day_text(day) if day else ""


def consultation_public(
    session: Session, registry: SchemeRegistry, app: Application
) -> ConsultationPublic:
    """The consultation of an application, for staff (InvalidInput if its level consults none)."""
    policy = registry.for_subject(session, app).policy
    consultation.rule_for(policy, app)
    found = consultation.summary(session, policy, app)
    assert found is not None
    assert app.id is not None
    return ConsultationPublic(
        invited=found.invited,
        answered=found.answered,
        opens_at=found.opens_at,
        closes_at=found.closes_at,
        standards=found.standards,
        mean_rating=found.mean_rating,
        questions=[
            ConsultationQuestionPublic(
                id=q.id, text=q.text, kind=q.kind, answers=q.count, mean=q.mean, comments=q.words
            )
            for q in found.questions
        ],
        invitations=[
            InvitationPublic(
                id=row.id or 0,
                name=row.name,
                email=row.email,
                group=row.group,
                opens_at=row.opens_at,
                closes_at=row.closes_at,
                answered=row.answered_at is not None,
            )
            for row in consultation.invitations(session, app.id)
        ],
    )


def consultation_page(
    session: Session, registry: SchemeRegistry, app: Application
) -> dict[str, Any] | None:
    """The consultation's summary for the staff's case pages (None if the level consults none)."""
    policy = registry.for_subject(session, app).policy
    found = consultation.summary(session, policy, app)
    if found is None:
        return None
    assert app.id is not None
    return {
        "summary": found,
        "invitations": consultation.invitations(session, app.id),
        "groups": consultation.GROUPS,
        "ratings": consultation.RATINGS,
    }


def policy_of_invite(
    session: Session, registry: SchemeRegistry, row: consultation.ConsultationInvite
) -> Policy:
    """The policy the invitation's application runs under."""
    return registry.for_subject(session, consultation.application_of(session, row)).policy


def public_form(
    session: Session, registry: SchemeRegistry, row: consultation.ConsultationInvite
) -> dict[str, Any]:
    """What an invitee's form shows: the organisation, the scheme, the questions, the close."""
    app = consultation.application_of(session, row)
    policy = registry.for_subject(session, app).policy
    return {
        "organisation": accounts.organisation_names(session, [app.organisation_id]).get(
            app.organisation_id, "the organisation"
        ),
        "scheme": policy.name,
        "level": policy.level(app.level).name,
        "questions": policy.consultation.questions if policy.consultation else [],
        "ratings": consultation.RATINGS,
        "closes": row.closes_at,
        "invitee": row.name,
    }
