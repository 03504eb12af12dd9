"""The email that carries an invitation to act for an organisation, through the outbox."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from svqm.accounts.models import Invitation, Organisation, User
from svqm.notify import outbox

_UK = ZoneInfo("Europe/London")
ROLE_TEXT = {"lead": "a lead (who may also invite others)", "member": "a member"}


def invitation_link(base_url: str, token: str) -> str:
    """Where the invitation is taken up."""
    return f"{base_url.rstrip('/')}/invitations/{token}"


def send_invitation(
    session: Session,
    invitation: Invitation,
    token: str,
    *,
    inviter: User,
    base_url: str,
    now: datetime,
) -> None:
    """Queue the invitation's email (once: its key is the invitation)."""
    org = session.get(Organisation, invitation.organisation_id)
    expires = invitation.expires_at.astimezone(_UK)
    outbox.enqueue(
        session,
        key=f"invitation:{invitation.id}",
        template="invitation",
        context={
            "organisation": org.name if org else "an organisation",
            "invited_by": inviter.name or inviter.email,
            "role_text": ROLE_TEXT.get(invitation.role, invitation.role),
            "expires_text": f"{expires.day} {expires:%B %Y at %H:%M} UK time",
            "link": invitation_link(base_url, token),
        },
        to_addrs=[invitation.email],
        organisation_id=invitation.organisation_id,
        now=now,
    )
