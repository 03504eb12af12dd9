"""The application workflow read as a route to an award, and when in the day people act."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta

from svqm.policy import Policy, TransitionDef

UNREACHABLE = 1 << 20
PEOPLE = ("applicant", "assessor", "panel", "admin")


class Route:
    """Each move's cost to an award (0 for one that runs `issue_award`), and whose turn it is.

    Nothing here names a scheme's states or triggers: in each state the person with the cheapest
    move on takes the next turn, and tries their moves cheapest first, as the guards allow.
    """

    def __init__(self, policy: Policy) -> None:
        self.workflow = policy.workflows.application
        self.dist = {s.name: UNREACHABLE for s in self.workflow.states}
        for _ in self.workflow.states:  # Bellman-Ford over a handful of states
            for t in self.workflow.transitions:
                for source in t.source:
                    self.dist[source] = min(self.dist[source], self.cost(t))

    def cost(self, t: TransitionDef) -> int:
        return 0 if "issue_award" in t.effects else min(UNREACHABLE, 1 + self.dist[t.dest])

    def moves(self, state: str, role: str) -> list[TransitionDef]:
        """The role's moves from `state`, cheapest first (policy order on ties)."""
        found = [t for t in self.workflow.transitions if state in t.source and role in t.roles]
        return sorted(found, key=self.cost)

    def role_for(self, state: str) -> str | None:
        """Whose turn it is: the person with the cheapest move on towards an award, if any."""
        best = min(
            (
                (self.cost(t), i, role)
                for i, t in enumerate(self.workflow.transitions)
                if state in t.source
                for role in t.roles
                if role in PEOPLE
            ),
            default=None,
        )
        return best[2] if best is not None and best[0] < UNREACHABLE else None

    def hand_back(self, state: str) -> TransitionDef | None:
        """The assessor's move that hands the application back for more (to an editable state)."""
        return next(
            (
                t
                for t in self.workflow.transitions
                if state in t.source
                and "assessor" in t.roles
                and self.workflow.state(t.dest).editable
                and self.cost(t) < UNREACHABLE
            ),
            None,
        )

    def editable(self, state: str) -> bool:
        return self.workflow.state(state).editable


def at_work(day: datetime, rng: random.Random) -> datetime:
    """A moment in working hours (09:00 to 17:00 UTC) on `day`'s date."""
    start = datetime.combine(day.date(), time(9, 0), tzinfo=day.tzinfo)
    return start + timedelta(minutes=rng.randrange(480))
