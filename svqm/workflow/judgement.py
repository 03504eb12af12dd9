"""The record of judgement as one reader may see it: double marking, the score history, and the
decisions of steps that need several members (read only)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from svqm.evidence import marking
from svqm.evidence.marking import Marking
from svqm.evidence.models import ScoreChange
from svqm.policy import Policy
from svqm.workflow import votes
from svqm.workflow.models import Application, AuditEvent
from svqm.workflow.votes import Tally


def marking_of(session: Session, policy: Policy, app: Application) -> Marking | None:
    """The double marking of the application, every score in it (None: one assessor scores)."""
    level = policy.level(app.level)
    if level.assessors < 2:
        return None
    assert app.id is not None
    return marking.marking(
        session,
        application_id=app.id,
        policy=policy,
        level=level,
        first_id=app.assessor_id,
        second_id=app.second_assessor_id,
    )


def visible_events(
    events: Sequence[AuditEvent], state: Marking | None, reader_id: int | None
) -> list[AuditEvent]:
    """The audit events this reader may see: before both assessors have scored, neither sees the
    other's scoring (and nobody else sees either's)."""
    if state is None or state.both_in:
        return list(events)
    others = {state.first_id, state.second_id} - {reader_id, None}
    return [e for e in events if not (e.trigger == "score" and e.actor_id in others)]


def score_history(
    session: Session, state: Marking | None, app: Application, reader_id: int | None
) -> list[ScoreChange]:
    """Every score change of the application this reader may see, oldest first."""
    assert app.id is not None
    return marking.visible_history(marking.history(session, app.id), state, reader_id)


def decisions(session: Session, policy: Policy, app: Application) -> Tally:
    """Who has decided what on the steps from the present state that need several members."""
    return votes.tally(session, app, policy.workflows.application)
