"""Who may see which application or award, and the lists each role works from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Row, bindparam, false, func, true
from sqlmodel import Session, col, select

from svqm.accounts.models import Organisation
from svqm.errors import NotFound
from svqm.workflow.models import Application, Award
from svqm.workflow.schedule import OPEN, ScheduledDeadline, open_due
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor


@dataclass(frozen=True)
class ApplicationFilter:
    state: str | None = None
    level: str | None = None
    scheme: str | None = None
    organisation_id: int | None = None


def _visible(role: str, has_organisation: bool):  # type: ignore[no-untyped-def]
    """The SQL condition for applications an actor in `role` may see (deny by default).

    Who the actor is stays a bound parameter (`:actor_id`, `:organisation_id`, see `_who`), so
    the hot statements below are built once per role and reused: building a statement and
    deriving its cache key cost SQLAlchemy more than running the query on an index.
    """
    own = Application.organisation_id == bindparam("organisation_id")
    if role == "applicant":
        return own
    if role == "assessor":
        return Application.assessor_id == bindparam("actor_id")
    if role == "panel":
        # Everything past the applicant's draft, except their own organisation's.
        past_draft = Application.state != "draft"
        return past_draft & ~own if has_organisation else past_draft
    if role == "admin":
        return true()
    return false()


def _who(actor: Actor) -> dict[str, Any]:
    """The parameters `_visible` binds."""
    return {"actor_id": actor.id, "organisation_id": actor.organisation_id}


def _role_key(actor: Actor) -> tuple[str, bool]:
    return actor.role, bool(actor.organisation_id)


@cache
def _one_statement(role: str, has_organisation: bool):  # type: ignore[no-untyped-def]
    return select(Application).where(
        Application.id == bindparam("application_id"), _visible(role, has_organisation)
    )


def get_application(session: Session, application_id: int, actor: Actor) -> Application:
    """An application the actor may see; anything else is 'not found', never 'forbidden'."""
    statement = _one_statement(*_role_key(actor))
    app = session.exec(statement, params={**_who(actor), "application_id": application_id}).first()
    if app is None:
        raise NotFound(f"no application {application_id}")
    return app


_FILTERS = ("state", "level", "scheme", "organisation_id")


def _given(filters: ApplicationFilter) -> tuple[str, ...]:
    """The filters set, in a fixed order (part of the key of a cached statement)."""
    return tuple(f for f in _FILTERS if getattr(filters, f) is not None)


def _filtered(query, given: tuple[str, ...]):  # type: ignore[no-untyped-def]
    for field in given:
        query = query.where(getattr(Application, field) == bindparam(f"filter_{field}"))
    return query


def _filter_params(filters: ApplicationFilter) -> dict[str, Any]:
    return {f"filter_{f}": getattr(filters, f) for f in _given(filters)}


# Newest change first; the id breaks ties so that pages never overlap.
_NEWEST = (col(Application.state_changed_at).desc(), col(Application.id).desc())


def list_applications(
    session: Session,
    actor: Actor,
    filters: ApplicationFilter = ApplicationFilter(),
    *,
    limit: int = 200,
    offset: int = 0,
) -> list[Application]:
    """The actor's applications: their own, their queue, or all (admin); newest change first."""
    query = _filtered(select(Application).where(_visible(*_role_key(actor))), _given(filters))
    query = query.order_by(*_NEWEST).offset(offset).limit(limit)
    return list(session.exec(query, params={**_who(actor), **_filter_params(filters)}))


def _soonest_open_deadline(column):  # type: ignore[no-untyped-def]
    """`column` of the application's soonest open deadline (as `schedule.open_due` orders them)."""
    return (
        select(column)
        .where(
            ScheduledDeadline.subject_kind == "application",
            ScheduledDeadline.subject_id == Application.id,
            ScheduledDeadline.status == OPEN,
        )
        .order_by(col(ScheduledDeadline.due_at), col(ScheduledDeadline.id))
        .limit(1)
        .scalar_subquery()
    )


