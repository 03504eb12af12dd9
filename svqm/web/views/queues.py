"""The lists of applications (the assessor's queue, the panel's decisions, the admin's list):
their lines ready to print, the filters' choices, and the links between pages."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Row
from sqlmodel import Session

from svqm.accounts import service as accounts
from svqm.web.format import day, reference, tag_classes
from svqm.web.forms import ListQuery
from svqm.workflow import deadlines, queries
from svqm.workflow.queries import QueuePage, Sort
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor

SORT_NAMES = {
    "changed": "Latest change",
    "due": "Next deadline",
    "organisation": "Organisation",
}


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One line of a list, ready to print (attributes, not a dict: Jinja tries them first)."""

    id: int
    organisation: str
    scheme: str
    level: str
    state: str
    state_classes: str
    # The next deadline as "Label: 5 February 2026, 09:00 UTC", or None when none runs.
    deadline: str | None
    # The assigned assessor's name, and the second's where there are two (admins' list only), or
    # None when none is assigned.
    assessor: str | None = None
    # The next deadline has passed.
    overdue: bool = False
    # The version the list was read at (bulk actions post it: a case changed since is stale).
    version: int = 0
    # Messages on the application the reader has not read.
    unread: int = 0
    # The application's reference as people quote it (APP-000029).
    reference: str = ""
    # The reader has declared a conflict of interest with the organisation (panel's list only).
    conflict: bool = False
    conflict_reason: str = ""


def queue_rows(
    session: Session,
    registry: SchemeRegistry,
    lines: Iterable[Row[Any]],
    *,
    now: datetime,
    assessors: bool = False,
    conflicts_of: int | None = None,
) -> list[QueueRow]:
    """The lines of `queries.list_queue_lines`, with names, titles and the next deadline.

    What depends only on the policy version, the state and the level (names, titles, the tag)
    is worked out once per combination, not once per line.
    """
    lines = list(lines)
    names = (
        accounts.display_names(
            session,
            {ln.assessor_id for ln in lines} | {ln.second_assessor_id for ln in lines},
        )
        if assessors
        else {}
    )
    # The conflicts of interest the reader (`conflicts_of`) has declared with these organisations.
    conflicts = (
        accounts.declared_conflicts(session, conflicts_of, {ln.organisation_id for ln in lines})
        if conflicts_of is not None
        else {}
    )
    known: dict[tuple[str, str, str], tuple[Any, str, str, str, str]] = {}
    rows = []
    for line in lines:
        key = (line.policy_digest, line.state, line.level)
        if (fixed := known.get(key)) is None:
            policy = registry.by_digest(session, line.policy_digest).policy
            state = policy.workflows.application.state(line.state)
            level = policy.level(line.level).name
            fixed = known[key] = (policy, policy.name, level, state.title, tag_classes(state.tag))
        policy, scheme_name, level_name, state_title, classes = fixed
        text, overdue = None, False
        if line.deadline_kind is not None and line.deadline_due is not None:
            label = deadlines.deadline(policy, line.deadline_kind).label
            text = f"{label}: {day(line.deadline_due)}"
            due = line.deadline_due
            overdue = (due if due.tzinfo else due.replace(tzinfo=UTC)) <= now
        assessor = names.get(line.assessor_id) if line.assessor_id is not None else None
        if assessor and (second := names.get(line.second_assessor_id)):
            assessor = f"{assessor} and {second}"  # a double-marked case's two
        rows.append(
            QueueRow(
                line.id,
                line.organisation or "",
                scheme_name,
                level_name,
                state_title,
                classes,
                text,
                assessor,
                overdue,
                line.version,
                int(getattr(line, "unread", 0) or 0),
                reference(line.id),
                line.organisation_id in conflicts,
                conflicts.get(line.organisation_id, ""),
            )
        )
    return rows


@dataclass(frozen=True)
class StateGroup:
    """The lines of a page in one state, with how many lines the whole list has in it."""

    title: str
    total: int
    rows: list[QueueRow]


def by_state(
    lines: Iterable[Row[Any]], rows: list[QueueRow], totals: dict[str, int]
) -> list[StateGroup]:
    """A page's rows grouped by state, the groups in the order their first row comes."""
    groups: dict[str, StateGroup] = {}
    for line, row in zip(lines, rows, strict=True):
        group = groups.get(row.state)
        if group is None:
            group = groups[row.state] = StateGroup(row.state, totals.get(line.state, 0), [])
        group.rows.append(row)
    return list(groups.values())


