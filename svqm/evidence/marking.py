"""Double marking: two assessors score blind, close scores agree, a moderator settles the rest.

At a level with `assessors: 2` each assessor's own scores are `AssessorScore` rows; the agreed
score of a question (the `Score` that scoring reads) exists only once both have scored every
question: the lower of the two where they differ by at most the scheme's threshold, else the
moderator's. Every change is a `ScoreChange`. These functions trust their caller (the workflow)
to have checked who acts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from svqm.db import insert_now, new_row
from svqm.errors import Conflict, InvalidInput
from svqm.evidence.models import AssessorScore, ModerationCreate, Score, ScoreChange
from svqm.policy import Level, Policy, Question


def question_of(policy: Policy, level: Level, standard: str, question: str, score: int) -> Question:
    """The level's question a score is for, with the score in its range (else InvalidInput)."""
    if standard not in level.standards:
        assessed = ", ".join(level.standards) or "none"
        raise InvalidInput(
            f"standard '{standard}' is not assessed at {level.name} (assessed: {assessed})"
        )
    found = next((q for q in policy.standard(standard).questions if q.id == question), None)
    if found is None:
        raise InvalidInput(f"standard '{standard}' has no question '{question}'")
    if not 0 <= score <= found.max_score:
        raise InvalidInput(
            f"a score for {standard}/{question} is 0 to {found.max_score} (got {score})"
        )
    return found


@dataclass(frozen=True)
class QuestionMarks:
    """One question's two scores (None: not scored, or hidden from this reader) and agreed one."""

    standard: str
    question: str
    first: int | None
    second: int | None
    agreed: int | None
    moderated: bool

    @property
    def key(self) -> str:
        return f"{self.standard}/{self.question}"


@dataclass(frozen=True)
class Marking:
    """Where a double-marked application's scoring stands."""

    threshold: int
    first_id: int | None
    second_id: int | None
    # How many questions each assessor has scored, of `total`.
    first_scored: int
    second_scored: int
    total: int
    questions: list[QuestionMarks]
    # False when the questions were read for an assessor before both had scored: the other's
    # scores (and every agreed one) are left out.
    revealed: bool = True

    @property
    def both_in(self) -> bool:
        return (
            self.second_id is not None
            and self.first_scored == self.total
            and self.second_scored == self.total
        )

    @property
    def to_moderate(self) -> list[QuestionMarks]:
        """The questions whose two scores differ too much to agree without the moderator."""
        return [q for q in self.questions if self.both_in and q.agreed is None]

    def reasons(self) -> list[str]:
        """What stands between the scores and their agreement, in plain words (empty: agreed)."""
        if self.second_id is None:
            return ["a second assessor must be assigned: two assessors score this level"]
        out = [
            f"the {which} assessor has scored {n} of {self.total} questions"
            for which, n in (("first", self.first_scored), ("second", self.second_scored))
            if n < self.total
        ]
        if not out and self.to_moderate:
            out.append(
                f"the moderator must agree {len(self.to_moderate)} score(s) where the two "
                f"assessors differ by more than {self.threshold}"
            )
        return out

    def for_reader(self, reader_id: int | None) -> Marking:
        """What this reader may see: before both have scored, an assessor sees only their own
        scores; everyone else sees neither."""
        if self.both_in:
            return self
        mine = {self.first_id: "first", self.second_id: "second"}.get(reader_id)
        return replace(
            self,
            revealed=False,
            questions=[
                replace(
                    q,
                    first=q.first if mine == "first" else None,
                    second=q.second if mine == "second" else None,
                    agreed=None,
                )
                for q in self.questions
            ],
        )

    def own(self, reader_id: int | None) -> dict[str, int]:
        """The reader's own scores keyed 'standard/question' (empty for a non-assessor)."""
        which = {self.first_id: "first", self.second_id: "second"}.get(reader_id)
        if which is None:
            return {}
        return {q.key: score for q in self.questions if (score := getattr(q, which)) is not None}


def own_notes(
    session: Session, application_id: int, assessor_id: int | None
) -> dict[str, tuple[int, str]]:
    """An assessor's own scores with their notes, keyed 'standard/question'."""
    return {
        f"{r.standard}/{r.question}": (r.score, r.note)
        for r in _own_rows(session, application_id)
        if r.assessor_id == assessor_id
    }


