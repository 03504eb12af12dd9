"""JSON: an application's audit booking (proposed dates, the confirmed start) and its
stakeholder consultation (staff only: invitations and what the answers say)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlmodel import Session

from svqm.accounts.models import User
from svqm.errors import NotFound
from svqm.notify import consultation as consultation_mail
from svqm.web.deps import ApiUser, Id, NowDep, RegistryDep, SessionDep, actor_of
from svqm.web.schemas import (
    AuditBookingPublic,
    AuditConfirmRequest,
    AuditDatesRequest,
    ConsultationPublic,
    InvitationsRequest,
)
from svqm.web.views import audits as views
from svqm.workflow import audits, consultation, queries
from svqm.workflow.models import Application
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor

router = APIRouter(prefix="/api/v1/applications", tags=["audits"])


@router.get("/{application_id}/audit-dates")
def read_audit_dates(
    application_id: Id, user: ApiUser, session: SessionDep, registry: RegistryDep, now: NowDep
) -> AuditBookingPublic:
    """The proposed start dates, the confirmed one, and the earliest date that may be proposed."""
    actor = actor_of(user)
    app = queries.get_application(session, application_id, actor, registry=registry)
    return views.booking(session, registry, app, actor, now).public()


@router.post("/{application_id}/audit-dates", status_code=status.HTTP_201_CREATED)
def propose_audit_dates(
    application_id: Id,
    body: AuditDatesRequest,
    user: ApiUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    response: Response,
) -> AuditBookingPublic:
    """The applicant proposes the policy's number of start dates, each at least the lead time
    ahead in working days (422 naming each date too soon or not a working day)."""
    actor = actor_of(user)
    app = queries.get_application(session, application_id, actor, registry=registry)
    audits.propose(
        session,
        app,
        body.dates,
        actor=actor,
        registry=registry,
        now=now,
        expected_version=body.version,
    )
    response.headers["Location"] = f"/api/v1/applications/{application_id}/audit-dates"
    return views.booking(session, registry, app, actor, now).public()


@router.post("/{application_id}/audit-dates/confirm")
def confirm_audit_date(
    application_id: Id,
    body: AuditConfirmRequest,
    user: ApiUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
) -> AuditBookingPublic:
    """The assigned assessor or an admin confirms one of the proposed dates; confirming another
    later moves the audit (an audit event with both dates)."""
    actor = actor_of(user)
    app = queries.get_application(session, application_id, actor, registry=registry)
    audits.confirm(
        session,
        app,
        body.day,
        actor=actor,
        registry=registry,
        now=now,
        comment=body.comment,
        expected_version=body.version,
    )
    return views.booking(session, registry, app, actor, now).public()


def _staff_case(
    session: Session, application_id: int, user: User, registry: SchemeRegistry
) -> tuple[Actor, Application]:
    """The application, for staff only: an applicant is told it is not found."""
    actor = actor_of(user)
    app = queries.get_application(session, application_id, actor, registry=registry)
    if actor.role == "applicant":
        raise NotFound("no such consultation")
    return actor, app


@router.get("/{application_id}/consultation")
def read_consultation(
    application_id: Id, user: ApiUser, session: SessionDep, registry: RegistryDep
) -> ConsultationPublic:
    """Staff only: the invitations and the answers summed up (the applicant never sees them)."""
    _actor, app = _staff_case(session, application_id, user, registry)
    return views.consultation_public(session, registry, app)


@router.post("/{application_id}/consultation/invitations", status_code=status.HTTP_201_CREATED)
def invite_stakeholders(
    application_id: Id,
    body: InvitationsRequest,
    user: ApiUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
) -> ConsultationPublic:
    """The assessor or an admin invites stakeholders; each gets an email with a link of their
    own (once the audit start is confirmed; the form opens after it)."""
    actor, app = _staff_case(session, application_id, user, registry)
    policy = registry.for_subject(session, app).policy
    made = consultation.invite(
        session,
        policy,
        app,
        [consultation.Invitee(p.name, p.email, p.group) for p in body.invitees],
        actor_role=actor.role,
        actor_id=actor.id,
        now=now,
    )
    consultation_mail.send_invitations(session, policy, app, made, now=now)
    return views.consultation_public(session, registry, app)
