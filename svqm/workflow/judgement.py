"""The record of judgement as one reader may see it: double marking, the score history, and the
decisions of steps that need several members (read only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, select

from svqm.accounts.models import Organisation
from svqm.evidence import marking
from svqm.evidence.marking import Marking
from svqm.evidence.models import ScoreChange
from svqm.policy import Policy
from svqm.workflow import votes
from svqm.workflow.models import Application, AuditEvent
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor
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


@dataclass(frozen=True)
class AwaitingModeration:
    """A double-marked application whose two assessors' scores differ beyond the threshold on
    some questions, waiting for the moderator."""

    application_id: int
    organisation: str
    scheme: str
    level: str
    questions: int  # how many wait for an agreed score
    threshold: int


def awaiting_moderation(
    session: Session, registry: SchemeRegistry, actor: Actor
) -> list[AwaitingModeration]:
    """The applications waiting for a moderator that this person may moderate (the policy's
    moderator role, neither of the case's assessors, no conflict), oldest first."""
    from svqm.workflow.actions import moderator_barred

    rows = session.exec(
        select(Application, Organisation.name)
        .join(Organisation, col(Organisation.id) == col(Application.organisation_id))
        .where(col(Application.second_assessor_id).is_not(None))
        .order_by(col(Application.id))
    ).all()
    out: list[AwaitingModeration] = []
    for app, organisation in rows:
        scheme = registry.for_subject(session, app)
        policy = scheme.policy
        if not policy.workflows.application.state(app.state).reviewable:
            continue
        state = marking_of(session, policy, app)
        if state is None or not state.to_moderate:
            continue
        if moderator_barred(session, app, scheme, actor):
            continue
        out.append(
            AwaitingModeration(
                application_id=app.id or 0,
                organisation=organisation,
                scheme=policy.name,
                level=policy.level(app.level).name,
                questions=len(state.to_moderate),
                threshold=state.threshold,
            )
        )
    return out
