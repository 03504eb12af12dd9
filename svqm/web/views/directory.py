"""The directory's level and pledge theme filters: each option is one scheme's level or theme.

Schemes share ids (a theme "employment", a level "silver") that are not the same thing, so an
option's value names its scheme too ("svqm:employment"), and the options are grouped by scheme,
levels in the policy's order. A link from before names only the id ("?theme=employment"); see
`chosen`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from svqm.workflow.awards import SchemeItem
from svqm.workflow.schemes import SchemeRegistry


@dataclass(frozen=True)
class Option:
    """One scheme's level or theme as the filter offers it."""

    scheme: str
    id: str
    # The scheme's own name for it.
    name: str
    # As the option reads: its name, and whose it is when another scheme's option has that name
    # ("Health and wellbeing (Social Value Quality Mark)"), so no two options read alike.
    label: str

    @property
    def value(self) -> str:
        return f"{self.scheme}:{self.id}"


@dataclass(frozen=True)
class Filter:
    """What one filter asks the directory for, and how its select shows it."""

    # The (scheme, id) pairs an award must match one of; None when the filter is not used.
    items: frozenset[SchemeItem] | None
    # The option to show as chosen.
    selected: str
    # The schemes the person chose this filter's option in by name (scheme and id).
    named: frozenset[str] = frozenset()
    # An option outside the groups, for an id several schemes have: {value: label}.
    loose: dict[str, str] = field(default_factory=dict)


def options(registry: SchemeRegistry, kind: Literal["level", "theme"]) -> list[Option]:
    """Every current scheme's levels (in rank order, as the policy lists them) or pledge themes,
    scheme by scheme in the order of their ids."""
    found: list[tuple[str, str, str, str]] = []
    for sid, sch in sorted(registry.current.items()):
        policy = sch.policy
        if kind == "level":
            items = [(lv.id, lv.name) for lv in sorted(policy.levels, key=lambda lv: lv.rank)]
        else:
            items = [(t.id, t.name) for t in policy.themes]
        found.extend((sid, policy.name, iid, name) for iid, name in items)
    named = Counter(name for *_, name in found)
    return [
        Option(sid, iid, name, f"{name} ({scheme})" if named[name] > 1 else name)
        for sid, scheme, iid, name in found
    ]


def groups(registry: SchemeRegistry, found: list[Option]) -> list[tuple[str, dict[str, str]]]:
    """The options by scheme, for a select's groups: (the scheme's name, {value: label})."""
    out: dict[str, dict[str, str]] = {}
    for o in found:
        out.setdefault(registry.current[o.scheme].policy.name, {})[o.value] = o.label
    return list(out.items())


def chosen(value: str, found: list[Option], *, scheme: str | None, hidden: set[str]) -> Filter:
    """The filter a query's value asks for.

    "scheme:id" is that scheme's level or theme (none if the scheme has no such id). A bare id,
    from a link made before the options named their scheme, is that id in each scheme the list
    would show that has it: the scheme chosen if one is, otherwise every scheme but the `hidden`
    ones (charters, whose signatures the directory lists only when their scheme is chosen). One
    such scheme: its option is shown as chosen. Several: they all match, and the select shows
    one more option saying so ("Silver (any scheme)").
    """
    value = value.strip()
    if not value:
        return Filter(None, "")
    sid, sep, iid = value.partition(":")
    if sep:
        known = any((o.scheme, o.id) == (sid, iid) for o in found)
        return Filter(
            frozenset({(sid, iid)}) if known else frozenset(),
            value,
            named=frozenset({sid}) if known else frozenset(),
        )
    hits = [
        o
        for o in found
        if o.id == value and (o.scheme == scheme if scheme else o.scheme not in hidden)
    ]
    items = frozenset((o.scheme, o.id) for o in hits)
    if len(hits) == 1:
        return Filter(items, hits[0].value)
    if not hits:
        return Filter(items, value)
    names = list(dict.fromkeys(o.name for o in hits))
    label = (
        f"{names[0]} (any scheme)" if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    )
    return Filter(items, value, loose={value: label})