def _keys(policy: Policy, level: Level) -> list[tuple[str, str]]:
    return [(sid, q.id) for sid in level.standards for q in policy.standard(sid).questions]


# Built once: every score of a double-marked level reads the marking as it stands.
_OWN_ROWS = select(AssessorScore).where(
    col(AssessorScore.application_id) == bindparam("application_id")
)
_AGREED_ROWS = select(Score).where(col(Score.application_id) == bindparam("application_id"))
_OWN_SCORES = select(
    col(AssessorScore.assessor_id),
    col(AssessorScore.standard),
    col(AssessorScore.question),
    col(AssessorScore.score),
).where(col(AssessorScore.application_id) == bindparam("application_id"))
_AGREED_SCORES = select(
    col(Score.standard), col(Score.question), col(Score.score), col(Score.moderated_by_id)
).where(col(Score.application_id) == bindparam("application_id"))
_OWN_ROW = select(AssessorScore).where(
    col(AssessorScore.application_id) == bindparam("application_id"),
    col(AssessorScore.assessor_id) == bindparam("assessor_id"),
    col(AssessorScore.standard) == bindparam("standard"),
    col(AssessorScore.question) == bindparam("question"),
)


def _own_rows(session: Session, application_id: int) -> list[AssessorScore]:
    return list(session.exec(_OWN_ROWS, params={"application_id": application_id}))


def _agreed_rows(session: Session, application_id: int) -> dict[tuple[str, str], Score]:
    rows = session.exec(_AGREED_ROWS, params={"application_id": application_id})
    return {(r.standard, r.question): r for r in rows}


def marking(
    session: Session,
    *,
    application_id: int,
    policy: Policy,
    level: Level,
    first_id: int | None,
    second_id: int | None,
) -> Marking:
    """The application's double marking as it stands (every score: see `for_reader`)."""
    # Plain columns, not rows: every score given reads the marking again.
    which = {"application_id": application_id}
    own = {
        (assessor, sid, qid): score
        for assessor, sid, qid, score in session.exec(_OWN_SCORES, params=which)
    }
    agreed = {
        (sid, qid): (score, moderated_by)
        for sid, qid, score, moderated_by in session.exec(_AGREED_SCORES, params=which)
    }
    keys = _keys(policy, level)
    questions = [
        QuestionMarks(
            standard=sid,
            question=qid,
            first=own.get((first_id, sid, qid)) if first_id is not None else None,
            second=own.get((second_id, sid, qid)) if second_id is not None else None,
            agreed=agreed[(sid, qid)][0] if (sid, qid) in agreed else None,
            moderated=(sid, qid) in agreed and agreed[(sid, qid)][1] is not None,
        )
        for sid, qid in keys
    ]
    return Marking(
        threshold=policy.settings.moderation.threshold,
        first_id=first_id,
        second_id=second_id,
        first_scored=sum(1 for q in questions if q.first is not None),
        second_scored=sum(1 for q in questions if q.second is not None),
        total=len(keys),
        questions=questions,
    )


def record_own(
    session: Session,
    *,
    application_id: int,
    policy: Policy,
    level: Level,
    standard: str,
    question: str,
    score: int,
    note: str,
    assessor_id: int,
    first_id: int | None,
    second_id: int | None,
    now: datetime,
) -> list[ScoreChange]:
    """An assessor's own score for a question, then the agreed scores it settles; every change."""
    question_of(policy, level, standard, question, score)
    which = {
        "application_id": application_id,
        "assessor_id": assessor_id,
        "standard": standard,
        "question": question,
    }
    row = session.exec(_OWN_ROW, params=which).first()
    note = note.strip()
    changes: list[ScoreChange] = []
    if row is None or row.score != score or row.note != note:
        changes.append(
            new_row(
                ScoreChange,
                application_id=application_id,
                standard=standard,
                question=question,
                kind="assessor",
                assessor_id=assessor_id,
                actor_id=assessor_id,
                old=None if row is None else row.score,
                new=score,
                note=note,
                at=now,
            )
        )
        if row is None:
            row = new_row(
                AssessorScore,
                application_id=application_id,
                assessor_id=assessor_id,
                standard=standard,
                question=question,
                score=score,
                note=note,
                at=now,
            )
            insert_now(session, row, *changes)
        else:
            row.score, row.note, row.at = score, note, now
            session.add(row)
            insert_now(session, *changes)
    return changes


