"""An organisation's own charter as the API and the pages read it: the working copy for its own
people, the published revision for everyone else (only pledges already public are named there)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from svqm.accounts import service as accounts
from svqm.evidence import charter as charter_reads
from svqm.evidence.charter import CharterText
from svqm.policy.charter import CharterRules
from svqm.web.format import day
from svqm.web.schemas import (
    CharterEntry,
    CharterPillarPublic,
    CharterPriorityPublic,
    CharterPublic,
)
from svqm.workflow import commitments
from svqm.workflow.schemes import SchemeRegistry


def _empty(organisation_id: int) -> CharterText:
    return CharterText(organisation_id, 0, 0, None, None, {}, [])


def public_pledges(
    session: Session, registry: SchemeRegistry, organisation_id: int, now: datetime
) -> dict[int, str]:
    """The organisation's pledges the public may read (held by an award in force), by id."""
    awards = commitments.in_force(session, registry, organisation_id, now)
    return {p.id: p.title for p in commitments.award_pledges(session, awards)}


def as_public(
    rules: CharterRules, text: CharterText, *, shown_pledges: set[int] | None = None
) -> CharterPublic:
    """The API's body; `shown_pledges` limits the priorities' pledges (None: all of them)."""
    pillars = []
    for p in rules.pillars:
        c = text.pillars.get(p.id) or {}
        pillars.append(
            CharterPillarPublic(
                id=p.id,
                name=p.name,
                public_name=p.public_name,
                content=p.content,
                entries=[CharterEntry(**e) for e in c.get("entries", [])],
                text=c.get("text", ""),
                statements=dict(c.get("statements", {})),
                items=list(c.get("items", [])),
            )
        )
    return CharterPublic(
        organisation_id=text.organisation_id,
        name=rules.name,
        version=text.version,
        revision=text.revision,
        published=text.published_at is not None,
        published_revision=text.published_revision,
        published_at=text.published_at,
        updated_at=text.updated_at,
        pillars=pillars,
        priorities=[
            CharterPriorityPublic(
                title=q.title,
                target=q.target,
                outcome=q.outcome,
                target_date=q.target_date,
                pledge_ids=[i for i in q.pledge_ids if shown_pledges is None or i in shown_pledges],
            )
            for q in text.priorities
        ],
    )


def working_copy(session: Session, organisation_id: int) -> CharterText:
    """The organisation's working copy (an empty one, version 0, before it is first written)."""
    found = charter_reads.read_charter(session, organisation_id, published=False)
    return found or _empty(organisation_id)


def published(session: Session, organisation_id: int) -> CharterText | None:
    return charter_reads.read_charter(session, organisation_id, published=True)


@dataclass(frozen=True)
class CharterShown:
    """A charter laid out for a page: its pillars as summary rows, its priorities with pledges."""

    name: str
    revision: int
    published_at: str
    pillars: list[dict[str, Any]]
    priorities: list[dict[str, Any]]


def shown(
    rules: CharterRules,
    text: CharterText,
    pledge_titles: dict[int, str],
    *,
    pledge_href: str = "",
) -> CharterShown:
    """The charter as pages show it; a priority names only the pledges in `pledge_titles`, each
    linked to `pledge_href` + '#pledge-<id>' when `pledge_href` is given."""
    pillars = []
    for p in rules.pillars:
        c = text.pillars.get(p.id) or {}
        rows: list[dict[str, str]] = []
        if p.content == "collaborators":
            rows = [
                {"key": e["name"], "value": (p.kind(e.get("kind", "")) or p.kinds[0]).name}
                for e in c.get("entries", [])
            ]
        elif p.content == "leads":
            rows = [{"key": e["name"], "value": e.get("role", "")} for e in c.get("entries", [])]
        elif p.content == "statements":
            rows = [
                {"key": f.name, "value": (c.get("statements") or {}).get(f.id, "")}
                for f in p.fields
                if (c.get("statements") or {}).get(f.id)
            ]
        pillars.append(
            {
                "id": p.id,
                "name": p.name,
                "public_name": p.public_name,
                "hint": p.hint,
                "content": p.content,
                "rows": rows,
                "text_label": p.text_label,
                "public_text_label": p.public_text_label,
                "text": c.get("text", ""),
                "items": list(c.get("items", [])),
                "empty": not (rows or c.get("items") or c.get("text")),
            }
        )
    priorities = [
        {
            "title": q.title,
            "target": q.target,
            "outcome": q.outcome,
            "by": day(q.target_date) if q.target_date else "",
            "pledges": [
                {
                    "id": i,
                    "title": pledge_titles[i],
                    "href": f"{pledge_href}#pledge-{i}" if pledge_href else "",
                }
                for i in q.pledge_ids
                if i in pledge_titles
            ],
        }
        for q in text.priorities
    ]
    return CharterShown(
        name=rules.name,
        revision=text.revision,
        published_at=day(text.published_at) if text.published_at else "",
        pillars=pillars,
        priorities=priorities,
    )


def organisation_name(session: Session, organisation_id: int) -> str:
    return accounts.organisation_name(session, organisation_id)


def holds_award(
    session: Session, registry: SchemeRegistry, organisation_id: int, now: datetime
) -> bool:
    """Whether the organisation's public page exists (it holds an award in force)."""
    return bool(commitments.in_force(session, registry, organisation_id, now))


def published_charter(
    session: Session,
    registry: SchemeRegistry,
    rules: CharterRules,
    organisation_id: int,
    now: datetime,
) -> CharterShown | None:
    """The published charter as the organisation's public page shows it (None: none), each
    priority's public pledges linked to that page's pledge."""
    text = published(session, organisation_id)
    if text is None:
        return None
    titles = public_pledges(session, registry, organisation_id, now)
    return shown(rules, text, titles, pledge_href=f"/organisations/{organisation_id}")
