"""The steps a person may take on an application or award now, each as a form to show."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from svqm.policy import Workflow
from svqm.workflow import service as workflow
from svqm.workflow.guards import asks_for
from svqm.workflow.models import Subject, kind_of
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor


@dataclass(frozen=True)
class TriggerForm:
    """One step: ready to take now, or not yet with every unmet reason (as the engine says it)."""

    trigger: str
    title: str
    ready: bool
    unmet: list[str]
    needs_comment: bool
    primary: bool
    warning: bool
    # Asks for confirmation on a page of its own first: the policy's `confirm`, a step that
    # cannot be undone, or one that changes what the credential says (suspended, revoked).
    confirm: bool = False


def trigger_forms(
    session: Session, subject: Subject, actor: Actor, registry: SchemeRegistry, now: datetime
) -> list[TriggerForm]:
    """The steps the person may take now, and those not ready yet; the primary step first."""
    ready, unmet = workflow.available(session, subject, actor=actor, registry=registry, now=now)
    flow = registry.for_subject(session, subject).policy.workflows.of(kind_of(subject))
    forms = [
        TriggerForm(
            trigger=t.trigger,
            title=t.title,
            ready=t.trigger in ready,
            unmet=unmet.get(t.trigger, []),
            needs_comment=asks_for(t.guards, "comment"),
            primary=t.primary,
            warning=t.warning,
            confirm=needs_confirmation(flow, t.trigger),
        )
        for t in flow.transitions
        if subject.state in t.source and (t.trigger in ready or t.trigger in unmet)
    ]
    return sorted(forms, key=lambda f: not f.primary)


def needs_confirmation(flow: Workflow, trigger: str) -> bool:
    """Whether the step is asked about on its own page before it is taken: the policy says so
    (`confirm`), it is marked as a warning (cannot be undone), or it enters a state with a
    credential status."""
    for t in flow.transitions:
        if t.trigger == trigger:
            dest = next((s for s in flow.states if s.name == t.dest), None)
            if t.confirm or t.warning or (dest is not None and dest.credential_status is not None):
                return True
    return False


def done_messages(flows: Iterable[Workflow]) -> dict[str, str]:
    """What a page says once a step is taken (`?done=<trigger>`): each transition's `done` text,
    else 'Done: <its title>.'; the first workflow naming a trigger has its say."""
    messages: dict[str, str] = {}
    for flow in flows:
        for t in flow.transitions:
            messages.setdefault(t.trigger, t.done_text)
    return messages


def all_flows(registry: SchemeRegistry, kind: str) -> list[Workflow]:
    """The workflows of one kind of every current scheme."""
    return [s.policy.workflows.of(kind) for _, s in sorted(registry.current.items())]


def step_title(flow: Workflow, trigger: str) -> str:
    """A trigger's title in this workflow (an audit event's trigger may be the engine's own)."""
    t = next((t for t in flow.transitions if t.trigger == trigger), None)
    return t.title if t else trigger.replace("_", " ").capitalize()


def holder_steps(
    session: Session, award: Subject, actor: Actor, registry: SchemeRegistry, now: datetime
) -> list[TriggerForm]:
    """The steps an award's holder may take on it from its page, each asked about on a page of
    its own (a charter's withdrawal); filing a report has its own form and is not among them."""
    return [f for f in trigger_forms(session, award, actor, registry, now) if f.confirm and f.ready]
