"""What the simulated people do with applications, through the real services.

The policy decides every step (svqm.simulate.route): applicants prepare and submit, assessors
review, score and recommend, the panel (or whoever the policy names) decides. Guards decide
whether a move is allowed; when the best move is refused (a score below the pass mark), the
next one is taken (a recommendation to refuse).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from svqm.accounts.models import Organisation
from svqm.errors import Conflict, GuardRefused, InvalidInput
from svqm.evidence import pledges as pledge_service
from svqm.evidence import requirements
from svqm.evidence import service as evidence_service
from svqm.evidence.models import ModerationCreate, PledgeCreate, ReviewCreate, ScoreCreate
from svqm.policy import Level
from svqm.simulate.holders import Holders
from svqm.simulate.route import UNREACHABLE
from svqm.simulate.world import Member
from svqm.workflow import actions, judgement, screening
from svqm.workflow import service as workflow
from svqm.workflow.effects import members_covered
from svqm.workflow.guards import GuardContext, asks_for, prerequisite_held
from svqm.workflow.models import Application, Award
from svqm.workflow.service import Actor

# Days before a role takes its turn (uniform); answering questions takes an applicant longer.
# An assessor takes two turns (start, then review), so some run past a 28-day review deadline.
DELAY = {
    "applicant": (1, 21),
    "answer": (2, 40),
    "optional": (1, 8),
    "assessor": (1, 18),
    "panel": (1, 24),
    "admin": (1, 10),
}
# The chance an assessor or the panel departs from the obvious course (refuses, overturns).
DISSENT = {"assessor": 0.03, "panel": 0.05}
MORE_INFORMATION = 0.25  # applications where the assessor asks about one piece of evidence
STRONG = 0.85  # applications whose evidence scores well
OPTIONAL = 0.3  # applicants who take up a move that is theirs to choose (an appeal)
REAPPLY = 0.6  # refused organisations that try again later
PLEDGES_WITHOUT_RULE = 2  # pledges made for a level that asks for evidence per pledge
# Double marking: the chance the second assessor's score of a question is one point off the
# first's, and the chance it is two off (beyond SVQM's threshold: the moderator settles it).
NEAR, FAR = 0.2, 0.04


class People(Holders):
    """Applicants, assessors, the panel and award holders, each task one call of `act`."""

    def act(
        self, session: Session, m: Member, task: str, sid: int, arg: str, now: datetime
    ) -> None:
        """Carry out one task; a step the engine refuses is counted, never forced."""
        {
            "apply": self._apply,
            "turn": self._turn,
            "file": self._file,
            "apply_again": self._apply_again,
            "review_report": self._review_report,
            "refile": self._refile,
        }[task](session, m, sid, arg, now)

    def _apply(self, session: Session, m: Member, sid: int, level_id: str, now: datetime) -> bool:
        try:
            app = workflow.open_application(
                session,
                organisation_id=m.org_id,
                scheme_id=self.policy.id,
                level=level_id,
                actor=m.actor,
                registry=self.registry,
                now=now,
            )
        except (GuardRefused, InvalidInput) as exc:
            self.refused[f"apply: {type(exc).__name__}"] += 1
            return False
        rules = self.policy.eligibility
        if rules is not None:
            # Its own sector where the scheme names it so, else the scheme's last ("Other"); the
            # simulated organisations work in no higher-risk industry.
            org = session.get(Organisation, m.org_id)
            said = org.sector.casefold() if org else ""
            sector = next(
                (c for c in rules.sectors if c.name.casefold() == said), rules.sectors[-1]
            )
            screening.answer(
                session,
                app,
                sector=sector.id,
                turnover_band=rules.turnover_bands[0].id,
                industries=(),
                actor=m.actor,
                registry=self.registry,
                now=now,
            )
        self.actions += 1
        self._next_turn(m, app, now)
        return True

    def _turn(self, session: Session, m: Member, app_id: int, _arg: str, now: datetime) -> None:
        app = session.get(Application, app_id)
        if app is None:
            return
        role = self.route.role_for(app.state)
        if role is None:  # the system closed it first (the appeal window passed)
            self._refused(m, app, now)
            return
        actor = self._actor(m, app, role)
        if actor is None:
            self.refused["no assessor assigned"] += 1
            return
        state = self.route.workflow.state(app.state)
        if role == "applicant" and state.editable:
            self._prepare(session, app, actor, now)
        if role == "assessor" and state.reviewable:
            self._review(session, app, actor, now)
            if self.route.role_for(app.state) != role:  # handed back for more information
                self._next_turn(m, app, now)
                return
            self._score(session, app, actor, now)
        self._move(session, m, app, role, actor, now)

    def _actor(self, m: Member, app: Application, role: str) -> Actor | None:
        if role == "applicant":
            return m.actor
        if role == "assessor":
            return Actor(app.assessor_id, "assessor") if app.assessor_id else None
        return self.rng.choice(self.staff[role])

    def _fire(
        self, session: Session, app: Application, trigger: str, actor: Actor, now: datetime
    ) -> bool:
        t = self.route.workflow.transition(trigger, app.state)
        assert t is not None
        asks = asks_for(t.guards, "comment")
        comment = f"simulated {actor.role}: {t.title.lower()}" if asks else ""
        try:
            workflow.fire(
                session, app, trigger, actor=actor, registry=self.registry, now=now, comment=comment
            )
        except GuardRefused:
            return False
        except Conflict:  # this member has recorded their decision already: another decides
            return False
        self.actions += 1
        return True

    def _move(
        self, session: Session, m: Member, app: Application, role: str, actor: Actor, now: datetime
    ) -> None:
        # The steps of this level's route (a self-service level takes its own).
        own = self.policy.level(app.level).self_service
        moves = [
            t
            for t in self.route.moves(app.state, role)
            if t.self_service is None or t.self_service == own
        ]
        if role == "applicant":
            moves = [t for t in moves if self.route.cost(t) < UNREACHABLE]
        elif len(moves) > 1 and self.rng.random() < DISSENT.get(role, 0):
            moves = moves[1:] + moves[:1]
        # A step only fresh eyes may take (an appeal) passes to another member of the role.
        others = [a for a in self.staff.get(role, []) if a != actor] if role != "applicant" else []
        for t in moves:
            before = app.state
            if not any(
                self._fire(session, app, t.trigger, who, now)
                for who in [actor, *others[: 3 if role == "panel" else 0]]
            ):
                continue
            if app.state == before:  # one member's decision recorded: the next decides later
                self._next_turn(m, app, now)
            elif "issue_award" in t.effects:
                award = session.exec(select(Award).where(Award.application_id == app.id)).one()
                self.holding(session, m, award, now)
            else:
                self._next_turn(m, app, now)
            return
        if role == "applicant" and self._prerequisite_lost(session, app, now):
            # The award it builds on was suspended or expired while it prepared this one: like
            # a holder, it withdraws the application and puts its award right first.
            self._abandon(session, app, actor, now)
        else:
            self.refused[f"{role} could not move on from {app.state}"] += 1
        self._refused(m, app, now)

    def _prerequisite_lost(self, session: Session, app: Application, now: datetime) -> bool:
        context = GuardContext(
            session=session,
            policy=self.policy,
            kind="application",
            subject=app,
            actor_id=None,
            actor_role="applicant",
            now=now,
            comment="",
        )
        return bool(prerequisite_held(context))

    def _abandon(self, session: Session, app: Application, actor: Actor, now: datetime) -> None:
        flow = self.policy.workflows.application
        out = next(
            (
                t
                for t in flow.transitions
                if app.state in t.source and "applicant" in t.roles and flow.state(t.dest).terminal
            ),
            None,
        )
        if out is not None and self._fire(session, app, out.trigger, actor, now):
            self.abandoned += 1

    def _next_turn(self, m: Member, app: Application, now: datetime) -> None:
        role = self.route.role_for(app.state)
        if role is None:  # closed without an award
            self._refused(m, app, now)
            return
        delay = DELAY[role]
        if role == "applicant" and not self.route.editable(app.state):
            if self.rng.random() >= OPTIONAL:
                self._refused(m, app, now)  # not taken up: the system closes the matter
                return
            delay = DELAY["optional"]
        elif role == "applicant" and app.state != self.route.workflow.initial:
            delay = DELAY["answer"]
        self.later(m, now, delay, "turn", app.id or 0)

    def _refused(self, m: Member, app: Application, now: datetime) -> None:
        """Not awarded: an upgrade falls back on renewing what is held; else try again later."""
        if m.award_id is not None and app.level != m.award_level:
            self.later(m, now, (1, 30), "apply_again", m.award_id, m.award_level)
        elif self.rng.random() < REAPPLY:
            self.later(m, now, (120, 300), "apply", 0, app.level)

    def _prepare(self, session: Session, app: Application, actor: Actor, now: datetime) -> None:
        """Make the pledges the level needs, then upload whatever the checklist still lacks."""
        assert app.id is not None
        level = self.policy.level(app.level)
        if not pledge_service.list_pledges(session, app.id):
            self._pledge(session, app, level, actor, now)
        for slot in requirements.checklist(
            session,
            application_id=app.id,
            policy=self.policy,
            level=level,
            members=members_covered(session, app.id),
        ):
            if slot.satisfied:
                continue
            version = len(slot.items) + 1
            actions.upload_evidence(
                session,
                app,
                self.store,
                requirement=slot.id,
                pledge_id=None,
                # Chunks, not a file object: put() reads a file object into an 8 MiB buffer it
                # allocates per upload, which would cost more than everything else here. The
                # same bytes for every organisation: the store keeps one copy.
                stream=(f"{slot.requirement_id} for {level.name}, version {version}\n".encode(),),
                filename=f"{slot.requirement_id}-v{version}.txt",
                title=slot.title,
                actor=actor,
                registry=self.registry,
                now=now,
            )
            self.actions += 1

    def _pledge(
        self, session: Session, app: Application, level: Level, actor: Actor, now: datetime
    ) -> None:
        rule = level.pledge_rule
        if rule is not None:
            count = max(rule.min_pledges, rule.min_distinct_themes)
        else:
            per_pledge = any(
                (r := self.policy.requirement(rid)) is not None and r.per == "pledge"
                for rid in level.evidence
            )
            count = PLEDGES_WITHOUT_RULE if per_pledge else 0
        mandatory_only = rule is not None and rule.themes == "mandatory"
        themes = [t.id for t in self.policy.themes if t.mandatory or not mandatory_only]
        self.rng.shuffle(themes)
        for i in range(count if themes else 0):
            theme = themes[i % len(themes)]
            actions.add_pledge(
                session,
                app,
                PledgeCreate(
                    theme=theme,
                    title=f"Pledge {i + 1} on {theme.replace('_', ' ')}",
                    indicator="people reached",
                    unit="people",
                    baseline=0,
                    target=str(self.rng.randint(5, 500)),
                    due_date=(now + timedelta(days=self.rng.randint(180, 720))).date(),
                ),
                actor=actor,
                registry=self.registry,
                now=now,
            )
            self.actions += 1

    def _review(self, session: Session, app: Application, actor: Actor, now: datetime) -> None:
        """Accept the pending evidence; now and then ask about one item and hand it back."""
        assert app.id is not None
        items = evidence_service.list_evidence(session, app.id)
        pending = [i for i in items if i.status == "pending"]
        hand_back = self.route.hand_back(app.state)
        ask = None
        if (
            pending
            and hand_back is not None
            and all(i.version == 1 for i in items)
            and self.rng.random() < MORE_INFORMATION
        ):
            ask = pending.pop(self.rng.randrange(len(pending)))
            pending.append(ask)  # asked last: asking may hand the application back at once
        for item in pending:
            decision = (
                ReviewCreate(decision="accepted")
                if item is not ask
                else ReviewCreate(decision="more_information", comment="Please show the measure.")
            )
            actions.review_evidence(
                session, app, item, decision, actor=actor, registry=self.registry, now=now
            )
            self.actions += 1
        # The engine hands back through a `request_changes` trigger; other policies name theirs.
        if ask is not None and hand_back is not None and app.state in hand_back.source:
            self._fire(session, app, hand_back.trigger, actor, now)

    def _score(self, session: Session, app: Application, actor: Actor, now: datetime) -> None:
        """Score every question once: most applications strongly, some weakly."""
        assert app.id is not None
        level = self.policy.level(app.level)
        result = evidence_service.score_result(
            session, application_id=app.id, policy=self.policy, level=level
        )
        if not level.standards or not result.unscored:
            return
        if level.assessors > 1:
            self._double_mark(session, app, actor, now)
            return
        for sid, qid, score in self._draw(level):
            self._give(session, app, actor, sid, qid, score, now)

    def _draw(self, level: Level) -> list[tuple[str, str, int]]:
        """A score for every question: most applications strongly, some weakly."""
        strong = self.rng.random() < STRONG
        out = []
        for sid in level.standards:
            for q in self.policy.standard(sid).questions:
                if q.mandatory:
                    met = q.max_score if q.met_at is None else q.met_at
                    score = met if strong or self.rng.random() < 0.8 else max(0, met - 1)
                else:
                    share = self.rng.uniform(0.8, 1.0) if strong else self.rng.uniform(0.3, 0.8)
                    score = round(q.max_score * share)
                out.append((sid, q.id, score))
        return out

    def _give(
        self,
        session: Session,
        app: Application,
        actor: Actor,
        sid: str,
        qid: str,
        score: int,
        now: datetime,
    ) -> None:
        actions.score_question(
            session,
            app,
            ScoreCreate(standard=sid, question=qid, score=score),
            actor=actor,
            registry=self.registry,
            now=now,
        )
        self.actions += 1

    def _double_mark(self, session: Session, app: Application, actor: Actor, now: datetime) -> None:
        """Both assessors score on their own (the second now and then a point or two off the
        first); the moderator agrees the questions where they differ too much."""
        if app.second_assessor_id is None:
            self.refused["no second assessor assigned"] += 1
            return
        level = self.policy.level(app.level)
        second = Actor(app.second_assessor_id, "assessor")
        tops = {
            (sid, q.id): q.max_score
            for sid in level.standards
            for q in self.policy.standard(sid).questions
        }
        state = judgement.marking_of(session, self.policy, app)
        if state is not None and not state.both_in:
            for sid, qid, score in self._draw(level):
                self._give(session, app, actor, sid, qid, score, now)
                roll = self.rng.random()
                off = 2 if roll < FAR else (1 if roll < FAR + NEAR else 0)
                other = score - off if score - off >= 0 else min(tops[(sid, qid)], score + off)
                self._give(session, app, second, sid, qid, other, now)
            state = judgement.marking_of(session, self.policy, app)
        if state is None or not state.to_moderate:
            return
        who = self.policy.settings.moderation.moderator
        free = [a for a in self.staff[who] if a.id not in (app.assessor_id, app.second_assessor_id)]
        if not free:
            self.refused["no moderator free of the case"] += 1
            return
        moderator = self.rng.choice(free)
        for q in state.to_moderate:
            assert q.first is not None
            assert q.second is not None
            actions.moderate_score(
                session,
                app,
                ModerationCreate(
                    standard=q.standard,
                    question=q.question,
                    score=(q.first + q.second) // 2,
                    note="simulated moderation: the evidence read again",
                ),
                actor=moderator,
                registry=self.registry,
                now=now,
            )
            self.actions += 1
