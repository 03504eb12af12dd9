"""An organisation's public commitments: its awards in force and the pledges they hold, as awarded,
with the figures reported against them that an assessor accepted.

Only what was awarded is public: a pledge made or revised in an application still being prepared
is read as it stood in the awarded application (its revisions keep that), withdrawn and retired
pledges are not shown, and nothing of a report's files or private narrative is read here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, select
from sqlmodel import Session, col

from svqm.accounts.models import Organisation
from svqm.db import PlainSelect
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


@dataclass(frozen=True, slots=True)
class PublicOrganisation:
    """What the public reads of an organisation."""

    id: int
    name: str
    sector: str
    region: str


@dataclass(frozen=True, slots=True)
class AwardInForce:
    """An award in force as its organisation's public commitments read it: the columns, not
    the row (an ORM object a request would only read)."""

    id: int
    organisation_id: int
    application_id: int
    scheme: str
    policy_digest: str
    level: str
    state: str
    certificate_number: str
    issued_at: datetime
    expires_at: datetime


class HeldBy(Protocol):
    """What `award_pledges` reads of an award: an Award row or an AwardInForce."""

    @property
    def organisation_id(self) -> int: ...
    @property
    def application_id(self) -> int: ...


@dataclass(frozen=True)
class Commitments:
    organisation: PublicOrganisation
    awards: list[AwardInForce]
    pledges: list[PublicPledge]


# Built once, with bind parameters, and read as plain tuples (PlainSelect): the public page
# reads each of them on every request, and building a statement (and its cache key) anew, or
# SQLAlchemy's execution of a built one, cost more than SQLite running it.
_ORGANISATION = PlainSelect(
    select(
        col(Organisation.id),
        col(Organisation.name),
        col(Organisation.sector),
        col(Organisation.region),
    ).where(col(Organisation.id) == bindparam("organisation_id"))
)
# As `award_queries.organisation_awards`: every award of the organisation, newest first.
_AWARDS = PlainSelect(
    select(
        col(Award.id),
        col(Award.organisation_id),
        col(Award.application_id),
        col(Award.scheme),
        col(Award.policy_digest),
        col(Award.level),
        col(Award.state),
        col(Award.certificate_number),
        col(Award.issued_at),
        col(Award.expires_at),
    )
    .where(col(Award.organisation_id) == bindparam("organisation_id"))
    .order_by(col(Award.issued_at).desc())
)
_REVISIONS = PlainSelect(
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
# The applications the owners' awards were made on, each with the group application it belongs
# to (if any): one read where there were two (the awards' applications, then their groups).
_AWARDED = PlainSelect(
    select(col(Award.application_id), col(Application.group_application_id))
    .join(Application, col(Application.id) == col(Award.application_id))
    .where(col(Award.organisation_id).in_(bindparam("organisation_ids", expanding=True)))
)


def _as_awarded(
    session: Session, pledge_ids: list[int], awarded: set[int]
) -> dict[int, tuple[Any, ...]]:
    """Each pledge's latest revision made in an awarded application (its columns: the revision's
    pledge_id, change, theme, title, indicator, unit, baseline, target and due_date)."""
    latest: dict[int, tuple[Any, ...]] = {}
    if not pledge_ids or not awarded:
        return latest
    params = {"pledge_ids": pledge_ids, "application_ids": sorted(awarded)}
    for r in _REVISIONS.rows(session.connection(), params):
        if r[1] in ("made", "revised", "carried"):
            latest[r[0]] = r
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


def award_pledges(session: Session, awards: Sequence[HeldBy]) -> list[PublicPledge]:
    """The pledges these awards hold, each once, as awarded, with accepted progress."""
    ids = pledge_service.held_ids(session, [a.application_id for a in awards])
    if not ids:
        return []
    owners = sorted({a.organisation_id for a in awards})
    conn = session.connection()  # held_ids flushed what was pending
    awarded: set[int] = set()
    # A member's award of a group's application holds pledges made (and revised) there.
    for application_id, group_id in _AWARDED.rows(conn, {"organisation_ids": owners}):
        awarded.add(application_id)
        if group_id is not None:
            awarded.add(group_id)
    revisions = _as_awarded(session, ids, awarded)
    # A group's shared pledge is held by each member's award: each reads its own figures.
    progress = accepted_progress(session, ids, owners)
    out = []
    for pid in ids:
        r = revisions.get(pid)
        if r is None:
            continue
        _, _, theme, title, indicator, unit, baseline, target, due_date = r
        out.append(
            PublicPledge(
                id=pid,
                theme=theme,
                title=title,
                indicator=indicator,
                unit=unit,
                baseline=baseline,
                target=target,
                target_value=pledge_service.target_number(target),
                due_date=due_date,
                progress=progress.get(pid, []),
            )
        )
    return out


def in_force(
    session: Session, registry: SchemeRegistry, organisation_id: int, now: datetime
) -> list[AwardInForce]:
    """The organisation's awards in force and in date, newest first."""
    states = award_queries.in_force_states(registry)
    session.flush()  # as the ORM's autoflush would: the read is on the session's connection
    rows = _AWARDS.rows(session.connection(), {"organisation_id": organisation_id})
    return [a for a in (AwardInForce(*r) for r in rows) if a.state in states and a.expires_at > now]


def commitments(
    session: Session, registry: SchemeRegistry, organisation_id: int, now: datetime
) -> Commitments:
    """What the public may read of an organisation; NotFound when it holds no award in force.

    An organisation that holds nothing has published nothing: its page is not found, so the
    list of registered organisations cannot be read off it.
    """
    awards = in_force(session, registry, organisation_id, now)  # flushes what is pending
    params = {"organisation_id": organisation_id}
    found = _ORGANISATION.rows(session.connection(), params) if awards else []
    if not found:
        raise NotFound(f"no organisation {organisation_id} with an award in force")
    return Commitments(PublicOrganisation(*found[0]), awards, award_pledges(session, awards))
