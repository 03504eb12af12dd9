"""A scheme as the public reads it: its deadlines and both workflows in words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from svqm.policy import Deadline, Policy, Workflow
from svqm.web.format import plural
from svqm.workflow.guards import GUARDS


def guard_words(ref: str, policy: Policy) -> str:
    """A guard as a sentence: its docstring's first line, naming the deadline it is about."""
    name, _, argument = ref.partition(":")
    doc = (GUARDS[name].check.__doc__ or name).strip().splitlines()[0].rstrip(".")
    if argument:
        found = policy.deadline(argument)
        label = found.label if found else argument
        doc = doc.replace("The named deadline", label)
    return doc


def steps(policy: Policy, flow: Workflow) -> list[dict[str, Any]]:
    """The workflow as text: who may do what, from where to where, and what must be true."""
    titles = {s.name: s.title for s in flow.states}
    return [
        {
            "title": t.title,
            "sources": [titles[s] for s in t.source],
            "dest": titles[t.dest],
            "roles": t.roles,
            "guards": [guard_words(g, policy) for g in t.guards],
        }
        for t in flow.transitions
    ]


def deadline_words(policy: Policy, d: Deadline) -> str:
    """A deadline in words: '28 days after the application enters Submitted or Under review.'"""
    flow = policy.workflows.of(d.subject)
    off = d.offset
    units = ((off.months, "month"), (off.days, "day"), (off.working_days, "working day"))
    amounts = [plural(abs(v), w) for v, w in units if v]
    anchor = {
        "state_entered": f"the {d.subject} enters "
        + " or ".join(flow.state(s).title for s in d.while_in),
        "issued": "the award is issued",
        "expires": "the award expires",
        "audit_start": "the audit starts (the start date confirmed)",
    }[d.anchor]
    side = "before" if (off.months or off.days or off.working_days) < 0 else "after"
    text = f"{' and '.join(amounts)} {side} {anchor}" if amounts else f"when {anchor}"
    if d.repeat_months:
        text += f", then every {plural(d.repeat_months, 'month')}"
    if d.levels:
        text += f" (only at {', '.join(policy.level(lv).name for lv in d.levels)})"
    if d.remind_before_days:
        days = [str(n) for n in d.remind_before_days]
        listed = f"{', '.join(days[:-1])} and {days[-1]}" if len(days) > 1 else days[0]
        text += f". Reminders {listed} {'day' if days == ['1'] else 'days'} before"
    if d.on_due:
        step = next((t.title for t in flow.transitions if t.trigger == d.on_due), d.on_due)
        text += f". When it passes: {step.lower()}"
    return text[0].upper() + text[1:] + "."


@dataclass(frozen=True)
class SchemePage:
    policy: Policy
    levels: list[Any]
    level_names: dict[str, str]
    standard_names: dict[str, str]
    deadlines: list[tuple[str, str]]
    workflows: list[tuple[str, list[dict[str, Any]]]]


def scheme_page(policy: Policy) -> SchemePage:
    """Levels, themes, standards and questions, deadlines, and both workflows."""
    return SchemePage(
        policy=policy,
        levels=sorted(policy.levels, key=lambda lv: lv.rank),
        level_names={lv.id: lv.name for lv in policy.levels},
        standard_names={s.id: s.name for s in policy.standards},
        deadlines=[(d.label, deadline_words(policy, d)) for d in policy.deadlines],
        workflows=[(k, steps(policy, policy.workflows.of(k))) for k in policy.workflows.kinds()],
    )
