"""Steps that need several members to agree (`quorum`): each member's decision, and the tally.

A decision belongs to the round of the subject's present state (the audit event that moved it
there), so a case that comes back to the same state starts a new round.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from svqm.errors import Conflict
from svqm.policy import TransitionDef, Workflow
from svqm.workflow.models import AuditEvent, DecisionVote, Subject, kind_of


def round_of(session: Session, subject: Subject) -> int:
    """The seq of the audit event that moved the subject into its present state (0: none did)."""
    seq = session.exec(
        select(func.max(AuditEvent.seq)).where(
            AuditEvent.subject_kind == kind_of(subject),
            AuditEvent.subject_id == subject.id,
            AuditEvent.dest == subject.state,
            AuditEvent.source != AuditEvent.dest,
        )
    ).one()
    return int(seq or 0)


def recorded(session: Session, subject: Subject) -> list[DecisionVote]:
    """The decisions recorded in the present round, oldest first."""
    return list(
        session.exec(
            select(DecisionVote)
            .where(
                DecisionVote.subject_kind == kind_of(subject),
                DecisionVote.subject_id == subject.id,
                DecisionVote.round == round_of(session, subject),
            )
            .order_by(col(DecisionVote.id))
        )
    )


def mine(session: Session, subject: Subject, member_id: int | None) -> DecisionVote | None:
    """The member's decision in the present round, if they recorded one."""
    return next((v for v in recorded(session, subject) if v.member_id == member_id), None)


def record(
    session: Session,
    subject: Subject,
    t: TransitionDef,
    *,
    member_id: int,
    comment: str,
    now: datetime,
) -> int:
    """Record the member's decision to take `t`; how many members now agree on it.

    A member decides once a round (a second decision, or two at once, is a Conflict)."""
    assert subject.id is not None
    round_ = round_of(session, subject)
    if mine(session, subject, member_id) is not None:
        raise Conflict(
            "you have already recorded your decision on this; another member decides next"
        )
    vote = DecisionVote(
        subject_kind=kind_of(subject),
        subject_id=subject.id,
        round=round_,
        trigger=t.trigger,
        member_id=member_id,
        comment=comment.strip(),
        at=now,
    )
    try:
        with session.begin_nested():
            session.add(vote)
            session.flush()
    except IntegrityError:
        raise Conflict(
            "you have already recorded your decision on this; another member decides next"
        ) from None
    return sum(1 for v in recorded(session, subject) if v.trigger == t.trigger)


@dataclass(frozen=True)
class Tally:
    """Where a case's decision stands: each step's quorum, who decided what, what is still needed."""

    votes: list[DecisionVote]
    # Each step that needs several members: (trigger, its title, how many must agree, how many do).
    steps: list[tuple[str, str, int, int]]

    @property
    def needed(self) -> dict[str, int]:
        """How many more agreeing decisions each step needs."""
        return {trigger: max(0, need - have) for trigger, _, need, have in self.steps}


def tally(session: Session, subject: Subject, flow: Workflow) -> Tally:
    """The decisions of the present round on the steps from the subject's state that need a quorum."""
    steps = [t for t in flow.transitions if subject.state in t.source and t.quorum > 1]
    if not steps:
        return Tally([], [])
    votes = recorded(session, subject)
    return Tally(
        votes,
        [
            (t.trigger, t.title, t.quorum, sum(1 for v in votes if v.trigger == t.trigger))
            for t in steps
        ],
    )
