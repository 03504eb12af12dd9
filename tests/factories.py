"""Plain factory functions: they flush, never commit."""

from __future__ import annotations

import io
import itertools
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col

from svqm.accounts import service as accounts
from svqm.accounts.models import Organisation, User
from svqm.evidence import requirements
from svqm.evidence.models import (
    ApplicationPledge,
    EvidenceItem,
    PledgeCreate,
    ReviewCreate,
    ScoreCreate,
)
from svqm.evidence.storage import BlobStore
from svqm.workflow import actions, screening
from svqm.workflow import service as workflow
from svqm.workflow.models import Application
from svqm.workflow.schemes import SchemeRegistry

_n = itertools.count(1)


def make_org(session: Session, name: str | None = None) -> Organisation:
    return accounts.create_organisation(
        session, name=name or f"Organisation {next(_n)}", sector="health"
    )


def make_user(session: Session, role: str, org: Organisation | None = None) -> User:
    return accounts.add_user(
        session,
        email=f"{role}{next(_n)}@example.test",
        role=role,
        organisation_id=org.id if org else None,
    )


def actor(user: User) -> workflow.Actor:
    return workflow.Actor.of(user)


def open_app(
    session: Session,
    registry: SchemeRegistry,
    applicant: User,
    *,
    scheme: str = "svqm",
    level: str = "bronze",
    now: datetime,
    eligible: bool = True,
) -> Application:
    assert applicant.organisation_id is not None
    app = workflow.open_application(
        session,
        organisation_id=applicant.organisation_id,
        scheme_id=scheme,
        level=level,
        actor=actor(applicant),
        registry=registry,
        now=now,
    )
    if eligible:
        answer_eligibility(session, registry, app, applicant, now=now)
    return app


def answer_eligibility(
    session: Session,
    registry: SchemeRegistry,
    app: Application,
    applicant: User,
    *,
    now: datetime,
    industries: tuple[str, ...] = (),
) -> None:
    """Answer the scheme's eligibility questions (its first sector and band; no risk industry
    unless named). A scheme that asks none is left alone."""
    policy = registry.for_subject(session, app).policy
    if policy.eligibility is None:
        return
    screening.answer(
        session,
        app,
        sector=policy.eligibility.sectors[0].id,
        turnover_band=policy.eligibility.turnover_bands[0].id,
        industries=industries,
        actor=actor(applicant),
        registry=registry,
        now=now,
    )


def add_pledges(
    session: Session,
    registry: SchemeRegistry,
    app: Application,
    applicant: User,
    *,
    now: datetime,
    count: int | None = None,
) -> None:
    """Pledges that meet the level's rule: one per theme (mandatory themes where the rule says)."""
    policy = registry.for_subject(session, app).policy
    rule = policy.level(app.level).pledge_rule
    themes = [t for t in policy.themes if rule is None or rule.themes == "any" or t.mandatory]
    need = count if count is not None else max(6, rule.min_pledges if rule else 0)
    for i in range(need):
        theme = themes[i % len(themes)]
        actions.add_pledge(
            session,
            app,
            PledgeCreate(
                theme=theme.id,
                title=f"Pledge {i + 1} on {theme.name}",
                indicator="count",
                unit="people",
                baseline=0,
                target="10",
                due_date=(now + timedelta(days=365)).date(),
            ),
            actor=actor(applicant),
            registry=registry,
            now=now,
        )
    if rule is not None and rule.min_carried:
        # As if carried in from the award the level builds on (a fixture's award has no pledges).
        session.exec(
            update(ApplicationPledge)
            .where(col(ApplicationPledge.application_id) == app.id)
            .values(disposition="carried")
        )


def upload_all(
    session: Session,
    registry: SchemeRegistry,
    store: BlobStore,
    app: Application,
    applicant: User,
    *,
    now: datetime,
) -> list[EvidenceItem]:
    policy = registry.for_subject(session, app).policy
    slots = requirements.checklist(
        session, application_id=app.id or 0, policy=policy, level=policy.level(app.level)
    )
    return [
        actions.upload_evidence(
            session,
            app,
            store,
            requirement=s.id,
            pledge_id=None,
            stream=io.BytesIO(f"evidence for {s.id}\n".encode()),
            filename=f"{s.id.replace(':', '_')}.txt",
            title="",
            actor=actor(applicant),
            registry=registry,
            now=now,
        )
        for s in slots
    ]


def review_all(
    session: Session,
    registry: SchemeRegistry,
    app: Application,
    assessor: User,
    *,
    now: datetime,
    decision: str = "accepted",
) -> None:
    from svqm.evidence import service as evidence_service

    for item in evidence_service.list_evidence(session, app.id or 0):
        if item.status == "pending":
            actions.review_evidence(
                session,
                app,
                item,
                ReviewCreate(
                    decision=decision, comment="" if decision == "accepted" else "needs more"
                ),
                actor=actor(assessor),
                registry=registry,
                now=now,
            )


def score_all(
    session: Session,
    registry: SchemeRegistry,
    app: Application,
    assessor: User,
    *,
    now: datetime,
    fraction: float = 1.0,
) -> None:
    policy = registry.for_subject(session, app).policy
    for sid in policy.level(app.level).standards:
        for q in policy.standard(sid).questions:
            actions.score_question(
                session,
                app,
                ScoreCreate(standard=sid, question=q.id, score=round(q.max_score * fraction)),
                actor=actor(assessor),
                registry=registry,
                now=now,
            )


def store_at(root: object) -> BlobStore:
    from pathlib import Path

    return BlobStore(
        Path(str(root)),
        max_bytes=25 * 1024 * 1024,
        max_unpacked_bytes=200 * 1024 * 1024,
        max_entries=2000,
    )


def blob(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())


def write_charter(
    session: Session, org: Organisation, user: User, *, now: datetime, publish: bool = True
) -> None:
    """A full charter for the organisation (every pillar, one priority delivered by its first
    pledges), published unless told not to."""
    from svqm.config import Settings
    from svqm.evidence import charter as charter_reads
    from svqm.policy.charter import load_charter_rules
    from svqm.workflow import org_charter as svc

    rules = load_charter_rules(Settings().CHARTER_FILE)
    pledges = [p.id or 0 for p in charter_reads.organisation_pledges(session, org.id or 0)][:2]
    found = charter_reads.get_charter(session, org.id or 0)
    charter = svc.save_charter(
        session,
        org.id or 0,
        rules=rules,
        actor=actor(user),
        now=now,
        expected_version=found.version if found else 0,
        pillars={
            "place": svc.PillarInput(entries=[svc.EntryInput("The ICB", kind="icb")]),
            "people": svc.PillarInput(
                entries=[svc.EntryInput("Ada Lead", role="Executive sponsor")],
                text="Monthly staff network.",
            ),
            "vision": svc.PillarInput(statements={"vision": "Healthier lives", "mission": "Local"}),
            "principles": svc.PillarInput(items=["Wellbeing and equity"]),
        },
        priorities=[
            svc.PriorityInput("Local jobs", "50 local hires", "Fewer out of work", None, pledges)
        ],
    )
    if publish:
        svc.publish_charter(
            session,
            org.id or 0,
            rules=rules,
            actor=actor(user),
            now=now,
            expected_version=charter.version,
        )