@cache
def _lines_statement(role: str, has_organisation: bool, given: tuple[str, ...]):  # type: ignore[no-untyped-def]
    page = (
        _filtered(select(Application.id).where(_visible(role, has_organisation)), given)
        .order_by(*_NEWEST)
        .offset(bindparam("offset"))
        .limit(bindparam("limit"))
        .subquery()
    )
    return (
        select(
            Application.id,
            Application.organisation_id,
            Application.scheme,
            Application.policy_digest,
            Application.level,
            Application.state,
            Application.state_changed_at,
            col(Organisation.name).label("organisation"),
            _soonest_open_deadline(ScheduledDeadline.kind).label("deadline_kind"),
            _soonest_open_deadline(ScheduledDeadline.due_at).label("deadline_due"),
        )
        .join(page, page.c.id == Application.id)
        .outerjoin(Organisation, col(Organisation.id) == Application.organisation_id)
        .order_by(*_NEWEST)
    )


def list_queue_lines(
    session: Session,
    actor: Actor,
    filters: ApplicationFilter = ApplicationFilter(),
    *,
    limit: int = 200,
    offset: int = 0,
) -> list[Row]:  # type: ignore[type-arg]
    """What a queue shows of the applications `list_applications` lists, in the same order.

    Plain rows (id, organisation_id, scheme, policy_digest, level, state, state_changed_at, the
    organisation's name as `organisation`, and the soonest open deadline as `deadline_kind` and
    `deadline_due`, None when none is open), not ORM objects: one query with everything joined.
    The page is picked on ids alone first, so only its rows are read in full and joined.
    """
    statement = _lines_statement(*_role_key(actor), _given(filters))
    params = {**_who(actor), **_filter_params(filters), "limit": limit, "offset": offset}
    # On the session's connection (same transaction), not through the ORM: these are plain
    # rows, and the ORM's result handling cost more than the query itself. Anything pending is
    # flushed first, as the ORM's autoflush would.
    session.flush()
    return list(session.connection().execute(statement, params))


def open_deadlines(session: Session, application_id: int) -> list[tuple[str, datetime]]:
    """The application's open deadlines as (kind, due), soonest first."""
    return open_due(session, "application", [application_id])[application_id]


def count_applications(session: Session, actor: Actor) -> int:
    query = select(func.count()).select_from(Application).where(_visible(*_role_key(actor)))
    return session.exec(query, params=_who(actor)).one()


def get_award(session: Session, award_id: int) -> Award:
    """Any award by id: its status is public, as a certificate's is (the verify page must be able
    to say 'withdrawn'); the directory lists only awards in force."""
    award = session.get(Award, award_id)
    if award is None:
        raise NotFound(f"no award {award_id}")
    return award


def organisation_awards(session: Session, organisation_id: int) -> list[Award]:
    return list(
        session.exec(
            select(Award)
            .where(Award.organisation_id == organisation_id)
            .order_by(col(Award.issued_at).desc())
        )
    )


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
) -> list[Award]:
    """The public directory: awards in force and in date, never suspended, withdrawn or expired."""
    return list_awards(
        session,
        states=in_force_states(registry),
        level=level,
        scheme=scheme,
        name=name,
        sector=sector,
        valid_at=now,
    )


def list_awards(
    session: Session,
    *,
    states: set[str] | None = None,
    level: str | None = None,
    scheme: str | None = None,
    name: str | None = None,
    sector: str | None = None,
    valid_at: datetime | None = None,
    limit: int = 500,
) -> list[Award]:
    """Awards, newest first; `name` and `sector` match part of the organisation's, any case.

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
    if valid_at is not None:
        query = query.where(col(Award.issued_at) <= valid_at, col(Award.expires_at) > valid_at)
    if name or sector:
        query = query.join(Organisation, col(Organisation.id) == col(Award.organisation_id))
        for column, part in ((Organisation.name, name), (Organisation.sector, sector)):
            if part:
                query = query.where(col(column).ilike(f"%{_like_escaped(part)}%", escape="\\"))
    return list(session.exec(query.order_by(col(Award.issued_at).desc()).limit(limit)))
