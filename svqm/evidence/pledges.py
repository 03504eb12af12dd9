"""Pledges: create and list them, and judge a level's pledge rule with every unmet reason."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, col, select

from svqm.errors import InvalidInput
from svqm.evidence.models import Pledge, PledgeCreate
from svqm.policy import Policy
from svqm.policy.models import PledgeRule


def create_pledge(
    session: Session,
    *,
    application_id: int,
    data: PledgeCreate,
    policy: Policy,
    created_by_id: int | None,
    today: date,
) -> Pledge:
    """Add a pledge under one of the scheme's themes."""
    theme = policy.theme(data.theme)
    if theme is None:
        known = ", ".join(t.id for t in policy.themes)
        raise InvalidInput(
            f"theme '{data.theme}' is not a theme of this scheme (themes: {known})", field="theme"
        )
    if data.due_date <= today:
        raise InvalidInput(
            f"a pledge's due date must be in the future (got {data.due_date})", field="due_date"
        )
    pledge = Pledge(application_id=application_id, created_by_id=created_by_id, **data.model_dump())
    session.add(pledge)
    session.flush()
    return pledge


def list_pledges(session: Session, application_id: int) -> list[Pledge]:
    """An application's pledges, oldest first."""
    return list(
        session.exec(
            select(Pledge).where(Pledge.application_id == application_id).order_by(col(Pledge.id))
        )
    )


def pledge_rule_unmet(pledges: list[Pledge], rule: PledgeRule | None, policy: Policy) -> list[str]:
    """Why the pledges fall short of the level's rule; empty when they meet it."""
    if rule is None:
        return []
    mandatory = {t.id for t in policy.themes if t.mandatory}
    counted = [p for p in pledges if rule.themes == "any" or p.theme in mandatory]
    scope = "on the mandatory themes " if rule.themes == "mandatory" else ""
    unmet = []
    if len(counted) < rule.min_pledges:
        unmet.append(
            f"at least {rule.min_pledges} pledges {scope}are needed; {len(counted)} made so far"
        )
    themes = {p.theme for p in counted}
    if len(themes) < rule.min_distinct_themes:
        missing = [
            t.name
            for t in policy.themes
            if t.id not in themes and (rule.themes == "any" or t.id in mandatory)
        ]
        unmet.append(
            f"pledges under at least {rule.min_distinct_themes} different themes "
            f"{scope}are needed; {len(themes)} covered so far "
            f"(not yet covered: {', '.join(missing)})"
        )
    return unmet
