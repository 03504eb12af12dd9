"""What a group's people read: each member organisation's applications, awards and next
deadlines, side by side."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from svqm.accounts import service as accounts
from svqm.web.views.applicant import Dashboard, dashboard
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor


@dataclass(frozen=True)
class Member:
    organisation_id: int
    name: str
    sector: str
    region: str
    board: Dashboard


@dataclass(frozen=True)
class Group:
    name: str
    region: str
    members: list[Member]


def group_view(session: Session, registry: SchemeRegistry, actor: Actor, now: datetime) -> Group:
    """The acting organisation's member organisations, each read as its own dashboard would be
    (as an applicant of that organisation: only reading, the caller is one of the group's)."""
    org = accounts.get_organisation(session, actor.organisation_id)
    members = []
    for member in accounts.group_members(session, actor.organisation_id):
        as_member = Actor(actor.id, "applicant", member.id)
        members.append(
            Member(
                member.id or 0,
                member.name,
                member.sector,
                member.region,
                dashboard(session, registry, as_member, now),
            )
        )
    return Group(org.name if org else "", org.region if org else "", members)
