"""Starting an application, one question at a time: which scheme, then which of its levels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from svqm.policy import Level, Policy
from svqm.web.format import day, level_label
from svqm.web.views.applicant import rule_text
from svqm.workflow import awards as award_queries
from svqm.workflow.deadlines import add_months
from svqm.workflow.models import Award
from svqm.workflow.schemes import SchemeRegistry


@dataclass(frozen=True)
class SchemeChoice:
    id: str
    name: str
    description: str
    levels: str


@dataclass(frozen=True)
class LevelChoice:
    id: str
    label: str
    needs: list[str]
    holds: str
    ready: bool


def scheme_choices(registry: SchemeRegistry) -> list[SchemeChoice]:
    """Every scheme open for applications, with its description and its levels named."""
    return [
        SchemeChoice(
            id=sid,
            name=s.policy.name,
            description=s.policy.description.strip(),
            levels=", ".join(lv.name for lv in s.policy.levels),
        )
        for sid, s in sorted(registry.current.items())
    ]


def _in_force(policy: Policy, awards: list[Award]) -> list[Award]:
    states = {s.name for s in policy.workflows.award.states if s.in_force}
    return [a for a in awards if a.scheme == policy.id and a.state in states]


def _needs(policy: Policy, level: Level) -> list[str]:
    needs = [rule_text(policy, level)]
    if level.requires is not None:
        held = (
            f" for at least {level.requires.held_months} months"
            if level.requires.held_months
            else ""
        )
        needs.append(f"A {policy.level(level.requires.level).name} award held{held}.")
    titles = [r.title for r in policy.evidence_requirements if r.id in level.evidence]
    if titles:
        needs.append("Evidence: " + "; ".join(titles) + ".")
    if level.standards:
        names = ", ".join(policy.standard(s).name for s in level.standards)
        needs.append(f"Assessed against the standards: {names}.")
    return needs


def _ready(policy: Policy, level: Level, held: list[Award], now: datetime) -> bool:
    """Whether the level's prerequisite is met now (the same rule as the guard)."""
    need = level.requires
    if need is None:
        return True
    ranks = {lv.id: lv.rank for lv in policy.levels}
    required = policy.level(need.level).rank
    return any(
        ranks.get(a.level, 0) > required
        or (ranks.get(a.level, 0) == required and add_months(a.issued_at, need.held_months) <= now)
        for a in held
    )


def level_choices(
    session: Session, policy: Policy, organisation_id: int, now: datetime
) -> tuple[list[LevelChoice], list[str]]:
    """The scheme's levels, each with what it needs; and what the organisation holds already."""
    held = _in_force(policy, award_queries.organisation_awards(session, organisation_id))
    holds = [f"{level_label(policy.level(a.level))} since {day(a.issued_at)}" for a in held]
    choices = []
    for level in policy.levels:
        ready = _ready(policy, level, held, now)
        mine = [a for a in held if a.level == level.id]
        choices.append(
            LevelChoice(
                id=level.id,
                label=level_label(level),
                needs=_needs(policy, level),
                holds=f"Your organisation holds this level until {day(mine[0].expires_at)}."
                if mine
                else (
                    "" if ready else "Your organisation does not hold what this level needs yet."
                ),
                ready=ready,
            )
        )
    return choices, holds