def agree(
    session: Session,
    *,
    application_id: int,
    policy: Policy,
    level: Level,
    first_id: int | None,
    second_id: int | None,
    now: datetime,
) -> list[ScoreChange]:
    """Once both assessors have scored every question, agree each question the moderator has
    not settled: the lower score where the two are close, none (for the moderator) where not."""
    state = marking(
        session,
        application_id=application_id,
        policy=policy,
        level=level,
        first_id=first_id,
        second_id=second_id,
    )
    if not state.both_in:
        return []
    agreed = _agreed_rows(session, application_id)
    changes: list[ScoreChange] = []
    for q in state.questions:
        if q.moderated or q.first is None or q.second is None:
            continue
        close = abs(q.first - q.second) <= state.threshold
        want = min(q.first, q.second) if close else None
        if want == q.agreed:
            continue
        row = agreed.get((q.standard, q.question))
        if want is None:
            assert row is not None
            session.delete(row)
        else:
            row = row or new_row(
                Score,
                application_id=application_id,
                standard=q.standard,
                question=q.question,
                score=want,
            )
            row.score, row.assessor_id, row.at, row.note = want, None, now, ""
            session.add(row)
        changes.append(
            new_row(
                ScoreChange,
                application_id=application_id,
                standard=q.standard,
                question=q.question,
                kind="agreed",
                old=q.agreed,
                new=want,
                note="the two scores are close: the lower stands"
                if close
                else f"the two scores differ by more than {state.threshold}: for the moderator",
                at=now,
            )
        )
    insert_now(session, *changes)
    return changes


def moderate(
    session: Session,
    *,
    application_id: int,
    policy: Policy,
    level: Level,
    data: ModerationCreate,
    moderator_id: int | None,
    first_id: int | None,
    second_id: int | None,
    now: datetime,
) -> ScoreChange | None:
    """The moderator's agreed score for a question, with a note; None if nothing changed."""
    question_of(policy, level, data.standard, data.question, data.score)
    note = data.note.strip()
    if not note:
        raise InvalidInput("say why this is the agreed score: a note is required", field="note")
    state = marking(
        session,
        application_id=application_id,
        policy=policy,
        level=level,
        first_id=first_id,
        second_id=second_id,
    )
    if not state.both_in:
        raise Conflict(
            "both assessors must score every question before a score is moderated "
            f"({'; '.join(state.reasons())})"
        )
    row = _agreed_rows(session, application_id).get((data.standard, data.question))
    if row is not None and row.score == data.score and row.note == note:
        return None
    change = ScoreChange(
        application_id=application_id,
        standard=data.standard,
        question=data.question,
        kind="moderated",
        actor_id=moderator_id,
        old=None if row is None else row.score,
        new=data.score,
        note=note,
        at=now,
    )
    row = row or Score(
        application_id=application_id,
        standard=data.standard,
        question=data.question,
        score=data.score,
    )
    row.score, row.note, row.visibility, row.at = data.score, note, "internal", now
    row.assessor_id, row.moderated_by_id = None, moderator_id
    session.add(row)
    session.add(change)
    session.flush()
    return change


# Built once, with a bind parameter (every case page reads it).
_HISTORY = (
    select(ScoreChange)
    .where(col(ScoreChange.application_id) == bindparam("application_id"))
    .order_by(col(ScoreChange.id))
)


def history(session: Session, application_id: int) -> list[ScoreChange]:
    """Every score change of the application, oldest first."""
    return list(session.exec(_HISTORY, params={"application_id": application_id}))


def visible_history(
    changes: list[ScoreChange], state: Marking | None, reader_id: int | None
) -> list[ScoreChange]:
    """The changes this reader may see: before both assessors have scored, only their own."""
    if state is None or state.both_in:
        return changes
    return [c for c in changes if c.kind == "assessor" and c.assessor_id == reader_id]
