"""The admin dashboard's figures: awards, applications, open deadlines and assessors' workloads.

Each figure is one grouped query (GROUP BY in the database, never a row per subject read), then
named in words from the schemes' policies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, true
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from svqm.accounts.models import Organisation, User
from svqm.policy import Policy
from svqm.workflow.models import Application, Award
from svqm.workflow.schedule import OPEN, ScheduledDeadline
from svqm.workflow.schemes import SchemeRegistry

# The deadline horizons the dashboard counts open deadlines within.
SOON_DAYS = 7
MONTH_DAYS = 30


@dataclass(frozen=True)
class LevelCount:
    scheme: str
    scheme_name: str
    level: str
    level_name: str
    rank: int
    in_force: int
    total: int


@dataclass(frozen=True)
class StateCount:
    state: str
    title: str
    count: int


@dataclass(frozen=True)
class DeadlineCount:
    """Open deadlines of one kind in one scheme, by how soon they fall due."""

    scheme: str
    scheme_name: str
    kind: str
    label: str
    overdue: int
    soon: int  # due within SOON_DAYS
    month: int  # due after SOON_DAYS, within MONTH_DAYS
    later: int

    @property
    def total(self) -> int:
        return self.overdue + self.soon + self.month + self.later


@dataclass(frozen=True)
class Workload:
    assessor_id: int
    name: str
    active: bool
    open: int  # assigned applications not in a terminal state
    reviewable: int  # of those, in a state where the assessor reviews and scores


def _policy(registry: SchemeRegistry, scheme: str) -> Policy | None:
    found = registry.current.get(scheme)
    return found.policy if found is not None else None


def _in_region(column: Any, region: str | None) -> ColumnElement[bool]:
    """Rows of organisations in this region (every row when none is given)."""
    if not region:
        return true()
    return col(column).in_(select(Organisation.id).where(Organisation.region == region))


def awards_by_scheme_and_level(
    session: Session, registry: SchemeRegistry, region: str | None = None
) -> list[LevelCount]:
    """Awards of each scheme and level: those in force, and all of them; by scheme, then rank."""
    rows = session.exec(
        select(Award.scheme, Award.level, Award.state, func.count())
        .where(_in_region(Award.organisation_id, region))
        .group_by(col(Award.scheme), col(Award.level), col(Award.state))
    ).all()
    totals: dict[tuple[str, str], list[int]] = {}
    for scheme, level, state, n in rows:
        policy = _policy(registry, scheme)
        states = {s.name: s for s in policy.workflows.award.states} if policy else {}
        pair = totals.setdefault((scheme, level), [0, 0])
        pair[0] += n if state in states and states[state].in_force else 0
        pair[1] += n
    found = []
    for (scheme, level), (in_force, total) in totals.items():
        policy = _policy(registry, scheme)
        lv = next((lv for lv in policy.levels if lv.id == level), None) if policy else None
        found.append(
            LevelCount(
                scheme=scheme,
                scheme_name=policy.name if policy else scheme,
                level=level,
                level_name=lv.name if lv else level,
                rank=lv.rank if lv else 0,
                in_force=in_force,
                total=total,
            )
        )
    return sorted(found, key=lambda c: (c.scheme_name, c.rank, c.level))


def applications_by_state(
    session: Session, registry: SchemeRegistry, region: str | None = None
) -> list[StateCount]:
    """Applications in each state, in the order the workflows list their states.

    A state is named as the schemes with applications in it name it; where their labels differ
    (one scheme's "draft" is another's "Completing the assessment") by its plain name.
    """
    rows = session.exec(
        select(Application.scheme, Application.state, func.count())
        .where(_in_region(Application.organisation_id, region))
        .group_by(col(Application.scheme), col(Application.state))
    ).all()
    counts: dict[str, int] = {}
    titles: dict[str, set[str]] = {}
    places: dict[str, int] = {}
    for scheme, state, n in rows:
        counts[state] = counts.get(state, 0) + int(n)
        policy = _policy(registry, scheme)
        states = policy.workflows.application.states if policy else []
        place = next(((i, st) for i, st in enumerate(states) if st.name == state), None)
        if place is not None:
            titles.setdefault(state, set()).add(place[1].title)
            places[state] = min(places.get(state, place[0]), place[0])
    found = []
    for st in sorted(counts, key=lambda st: (places.get(st, len(places) + 1), st)):
        named = titles.get(st, set())
        title = next(iter(named)) if len(named) == 1 else st.replace("_", " ").capitalize()
        found.append(StateCount(st, title, counts[st]))
    return found


def open_deadlines(
    session: Session, registry: SchemeRegistry, now: datetime, region: str | None = None
) -> list[DeadlineCount]:
    """Open deadlines of each scheme and kind: overdue, due soon, due this month, and later."""
    due = col(ScheduledDeadline.due_at)
    soon, month = now + timedelta(days=SOON_DAYS), now + timedelta(days=MONTH_DAYS)

    def within(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.sum(case((condition, 1), else_=0))

    rows = session.execute(
        sa_select(
            col(ScheduledDeadline.scheme),
            col(ScheduledDeadline.kind),
            within(due <= now),
            within(and_(due > now, due <= soon)),
            within(and_(due > soon, due <= month)),
            within(due > month),
        )
        .where(
            col(ScheduledDeadline.status) == OPEN,
            _in_region(ScheduledDeadline.organisation_id, region),
        )
        .group_by(col(ScheduledDeadline.scheme), col(ScheduledDeadline.kind))
    ).all()
    found = []
    for scheme, kind, overdue, in_soon, in_month, later in rows:
        policy = _policy(registry, scheme)
        deadline = policy.deadline(kind) if policy else None
        found.append(
            DeadlineCount(
                scheme=scheme,
                scheme_name=policy.name if policy else scheme,
                kind=kind,
                label=deadline.label if deadline else kind,
                overdue=int(overdue or 0),
                soon=int(in_soon or 0),
                month=int(in_month or 0),
                later=int(later or 0),
            )
        )
    return sorted(found, key=lambda d: (-d.overdue, d.scheme_name, d.label))


def assessor_workload(session: Session, registry: SchemeRegistry) -> list[Workload]:
    """Each assessor's open applications (not in a terminal state); busiest first.

    Every active assessor is listed, with none if need be; a disabled one only while applications
    are still assigned to them (they need reassigning).
    """
    rows = session.exec(
        select(Application.assessor_id, Application.scheme, Application.state, func.count())
        .where(col(Application.assessor_id).is_not(None))
        .group_by(col(Application.assessor_id), col(Application.scheme), col(Application.state))
    ).all()
    open_by: dict[int, list[int]] = {}
    for assessor_id, scheme, state, n in rows:
        if assessor_id is None:
            continue
        policy = _policy(registry, scheme)
        states = {s.name: s for s in policy.workflows.application.states} if policy else {}
        st = states.get(state)
        if st is not None and st.terminal:
            continue
        counts = open_by.setdefault(assessor_id, [0, 0])
        counts[0] += n
        counts[1] += n if st is not None and st.reviewable else 0
    people = session.exec(
        select(User.id, User.name, User.email, User.active).where(
            or_(col(User.role) == "assessor", col(User.id).in_(list(open_by)))
        )
    ).all()
    found = []
    for user_id, name, email, active in people:
        if user_id is None:
            continue
        n_open, n_review = open_by.get(user_id, [0, 0])
        if active or n_open:
            found.append(Workload(user_id, name or email, bool(active), n_open, n_review))
    return sorted(found, key=lambda w: (-w.open, w.name.casefold(), w.assessor_id))
