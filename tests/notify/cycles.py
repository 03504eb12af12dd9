"""Helpers for walking a scheme's cycle under a moving clock (tests/notify/test_schemes.py)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from svqm.db import session_scope
from svqm.evidence import service as evidence_service
from svqm.evidence.models import ScoreCreate
from svqm.policy import Policy
from svqm.workflow import reports
from svqm.workflow.models import Application, AuditEvent, Award
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor, fire
from tests.factories import store_at
from tests.notify.timeline import deadlines, messages
from tests.workflow.harness import Cast, application_in, make_cast, satisfy

DAY = timedelta(days=1)


def at(y: int, m: int, d: int, h: int = 0) -> datetime:
    return datetime(y, m, d, h, tzinfo=UTC)


def decide(
    engine: Engine,
    registry: SchemeRegistry,
    tmp: Path,
    cast: Cast | None,
    *,
    scheme: str,
    level: str,
    state: str,
    trigger: str,
    role: str,
    at: datetime,
) -> tuple[int, Cast]:
    """An application in `state` decided at `at` by `trigger` (which issues the award)."""
    with session_scope(engine) as s:
        cast = cast or make_cast(s)
        policy = registry.get(scheme).policy
        app = application_in(s, registry, cast, scheme=scheme, level=level, state=state, at=at)
        t = policy.workflows.application.transition(trigger, state)
        assert t is not None
        _, comment = satisfy(s, policy, registry, store_at(tmp), cast, app, t, at)
        fire(s, app, trigger, actor=cast.actor(role), registry=registry, now=at, comment=comment)
        award = s.exec(select(Award).where(Award.application_id == app.id)).one()
        assert award.id is not None
        return award.id, cast


def file_for(
    engine: Engine,
    registry: SchemeRegistry,
    tmp: Path,
    award_id: int,
    actor: Actor,
    when: datetime,
    deadline: str,
) -> None:
    with session_scope(engine) as s:
        award = s.get(Award, award_id)
        assert award is not None
        reports.file_report(
            s,
            award,
            store_at(tmp),
            period=str(when.year),
            stream=io.BytesIO(f"{deadline} {when:%Y-%m-%d}\n".encode()),
            filename=f"{deadline}.txt",
            title=deadline,
            actor=actor,
            registry=registry,
            now=when,
            deadline=deadline,
        )


def award_of(engine: Engine, award_id: int) -> Award:
    with Session(engine) as s:
        award = s.get(Award, award_id)
        assert award is not None
        return award


def sent(engine: Engine, subject: str) -> list[tuple[str, str, datetime]]:
    """(deadline kind, 'Nd:role', when enqueued) of the subject's outbox rows (`award-3`)."""
    out = []
    for m in messages(engine):
        who, kind, _, offset, role = m.key.split(":")
        if who == subject:
            out.append((kind, f"{offset}:{role}", m.created_at))
    return out


def trail(engine: Engine, kind: str, subject_id: int) -> list[tuple[str, str, datetime]]:
    with Session(engine) as s:
        events = s.exec(
            select(AuditEvent)
            .where(AuditEvent.subject_kind == kind, AuditEvent.subject_id == subject_id)
            .order_by(col(AuditEvent.seq))
        )
        return [(e.trigger, e.actor_role, e.at) for e in events]


def rows(engine: Engine, award_id: int, kind: str) -> list[tuple[int, str, datetime]]:
    """(occurrence, status, due) of one deadline's rows for an award, in the order opened."""
    return [
        (d.occurrence, d.status, d.due_at)
        for d in deadlines(engine, kind)
        if d.subject_kind == "award" and d.subject_id == award_id
    ]


def open_due(engine: Engine, award_id: int) -> dict[str, datetime]:
    return {
        d.kind: d.due_at
        for d in deadlines(engine)
        if d.subject_kind == "award" and d.subject_id == award_id and d.status == "open"
    }


def score_all(s: Session, policy: Policy, app: Application, score: int, now: datetime) -> None:
    assert app.id is not None
    level = policy.level(app.level)
    for sid in level.standards:
        for q in policy.standard(sid).questions:
            evidence_service.set_score(
                s,
                application_id=app.id,
                policy=policy,
                level=level,
                data=ScoreCreate(standard=sid, question=q.id, score=score),
                assessor_id=None,
                now=now,
            )
