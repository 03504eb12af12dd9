"""Who may see which application or award, and the lists each role works from."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Row, bindparam, false, func, true
from sqlmodel import Session, col, select

from svqm.accounts.models import Organisation
from svqm.errors import NotFound
from svqm.workflow.models import Application, Award
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

    Plain rows (id, organisation_id, scheme, policy_digest, level, state, state_changed_at, and
    the organisation's name as `organisation`), not ORM objects, with the name joined in. The page
    is picked on ids alone first, so only its rows are read in full and joined.
    """
    statement = _lines_statement(*_role_key(actor), _given(filters))
    params = {**_who(actor), **_filter_params(filters), "limit": limit, "offset": offset}
    return list(session.exec(statement, params=params))


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


def list_awards(
    session: Session,
    *,
    states: set[str] | None = None,
    level: str | None = None,
    scheme: str | None = None,
    limit: int = 500,
) -> list[Award]:
    query = select(Award)
    if states is not None:
        query = query.where(col(Award.state).in_(states))
    if level:
        query = query.where(Award.level == level)
    if scheme:
        query = query.where(Award.scheme == scheme)
    return list(session.exec(query.order_by(col(Award.issued_at).desc()).limit(limit)))
