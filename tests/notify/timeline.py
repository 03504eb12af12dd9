"""Drive the sweep through simulated time: jump from one wake-up to the next, recording what happens."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from svqm.db import session_scope
from svqm.notify.models import OutboxMessage
from svqm.notify.sweep import SweepReport, sweep
from svqm.workflow.models import Award
from svqm.workflow.schedule import OPEN, ScheduledDeadline
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import fire
from tests.factories import store_at
from tests.workflow.harness import Cast, application_in, make_cast, satisfy

BASE = "https://svqm.example"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class Timeline:
    engine: Engine
    registry: SchemeRegistry
    sweeps: list[tuple[datetime, SweepReport]] = field(default_factory=list)

    def next_wake(self) -> datetime | None:
        with Session(self.engine) as s:
            return s.exec(
                select(func.min(ScheduledDeadline.wake_at)).where(ScheduledDeadline.status == OPEN)
            ).one()

    def run_until(self, end: datetime) -> None:
        """Sweep at every wake-up up to `end`, as a scheduler that never misses would."""
        while (wake := self.next_wake()) is not None and wake <= end:
            self.sweeps.append((wake, sweep(self.engine, self.registry, now=wake, base_url=BASE)))

    def sweep_at(self, when: datetime) -> SweepReport:
        report = sweep(self.engine, self.registry, now=when, base_url=BASE)
        self.sweeps.append((when, report))
        return report


def messages(engine: Engine) -> list[OutboxMessage]:
    """The deadlines' messages (reminders, passed dates); event emails are tests/notify/test_events."""
    with Session(engine) as s:
        return list(
            s.exec(
                select(OutboxMessage)
                .where(col(OutboxMessage.deadline_id).is_not(None))
                .order_by(col(OutboxMessage.id))
            )
        )


def deadlines(engine: Engine, kind: str | None = None) -> list[ScheduledDeadline]:
    with Session(engine) as s:
        query = select(ScheduledDeadline).order_by(col(ScheduledDeadline.id))
        if kind:
            query = query.where(ScheduledDeadline.kind == kind)
        return list(s.exec(query))


def confirmed_award(
    session: Session, registry: SchemeRegistry, cast: Cast, tmp: Path, level: str
) -> Award:
    """An SVQM award for the cast's organisation, issued through the panel's `confirm_award` at T0."""
    policy = registry.get("svqm").policy
    app = application_in(
        session, registry, cast, scheme="svqm", level=level, state="recommended_award", at=T0
    )
    t = policy.workflows.application.transition("confirm_award", "recommended_award")
    assert t is not None
    _, comment = satisfy(session, policy, registry, store_at(tmp), cast, app, t, T0)
    fire(
        session,
        app,
        "confirm_award",
        actor=cast.actor("panel"),
        registry=registry,
        now=T0,
        comment=comment,
    )
    award = session.exec(select(Award).where(Award.application_id == app.id)).one()
    assert award.id is not None
    return award


def issue_award(
    engine: Engine, registry: SchemeRegistry, tmp: Path, level: str
) -> tuple[int, Cast]:
    """A new organisation's award issued at T0, and the cast around it."""
    with session_scope(engine) as s:
        cast = make_cast(s)
        award = confirmed_award(s, registry, cast, tmp, level)
        assert award.id is not None
        return award.id, cast
