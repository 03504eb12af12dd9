from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from svqm.db import session_scope
from svqm.errors import Conflict
from svqm.workflow import service as workflow
from svqm.workflow.models import Application, AuditEvent
from tests.workflow.harness import application_in, make_cast

ROUNDS = 100


def _race(engine, registry, app_id: int, actor, now: datetime) -> list[str]:
    """Two connections read the application, wait for each other, then both decide it."""
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def decide(trigger: str) -> None:
        try:
            with Session(engine, expire_on_commit=False) as reader:
                seen = reader.get(Application, app_id)
                assert seen is not None
                version = seen.version
            barrier.wait(timeout=10)
            with session_scope(engine) as session:
                app = session.get(Application, app_id)
                assert app is not None
                workflow.fire(
                    session,
                    app,
                    trigger,
                    actor=actor,
                    registry=registry,
                    now=now,
                    comment="decided",
                    expected_version=version,
                )
            result = trigger
        except Conflict:
            result = "conflict"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=decide, args=("confirm_refusal",)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return outcomes


def test_two_connections_deciding_at_once_exactly_one_wins(engine, registry, now):
    with session_scope(engine) as session:
        cast = make_cast(session)
        ids = [
            application_in(
                session,
                registry,
                cast,
                scheme="svqm",
                level="bronze",
                state="recommended_refusal",
                at=now,
            ).id
            for _ in range(ROUNDS)
        ]
        panel = workflow.Actor.of(cast.panel)
    for app_id in ids:
        outcomes = _race(engine, registry, app_id, panel, now)
        assert sorted(outcomes) == ["confirm_refusal", "conflict"], outcomes
    with session_scope(engine, write=False) as session:
        events = session.exec(select(func.count()).select_from(AuditEvent)).one()
        states = session.exec(
            select(Application.state, Application.version).where(Application.id.in_(ids))
        ).all()
    assert events == ROUNDS
    assert set(states) == {("not_awarded", 2)}


def test_opposite_decisions_race_one_state_wins(engine, registry, now):
    with session_scope(engine) as session:
        cast = make_cast(session)
        app_id = application_in(
            session, registry, cast, scheme="svqm", level="bronze", state="draft", at=now
        ).id
        applicant, admin = workflow.Actor.of(cast.applicant), workflow.Actor.of(cast.admin)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def act(actor) -> None:
        with Session(engine) as reader:
            version = reader.get(Application, app_id).version
        barrier.wait(timeout=10)
        try:
            with session_scope(engine) as session:
                app = session.get(Application, app_id)
                workflow.fire(
                    session,
                    app,
                    "withdraw",
                    actor=actor,
                    registry=registry,
                    now=now,
                    expected_version=version,
                )
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=act, args=(a,)) for a in (applicant, admin)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["conflict", "ok"]
    with session_scope(engine, write=False) as session:
        assert session.exec(select(func.count()).select_from(AuditEvent)).one() == 1
