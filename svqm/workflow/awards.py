"""Awards as they are looked up: by id, an organisation's, the one that superseded another, and the
public directory of those in force."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime

from sqlalchemy import ColumnElement, and_, bindparam, false, func, or_
from sqlmodel import Session, col, select

from svqm.accounts.models import Organisation
from svqm.errors import NotFound
from svqm.evidence.models import HELD, ApplicationPledge, Pledge, PledgeRevision
from svqm.policy import Policy
from svqm.workflow.models import Application, Award
from svqm.workflow.schemes import SchemeRegistry

# One scheme's level or theme: the scheme's id and the level's or theme's id in it (two schemes
# may each have a level "silver" or a theme "employment", and they are not the same).
SchemeItem = tuple[str, str]


def get_award(session: Session, award_id: int) -> Award:
    """Any award by id: its status is public, as a certificate's is (the verify page must be able
    to say 'withdrawn'); the directory lists only awards in force."""
    award = session.get(Award, award_id)
    if award is None:
        raise NotFound(f"no award {award_id}")
    return award


def assessor_of(session: Session, award: Award) -> int | None:
    """The assessor who assessed the application the award came from (told of its reports)."""
    app = session.get(Application, award.application_id)
    group = app.group_application_id if app is not None else None
    if group is not None:
        app = session.get(Application, group)
    return app.assessor_id if app is not None else None


def successor_of(session: Session, award: Award) -> Award | None:
    """The award that superseded this one (a renewal or an upgrade), if any."""
    return session.exec(select(Award).where(Award.supersedes_id == award.id)).first()


def renewed_by(session: Session, policy: Policy, app: Application) -> Award | None:
    """The award of the same scheme and level that this open application would renew: one its
    organisation holds in a state the policy's `supersede` trigger leaves (in force, or expired
    and still restorable). None for a first application, a higher level, or once awarded."""
    supersede = policy.workflows.award.supersede
    if supersede is None or policy.workflows.application.state(app.state).terminal:
        return None
    which = {
        "organisation_id": app.organisation_id,
        "scheme": app.scheme,
        "level": app.level,
        "states": sorted(policy.workflows.award.leaves(supersede)),
    }
    return session.exec(_RENEWABLE, params=which).first()


# Built once: every submission's invoice asks which award the application renews.
_RENEWABLE = (
    select(Award)
    .where(
        col(Award.organisation_id) == bindparam("organisation_id"),
        col(Award.scheme) == bindparam("scheme"),
        col(Award.level) == bindparam("level"),
        col(Award.state).in_(bindparam("states", expanding=True)),
    )
    .order_by(col(Award.issued_at).desc())
)


# Built once, with a bind parameter: the public page and the holder's pages read it each time.
_ORGANISATION_AWARDS = (
    select(Award)
    .where(col(Award.organisation_id) == bindparam("organisation_id"))
    .order_by(col(Award.issued_at).desc())
)


def organisation_awards(session: Session, organisation_id: int) -> list[Award]:
    return list(session.exec(_ORGANISATION_AWARDS, params={"organisation_id": organisation_id}))


def _like_escaped(text: str) -> str:
    """A search term matched literally by LIKE: its own % and _ are not wildcards."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def in_force_states(registry: SchemeRegistry) -> set[str]:
    """The award states, in any current scheme, in which the organisation holds the award."""
    return {
        s.name
        for sch in registry.current.values()
        for s in sch.policy.workflows.award.states
        if s.in_force
    }


def directory(
    session: Session,
    registry: SchemeRegistry,
    *,
    now: datetime,
    level: str | None = None,
    scheme: str | None = None,
    name: str | None = None,
    sector: str | None = None,
    region: str | None = None,
    levels: Collection[SchemeItem] | None = None,
    themes: Collection[SchemeItem] | None = None,
    without: set[str] | None = None,
) -> list[Award]:
    """The public directory: awards in force and in date, never suspended, withdrawn or expired;
    `levels` and `themes` (each a scheme's id and its own id there) keep the awards at one of
    those levels, or holding a pledge of one of those themes (as awarded), in its scheme; an
    empty collection keeps none. `without` leaves out the awards of these schemes."""
    return list_awards(
        session,
        states=in_force_states(registry),
        level=level,
        scheme=scheme,
        name=name,
        sector=sector,
        region=region,
        levels=levels,
        themes=themes,
        valid_at=now,
        without=without,
    )


def _in_scheme(
    items: Collection[SchemeItem], match: Callable[[list[str]], ColumnElement[bool]]
) -> ColumnElement[bool]:
    """An award of one of the items' schemes that `match`es one of that scheme's ids (none
    when there are no items)."""
    ids: dict[str, list[str]] = {}
    for scheme, item in sorted(set(items)):
        ids.setdefault(scheme, []).append(item)
    if not ids:
        return false()
    return or_(*(and_(col(Award.scheme) == scheme, match(found)) for scheme, found in ids.items()))


def list_awards(
    session: Session,
    *,
    states: set[str] | None = None,
    level: str | None = None,
    scheme: str | None = None,
    name: str | None = None,
    sector: str | None = None,
    region: str | None = None,
    levels: Collection[SchemeItem] | None = None,
    themes: Collection[SchemeItem] | None = None,
    valid_at: datetime | None = None,
    limit: int = 500,
    without: set[str] | None = None,
) -> list[Award]:
    """Awards, newest first; `name` and `sector` match part of the organisation's, any case;
    `region` is the organisation's region exactly.

    `valid_at` leaves out awards whose expiry has passed even if the sweep has not yet moved them
    out of an in-force state (the directory must never list an expired award).
    """
    query = select(Award)
    if states is not None:
        query = query.where(col(Award.state).in_(states))
    if level:
        query = query.where(Award.level == level)
    if scheme:
        query = query.where(Award.scheme == scheme)
    if without:
        query = query.where(col(Award.scheme).not_in(without))
    if valid_at is not None:
        query = query.where(col(Award.issued_at) <= valid_at, col(Award.expires_at) > valid_at)
    if levels is not None:
        query = query.where(_in_scheme(levels, col(Award.level).in_))
    if themes is not None:
        # A pledge the awarded application holds, whose revision in that application (for a
        # member's record of a group's application: in the group's) has the theme.
        made_in = func.coalesce(
            col(Application.group_application_id), col(ApplicationPledge.application_id)
        )
        holding = (
            select(ApplicationPledge.application_id)
            .join(Application, col(Application.id) == col(ApplicationPledge.application_id))
            .join(
                PledgeRevision,
                (col(PledgeRevision.pledge_id) == col(ApplicationPledge.pledge_id))
                & (col(PledgeRevision.application_id) == made_in),
            )
            .join(Pledge, col(Pledge.id) == col(ApplicationPledge.pledge_id))
            .where(
                col(ApplicationPledge.disposition).in_(HELD),
                Pledge.status == "active",
                col(PledgeRevision.change).in_(("made", "revised", "carried")),
            )
        )
        query = query.where(
            _in_scheme(
                themes,
                lambda ids: col(Award.application_id).in_(
                    holding.where(col(PledgeRevision.theme).in_(ids))
                ),
            )
        )
    if name or sector or region:
        query = query.join(Organisation, col(Organisation.id) == col(Award.organisation_id))
        for column, part in ((Organisation.name, name), (Organisation.sector, sector)):
            if part:
                query = query.where(col(column).ilike(f"%{_like_escaped(part)}%", escape="\\"))
        if region:
            query = query.where(Organisation.region == region)
    return list(session.exec(query.order_by(col(Award.issued_at).desc()).limit(limit)))
