"""Who may see which application or award, and the one query every list of applications uses.

The assessor's queue, the panel's decisions and the admin's list are one statement with filters,
the due-date filter, sorting and paging done in SQL: a page reads only its own rows, and a count
says how many pages there are.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any, Literal, TypeVar

from sqlalchemy import Row, Select, bindparam, case, exists, false, func, true, tuple_
from sqlalchemy import select as sa_select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from svqm.accounts.models import Organisation
from svqm.errors import NotFound
from svqm.evidence.models import EvidenceItem
from svqm.workflow import messages
from svqm.workflow.models import Application, PolicySnapshot
from svqm.workflow.schedule import OPEN, ScheduledDeadline, open_due
from svqm.workflow.schemes import DIGESTS_KEY, SchemeRegistry
from svqm.workflow.service import Actor

Sort = Literal["changed", "due", "organisation"]
# A statement `_filtered` adds conditions to, keeping its type.
AnySelect = Select[*tuple[Any, ...]]
_Query = TypeVar("_Query", bound=AnySelect)
SORTS: tuple[Sort, ...] = ("changed", "due", "organisation")


@dataclass(frozen=True)
class ApplicationFilter:
    state: str | None = None
    level: str | None = None
    scheme: str | None = None
    organisation_id: int | None = None
    # Only applications with an open deadline falling due on or before this day (UTC).
    due_by: date | None = None
    # Only applications whose own workflow offers this role a step in their state (the panel's
    # decisions), before guards and who-checks.
    offered_to: str | None = None
    # Only open work: applications whose own workflow has not finished (`terminal` states).
    open_only: bool = False
    # An organisation's name (any part of it, any case) or an application's reference
    # ("APP-000042", "42").
    search: str | None = None


@dataclass(frozen=True)
class QueuePage:
    """One page of a list: its lines (see `list_queue_lines`) and how many there are in all."""

    lines: list[Row[Any]]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def private_states(registry: SchemeRegistry) -> list[tuple[str, str]]:
    """(scheme, state) of every application state the panel does not see (`private`).

    Who sees what is the current policy's say, whichever version an application follows.
    """
    return [
        (sid, s.name)
        for sid, scheme in registry.current.items()
        for s in scheme.policy.workflows.application.states
        if s.private
    ]


def _visible(role: str, has_organisation: bool) -> ColumnElement[bool]:
    """The SQL condition for applications an actor in `role` may see (deny by default).

    Who the actor is stays a bound parameter (`:actor_id`, `:organisation_id`, `:private`, see
    `_who`), so the hot statements below are built once per role and reused: building a
    statement and deriving its cache key cost SQLAlchemy more than running the query on an index.
    """
    own = col(Application.organisation_id) == bindparam("organisation_id")
    if role == "applicant":
        # A group's people also read its member organisations' applications (never change them:
        # every write checks the organisation itself).
        members = select(Organisation.id).where(
            col(Organisation.parent_id) == bindparam("organisation_id")
        )
        return own | col(Application.organisation_id).in_(members)
    if role == "assessor":
        # The assigned assessor, and a double-marked application's second assessor.
        return (col(Application.assessor_id) == bindparam("actor_id")) | (
            col(Application.second_assessor_id) == bindparam("actor_id")
        )
    if role == "panel":
        # Everything but the applicants' private states (drafts), and their own organisation's.
        shared = tuple_(col(Application.scheme), col(Application.state)).not_in(
            bindparam("private", expanding=True)
        )
        return shared & ~own if has_organisation else shared
    if role == "admin":
        return true()
    return false()


def _who(actor: Actor, registry: SchemeRegistry) -> dict[str, Any]:
    """The parameters `_visible` binds."""
    params: dict[str, Any] = {"actor_id": actor.id, "organisation_id": actor.organisation_id}
    if actor.role == "panel":
        params["private"] = private_states(registry)
    return params


def _role_key(actor: Actor) -> tuple[str, bool]:
    return actor.role, bool(actor.organisation_id)


@cache
def _one_statement(role: str, has_organisation: bool) -> SelectOfScalar[Application]:
    return select(Application).where(
        col(Application.id) == bindparam("application_id"), _visible(role, has_organisation)
    )


def get_application(
    session: Session, application_id: int, actor: Actor, *, registry: SchemeRegistry
) -> Application:
    """An application the actor may see; anything else is 'not found', never 'forbidden'."""
    statement = _one_statement(*_role_key(actor))
    params = {**_who(actor, registry), "application_id": application_id}
    app = session.exec(statement, params=params).first()
    if app is None:
        raise NotFound(f"no application {application_id}")
    return app


def organisation_of(session: Session, application_id: int) -> int | None:
    """The organisation an application is for, whoever asks: only to offer a member of it who
    acts for another of their organisations to act for this one (never shown to others)."""
    app = session.get(Application, application_id)
    return app.organisation_id if app is not None else None


def get_visible_evidence(
    session: Session, evidence_id: int, actor: Actor, *, registry: SchemeRegistry
) -> tuple[EvidenceItem, Application]:
    """An evidence item and its application, if the actor may see them. One answer, "no evidence
    N", whether it does not exist or belongs to an application the actor may not see, so the
    text tells nobody what exists in another organisation."""
    item = session.get(EvidenceItem, evidence_id)
    if item is not None:
        statement = _one_statement(*_role_key(actor))
        params = {**_who(actor, registry), "application_id": item.application_id}
        app = session.exec(statement, params=params).first()
        if app is not None:
            return item, app
    raise NotFound(f"no evidence {evidence_id}")


_FILTERS = ("state", "level", "scheme", "organisation_id")


def _given(filters: ApplicationFilter) -> tuple[str, ...]:
    """The filters set, in a fixed order (part of the key of a cached statement)."""
    named = [f for f in _FILTERS if getattr(filters, f) is not None]
    named += [f for f in ("due_by", "offered_to", "search") if getattr(filters, f) is not None]
    if filters.open_only:
        named.append("open_only")
    return tuple(named)


_REFERENCE = re.compile(r"(?:app-?)?0*(\d{1,9})", re.IGNORECASE)


def _like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own % and _ taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _open_deadline(column: Any) -> AnySelect:
    return select(column).where(
        ScheduledDeadline.subject_kind == "application",
        ScheduledDeadline.subject_id == Application.id,
        ScheduledDeadline.status == OPEN,
    )


def _soonest_open_deadline(column: Any) -> Any:
    """`column` of the application's soonest open deadline (as `schedule.open_due` orders them)."""
    return (
        _open_deadline(column)
        .order_by(col(ScheduledDeadline.due_at), col(ScheduledDeadline.id))
        .limit(1)
        .scalar_subquery()
    )