def filter_options(
    registry: SchemeRegistry,
    states: Iterable[str] | None = None,
    *,
    in_play: Iterable[str] | None = None,
    chosen: str | None = None,
) -> dict[str, dict[str, str]]:
    """The choices of the state, level, scheme and sort fields (`states`: only these states, in
    policy order), from the schemes in play (`in_play`: those the list has applications of; all
    current ones when None); once a scheme is chosen, only its levels and states."""
    wanted = set(states) if states is not None else None
    state_names: dict[str, str] = {}
    levels: dict[str, str] = {}
    playing = set(in_play) if in_play is not None else set(registry.current)
    if chosen is not None:
        playing.add(chosen)
    current = {sid: s for sid, s in registry.current.items() if sid in playing}
    narrowed = {chosen: current[chosen]} if chosen in current else current
    for s in narrowed.values():
        for st in s.policy.workflows.application.states:
            if wanted is None or st.name in wanted:
                state_names.setdefault(st.name, st.title)
        for lv in sorted(s.policy.levels, key=lambda lv: lv.rank):
            levels.setdefault(lv.id, lv.name)
    schemes = {sid: s.policy.name for sid, s in current.items()}
    return {"states": state_names, "levels": levels, "schemes": schemes, "sorts": SORT_NAMES}


def panel_states(registry: SchemeRegistry) -> list[str]:
    """Application states in which the panel has a decision to make, in policy order."""
    states: list[str] = []
    for s in registry.current.values():
        for t in s.policy.workflows.application.transitions:
            if "panel" in t.roles:
                states += [src for src in t.source if src not in states]
    return states


def pagination(path: str, query: dict[str, str], page: QueuePage) -> dict[str, Any] | None:
    """The GOV.UK pagination of a list (previous, numbered pages, next); None for one page."""
    last = page.pages
    if last <= 1:
        return None

    def href(number: int) -> str:
        return f"{path}?{urlencode({**query, 'page': number})}"

    shown = sorted({1, last, page.page - 1, page.page, page.page + 1} & set(range(1, last + 1)))
    items: list[dict[str, Any]] = []
    for number in shown:
        if items and number > items[-1]["number"] + 1:
            items.append({"ellipsis": True, "number": number - 1})
        items.append({"number": number, "href": href(number), "current": number == page.page})
    return {
        "landmarkLabel": "Pages of the list",
        "previous": {"href": href(page.page - 1)} if page.page > 1 else None,
        "next": {"href": href(page.page + 1)} if page.page < last else None,
        "items": [{"ellipsis": True} if item.get("ellipsis") else item for item in items],
    }


@dataclass(frozen=True)
class ListPage:
    """One page of a list of applications, with its filter form and the links to its pages."""

    rows: list[QueueRow]
    groups: list[StateGroup]
    total: int
    sort: Sort
    options: dict[str, dict[str, str]]
    query: dict[str, str]
    errors: list[dict[str, str]] | None
    pages: dict[str, Any] | None

    def context(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "groups": self.groups,
            "total": self.total,
            "sort": self.sort,
            "options": self.options,
            "query": self.query,
            "errors": self.errors,
            "pages": self.pages,
        }


def list_page(
    session: Session,
    registry: SchemeRegistry,
    actor: Actor,
    query: ListQuery,
    *,
    path: str,
    sort: Sort,
    per_page: int,
    now: datetime,
    assessors: bool = False,
    offered_to: str | None = None,
) -> ListPage:
    """Read a page of a list: the query's filters (and `offered_to`), its order or `sort`.

    The panel's list (`offered_to="panel"`) is read state by state, in policy order.
    """
    order = query.sort or sort
    filters = query.filters
    states = panel_states(registry) if offered_to == "panel" else []
    if offered_to is not None:
        filters = replace(filters, offered_to=offered_to)
    found = queries.queue_page(
        session,
        actor,
        filters,
        registry=registry,
        sort=order,
        states_first=states,
        page=query.page,
        per_page=per_page,
    )
    # The schemes in play are those of the list before the person's own filters narrow it.
    base = queries.ApplicationFilter(offered_to=offered_to, open_only=filters.open_only)
    in_play = queries.schemes_in_play(session, actor, base, registry=registry)
    rows = queue_rows(
        session,
        registry,
        found.lines,
        now=now,
        assessors=assessors,
        conflicts_of=actor.id if offered_to == "panel" else None,
    )
    groups = []
    if states:
        totals = queries.count_by_state(session, actor, filters, registry=registry)
        groups = by_state(found.lines, rows, totals)
    return ListPage(
        rows=rows,
        groups=groups,
        total=found.total,
        sort=order,
        options=filter_options(registry, states or None, in_play=in_play, chosen=filters.scheme),
        query=query.typed,
        errors=query.errors,
        pages=pagination(path, query.kept, found),
    )
