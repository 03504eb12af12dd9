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
from typing import Any

from sqlalchemy import bindparam, select
from sqlmodel import Session, col

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


# Built once, with bind parameters: the public page reads each of them on every request, and
# building a statement (and its cache key) anew cost more than SQLite running it.
_REVISIONS = (
    select(
        col(PledgeRevision.pledge_id),
        col(PledgeRevision.change),
        col(PledgeRevision.theme),
        col(PledgeRevision.title),
        col(PledgeRevision.indicator),
        col(PledgeRevision.unit),
        col(PledgeRevision.baseline),
        col(PledgeRevision.target),
        col(PledgeRevision.due_date),
    )
    .where(
        col(PledgeRevision.pledge_id).in_(bindparam("pledge_ids", expanding=True)),
        col(PledgeRevision.application_id).in_(bindparam("application_ids", expanding=True)),
    )
    .order_by(col(PledgeRevision.revision))
)
_AWARDED = select(col(Award.application_id)).where(
    col(Award.organisation_id).in_(bindparam("organisation_ids", expanding=True))
)
_GROUPS = select(col(Application.group_application_id)).where(
    col(Application.id).in_(bindparam("application_ids", expanding=True))
)


def _as_awarded(session: Session, pledge_ids: list[int], awarded: set[int]) -> dict[int, Any]:
    """Each pledge's latest revision made in an awarded application (its row: the revision's
    pledge_id, change, theme, title, indicator, unit, baseline, target and due_date)."""
    latest: dict[int, Any] = {}
    if not pledge_ids or not awarded:
        return latest
    params = {"pledge_ids": pledge_ids, "application_ids": sorted(awarded)}
    for r in session.connection().execute(_REVISIONS, params):
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
    ids = pledge_service.held_ids(session, [a.application_id for a in awards])
    if not ids:
        return []
    owners = sorted({a.organisation_id for a in awards})
    conn = session.connection()  # held_ids flushed what was pending
    awarded = {i for (i,) in conn.execute(_AWARDED, {"organisation_ids": owners})}
    # A member's award of a group's application holds pledges made (and revised) there.
    if awarded:
        groups = conn.execute(_GROUPS, {"application_ids": sorted(awarded)})
        awarded |= {gid for (gid,) in groups if gid is not None}
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