def _filtered(query: _Query, given: tuple[str, ...]) -> _Query:
    for name in given:
        if name == "due_by":
            due = _open_deadline(ScheduledDeadline.id).where(
                col(ScheduledDeadline.due_at) < bindparam("due_before")
            )
            query = query.where(exists(due))
        elif name == "offered_to":
            pairs = tuple_(col(Application.policy_digest), col(Application.state))
            query = query.where(pairs.in_(bindparam("offered", expanding=True)))
        elif name == "open_only":
            pairs = tuple_(col(Application.policy_digest), col(Application.state))
            query = query.where(pairs.not_in(bindparam("finished", expanding=True)))
        elif name == "search":
            named = select(Organisation.id).where(
                func.lower(Organisation.name).like(bindparam("search_like"), escape="\\")
            )
            query = query.where(
                col(Application.organisation_id).in_(named)
                | (col(Application.id) == bindparam("search_id"))
            )
        else:
            query = query.where(getattr(Application, name) == bindparam(f"filter_{name}"))
    return query


_DIGESTS = sa_select(PolicySnapshot.__table__.c.digest)  # type: ignore[attr-defined]


def recorded_digests(session: Session) -> tuple[str, ...]:
    """The digest of every policy version recorded, read once per transaction.

    A list page asks for its lines, their count and their schemes with the same filters, each
    needing these. Snapshots are only ever added, and `SchemeRegistry.record_snapshot` forgets
    the answer, so the transaction's first one holds until it ends (the next asks again).
    """
    session.flush()
    connection = session.connection()
    transaction = session.get_transaction()
    kept = session.info.get(DIGESTS_KEY)
    if kept is not None and kept[0] is transaction:
        return kept[1]  # type: ignore[no-any-return]
    found = tuple(connection.execute(_DIGESTS).scalars())
    session.info[DIGESTS_KEY] = (transaction, found)
    return found


def offered_states(session: Session, registry: SchemeRegistry, role: str) -> list[tuple[str, str]]:
    """(policy digest, state) wherever a version of a scheme offers `role` a step.

    Each application follows the policy version it started under, so every version recorded
    (a snapshot each) is asked, not only the current files.
    """
    pairs = []
    for digest in recorded_digests(session):
        flow = registry.by_digest(session, digest).flows["application"]
        pairs += [(digest, s.name) for s in flow.workflow.states if flow.offered(s.name, role)]
    return pairs


