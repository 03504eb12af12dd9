from __future__ import annotations

import io
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func
from sqlmodel import select

from svqm.db import session_scope
from svqm.errors import SvqmError
from svqm.evidence import requirements
from svqm.evidence import service as evidence_service
from svqm.evidence.models import PledgeCreate, ReviewCreate, ScoreCreate
from svqm.workflow import actions, guards
from svqm.workflow import service as workflow
from svqm.workflow.models import Application, AuditEvent, Award
from tests.factories import make_org, make_user, store_at

SCHEMES = ["svqm", "svqm-health"]
ACTORS = [
    "applicant_a",
    "applicant_b",
    "assessor_1",
    "assessor_2",
    "panel",
    "panel_a",
    "former_assessor",
    "admin",
    "system",
]


def test_random_actors_and_triggers_keep_the_invariants(engine, registry, now, tmp_path):
    store = store_at(tmp_path / "evidence")

    def cast():
        """Fresh organisations and people for each example (they share one database)."""
        with session_scope(engine) as s:
            org_a, org_b = make_org(s), make_org(s)
            people = {
                "applicant_a": make_user(s, "applicant", org_a),
                "applicant_b": make_user(s, "applicant", org_b),
                "assessor_1": make_user(s, "assessor"),
                # A member of organisation A: it must never assess or decide A's applications.
                "assessor_2": make_user(s, "assessor", org_a),
                "panel": make_user(s, "panel"),
                # A panel member from organisation A: a conflict for A's applications.
                "panel_a": make_user(s, "panel", org_a),
                "admin": make_user(s, "admin"),
            }
        actors = {k: workflow.Actor.of(u) for k, u in people.items()} | {"system": workflow.SYSTEM}
        # assessor_1 later also sits on the panel (a role change): four eyes must still hold.
        actors["former_assessor"] = workflow.Actor(people["assessor_1"].id, "panel")
        return org_a, org_b, people, actors

    triggers = sorted(
        {
            t.trigger
            for sid in SCHEMES
            for kind in ("application", "award")
            for t in registry.get(sid).policy.workflows.of(kind).transitions
        }
    )
    clock = {"now": now}

    class Engine(RuleBasedStateMachine):
        apps = Bundle("apps")

        def __init__(self):
            super().__init__()
            self.org_a, self.org_b, self.people, self.actors = cast()
            self.mine: set[int] = set()

        @rule(
            target=apps,
            scheme=st.sampled_from(SCHEMES),
            who=st.sampled_from(["a", "b"]),
            level=st.sampled_from(["Level 1", "Silver"]),
        )
        def open_application(self, scheme, who, level):
            try:
                with session_scope(engine) as s:
                    app = workflow.open_application(
                        s,
                        organisation_id=(self.org_a if who == "a" else self.org_b).id,
                        scheme_id=scheme,
                        level=level,
                        actor=self.actors[f"applicant_{who}"],
                        registry=registry,
                        now=clock["now"],
                    )
                    self.mine.add(app.id)
                    return app.id
            except SvqmError:
                return None

        @rule(app_id=apps, count=st.integers(1, 7), only_mandatory=st.booleans())
        def add_pledges(self, app_id, count, only_mandatory):
            def add(s, app, policy):
                themes = [t for t in policy.themes if t.mandatory or not only_mandatory]
                themes = themes or policy.themes
                for i in range(count):
                    actions.add_pledge(
                        s,
                        app,
                        PledgeCreate(
                            theme=themes[i % len(themes)].id,
                            title=f"p{i}",
                            indicator="n",
                            target="1",
                            due_date=(clock["now"] + timedelta(days=100)).date(),
                        ),
                        actor=self._owner(app),
                        registry=registry,
                        now=clock["now"],
                    )

            self._in_app(app_id, add)

        @rule(app_id=apps)
        def upload_everything(self, app_id):
            def upload(s, app, policy):
                for slot in requirements.checklist(
                    s, application_id=app.id, policy=policy, level=policy.level(app.level)
                ):
                    actions.upload_evidence(
                        s,
                        app,
                        store,
                        requirement=slot.id,
                        pledge_id=None,
                        stream=io.BytesIO(slot.id.encode()),
                        filename="e.txt",
                        title="",
                        actor=self._owner(app),
                        registry=registry,
                        now=clock["now"],
                    )

            self._in_app(app_id, upload)

        @rule(
            app_id=apps,
            decision=st.sampled_from(["accepted", "accepted", "more_information", "rejected"]),
            who=st.sampled_from(["assessor_1", "assessor_2"]),
        )
        def review_everything(self, app_id, decision, who):
            def review(s, app, policy):
                for item in evidence_service.list_evidence(s, app.id):
                    actions.review_evidence(
                        s,
                        app,
                        item,
                        ReviewCreate(decision=decision, comment="see notes"),
                        actor=self.actors[who],
                        registry=registry,
                        now=clock["now"],
                    )

            self._in_app(app_id, review)

        @rule(app_id=apps, fraction=st.sampled_from([0.0, 0.5, 1.0]))
        def score_everything(self, app_id, fraction):
            def score(s, app, policy):
                for sid in policy.level(app.level).standards:
                    for q in policy.standard(sid).questions:
                        actions.score_question(
                            s,
                            app,
                            ScoreCreate(
                                standard=sid, question=q.id, score=round(q.max_score * fraction)
                            ),
                            actor=workflow.Actor(app.assessor_id, "assessor"),
                            registry=registry,
                            now=clock["now"],
                        )

            self._in_app(app_id, score)

        @rule(
            app_id=apps,
            trigger=st.sampled_from(triggers),
            who=st.sampled_from(ACTORS),
            comment=st.sampled_from(["", "reasons"]),
        )
        def fire_anything(self, app_id, trigger, who, comment):
            self._in_app(
                app_id,
                lambda s, app, policy: workflow.fire(
                    s,
                    app,
                    trigger,
                    actor=self.actors[who],
                    registry=registry,
                    now=clock["now"],
                    comment=comment,
                ),
            )

        @rule(
            app_id=apps,
            who=st.sampled_from(ACTORS),
            pick=st.integers(0, 20),
            comment=st.sampled_from(["", "reasons", "reasons"]),
        )
        def fire_what_is_offered(self, app_id, who, pick, comment):
            def go(s, app, policy):
                ready, unmet = workflow.available(
                    s, app, actor=self.actors[who], registry=registry, now=clock["now"]
                )
                offered = ready + sorted(unmet)
                if offered:
                    workflow.fire(
                        s,
                        app,
                        offered[pick % len(offered)],
                        actor=self.actors[who],
                        registry=registry,
                        now=clock["now"],
                        comment=comment,
                    )

            self._in_app(app_id, go)

        @rule(app_id=apps, trigger=st.sampled_from(triggers), who=st.sampled_from(ACTORS))
        def fire_on_award(self, app_id, trigger, who):
            if app_id is None:
                return
            try:
                with session_scope(engine) as s:
                    award = s.exec(select(Award).where(Award.application_id == app_id)).first()
                    if award is not None:
                        workflow.fire(
                            s,
                            award,
                            trigger,
                            actor=self.actors[who],
                            registry=registry,
                            now=clock["now"],
                            comment="reasons",
                        )
            except SvqmError:
                pass

        @rule(
            app_id=apps,
            fraction=st.sampled_from([1.0, 1.0, 0.5]),
            steps=st.integers(1, 8),
            panel=st.sampled_from(["panel", "panel", "panel_a", "former_assessor"]),
            reject_one=st.booleans(),
            overturn=st.booleans(),
        )
        def take_the_next_sensible_steps(
            self, app_id, fraction, steps, panel, reject_one, overturn
        ):
            """What a diligent applicant, assessor or panel member would do next."""

            def step(s, app, policy):
                now = clock["now"]
                assessor = workflow.Actor(app.assessor_id, "assessor")
                if app.state in ("draft", "changes_requested"):
                    self._prepare(s, app, policy)
                    trigger = "submit" if app.state == "draft" else "resubmit"
                    workflow.fire(
                        s, app, trigger, actor=self._owner(app), registry=registry, now=now
                    )
                elif app.state == "submitted":
                    workflow.fire(
                        s, app, "start_review", actor=assessor, registry=registry, now=now
                    )
                elif app.state == "under_review":
                    pending = [
                        i
                        for i in evidence_service.list_evidence(s, app.id)
                        if i.status == "pending"
                    ]
                    for n, item in enumerate(pending):
                        verdict = "rejected" if reject_one and n == 0 else "accepted"
                        actions.review_evidence(
                            s,
                            app,
                            item,
                            ReviewCreate(decision=verdict, comment="not enough"),
                            actor=assessor,
                            registry=registry,
                            now=now,
                        )
                    for sid in policy.level(app.level).standards:
                        for q in policy.standard(sid).questions:
                            actions.score_question(
                                s,
                                app,
                                ScoreCreate(
                                    standard=sid,
                                    question=q.id,
                                    score=round(q.max_score * (1.0 if q.mandatory else fraction)),
                                ),
                                actor=assessor,
                                registry=registry,
                                now=now,
                            )
                    ready, _ = workflow.available(
                        s, app, actor=assessor, registry=registry, now=now
                    )
                    trigger = (
                        "recommend_award" if "recommend_award" in ready else "recommend_refusal"
                    )
                    workflow.fire(
                        s,
                        app,
                        trigger,
                        actor=assessor,
                        registry=registry,
                        now=now,
                        comment="assessed",
                    )
                else:
                    decisions = {
                        "recommended_award": (
                            "overturn_to_refusal" if overturn else "confirm_award",
                            panel,
                        ),
                        "recommended_refusal": (
                            "overturn_to_award" if overturn else "confirm_refusal",
                            panel,
                        ),
                        "not_awarded": ("appeal", None),
                        "appealed": ("uphold_appeal", panel),
                    }
                    if app.state in decisions:
                        trigger, who = decisions[app.state]
                        workflow.fire(
                            s,
                            app,
                            trigger,
                            actor=self.actors[who] if who else self._owner(app),
                            registry=registry,
                            now=now,
                            comment="considered",
                        )

            for _ in range(steps):
                self._in_app(app_id, step)

        # Hypothesis picks rules uniformly; a second entry makes diligent users twice as common.
        take_more_sensible_steps = rule(
            app_id=apps,
            fraction=st.sampled_from([1.0, 0.5]),
            steps=st.integers(3, 8),
            panel=st.sampled_from(["panel", "panel_a", "former_assessor"]),
            reject_one=st.booleans(),
            overturn=st.booleans(),
        )(
            take_the_next_sensible_steps.__wrapped__
            if hasattr(take_the_next_sensible_steps, "__wrapped__")
            else take_the_next_sensible_steps
        )

        def _prepare(self, s, app, policy):
            rule = policy.level(app.level).pledge_rule
            if rule is not None and not actions.pledge_service.list_pledges(s, app.id):
                themes = [t for t in policy.themes if rule.themes == "any" or t.mandatory]
                for i in range(max(6, rule.min_pledges)):
                    actions.add_pledge(
                        s,
                        app,
                        PledgeCreate(
                            theme=themes[i % len(themes)].id,
                            title=f"p{i}",
                            indicator="n",
                            target="1",
                            due_date=(clock["now"] + timedelta(days=100)).date(),
                        ),
                        actor=self._owner(app),
                        registry=registry,
                        now=clock["now"],
                    )
            for slot in requirements.checklist(
                s, application_id=app.id, policy=policy, level=policy.level(app.level)
            ):
                if not slot.satisfied:
                    actions.upload_evidence(
                        s,
                        app,
                        store,
                        requirement=slot.id,
                        pledge_id=None,
                        stream=io.BytesIO(f"{slot.id} v2".encode()),
                        filename="e.txt",
                        title="",
                        actor=self._owner(app),
                        registry=registry,
                        now=clock["now"],
                    )

        @rule(days=st.sampled_from([1, 9, 30, 200]))
        def advance_time(self, days):
            clock["now"] += timedelta(days=days)

        def _owner(self, app):
            return self.actors[
                "applicant_a" if app.organisation_id == self.org_a.id else "applicant_b"
            ]

        def _in_app(self, app_id, body):
            if app_id is None:
                return
            try:
                with session_scope(engine) as s:
                    app = s.get(Application, app_id)
                    body(s, app, registry.for_subject(s, app).policy)
            except SvqmError:
                pass

        @invariant()
        def states_are_declared_and_versions_count_the_events(self):
            with session_scope(engine, write=False) as s:
                for app in s.exec(select(Application).where(Application.id.in_(self.mine))):
                    policy = registry.for_subject(s, app).policy
                    assert app.state in {x.name for x in policy.workflows.application.states}
                    events = s.exec(
                        select(func.count())
                        .select_from(AuditEvent)
                        .where(
                            AuditEvent.subject_kind == "application",
                            AuditEvent.subject_id == app.id,
                        )
                    ).one()
                    assert app.version == 1 + events
                for award in s.exec(select(Award).where(Award.application_id.in_(self.mine))):
                    policy = registry.for_subject(s, award).policy
                    assert award.state in {x.name for x in policy.workflows.award.states}
                    events = s.exec(
                        select(func.count())
                        .select_from(AuditEvent)
                        .where(
                            AuditEvent.subject_kind == "award", AuditEvent.subject_id == award.id
                        )
                    ).one()
                    assert award.version == 1 + events

        @invariant()
        def awards_only_with_their_guards_met_and_four_eyes(self):
            with session_scope(engine, write=False) as s:
                decided = s.exec(
                    select(AuditEvent, Application)
                    .join(Application, Application.id == AuditEvent.subject_id)
                    .where(
                        AuditEvent.subject_kind == "application",
                        AuditEvent.actor_role == "panel",
                        Application.id.in_(self.mine),
                    )
                ).all()
                members_of_a = {
                    u.id for u in self.people.values() if u.organisation_id == self.org_a.id
                }
                for event, app in decided:
                    assert event.actor_id != app.assessor_id
                    if app.organisation_id == self.org_a.id:
                        assert event.actor_id not in members_of_a
                        assert app.assessor_id not in members_of_a
                    if event.dest != "awarded":
                        continue
                    policy = registry.for_subject(s, app).policy
                    t = policy.workflows.application.transition(event.trigger, event.source)
                    ctx = guards.GuardContext(
                        session=s,
                        policy=policy,
                        kind="application",
                        subject=app,
                        actor_id=event.actor_id,
                        actor_role="panel",
                        now=event.at,
                        comment=event.comment,
                    )
                    assert guards.evaluate(ctx, t.guards) == []
                    awards = s.exec(select(Award).where(Award.application_id == app.id)).all()
                    assert len(awards) == 1

    run_state_machine_as_test(
        Engine,
        settings=settings(
            max_examples=20,
            stateful_step_count=40,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
