"""The consultation's emails: each stakeholder's invitation, and reminders before it closes.

Every email carries a link of its own (a fresh token; svqm.workflow.consultation keeps only its
hash), so a reminder works even if the invitation was lost. The reminder pass runs in the sweep.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from svqm.accounts.models import Organisation
from svqm.notify import outbox
from svqm.notify.recipients import due_text
from svqm.policy import Policy
from svqm.workflow import consultation
from svqm.workflow.consultation import ConsultationInvite
from svqm.workflow.models import Application
from svqm.workflow.schemes import SchemeRegistry

_UK = ZoneInfo("Europe/London")


def form_path(token: str) -> str:
    """Where an invitee answers (no sign-in: the token is the key)."""
    return f"/consultation/{token}"


def _context(
    session: Session, policy: Policy, app: Application, row: ConsultationInvite, token: str
) -> dict[str, object]:
    org = session.get(Organisation, app.organisation_id)
    closes = row.closes_at.astimezone(_UK)
    return {
        "names": [row.name] if row.name else [],
        "organisation": org.name if org else "an organisation",
        "scheme": policy.name,
        "contact": policy.contact,
        "level": policy.level(app.level).name,
        "opens_text": due_text(row.opens_at),
        "closes_text": due_text(row.closes_at),
        "closes_day": f"{closes:%A} {closes.day} {closes:%B %Y}",
        "questions": len(policy.consultation.questions) if policy.consultation else 0,
        "path": form_path(token),
    }


def send_invitations(
    session: Session,
    policy: Policy,
    app: Application,
    made: Sequence[tuple[ConsultationInvite, str]],
    *,
    now: datetime,
) -> None:
    """Queue each invitation's email (once: its key is the invitation)."""
    rows = [
        outbox.message(
            key=f"consultation:{row.id}:invite",
            template="consultation_invite",
            context=_context(session, policy, app, row, token),
            to_addrs=[row.email],
            now=now,
            organisation_id=app.organisation_id,
        )
        for row, token in made
    ]
    outbox.enqueue_many(session, rows)


def remind(session: Session, registry: SchemeRegistry, now: datetime) -> int:
    """Remind every unanswered invitee whose reminder has come; how many were reminded."""
    sent = 0
    for row in consultation.due_reminders(session, now):
        app = session.get(Application, row.application_id)
        if app is None:
            row.remind_at = None
            continue
        rule = registry.for_subject(session, app).policy.consultation
        if rule is None:
            row.remind_at = None
            continue
        days = consultation.reminder_due(rule, row, now)
        session.add(row)
        if days is None:
            continue
        policy = registry.for_subject(session, app).policy
        token = consultation.new_token(session, row, now)
        added = outbox.enqueue(
            session,
            key=f"consultation:{row.id}:remind:{days}",
            template="consultation_reminder",
            context={**_context(session, policy, app, row, token), "days_before": days},
            to_addrs=[row.email],
            now=now,
            organisation_id=app.organisation_id,
        )
        sent += int(added)
    session.flush()
    return sent
