"""Simulated audit booking and stakeholder consultation, where the policy has them.

An applicant preparing an audited application proposes the earliest start dates the policy
allows, a week apart; an admin confirms one, and now and then moves it to another (a
rescheduling, audited). The assessor of a consulted level invites stakeholders at the review,
unless the consultation has closed by then (counted on its own, not as a refusal); most answer
once the form opens (their links are kept here: the database holds only hashes).
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from sqlmodel import Session

from svqm.errors import SvqmError
from svqm.simulate.people import People
from svqm.simulate.world import Member
from svqm.workflow import audits, consultation
from svqm.workflow.models import Application
from svqm.workflow.service import Actor

RESCHEDULE = 0.2  # confirmed audits moved to another proposed date
STAKEHOLDERS = 3  # invited per consulted application
ANSWER = 0.7  # invitees who answer


class Auditing(People):
    """People who also book audits and answer consultations."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._tokens: dict[int, str] = {}
        # A chance of its own, a copy of the run's: the rest of the run draws what it drew
        # before audits existed, so a seed gives the same applications and awards.
        self._chance = random.Random()
        self._chance.setstate(self.rng.getstate())
        self._member: Member | None = None  # whose turn it is (an invitee's answer is on it)
        # Consultations that had closed by the time the assessor reached the review (a review
        # waiting on a late payment, say): nobody is invited to a closed form.
        self.closed_before_review = 0

    def _turn(self, session: Session, m: Member, app_id: int, arg: str, now: datetime) -> None:
        self._member = m
        super()._turn(session, m, app_id, arg, now)

    def act(
        self, session: Session, m: Member, task: str, sid: int, arg: str, now: datetime
    ) -> None:
        if task == "answer_consultation":
            self._answer(session, sid, now)
            return
        super().act(session, m, task, sid, arg, now)

    def _prepare(self, session: Session, app: Application, actor: Actor, now: datetime) -> None:
        super()._prepare(session, app, actor, now)
        rule = self.policy.audit
        if rule is None or not self.policy.audited(app.level) or app.state not in rule.states:
            return
        assert app.id is not None
        if audits.current(session, app.id) is not None or not self.staff.get("admin"):
            return
        day, days = audits.earliest(self.policy, rule, now), list[date]()
        while len(days) < rule.proposals:
            if audits.refusals(self.policy, rule, [day], now):
                day += timedelta(days=1)
            else:
                days.append(day)
                day += timedelta(days=7)
        admin = self._chance.choice(self.staff["admin"])
        try:
            audits.propose(session, app, days, actor=actor, registry=self.registry, now=now)
            audits.confirm(session, app, days[0], actor=admin, registry=self.registry, now=now)
            self.actions += 2
            if self._chance.random() < RESCHEDULE:
                moved = self._chance.choice(days[1:])
                audits.confirm(
                    session,
                    app,
                    moved,
                    actor=admin,
                    registry=self.registry,
                    now=now + timedelta(hours=1),
                    comment="simulated admin: the organisation asked to move it",
                )
                self.actions += 1
        except SvqmError as exc:
            self.refused[f"audit booking: {type(exc).__name__}"] += 1

    def _review(self, session: Session, app: Application, actor: Actor, now: datetime) -> None:
        super()._review(session, app, actor, now)
        if not self.policy.consulted(app.level) or app.audit_starts_at is None:
            return
        assert app.id is not None
        if consultation.invitations(session, app.id):
            return
        opened = consultation.window(self.policy, app)
        if opened is not None and opened[1] <= now:
            self.closed_before_review += 1
            return
        people = [
            consultation.Invitee(
                f"Stakeholder {n}",
                f"stakeholder{n}.app{app.id}@sim.test",
                "internal" if n % 2 else "external",
            )
            for n in range(1, STAKEHOLDERS + 1)
        ]
        try:
            made = consultation.invite(
                session, self.policy, app, people, actor_role="assessor", actor_id=actor.id, now=now
            )
        except SvqmError as exc:
            self.refused[f"consultation: {type(exc).__name__}"] += 1
            return
        self.actions += 1
        for row, token in made:
            assert row.id is not None
            self._tokens[row.id] = token
            if self._member is not None and self._chance.random() < ANSWER:
                span = max((row.closes_at - row.opens_at).days, 1)
                when = row.opens_at + timedelta(days=self._chance.uniform(0.1, span * 0.9))
                self._later(
                    self._member,
                    max(when, now + timedelta(hours=1)),
                    "answer_consultation",
                    row.id,
                    "",
                )

    def _answer(self, session: Session, invite_id: int, now: datetime) -> None:
        token = self._tokens.pop(invite_id, "")
        link = consultation.follow(session, token, now)
        if link.invite is None or link.problem:
            self.refused["consultation answer: link refused"] += 1
            return
        answers = {
            q.id: str(self._chance.randint(2, 5)) if q.kind == "rating" else "simulated answer"
            for q in self.policy.consultation.questions  # type: ignore[union-attr]
        }
        try:
            consultation.answer(session, self.policy, token, answers, now)
        except SvqmError as exc:
            self.refused[f"consultation answer: {type(exc).__name__}"] += 1
            return
        self.actions += 1
