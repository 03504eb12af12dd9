"""An organisation's public commitments: its awards in force and the pledges they hold, as awarded,
with the figures reported against them that an assessor accepted.

Only what was awarded is public: a pledge made or revised in an application still being prepared
is read as it stood in the awarded application (its revisions keep that), withdrawn and retired
pledges are not shown, and nothing of a report's files or private narrative is read here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import Session, col, select

from svqm.accounts.models import Organisation
from svqm.errors import NotFound
from svqm.evidence import pledges as pledge_service
from svqm.evidence.models import PledgeRevision
from svqm.workflow import awards as award_queries
from svqm.workflow.models import Application, Award
from svqm.workflow.progress import accepted_figures
from svqm.workflow.schemes import SchemeRegistry


@dataclass(frozen=True)
class Progress:
    period: str
    actual: float


@dataclass(frozen=True)
class PublicPledge:
    """A pledge as awarded: what the public may read of it."""

    id: int
    theme: str
    title: str
    indicator: str
    unit: str
    baseline: float | None
    target: str
    target_value: float | None
    due_date: date
    progress: list[Progress] = field(default_factory=list)

    @property
    def latest(self) -> Progress | None:
        return self.progress[-1] if self.progress else None


@dataclass(frozen=True)
class Commitments:
    organisation: Organisation
    awards: list[Award]
    pledges: list[PublicPledge]


def _as_awarded(
    session: Session, pledge_ids: list[int], awarded: set[int]
) -> dict[int, PledgeRevision]:
    """Each pledge's latest revision made in an awarded application."""
    latest: dict[int, PledgeRevision] = {}
    rows = session.exec(
        select(PledgeRevision)
        .where(
            col(PledgeRevision.pledge_id).in_(pledge_ids),
            col(PledgeRevision.application_id).in_(awarded),
        )
        .order_by(col(PledgeRevision.revision))
    )
    for r in rows:
        if r.change in ("made", "revised", "carried"):
            latest[r.pledge_id] = r
    return latest


def accepted_progress(
    session: Session, pledge_ids: Iterable[int], organisations: Iterable[int] | None = None
) -> dict[int, list[Progress]]:
    """The figures reported for each pledge that an assessor accepted, oldest period first
    (`organisations`: on these organisations' awards only)."""
    return {
        pid: [Progress(period, actual) for period, actual in rows]
        for pid, rows in accepted_figures(session, list(pledge_ids), organisations).items()
    }


def award_pledges(session: Session, awards: list[Award]) -> list[PublicPledge]:
    """The pledges these awards hold, each once, as awarded, with accepted progress."""
    held = pledge_service.held_by(session, [a.application_id for a in awards])
    if not held:
        return []
    owners = {a.organisation_id for a in awards}
    awarded = set(
        session.exec(select(Award.application_id).where(col(Award.organisation_id).in_(owners)))
    )
    # A member's award of a group's application holds pledges made (and revised) there.
    awarded |= {
        gid
        for gid in session.exec(
            select(Application.group_application_id).where(col(Application.id).in_(awarded))
        )
        if gid is not None
    }
    ids = [p.id for p in held if p.id is not None]
    revisions = _as_awarded(session, ids, awarded)
    # A group's shared pledge is held by each member's award: each reads its own figures.
    progress = accepted_progress(session, ids, owners)
    out = []
    for pid in ids:
        r = revisions.get(pid)
        if r is None:
            continue
        out.append(
            PublicPledge(
                id=pid,
                theme=r.theme,
                title=r.title,
                indicator=r.indicator,
                unit=r.unit,
                baseline=r.baseline,
                target=r.target,
                target_value=pledge_service.target_number(r.target),
                due_date=r.due_date,
                progress=progress.get(pid, []),
            )
        )
    return out


def in_force(
    session: Session, registry: SchemeRegistry, organisation_id: int, now: datetime
) -> list[Award]:
    """The organisation's awards in force and in date, newest first."""
    states = award_queries.in_force_states(registry)
    return [
        a
        for a in award_queries.organisation_awards(session, organisation_id)
        if a.state in states and a.expires_at > now
    ]


def commitments(
    session: Session, registry: SchemeRegistry, organisation_id: int, now: datetime
) -> Commitments:
    """What the public may read of an organisation; NotFound when it holds no award in force.

    An organisation that holds nothing has published nothing: its page is not found, so the
    list of registered organisations cannot be read off it.
    """
    org = session.get(Organisation, organisation_id)
    awards = in_force(session, registry, organisation_id, now) if org is not None else []
    if org is None or not awards:
        raise NotFound(f"no organisation {organisation_id} with an award in force")
    return Commitments(org, awards, award_pledges(session, awards))