def finished_states(session: Session, registry: SchemeRegistry) -> list[tuple[str, str]]:
    """(policy digest, state) of every state where an application's workflow ends (`terminal`),
    in every version recorded."""
    pairs = []
    for digest in recorded_digests(session):
        flow = registry.by_digest(session, digest).flows["application"]
        pairs += [(digest, s.name) for s in flow.workflow.states if s.terminal]
    return pairs


def _params(
    session: Session, actor: Actor, registry: SchemeRegistry, filters: ApplicationFilter
) -> dict[str, Any]:
    params = _who(actor, registry)
    for name in _given(filters):
        if name == "open_only":
            params["finished"] = finished_states(session, registry)
            continue
        if name == "search":
            assert filters.search is not None
            found = _REFERENCE.fullmatch(filters.search.strip())
            params["search_like"] = _like(filters.search.strip())
            # A reference names one application; anything else names none (ids start at 1).
            params["search_id"] = int(found.group(1)) if found else 0
            continue
        if name == "due_by":
            assert filters.due_by is not None
            end = datetime.combine(filters.due_by + timedelta(days=1), time(0), tzinfo=UTC)
            params["due_before"] = end
        elif name == "offered_to":
            assert filters.offered_to is not None
            params["offered"] = offered_states(session, registry, filters.offered_to)
        else:
            params[f"filter_{name}"] = getattr(filters, name)
    return params


# Newest change first; the id breaks ties so that pages never overlap.
_NEWEST = (col(Application.state_changed_at).desc(), col(Application.id).desc())


def _order(sort: Sort) -> tuple[Any, ...]:
    if sort == "due":
        soonest = _soonest_open_deadline(ScheduledDeadline.due_at)
        return (soonest.asc().nulls_last(), col(Application.id))
    if sort == "organisation":
        return (col(Organisation.name), col(Application.id))
    return _NEWEST


def _in_turn(states: tuple[str, ...]) -> tuple[Any, ...]:
    """Order by state, in this order, before anything else (nothing, if no states are given)."""
    if not states:
        return ()
    return (case({s: i for i, s in enumerate(states)}, value=Application.state, else_=len(states)),)


@cache
def _lines_statement(
    role: str,
    has_organisation: bool,
    given: tuple[str, ...],
    sort: Sort,
    states_first: tuple[str, ...],
) -> AnySelect:
    ids = sa_select(col(Application.id)).where(_visible(role, has_organisation))
    if sort == "organisation":
        ids = ids.outerjoin(Organisation, col(Organisation.id) == Application.organisation_id)
    # The page is picked on ids alone first, so only its rows are read in full and joined.
    page = (
        _filtered(ids, given)
        .order_by(*_in_turn(states_first), *_order(sort))
        .offset(bindparam("offset"))
        .limit(bindparam("limit"))
        .subquery()
    )
    due = _soonest_open_deadline(ScheduledDeadline.due_at).label("deadline_due")
    outer_order = (
        _in_turn(states_first)
        + {
            "changed": _NEWEST,
            "due": (due.asc().nulls_last(), col(Application.id)),
            "organisation": (col(Organisation.name), col(Application.id)),
        }[sort]
    )
    return (
        sa_select(
            col(Application.id),
            col(Application.organisation_id),
            col(Application.scheme),
            col(Application.policy_digest),
            col(Application.level),
            col(Application.state),
            col(Application.state_changed_at),
            col(Application.assessor_id),
            col(Application.version),
            col(Organisation.name).label("organisation"),
            col(Application.second_assessor_id),
            _soonest_open_deadline(ScheduledDeadline.kind).label("deadline_kind"),
            due,
            # The reader's unread messages on each line's thread, in this same query.
            messages.unread_column("application", col(Application.id), bindparam("actor_id")).label(
                "unread"
            ),
        )
        .join(page, page.c.id == Application.id)
        .outerjoin(Organisation, col(Organisation.id) == Application.organisation_id)
        .order_by(*outer_order)
    )


def list_queue_lines(
    session: Session,
    actor: Actor,
    filters: ApplicationFilter = ApplicationFilter(),
    *,
    registry: SchemeRegistry,
    sort: Sort = "changed",
    states_first: Sequence[str] = (),
    limit: int = 200,
    offset: int = 0,
) -> list[Row[Any]]:
    """What a list shows of the applications the actor may see, filtered, sorted and paged.

    Plain rows (id, organisation_id, scheme, policy_digest, level, state, state_changed_at,
    assessor_id, version, the organisation's name as `organisation`, second_assessor_id (None at a
    level marked once), the soonest open deadline as
    `deadline_kind` and `deadline_due`, None when none is open, and the reader's unread messages
    on the application as `unread`), not ORM objects: one query with
    everything joined. `sort` is the newest change first (`changed`), the soonest deadline first
    (`due`, those without one last) or the organisation's name (`organisation`); the id breaks
    every tie, so pages never overlap. `states_first` groups the lines by state, in that order,
    before the sort (the panel's list is read state by state).
    """
    statement = _lines_statement(*_role_key(actor), _given(filters), sort, tuple(states_first))
    params = {**_params(session, actor, registry, filters), "limit": limit, "offset": offset}
    # On the session's connection (same transaction), not through the ORM: these are plain
    # rows, and the ORM's result handling cost more than the query itself. Anything pending is
    # flushed first, as the ORM's autoflush would.
    session.flush()
    return list(session.connection().execute(statement, params))


