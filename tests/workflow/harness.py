"""Put a subject in any state and make any guard pass, to exercise every transition of a policy."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col

from svqm.accounts.models import Organisation, User
from svqm.evidence import marking, requirements
from svqm.evidence import pledges as pledge_service
from svqm.evidence import service as evidence_service
from svqm.evidence.models import ApplicationPledge, PledgeCreate, ReviewCreate, ScoreCreate
from svqm.evidence.storage import BlobStore
from svqm.policy import Policy, TransitionDef
from svqm.workflow.deadlines import add_months
from svqm.workflow.models import Application, Award
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import SYSTEM, Actor
from tests.factories import answer_eligibility, make_org, make_user


@dataclass
class Cast:
    org: Organisation
    applicant: User
    assessor: User
    panel: User
    admin: User

    def actor(self, role: str) -> Actor:
        if role == "system":
            return SYSTEM
        return Actor.of(
            {
                "applicant": self.applicant,
                "assessor": self.assessor,
                "panel": self.panel,
                "admin": self.admin,
            }[role]
        )


def make_cast(session: Session) -> Cast:
    org = make_org(session)
    return Cast(
        org,
        make_user(session, "applicant", org),
        make_user(session, "assessor"),
        make_user(session, "panel"),
        make_user(session, "admin"),
    )


def application_in(
    session: Session,
    registry: SchemeRegistry,
    cast: Cast,
    *,
    scheme: str,
    level: str,
    state: str,
    at: datetime,
) -> Application:
    s = registry.get(scheme)
    registry.record_snapshot(session, s)
    app = Application(
        organisation_id=cast.org.id or 0,
        scheme=scheme,
        scheme_version=s.policy.version,
        policy_digest=s.policy.digest,
        level=level,
        state=state,
        assessor_id=cast.assessor.id if cast.assessor else None,
        created_at=at,
        state_changed_at=at,
    )
    session.add(app)
    session.flush()
    return app


def award_in(
    session: Session,
    registry: SchemeRegistry,
    cast: Cast,
    *,
    scheme: str,
    level: str,
    state: str,
    issued: datetime,
    at: datetime,
    holder_state: str = "awarded",
) -> Award:
    s = registry.get(scheme)
    registry.record_snapshot(session, s)
    holder = application_in(
        session, registry, cast, scheme=scheme, level=level, state=holder_state, at=issued
    )
    award = Award(
        organisation_id=cast.org.id or 0,
        application_id=holder.id or 0,
        scheme=scheme,
        scheme_version=s.policy.version,
        policy_digest=s.policy.digest,
        level=level,
        state=state,
        certificate_number=f"T-{holder.id}",
        issued_at=issued,
        expires_at=add_months(issued, s.policy.level(level).validity_months),
        state_changed_at=at,
    )
    session.add(award)
    session.flush()
    return award


def satisfy(
    session: Session,
    policy: Policy,
    registry: SchemeRegistry,
    store: BlobStore,
    cast: Cast,
    subject: Application | Award,
    t: TransitionDef,
    now: datetime,
) -> tuple[datetime, str]:
    """Create what the transition's guards need; returns the `now` and comment to fire with."""
    comment = "reasons given" if "has_comment" in t.guards else ""
    for ref in t.guards:
        name = ref.partition(":")[0]
        if name == "after_deadline":
            now = subject.state_changed_at + timedelta(days=60)
        elif name == "prerequisite_held":
            need = policy.level(subject.level).requires
            if need is not None:
                award_in(
                    session,
                    registry,
                    cast,
                    scheme=policy.id,
                    level=need.level,
                    state="active",
                    issued=add_months(now, -need.held_months - 1),
                    at=now,
                )
        elif name == "eligibility_met":
            assert isinstance(subject, Application)
            answer_eligibility(session, registry, subject, cast.applicant, now=now)
        elif name == "pledge_rule_met":
            _pledges(session, policy, subject, now)
        elif name in ("required_evidence_present", "all_evidence_accepted"):
            _evidence(session, policy, store, subject, now, accept=name == "all_evidence_accepted")
        elif name == "score_passes":
            _scores(session, policy, subject, now)
        elif name == "audit_date_confirmed":
            assert isinstance(subject, Application)
            subject.audit_starts_at = now  # as a confirmed date leaves it
            session.add(subject)
    return now, comment


