"""The organisation's pledge register: make, revise, withdraw, carry and retire pledges, and judge
a level's pledge rule with every unmet reason."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from svqm.clock import utc_now
from svqm.db import PlainSelect, insert_now, new_row
from svqm.errors import InvalidInput, NotFound
from svqm.evidence.models import (
    HELD,
    ApplicationPledge,
    Pledge,
    PledgeCreate,
    PledgeRevision,
    PledgeUpdate,
)
from svqm.policy import Policy
from svqm.policy.models import PledgeRule

# A target that starts with a number ("20", "1,200 hours", "30%") can be measured against.
_NUMBER = re.compile(r"^\s*(-?[0-9][0-9,]*(?:\.[0-9]+)?)")


def target_number(target: str) -> float | None:
    """The number a target starts with, or None when it is words only."""
    found = _NUMBER.match(target)
    return float(found.group(1).replace(",", "")) if found else None


def number(value: float | None) -> str:
    """A figure as people read it everywhere (pages, charts, emails, credentials): 12, 12.5,
    1,200 (empty when there is none)."""
    if value is None:
        return ""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}".rstrip("0")


# Plural words a unit's first word may end in, and their singular endings ("1 session").
_SINGULAR = (("people", "person"), ("ies", "y"), ("sses", "ss"), ("ches", "ch"), ("shes", "sh"))


def _one_of(unit: str) -> str:
    """A unit as it reads after exactly one: "sessions" -> "session", "tonnes of CO2e" ->
    "tonne of CO2e", "people" -> "person"; a word not in a plural form stays as it is."""
    first, _, rest = unit.partition(" ")
    if not first.isalpha() or not first.islower():
        return unit
    for plural_end, singular_end in _SINGULAR:
        if first.endswith(plural_end):
            first = first[: -len(plural_end)] + singular_end
            break
    else:
        if first.endswith("s") and not first.endswith(("ss", "us", "is")):
            first = first[:-1]
    return f"{first} {rest}" if rest else first


def figure(value: float | str | None, unit: str = "") -> str:
    """A figure or a target with its unit, its number written as `number` writes it: "8,000
    hours" for 8000 or "8000" in hours, "1 session" for 1 in sessions, "30%" for "30%"; words
    stay as they are."""
    if value is None:
        return ""
    if isinstance(value, str):
        found = _NUMBER.match(value)
        text = value.strip()
        if found:
            text = number(float(found.group(1).replace(",", ""))) + value[found.end() :]
    else:
        text = number(value)
    if unit and text == "1":
        unit = _one_of(unit)
    if unit == "%" and text:
        return f"{text}%"
    return f"{text} {unit}".strip() if unit and text else text


def _check(policy: Policy, theme_id: str, due: date, today: date) -> None:
    if policy.theme(theme_id) is None:
        known = ", ".join(t.id for t in policy.themes)
        raise InvalidInput(
            f"theme '{theme_id}' is not a theme of this scheme (themes: {known})", field="theme"
        )
    if due <= today:
        raise InvalidInput(
            f"a pledge's due date must be in the future (got {due})", field="due_date"
        )


def _revision(
    session: Session,
    pledge: Pledge,
    application_id: int,
    change: str,
    actor_id: int | None,
    at: datetime,
) -> None:
    assert pledge.id is not None
    insert_now(
        session,
        new_row(
            PledgeRevision,
            pledge_id=pledge.id,
            revision=pledge.revision,
            application_id=application_id,
            change=change,
            theme=pledge.theme,
            title=pledge.title,
            indicator=pledge.indicator,
            unit=pledge.unit,
            baseline=pledge.baseline,
            target=pledge.target,
            due_date=pledge.due_date,
            actor_id=actor_id,
            at=at,
        ),
    )


def create_pledge(
    session: Session,
    *,
    application_id: int,
    organisation_id: int,
    data: PledgeCreate,
    policy: Policy | None,
    created_by_id: int | None,
    today: date,
    now: datetime | None = None,
) -> Pledge:
    """Add a pledge under one of the scheme's themes to the register and the application.

    `policy` None: a copy of a pledge already checked (a re-application), taken as it is.
    """
    if policy is not None:
        _check(policy, data.theme, data.due_date, today)
    at = now or utc_now()
    pledge = new_row(
        Pledge,
        application_id=application_id,
        organisation_id=organisation_id,
        created_by_id=created_by_id,
        created_at=at,
        **data.model_dump(exclude={"organisation_id"}),
    )
    insert_now(session, pledge)
    assert pledge.id is not None
    insert_now(
        session, new_row(ApplicationPledge, application_id=application_id, pledge_id=pledge.id)
    )
    _revision(session, pledge, application_id, "made", created_by_id, at)
    return pledge


def get_pledge(session: Session, pledge_id: int) -> Pledge:
    """A pledge by id."""
    pledge = session.get(Pledge, pledge_id)
    if pledge is None:
        raise NotFound(f"no pledge {pledge_id}")
    return pledge


def links_of(session: Session, pledge_id: int) -> list[ApplicationPledge]:
    """Every application's hold on the pledge, oldest application first."""
    return list(
        session.exec(
            select(ApplicationPledge)
            .where(ApplicationPledge.pledge_id == pledge_id)
            .order_by(col(ApplicationPledge.application_id))
        )
    )


