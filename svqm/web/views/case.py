"""The case file the assessor, the panel and admins read: evidence, reviews, scores, history,
the next deadline and the steps the reader may take."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlmodel import Session

from svqm.accounts import service as accounts
from svqm.evidence import marking
from svqm.evidence import pledges as pledge_service
from svqm.evidence import requirements as evidence_requirements
from svqm.evidence import service as evidence_service
from svqm.evidence.models import EvidenceItem, Pledge, Review
from svqm.evidence.requirements import Slot
from svqm.evidence.scoring import ScoreResult
from svqm.policy import Level, Policy, Standard
from svqm.policy.models import StateDef
from svqm.web.format import Tag, state_tag, status_change
from svqm.web.views.judgement import Judgement, judgement_of
from svqm.web.views.triggers import TriggerForm, step_title, trigger_forms
from svqm.workflow import deadlines, judgement, queries
from svqm.workflow import service as workflow
from svqm.workflow.effects import members_covered
from svqm.workflow.models import Application, AuditEvent
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor


@dataclass(frozen=True)
class NextDeadline:
    label: str
    due_at: datetime


@dataclass(frozen=True)
class CaseFile:
    """Everything about one application that a reviewer, the panel or an admin reads."""

    app: Application
    policy: Policy
    level: Level
    state: StateDef
    state_tag: Tag
    organisation: str
    # The pledges the application holds or retired, with what it does with each (made, carried…).
    pledges: list[tuple[Pledge, str]]
    theme_names: dict[str, str]
    slots: list[Slot]
    evidence_items: dict[int, EvidenceItem]
    reviews: list[Review]
    events: list[AuditEvent]
    state_titles: dict[str, str]
    # Each history row's step and, when it moved the case, how the status changed, by row id.
    steps: dict[int, tuple[str, str]]
    names: dict[int, str]
    standards: list[Standard]
    result: ScoreResult
    scores: dict[str, int]
    # Each scored question's line with the assessor's note (staff read every note).
    lines: dict[str, evidence_service.ScoreLine]
    deadline: NextDeadline | None
    forms: list[TriggerForm]
    # Double marking, the score history and the panel's recorded decisions, as this reader sees them.
    judgement: Judgement

    def context(self) -> dict[str, Any]:
        """The template's variables: each field, and the whole file as `ctx` for the macros."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"ctx": self}


def next_deadline(session: Session, policy: Policy, app: Application) -> NextDeadline | None:
    """The soonest running deadline of an application, with its label."""
    assert app.id is not None
    running = queries.open_deadlines(session, app.id)
    if not running:
        return None
    kind, due = running[0]
    return NextDeadline(deadlines.deadline(policy, kind).label, due)


def case_file(
    session: Session, registry: SchemeRegistry, app: Application, actor: Actor, now: datetime
) -> CaseFile:
    """Read the case file of an application for this reader."""
    assert app.id is not None
    policy = registry.for_subject(session, app).policy
    level = policy.level(app.level)
    flow = policy.workflows.application
    slots = evidence_requirements.checklist(
        session,
        application_id=app.id,
        policy=policy,
        level=level,
        members=members_covered(session, app.id),
    )
    items = {i.id: i for s in slots for i in s.items if i.id is not None}
    reviews = evidence_service.reviews_of(session, list(items))
    state = judgement.marking_of(session, policy, app)
    events = judgement.visible_events(workflow.history(session, app), state, actor.id)
    actors = {e.actor_id for e in events} | {r.reviewer_id for r in reviews}
    actors |= {app.assessor_id, app.second_assessor_id}
    # The scores, their notes and the result, from one read of the score rows.
    rows = evidence_service.current_scores(session, app.id)
    scores = {f"{r.standard}/{r.question}": r.score for r in rows}
    lines = evidence_service.lines_of(rows, staff=True)
    if state is not None and actor.id in (state.first_id, state.second_id):
        # A double-marking assessor scores on their own scores, not the agreed ones.
        scores = state.own(actor.id)
        lines = {
            key: evidence_service.ScoreLine(score, note, "internal")
            for key, (score, note) in marking.own_notes(session, app.id, actor.id).items()
        }
    return CaseFile(
        app=app,
        policy=policy,
        level=level,
        state=flow.state(app.state),
        state_tag=state_tag(flow, app.state),
        organisation=accounts.organisation_name(session, app.organisation_id),
        pledges=[
            (p, link.disposition) for p, link in pledge_service.application_pledges(session, app.id)
        ],
        theme_names={t.id: t.name for t in policy.themes},
        slots=slots,
        evidence_items=items,
        reviews=reviews,
        events=events,
        state_titles={s.name: s.title for s in flow.states},
        steps={
            e.id or 0: (
                step_title(flow, e.trigger),
                status_change(flow, e.source, e.dest) if e.source != e.dest else "",
            )
            for e in events
        },
        names=accounts.display_names(session, actors),
        standards=[policy.standard(sid) for sid in level.standards],
        result=evidence_service.result_of(policy, level, rows),
        scores=scores,
        lines=lines,
        deadline=next_deadline(session, policy, app),
        forms=trigger_forms(session, app, actor, registry, now),
        judgement=judgement_of(session, policy, app, actor, state),
    )
