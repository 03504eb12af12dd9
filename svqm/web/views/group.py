"""What a group's people read: each member organisation's applications, awards and next
deadlines, side by side."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from svqm.accounts import service as accounts
from svqm.web.format import level_label, state_tag
from svqm.web.views.applicant import Dashboard, dashboard
from svqm.workflow import queries
from svqm.workflow.effects import members_covered
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
class GroupApplication:
    id: int
    level: str
    state: dict[str, str]
    covers: list[str]


@dataclass(frozen=True)
class Group:
    name: str
    region: str
    members: list[Member]
    applications: list[GroupApplication]


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
    names = {m.organisation_id: m.name for m in members}
    own = []
    for app in queries.list_applications(session, actor, registry=registry):
        covered = members_covered(session, app.id or 0)
        if app.organisation_id != actor.organisation_id or not covered:
            continue
        policy = registry.for_subject(session, app).policy
        own.append(
            GroupApplication(
                app.id or 0,
                f"{level_label(policy.level(app.level))}, {policy.name}",
                state_tag(policy.workflows.application, app.state),
                [names.get(c, f"Organisation {c}") for c in covered],
            )
        )
    return Group(org.name if org else "", org.region if org else "", members, own)


def level_options(registry: SchemeRegistry, chosen: str) -> list[dict[str, Any]]:
    """The level select of a group's application, grouped by scheme; a value is "scheme:level"
    (levels of different schemes share ids and aliases)."""
    return [
        {
            "group": sch.policy.name,
            "options": [
                {
                    "value": f"{sid}:{lv.id}",
                    "text": level_label(lv),
                    "selected": f"{sid}:{lv.id}" == chosen,
                }
                for lv in sch.policy.levels
            ],
        }
        for sid, sch in registry.current.items()
    ]
