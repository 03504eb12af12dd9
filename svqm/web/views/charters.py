"""A charter's public page: what its signatories commit to, who has signed, and their pledges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from svqm.accounts import service as accounts
from svqm.credentials.issuers import Issuers
from svqm.errors import NotFound
from svqm.policy import Policy
from svqm.web.format import day
from svqm.web.views.issuers import issuer_view
from svqm.workflow import awards as award_queries
from svqm.workflow import commitments
from svqm.workflow.schemes import SchemeRegistry


@dataclass(frozen=True)
class CharterPage:
    policy: Policy
    issuer: dict[str, str]
    signatories: list[dict[str, Any]]


def charter_policy(registry: SchemeRegistry, scheme_id: str) -> Policy:
    """The current policy of a scheme that is a charter; NotFound for any other."""
    policy = registry.get(scheme_id).policy
    if policy.charter is None:
        raise NotFound(f"the scheme '{scheme_id}' is not a charter")
    return policy


def charter_page(
    session: Session, registry: SchemeRegistry, issuers: Issuers, scheme_id: str, now: datetime
) -> CharterPage:
    """The charter and every organisation whose signature is in force today, by name, each with
    the pledges it signed with (as signed: public fields only)."""
    policy = charter_policy(registry, scheme_id)
    awards = award_queries.directory(session, registry, now=now, scheme=scheme_id)
    ids = {a.organisation_id for a in awards}
    places = accounts.organisation_places(session, ids)
    names = accounts.organisation_names(session, ids)
    themes = {t.id: t.name for t in policy.themes}
    latest: dict[int, Any] = {}
    for award in awards:  # newest first: an organisation's latest signature stands
        latest.setdefault(award.organisation_id, award)
    signatories = []
    for org_id, award in latest.items():
        sector, region, group = places.get(org_id, ("", "", ""))
        pledges = [
            {
                "theme": themes.get(p.theme, p.theme),
                "title": p.title,
                "target": f"{p.target} {p.unit}".strip(),
                "due": day(p.due_date),
            }
            for p in commitments.award_pledges(session, [award])
        ]
        signatories.append(
            {
                "organisation_id": org_id,
                "name": names.get(org_id, f"Organisation {org_id}"),
                "sector": sector,
                "region": region,
                "group": group,
                "since": day(award.issued_at),
                "until": day(award.expires_at),
                "award_id": award.id,
                "pledges": pledges,
            }
        )
    signatories.sort(key=lambda s: str(s["name"]).casefold())
    return CharterPage(policy, issuer_view(issuers.for_scheme(scheme_id)), signatories)
