"""What the panel reads before deciding: who may not decide and why, and the assessor's
recommendation and notes to set beside the scores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from svqm.policy import TransitionDef
from svqm.web.views.case import CaseFile
from svqm.web.views.triggers import step_title
from svqm.workflow import service as workflow
from svqm.workflow.guards import asks_for
from svqm.workflow.models import AuditEvent
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor


@dataclass(frozen=True)
class Recommendation:
    """The assessor's last step that moved the case (their recommendation), as it was taken."""

    step: str
    state: str
    comment: str
    by: str
    at: datetime
    internal: bool


@dataclass(frozen=True)
class Note:
    """One comment the assessor left on an evidence item."""

    evidence: str
    decision: str
    comment: str
    internal: bool


@dataclass(frozen=True)
class PanelView:
    # Why the reader may not decide this case (four eyes, conflicts); empty when nothing bars them.
    barred: list[str]
    recommendation: Recommendation | None
    notes: list[Note]
    # The organisation's own step that put the case before the panel again (an appeal), and the
    # panel's decision it answers; None when the case came from the assessor.
    request: Recommendation | None = None
    answered: Recommendation | None = None


DECISION_WORDS = {
    "accepted": "Accepted",
    "more_information": "More information needed",
    "rejected": "Rejected",
}


def recommendation_of(view: CaseFile) -> Recommendation | None:
    """The latest step an assessor took that moved the case to another state."""
    for e in reversed(view.events):
        if e.actor_role == "assessor" and e.source != e.dest:
            return _taken(view, e, "the assessor")
    return None


def _taken(view: CaseFile, e: AuditEvent, nobody: str = "") -> Recommendation:
    """A step as it was taken: its title, the state it led to, its comment, who and when."""
    return Recommendation(
        step=step_title(view.policy.workflows.application, e.trigger),
        state=view.state_titles.get(e.dest, e.dest),
        comment=e.comment,
        by=view.names.get(e.actor_id, nobody) if e.actor_id else nobody,
        at=e.at,
        internal=e.visibility == "internal",
    )


def request_of(view: CaseFile) -> tuple[Recommendation | None, Recommendation | None]:
    """When the organisation's own step put the case in its state (an appeal): that step, and
    the panel's last decision before it (the one it answers)."""
    events = list(view.events)
    for n in range(len(events) - 1, -1, -1):
        e = events[n]
        if e.source == e.dest:
            continue
        if e.dest != view.app.state or e.actor_role != "applicant":
            return None, None
        answered = next(
            (
                _taken(view, d)
                for d in reversed(events[:n])
                if d.actor_role == "panel" and d.source != d.dest
            ),
            None,
        )
        return _taken(view, e), answered
    return None, None


def notes_of(view: CaseFile) -> list[Note]:
    """The assessor's comments on the evidence, newest first (staff-only ones included)."""
    notes = []
    for r in reversed(view.reviews):
        item = view.evidence_items.get(r.evidence_id)
        if not r.comment or item is None:
            continue
        if view.app.assessor_id is not None and r.reviewer_id != view.app.assessor_id:
            continue
        notes.append(
            Note(
                evidence=item.title or item.filename,
                decision=DECISION_WORDS.get(r.decision, r.decision),
                comment=r.comment,
                internal=r.visibility == "internal",
            )
        )
    return notes


def panel_view(
    session: Session, view: CaseFile, actor: Actor, registry: SchemeRegistry, now: datetime
) -> PanelView:
    """What the panel's decision screen shows beside the case file."""
    request, answered = request_of(view)
    return PanelView(
        barred=workflow.barred(session, view.app, actor=actor, registry=registry, now=now),
        recommendation=recommendation_of(view),
        notes=notes_of(view),
        request=request,
        answered=answered,
    )


def to_confirm(view: CaseFile, trigger: str, comment: str) -> TransitionDef | None:
    """The step, if the policy asks for it to be confirmed on a page of its own first and it is
    ready to be: offered to the reader with nothing unmet, and a comment it asks for given (else
    the step is tried at once and the case page says what is missing)."""
    t = view.policy.workflows.application.transition(trigger, view.app.state)
    if t is None or not t.confirm:
        return None
    if not any(f.trigger == trigger and f.ready for f in view.forms):
        return None
    return t if comment or not asks_for(t.guards, "comment") else None
