"""What every simulated person shares: the scheme, the services' stores, chance and the calendar."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session

from svqm.evidence.storage import BlobStore
from svqm.policy import Level
from svqm.simulate.route import Route, at_work
from svqm.simulate.world import Member
from svqm.workflow import reports
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor

# (member, when, task, subject id, argument): puts a task on the calendar.
Later = Callable[[Member, datetime, str, int, str], None]


class Cast:
    """The shared state of the simulated people; `People` adds what each of them does."""

    def __init__(
        self,
        registry: SchemeRegistry,
        scheme_id: str,
        store: BlobStore,
        staff: dict[str, list[Actor]],
        rng: random.Random,
        later: Later,
    ) -> None:
        self.registry, self.store, self.staff, self.rng = registry, store, staff, rng
        self._later = later
        self.policy = registry.get(scheme_id).policy
        self.route = Route(self.policy)
        award_flow = self.policy.workflows.award
        self.in_force = {s.name for s in award_flow.states if s.in_force}
        # States from which a new award supersedes this one (the policy's `supersede` trigger).
        self.renewable = award_flow.leaves(award_flow.supersede) if award_flow.supersede else set()
        self.filings = reports.filing_deadlines(self.policy)
        # Each organisation's delivery against its targets (drawn once, when it first reports).
        self._delivery: dict[int, float] = {}
        self._planned: set[tuple[int, str]] = set()  # (award id, deadline kind) to be filed
        self.actions = 0
        self.refused: Counter[str] = Counter()
        # Applications withdrawn because the award they build on lapsed under them.
        self.abandoned = 0

    @property
    def first_level(self) -> Level:
        return min(self.policy.levels, key=lambda lv: lv.rank)

    def next_level(self, level_id: str) -> Level | None:
        rank = self.policy.level(level_id).rank
        higher = [lv for lv in self.policy.levels if lv.rank > rank]
        return min(higher, key=lambda lv: lv.rank) if higher else None

    def later(
        self,
        m: Member,
        now: datetime,
        days: tuple[float, float],
        task: str,
        sid: int = 0,
        arg: str = "",
    ) -> None:
        """Put a task on the calendar some days on, in working hours."""
        self.at(m, now + timedelta(days=self.rng.uniform(*days)), task, sid, arg, after=now)

    def at(
        self, m: Member, day: datetime, task: str, sid: int, arg: str, *, after: datetime
    ) -> None:
        """Put a task on the calendar on `day`, in working hours, and never before `after`."""
        self._later(m, max(at_work(day, self.rng), after + timedelta(hours=1)), task, sid, arg)

    def _apply(self, session: Session, m: Member, sid: int, level_id: str, now: datetime) -> bool:
        raise NotImplementedError
