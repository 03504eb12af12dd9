"""What the case pages show of the record of judgement: the two assessors' scores (hidden from
each other until both are in), the moderation still to do, every score change, and who of the
panel has decided what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from svqm.accounts import service as accounts
from svqm.evidence.marking import Marking, QuestionMarks
from svqm.policy import Policy
from svqm.workflow import judgement
from svqm.workflow.models import Application
from svqm.workflow.service import Actor

KIND_WORDS = {
    "assessor": "Assessor's score",
    "agreed": "Agreed (scores close)",
    "moderated": "Moderated",
}


@dataclass(frozen=True)
class QuestionLine:
    """One question of a double-marked application, in words, with its scores as shown."""

    key: str
    standard: str
    text: str
    max_score: int
    marks: QuestionMarks

    @property
    def status(self) -> str:
        m = self.marks
        if m.moderated:
            return "Moderated"
        if m.agreed is not None:
            return "Agreed"
        if m.first is not None and m.second is not None:
            return "For the moderator"
        return "Waiting for scores"


@dataclass(frozen=True)
class ChangeLine:
    """One score change: when, which question, what kind, whose score, who changed it, old, new."""

    at: datetime
    question: str
    kind: str
    whose: str
    by: str
    old: int | None
    new: int | None
    note: str


@dataclass(frozen=True)
class DecisionLine:
    member: str
    step: str
    at: datetime
    comment: str


@dataclass(frozen=True)
class StepNeed:
    step: str
    quorum: int
    agreeing: int

    @property
    def needed(self) -> int:
        return max(0, self.quorum - self.agreeing)


@dataclass(frozen=True)
class Judgement:
    """The record of judgement for one reader."""

    # None when the level is scored by one assessor.
    marking: Marking | None
    questions: list[QuestionLine]
    # Which of the two the reader is ("first", "second"), if either.
    reader_is: str | None
    first: str
    second: str
    moderator: str
    changes: list[ChangeLine]
    decisions: list[DecisionLine]
    needs: list[StepNeed]


def _question_words(policy: Policy, standard: str, question: str) -> tuple[str, str, int]:
    std = policy.standard(standard)
    q = next((q for q in std.questions if q.id == question), None)
    return std.name, q.text if q else question, q.max_score if q else 0


def judgement_of(
    session: Session, policy: Policy, app: Application, actor: Actor, state: Marking | None
) -> Judgement:
    """Read the record of judgement of an application for this reader (`state` as read whole)."""
    shown = state.for_reader(actor.id) if state is not None else None
    changes = judgement.score_history(session, state, app, actor.id)
    tally = judgement.decisions(session, policy, app)
    people = {app.assessor_id, app.second_assessor_id}
    people |= {c.actor_id for c in changes} | {c.assessor_id for c in changes}
    people |= {v.member_id for v in tally.votes}
    names = accounts.display_names(session, people)
    titles = {trigger: title for trigger, title, _, _ in tally.steps}

    def name(uid: int | None, none: str) -> str:
        return names.get(uid, none) if uid is not None else none

    questions = []
    if shown is not None:
        for q in shown.questions:
            standard, text, top = _question_words(policy, q.standard, q.question)
            questions.append(QuestionLine(q.key, standard, text, top, q))
    reader_is = None
    if state is not None and actor.role == "assessor":
        reader_is = {state.first_id: "first", state.second_id: "second"}.get(actor.id)
    moderator = policy.settings.moderation.moderator
    return Judgement(
        marking=shown,
        questions=questions,
        reader_is=reader_is,
        first=name(app.assessor_id, "not assigned"),
        second=name(app.second_assessor_id, "not assigned"),
        moderator="an admin" if moderator == "admin" else "a panel member",
        changes=[
            ChangeLine(
                at=c.at,
                question="{}: {}".format(*_question_words(policy, c.standard, c.question)[:2]),
                kind=KIND_WORDS.get(c.kind, c.kind),
                whose=name(c.assessor_id, "agreed score"),
                by=name(c.actor_id, "the system"),
                old=c.old,
                new=c.new,
                note=c.note,
            )
            for c in changes
        ],
        decisions=[
            DecisionLine(
                member=name(v.member_id, "a member"),
                step=titles.get(v.trigger, v.trigger),
                at=v.at,
                comment=v.comment,
            )
            for v in tally.votes
        ],
        needs=[StepNeed(title, quorum, have) for _, title, quorum, have in tally.steps],
    )