def _pledges(session: Session, policy: Policy, app: object, now: datetime) -> None:
    assert isinstance(app, Application)
    assert app.id is not None
    if pledge_service.list_pledges(session, app.id):
        return
    rule = policy.level(app.level).pledge_rule
    themes = [t for t in policy.themes if rule is None or rule.themes == "any" or t.mandatory]
    for i in range(6):
        pledge = pledge_service.create_pledge(
            session,
            application_id=app.id,
            organisation_id=app.organisation_id,
            data=PledgeCreate(
                theme=themes[i % len(themes)].id,
                title=f"pledge {i}",
                indicator="n",
                unit="people",
                baseline=0,
                target="1",
                due_date=(now + timedelta(days=300)).date(),
            ),
            policy=policy,
            created_by_id=None,
            today=now.date(),
            now=now,
        )
        if rule is not None and rule.min_carried:
            # As if carried in from the award the level builds on.
            session.exec(
                update(ApplicationPledge)
                .where(col(ApplicationPledge.pledge_id) == pledge.id)
                .values(disposition="carried")
            )


def _evidence(
    session: Session, policy: Policy, store: BlobStore, app: object, now: datetime, *, accept: bool
) -> None:
    assert isinstance(app, Application)
    assert app.id is not None
    _pledges(session, policy, app, now)
    slots = requirements.checklist(
        session, application_id=app.id, policy=policy, level=policy.level(app.level)
    )
    for slot in slots:
        item = slot.current or evidence_service.add_evidence(
            session,
            store,
            slot=slot,
            application_id=app.id,
            stream=io.BytesIO(f"{slot.id}\n".encode()),
            filename="e.txt",
            title="",
            uploaded_by_id=None,
            now=now,
        )
        if accept and item.status != "accepted":
            evidence_service.review_evidence(
                session, item, ReviewCreate(decision="accepted"), reviewer_id=None, now=now
            )


def _scores(session: Session, policy: Policy, app: object, now: datetime) -> None:
    assert isinstance(app, Application)
    assert app.id is not None
    level = policy.level(app.level)
    if level.assessors > 1:
        _double_scores(session, policy, app, now)
        return
    for sid in level.standards:
        for q in policy.standard(sid).questions:
            evidence_service.set_score(
                session,
                application_id=app.id,
                policy=policy,
                level=level,
                data=ScoreCreate(standard=sid, question=q.id, score=q.max_score),
                assessor_id=None,
                now=now,
            )


def _double_scores(session: Session, policy: Policy, app: Application, now: datetime) -> None:
    """A double-marked level: both assessors (a second made if none) give every question its
    full marks, so each question's agreed score is the full mark."""
    assert app.id is not None
    level = policy.level(app.level)
    if app.assessor_id is None:
        app.assessor_id = make_user(session, "assessor").id
    if app.second_assessor_id is None:
        app.second_assessor_id = make_user(session, "assessor").id
    session.add(app)
    people = {"first_id": app.assessor_id, "second_id": app.second_assessor_id}
    for assessor_id in (app.assessor_id, app.second_assessor_id):
        assert assessor_id is not None
        for sid in level.standards:
            for q in policy.standard(sid).questions:
                marking.record_own(
                    session,
                    application_id=app.id,
                    policy=policy,
                    level=level,
                    standard=sid,
                    question=q.id,
                    score=q.max_score,
                    note="",
                    assessor_id=assessor_id,
                    now=now,
                    **people,
                )
    marking.agree(session, application_id=app.id, policy=policy, level=level, now=now, **people)