# Built once: uploads, the checklist and the guards each read an application's pledges, and
# building the statement (and its cache key) anew cost more than running it.
_APPLICATION_PLEDGES = (
    select(Pledge, ApplicationPledge)
    .join(ApplicationPledge, col(ApplicationPledge.pledge_id) == col(Pledge.id))
    .where(
        col(ApplicationPledge.application_id) == bindparam("application_id"),
        ApplicationPledge.disposition != "withdrawn",
    )
    .order_by(col(Pledge.id))
)


def application_pledges(
    session: Session, application_id: int
) -> list[tuple[Pledge, ApplicationPledge]]:
    """Every pledge the application holds or retired, with its hold, oldest pledge first."""
    rows = session.exec(_APPLICATION_PLEDGES, params={"application_id": application_id})
    return [(p, link) for p, link in rows]


# Built once: the pledges alone (not their holds), for the uploads, checklists and guards.
_HELD_PLEDGES = (
    select(Pledge)
    .join(ApplicationPledge, col(ApplicationPledge.pledge_id) == col(Pledge.id))
    .where(
        col(ApplicationPledge.application_id) == bindparam("application_id"),
        col(ApplicationPledge.disposition).in_(HELD),
    )
    .order_by(col(Pledge.id))
)
_CARRIED_COUNT = (
    select(func.count())
    .select_from(ApplicationPledge)
    .join(Pledge, col(ApplicationPledge.pledge_id) == col(Pledge.id))
    .where(
        col(ApplicationPledge.application_id) == bindparam("application_id"),
        col(ApplicationPledge.disposition).in_(("carried", "revised")),
    )
)


def list_pledges(session: Session, application_id: int) -> list[Pledge]:
    """The pledges an application holds (made, carried or revised there), oldest first."""
    return list(session.exec(_HELD_PLEDGES, params={"application_id": application_id}))


def _held(*columns: Any) -> Any:
    """The active pledges some applications (`:application_ids`) hold, each once, oldest first."""
    return (
        sa_select(*columns)
        .join(ApplicationPledge, col(ApplicationPledge.pledge_id) == col(Pledge.id))
        .where(
            col(ApplicationPledge.application_id).in_(bindparam("application_ids", expanding=True)),
            col(ApplicationPledge.disposition).in_(HELD),
            col(Pledge.status) == "active",
        )
        .distinct()
        .order_by(col(Pledge.id))
    )


# Built once, as `_APPLICATION_PLEDGES`: an award's page and the public page read them.
_HELD = _held(Pledge)
_HELD_IDS = PlainSelect(_held(col(Pledge.id)))


def held_by(session: Session, application_ids: Iterable[int]) -> list[Pledge]:
    """The pledges these applications hold, each once, oldest first."""
    ids = list(application_ids)
    if not ids:
        return []
    return list(session.scalars(_HELD, {"application_ids": ids}))


def held_ids(session: Session, application_ids: Iterable[int]) -> list[int]:
    """The ids of `held_by`'s pledges (the same order), read without loading the pledges."""
    ids = list(application_ids)
    if not ids:
        return []
    session.flush()  # as the ORM's autoflush would: the read is on the session's connection
    return [int(i) for (i,) in _HELD_IDS.rows(session.connection(), {"application_ids": ids})]


def carried_count(session: Session, application_id: int) -> int:
    """How many pledges the application holds that were carried in from an earlier award."""
    return int(session.exec(_CARRIED_COUNT, params={"application_id": application_id}).one())


def carry(
    session: Session,
    *,
    application_id: int,
    pledges: list[Pledge],
    actor_id: int | None,
    now: datetime,
) -> int:
    """Bring the organisation's pledges in force into a new application, kept as they are."""
    links = []
    for pledge in pledges:
        assert pledge.id is not None
        links.append(
            new_row(
                ApplicationPledge,
                application_id=application_id,
                pledge_id=pledge.id,
                disposition="carried",
            )
        )
    insert_now(session, *links)
    return len(pledges)


