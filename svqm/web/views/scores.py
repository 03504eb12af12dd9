"""The API's reading of an application's scores: the result, the notes this reader may see, and
for a double-marked level the two assessors' scoring as this reader may see it."""

from __future__ import annotations

from sqlmodel import Session

from svqm.evidence import service as evidence_service
from svqm.evidence.marking import Marking
from svqm.web.schemas import (
    MarkedQuestionPublic,
    MarkingPublic,
    ScoreNotePublic,
    ScoreResultPublic,
)
from svqm.workflow import judgement
from svqm.workflow.models import Application
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor


def marking_public(state: Marking, reader_id: int | None) -> MarkingPublic:
    shown = state.for_reader(reader_id)
    return MarkingPublic(
        threshold=state.threshold,
        first_assessor_id=state.first_id,
        second_assessor_id=state.second_id,
        first_scored=state.first_scored,
        second_scored=state.second_scored,
        questions_total=state.total,
        both_scored=state.both_in,
        revealed=shown.revealed,
        to_moderate=[q.key for q in state.to_moderate],
        unmet=state.reasons(),
        questions=[
            MarkedQuestionPublic(
                standard=q.standard,
                question=q.question,
                first=q.first,
                second=q.second,
                agreed=q.agreed,
                moderated=q.moderated,
            )
            for q in shown.questions
        ],
    )


def score_result_public(
    session: Session, registry: SchemeRegistry, app: Application, actor: Actor, *, staff: bool
) -> ScoreResultPublic:
    """The result against the level's standards, explained, for this reader."""
    assert app.id is not None
    policy = registry.for_subject(session, app).policy
    rows = evidence_service.current_scores(session, app.id)  # one read for the result and notes
    result = evidence_service.result_of(policy, policy.level(app.level), rows)
    state = judgement.marking_of(session, policy, app) if staff else None
    return ScoreResultPublic(
        passed=result.passed,
        overall_percent=result.overall_percent,
        threshold=result.threshold,
        standards=result.standards,
        failed_mandatory=result.failed_mandatory,
        unscored=result.unscored,
        notes=[
            ScoreNotePublic(
                standard=key.split("/")[0],
                question=key.split("/")[1],
                note=line.note,
                visibility=line.visibility,
            )
            for key, line in sorted(evidence_service.lines_of(rows, staff=staff).items())
            if line.note
        ],
        marking=marking_public(state, actor.id) if state is not None else None,
    )
