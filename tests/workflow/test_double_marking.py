"""Double marking: two assessors score blind, close scores agree, a moderator settles the rest,
every change is audited and the panel reads the history (issue 18, item 6)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from svqm.errors import Conflict, GuardRefused, InvalidInput, PermissionDenied
from svqm.evidence.models import ModerationCreate, ScoreCreate
from svqm.workflow import actions, judgement
from svqm.workflow import service as workflow
from svqm.workflow.guards import GuardContext, score_passes, scores_agreed
from svqm.workflow.models import AuditEvent
from svqm.workflow.service import Actor
from tests.factories import make_user
from tests.workflow.harness import application_in, make_cast


def _silver(session, registry, now):
    cast = make_cast(session)
    second = make_user(session, "assessor")
    app = application_in(
        session, registry, cast, scheme="svqm", level="silver", state="under_review", at=now
    )
    app.second_assessor_id = second.id
    session.add(app)
    session.flush()
    return cast, second, app


def _questions(registry):
    policy = registry.get("svqm").policy
    return [
        (sid, q) for sid in policy.level("silver").standards for q in policy.standard(sid).questions
    ]


def _score_all(session, registry, app, who, now, *, off: dict[str, int] | None = None):
    for sid, q in _questions(registry):
        score = q.max_score + (off or {}).get(f"{sid}/{q.id}", 0)
        actions.score_question(
            session,
            app,
            ScoreCreate(standard=sid, question=q.id, score=score, note=f"{sid} seen"),
            actor=Actor.of(who),
            registry=registry,
            now=now,
        )


def _unmet(session, registry, app, now, guard=score_passes):
    ctx = GuardContext(
        session=session,
        policy=registry.get("svqm").policy,
        kind="application",
        subject=app,
        actor_id=app.assessor_id,
        actor_role="assessor",
        now=now,
        comment="",
    )
    return guard(ctx)


def test_scores_are_hidden_from_the_other_assessor_until_both_are_in(session, registry, now):
    cast, second, app = _silver(session, registry, now)
    policy = registry.get("svqm").policy
    _score_all(session, registry, app, cast.assessor, now)

    state = judgement.marking_of(session, policy, app)
    assert state is not None
    assert not state.both_in
    # The second assessor sees none of the first's scores, nor does the panel; the first sees theirs.
    assert state.for_reader(second.id).own(second.id) == {}
    assert all(q.first is None for q in state.for_reader(second.id).questions)
    assert all(q.first is None for q in state.for_reader(cast.panel.id).questions)
    assert all(q.first is not None for q in state.for_reader(cast.assessor.id).questions)
    # Nothing is agreed yet: the guard says whose scores are missing.
    assert _unmet(session, registry, app, now) == [
        f"the second assessor has scored 0 of {len(_questions(registry))} questions"
    ]
    # Nor does the history or the audit trail show the first's scores to the second.
    events = workflow.history(session, app)
    assert any(e.trigger == "score" for e in events)
    assert not [
        e for e in judgement.visible_events(events, state, second.id) if e.trigger == "score"
    ]
    assert judgement.score_history(session, state, app, second.id) == []
    assert judgement.score_history(session, state, app, cast.panel.id) == []

    _score_all(session, registry, app, second, now)

    state = judgement.marking_of(session, policy, app)
    assert state is not None
    assert state.both_in
    assert all(q.first is not None for q in state.for_reader(second.id).questions)
    assert _unmet(session, registry, app, now) == []


def test_a_difference_over_the_threshold_goes_to_the_moderator(session, registry, now):
    cast, second, app = _silver(session, registry, now)
    policy = registry.get("svqm").policy
    wide, close = "plan/stakeholder_map", "calculate/forecast"  # both scored 0 to 4
    _score_all(session, registry, app, cast.assessor, now)
    _score_all(session, registry, app, second, now, off={wide: -3, close: -1})

    state = judgement.marking_of(session, policy, app)
    assert state is not None
    by_key = {q.key: q for q in state.questions}
    assert by_key[close].agreed == 3  # within the threshold of 1: the lower stands
    assert [q.key for q in state.to_moderate] == [wide]
    assert _unmet(session, registry, app, now, scores_agreed) == [
        "the moderator must agree 1 score(s) where the two assessors differ by more than 1"
    ]
    with pytest.raises(GuardRefused):
        workflow.fire(
            session,
            app,
            "recommend_award",
            actor=Actor.of(cast.assessor),
            registry=registry,
            now=now,
        )

    # Neither assessor, nor a panel member (this scheme's moderator is an admin), may moderate.
    for who in (cast.assessor, second, cast.panel):
        with pytest.raises(PermissionDenied):
            actions.moderate_score(
                session,
                app,
                ModerationCreate(standard="plan", question="stakeholder_map", score=2, note="x"),
                actor=Actor.of(who),
                registry=registry,
                now=now,
            )
    with pytest.raises(InvalidInput):
        actions.moderate_score(
            session,
            app,
            ModerationCreate(standard="plan", question="stakeholder_map", score=2, note="  "),
            actor=Actor.of(cast.admin),
            registry=registry,
            now=now,
        )
    actions.moderate_score(
        session,
        app,
        ModerationCreate(
            standard="plan", question="stakeholder_map", score=2, note="Map is partial"
        ),
        actor=Actor.of(cast.admin),
        registry=registry,
        now=now,
    )
    state = judgement.marking_of(session, policy, app)
    assert state is not None
    assert state.to_moderate == []
    assert {q.key: q for q in state.questions}[wide].moderated
    assert _unmet(session, registry, app, now, scores_agreed) == []


def test_every_score_change_is_an_audit_event_and_the_panel_reads_the_history(
    session, registry, now
):
    cast, second, app = _silver(session, registry, now)
    _score_all(session, registry, app, cast.assessor, now)
    _score_all(session, registry, app, second, now, off={"plan/stakeholder_map": -4})
    actions.moderate_score(
        session,
        app,
        ModerationCreate(standard="plan", question="stakeholder_map", score=3, note="Agreed at 3"),
        actor=Actor.of(cast.admin),
        registry=registry,
        now=now,
    )
    # The first assessor changes one score: old and new are on record, with the note.
    actions.score_question(
        session,
        app,
        ScoreCreate(standard="report", question="public_reporting", score=4, note="Reread"),
        actor=Actor.of(cast.assessor),
        registry=registry,
        now=now,
    )
    events = session.exec(
        select(AuditEvent)
        .where(AuditEvent.subject_id == app.id, AuditEvent.subject_kind == "application")
        .order_by(AuditEvent.seq)
    ).all()
    triggers = [e.trigger for e in events]
    assert triggers.count("score") == 2 * len(_questions(registry)) + 1
    assert "agree_scores" in triggers
    moderated = next(e for e in events if e.trigger == "moderate_score")
    assert moderated.actor_id == cast.admin.id
    assert "(moderated): not scored to 3; note: Agreed at 3" in moderated.comment
    last = events[-1]
    assert last.trigger == "score"
    assert last.actor_id == cast.assessor.id
    assert "4 to 4; note: Reread" in last.comment
    assert all(e.visibility == "internal" for e in events if e.trigger != "assign_assessor")

    policy = registry.get("svqm").policy
    state = judgement.marking_of(session, policy, app)
    history = judgement.score_history(session, state, app, cast.panel.id)
    kinds = {c.kind for c in history}
    assert kinds == {"assessor", "agreed", "moderated"}
    change = history[-1]
    assert (change.actor_id, change.old, change.new, change.note) == (
        cast.assessor.id,
        4,
        4,
        "Reread",
    )


def test_scoring_is_for_the_two_assessors_only_and_unchanged_scores_are_not_audited(
    session, registry, now
):
    cast, second, app = _silver(session, registry, now)
    stranger = make_user(session, "assessor")
    data = ScoreCreate(standard="plan", question="strategy", score=1)
    with pytest.raises(PermissionDenied):
        actions.score_question(
            session, app, data, actor=Actor.of(stranger), registry=registry, now=now
        )
    actions.score_question(session, app, data, actor=Actor.of(second), registry=registry, now=now)
    before = app.version
    actions.score_question(session, app, data, actor=Actor.of(second), registry=registry, now=now)
    assert app.version == before
    with pytest.raises(Conflict):
        actions.moderate_score(
            session,
            app,
            ModerationCreate(standard="plan", question="strategy", score=1, note="too early"),
            actor=Actor.of(cast.admin),
            registry=registry,
            now=now,
        )