@cache
def _count_statement(role: str, has_organisation: bool, given: tuple[str, ...]) -> AnySelect:
    query = select(func.count()).select_from(Application)
    return _filtered(query.where(_visible(role, has_organisation)), given)


def count_applications(
    session: Session,
    actor: Actor,
    filters: ApplicationFilter = ApplicationFilter(),
    *,
    registry: SchemeRegistry,
) -> int:
    """How many applications the actor may see that the filters let through."""
    statement = _count_statement(*_role_key(actor), _given(filters))
    session.flush()
    found = (
        session.connection()
        .execute(statement, _params(session, actor, registry, filters))
        .scalar_one()
    )
    return int(found)


@cache
def _by_state_statement(role: str, has_organisation: bool, given: tuple[str, ...]) -> AnySelect:
    query = sa_select(col(Application.state), func.count()).where(_visible(role, has_organisation))
    return _filtered(query, given).group_by(col(Application.state))


def count_by_state(
    session: Session,
    actor: Actor,
    filters: ApplicationFilter = ApplicationFilter(),
    *,
    registry: SchemeRegistry,
) -> dict[str, int]:
    """How many applications the filters let through in each state (one grouped query)."""
    statement = _by_state_statement(*_role_key(actor), _given(filters))
    session.flush()
    rows = session.connection().execute(statement, _params(session, actor, registry, filters))
    return {str(state): int(n) for state, n in rows}


def queue_page(
    session: Session,
    actor: Actor,
    filters: ApplicationFilter = ApplicationFilter(),
    *,
    registry: SchemeRegistry,
    sort: Sort = "changed",
    states_first: Sequence[str] = (),
    page: int = 1,
    per_page: int = 50,
) -> QueuePage:
    """Page `page` of `list_queue_lines`, with the count of every line the filters let through."""
    lines = list_queue_lines(
        session,
        actor,
        filters,
        registry=registry,
        sort=sort,
        states_first=states_first,
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    total = count_applications(session, actor, filters, registry=registry)
    return QueuePage(lines, total, page, per_page)


@cache
def _rows_statement(
    role: str, has_organisation: bool, given: tuple[str, ...]
) -> SelectOfScalar[Application]:
    query = _filtered(select(Application).where(_visible(role, has_organisation)), given)
    return query.order_by(*_NEWEST).offset(bindparam("offset")).limit(bindparam("limit"))


def list_applications(
    session: Session,
    actor: Actor,
    filters: ApplicationFilter = ApplicationFilter(),
    *,
    registry: SchemeRegistry,
    limit: int = 200,
    offset: int = 0,
) -> list[Application]:
    """The actor's applications as rows: their own, their queue, or all (admin); newest change
    first, in the order `list_queue_lines` gives them."""
    statement = _rows_statement(*_role_key(actor), _given(filters))
    params = {**_params(session, actor, registry, filters), "limit": limit, "offset": offset}
    return list(session.exec(statement, params=params))


def open_deadlines(session: Session, application_id: int) -> list[tuple[str, datetime]]:
    """The application's open deadlines as (kind, due), soonest first."""
    return open_due(session, "application", [application_id])[application_id]


@cache
def _schemes_statement(role: str, has_organisation: bool, given: tuple[str, ...]) -> AnySelect:
    query = sa_select(col(Application.scheme)).where(_visible(role, has_organisation))
    return _filtered(query, given).distinct()


def schemes_in_play(
    session: Session,
    actor: Actor,
    filters: ApplicationFilter = ApplicationFilter(),
    *,
    registry: SchemeRegistry,
) -> list[str]:
    """The schemes of the applications the actor may see that the filters let through (one
    query): what a list's filters offer to choose from."""
    statement = _schemes_statement(*_role_key(actor), _given(filters))
    session.flush()
    rows = session.connection().execute(statement, _params(session, actor, registry, filters))
    return sorted(str(s) for (s,) in rows)