def revise(
    session: Session,
    pledge: Pledge,
    link: ApplicationPledge,
    data: PledgeUpdate,
    *,
    policy: Policy,
    actor_id: int | None,
    now: datetime,
) -> list[str]:
    """Change the pledge's fields as the application holding it revises it; returns what changed."""
    changes = data.model_dump(exclude_unset=True)
    for name in ("theme", "title", "indicator", "target", "due_date"):
        if name in changes and changes[name] is None:
            raise InvalidInput(f"{name}: a pledge's {name} cannot be removed", field=name)
    for name in ("description", "unit"):
        if name in changes and changes[name] is None:
            changes[name] = ""
    if "theme" in changes or "due_date" in changes:
        _check(
            policy,
            changes.get("theme", pledge.theme),
            changes.get("due_date", pledge.due_date),
            now.date(),
        )
    changed = [n for n, v in changes.items() if getattr(pledge, n) != v]
    if not changed:
        return []
    for name in changed:
        setattr(pledge, name, changes[name])
    pledge.revision += 1
    pledge.updated_at = now
    if link.disposition == "carried":
        link.disposition = "revised"
    session.add(pledge)
    session.add(link)
    _revision(session, pledge, link.application_id, "revised", actor_id, now)
    session.flush()
    return changed


def withdraw(
    session: Session,
    pledge: Pledge,
    link: ApplicationPledge,
    *,
    actor_id: int | None,
    now: datetime,
) -> str:
    """Take the pledge out of the application: withdrawn if it was made there, else retired."""
    change = "withdrawn" if link.disposition == "made" else "retired"
    link.disposition = change
    if change == "withdrawn":
        pledge.status = "withdrawn"
    pledge.revision += 1
    pledge.updated_at = now
    session.add(pledge)
    session.add(link)
    _revision(session, pledge, link.application_id, change, actor_id, now)
    session.flush()
    return change


def revisions_of(session: Session, pledge_id: int) -> list[PledgeRevision]:
    """The pledge's revisions, first first."""
    return list(
        session.exec(
            select(PledgeRevision)
            .where(PledgeRevision.pledge_id == pledge_id)
            .order_by(col(PledgeRevision.revision))
        )
    )


def measured_unmet(pledge: Pledge) -> list[str]:
    """What the pledge lacks to be measured: a unit, a baseline and a target that is a number."""
    lacks = []
    if not pledge.unit.strip():
        lacks.append("a unit")
    if pledge.baseline is None:
        lacks.append("a baseline")
    if target_number(pledge.target) is None:
        lacks.append("a target that is a number")
    return lacks


def pledge_rule_unmet(
    pledges: list[Pledge], rule: PledgeRule | None, policy: Policy, *, carried: int = 0
) -> list[str]:
    """Why the pledges fall short of the level's rule; empty when they meet it.

    `carried` is how many of them the application carried in from the award it builds on.
    """
    if rule is None:
        return []
    mandatory = {t.id for t in policy.themes if t.mandatory}
    counted = [p for p in pledges if rule.themes == "any" or p.theme in mandatory]
    scope = "on the mandatory themes " if rule.themes == "mandatory" else ""
    unmet = []
    if len(counted) < rule.min_pledges:
        unmet.append(
            f"at least {rule.min_pledges} pledges {scope}are needed; {len(counted)} made so far"
        )
    themes = {p.theme for p in counted}
    if len(themes) < rule.min_distinct_themes:
        missing = [
            t.name
            for t in policy.themes
            if t.id not in themes and (rule.themes == "any" or t.id in mandatory)
        ]
        unmet.append(
            f"pledges under at least {rule.min_distinct_themes} different themes "
            f"{scope}are needed; {len(themes)} covered so far "
            f"(not yet covered: {', '.join(missing)})"
        )
    if carried < rule.min_carried:
        unmet.append(
            f"this level measures the pledges of the award it builds on: at least "
            f"{rule.min_carried} pledge{'s' if rule.min_carried != 1 else ''} carried from the "
            f"organisation's award in force {'are' if rule.min_carried != 1 else 'is'} needed; "
            f"{carried} carried (retired pledges do not count)"
        )
    if rule.measured:
        for p in pledges:
            lacks = measured_unmet(p)
            if lacks:
                unmet.append(f"pledge '{p.title}' is not measured yet: give it {', '.join(lacks)}")
    return unmet
