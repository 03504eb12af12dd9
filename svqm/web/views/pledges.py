"""What the applicant reads about one pledge of its application: the form to change it, and its
revisions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from svqm.errors import Conflict, NotFound
from svqm.evidence import pledges as pledge_service
from svqm.evidence.models import Pledge
from svqm.evidence.pledges import figure, number
from svqm.web.format import day, moment
from svqm.workflow.models import Application
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor

# What the application does with a pledge, in words.
DISPOSITIONS = {
    "made": "Made in this application",
    "carried": "Carried from your award",
    "revised": "Carried from your award, revised",
    "retired": "Retired in this application",
}
# The same, for staff reading the application: the award is the organisation's, not theirs.
STAFF_DISPOSITIONS = {
    **DISPOSITIONS,
    "carried": "Carried from the award in force",
    "revised": "Carried from the award in force, revised",
}
_CHANGES = {
    "made": "Made",
    "revised": "Revised",
    "carried": "Carried",
    "retired": "Retired",
    "withdrawn": "Withdrawn",
}


def form_of(pledge: Pledge) -> dict[str, str]:
    """The pledge as the form shows it."""
    return {
        "theme": pledge.theme,
        "title": pledge.title,
        "description": pledge.description,
        "indicator": pledge.indicator,
        "unit": pledge.unit,
        "baseline": number(pledge.baseline).replace(",", ""),
        "target": pledge.target,
        "day": str(pledge.due_date.day),
        "month": str(pledge.due_date.month),
        "year": str(pledge.due_date.year),
    }


@dataclass(frozen=True)
class PledgePage:
    pledge_id: int
    title: str
    disposition: str
    withdraw_label: str
    themes: list[dict[str, Any]]
    revisions: list[dict[str, str]]


def pledge_page(
    session: Session,
    registry: SchemeRegistry,
    app: Application,
    pledge_id: int,
    actor: Actor,
    *,
    theme: str,
) -> PledgePage:
    """One pledge the application holds, for its applicant to change; others are not found."""
    assert app.id is not None
    held = {p.id: (p, link) for p, link in pledge_service.application_pledges(session, app.id)}
    if (
        pledge_id not in held
        or actor.role != "applicant"
        or actor.organisation_id != app.organisation_id
    ):
        raise NotFound(f"no pledge {pledge_id} in application {app.id}")
    pledge, link = held[pledge_id]
    policy = registry.for_subject(session, app).policy
    state = policy.workflows.application.state(app.state)
    if not state.editable or link.disposition == "retired":
        raise Conflict(
            f"this pledge can no longer be changed here: the application is {state.title.lower()}"
            + (" and retired it" if link.disposition == "retired" else "")
        )
    themes = {t.id: t.name for t in policy.themes}
    return PledgePage(
        pledge_id=pledge_id,
        title=pledge.title,
        disposition=DISPOSITIONS.get(link.disposition, link.disposition),
        withdraw_label="Withdraw pledge" if link.disposition == "made" else "Retire pledge",
        themes=[
            {
                "value": t.id,
                "text": f"{t.name} (mandatory)" if t.mandatory else t.name,
                "selected": t.id == theme,
            }
            for t in policy.themes
        ],
        revisions=[
            {
                "when": moment(r.at),
                "what": _CHANGES.get(r.change, r.change),
                "text": f"{r.title} ({themes.get(r.theme, r.theme)}): {r.indicator}, target "
                f"{figure(r.target, r.unit)} by {day(r.due_date)}",
            }
            for r in reversed(pledge_service.revisions_of(session, pledge_id))
        ],
    )
