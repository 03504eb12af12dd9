"""The deadline sweep: reminders into the outbox, and what a passed deadline does, fired as `system`.

Only rows whose `wake_at` has come are read (through an index), in batches, each batch one
transaction: the reminder rows, the deadline's progress and any state change commit together or
not at all. A sweep after downtime catches up: every passed deadline acts once; of several missed
reminders of one deadline only the latest is sent (three reminders at once would be noise).
Two sweeps at once are safe: PostgreSQL gives them different rows (SKIP LOCKED), SQLite runs
them one after the other, and every step is a conditional update or a keyed insert.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from svqm.db import session_scope
from svqm.errors import SvqmError
from svqm.notify import outbox
from svqm.notify.recipients import Audience
from svqm.policy import Deadline, Policy
from svqm.workflow import schedule
from svqm.workflow.models import Application, Award
from svqm.workflow.schedule import ScheduledDeadline
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import SYSTEM, fire


@dataclass
class SweepReport:
    """What one sweep did, counted by kind."""

    reminders: Counter[str] = field(default_factory=Counter)
    due: Counter[str] = field(default_factory=Counter)
    fired: Counter[str] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)
    rows: int = 0

    def add(self, other: SweepReport) -> None:
        self.reminders.update(other.reminders)
        self.due.update(other.due)
        self.fired.update(other.fired)
        self.failed.extend(other.failed)
        self.rows += other.rows


def sweep(
    engine: Engine, registry: SchemeRegistry, *, now: datetime, base_url: str, batch: int = 500
) -> SweepReport:
    """Handle every deadline row due by `now`, one batch a transaction, until none is left."""
    report = SweepReport()
    while True:
        with session_scope(engine) as session:
            part = sweep_batch(session, registry, now=now, base_url=base_url, limit=batch)
        report.add(part)
        if part.rows < batch:
            return report


def sweep_batch(
    session: Session, registry: SchemeRegistry, *, now: datetime, base_url: str, limit: int
) -> SweepReport:
    """One batch in the caller's transaction."""
    rows = list(
        session.exec(
            select(ScheduledDeadline)
            .where(
                ScheduledDeadline.status == schedule.OPEN,
                col(ScheduledDeadline.wake_at) <= now,
            )
            .order_by(col(ScheduledDeadline.wake_at), col(ScheduledDeadline.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    report = SweepReport(rows=len(rows))
    if not rows:
        return report
    subjects = schedule.subjects_of(session, rows)
    batch = _Batch(session, now, Audience(session, base_url, subjects.values(), registry), report)
    for row in rows:
        subject = subjects.get((row.subject_kind, row.subject_id))
        if subject is None:
            schedule.close(session, row, "cancelled", now, "the subject no longer exists")
            continue
        policy = registry.for_subject(session, subject).policy
        d = policy.deadline(row.kind)
        if d is None or subject.state not in d.while_in:
            schedule.close(session, row, "cancelled", now, "no longer applies")
            continue
        if now < row.due_at:
            _remind(batch, row, d, subject)
        else:
            _pass(batch, row, d, policy, subject, registry)
    batch.flush()
    return report


@dataclass
class _Batch:
    """One batch's work; reminders' progress and messages are written in two statements at the end.

    The batch's rows are ours alone until it commits (locked FOR UPDATE on PostgreSQL; SQLite's
    one writer), so recording them together changes nothing but the number of round trips.
    """

    session: Session
    now: datetime
    audience: Audience
    report: SweepReport
    advances: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)

    def advance(self, row: ScheduledDeadline, reminded: list[int], wake: datetime) -> None:
        text = ",".join(str(d) for d in sorted(set(reminded), reverse=True))
        self.advances.append({"b_id": row.id, "b_old": row.reminded, "b_new": text, "b_wake": wake})

    def tell(
        self,
        row: ScheduledDeadline,
        d: Deadline,
        subject: Application | Award,
        roles: list[str],
        *,
        template: str,
        days: int,
        outcome: str = "",
    ) -> None:
        for role in dict.fromkeys(roles):
            context = self.audience.context(
                subject, d, row, role, days_before=days, outcome=outcome
            )
            self.messages.append(
                outbox.message(
                    key=_key(row, days, role),
                    template=template,
                    context=context,
                    to_addrs=self.audience.addresses(subject, role),
                    now=self.now,
                    organisation_id=row.organisation_id,
                    deadline_id=row.id,
                )
            )

    def flush(self) -> None:
        if self.advances:
            table = ScheduledDeadline.__table__  # type: ignore[attr-defined]
            self.session.execute(
                update(table)
                .where(
                    table.c.id == bindparam("b_id"),
                    table.c.status == schedule.OPEN,
                    table.c.reminded == bindparam("b_old"),
                )
                .values(reminded=bindparam("b_new"), wake_at=bindparam("b_wake")),
                self.advances,
            )
        outbox.enqueue_many(self.session, self.messages)
        self.advances, self.messages = [], []


def _key(row: ScheduledDeadline, days: int, role: str) -> str:
    return f"{row.subject_kind}-{row.subject_id}:{row.kind}:{row.due_at:%Y-%m-%d}:{days}d:{role}"


def _remind(
    batch: _Batch, row: ScheduledDeadline, d: Deadline, subject: Application | Award
) -> None:
    """Send the latest reminder whose moment has come; older missed ones are only marked done."""
    handled = row.reminded_days
    floor = min(handled) if handled else None
    passed = [
        days
        for days in d.remind_before_days
        if row.due_at - timedelta(days=days) <= batch.now and (floor is None or days < floor)
    ]
    reminded = handled + passed
    batch.advance(row, reminded, schedule.next_wake(d, row.due_at, reminded))
    if not passed:
        return  # woken early (the policy's offsets changed): look again at the right time
    batch.tell(row, d, subject, list(d.notify), template="reminder", days=min(passed))
    batch.report.reminders[row.kind] += 1


def _pass(
    batch: _Batch,
    row: ScheduledDeadline,
    d: Deadline,
    policy: Policy,
    subject: Application | Award,
    registry: SchemeRegistry,
) -> None:
    """The deadline has passed: close its row, fire its action, tell who needs to know."""
    session, now, report = batch.session, batch.now, batch.report
    if d.on_due is None:
        if not schedule.close(session, row, "passed", now, "passed"):
            return
        outcome = ""
    else:
        savepoint = session.begin_nested()
        # Closed first, so the sync inside `fire` finds the row already done.
        if not schedule.close(session, row, "fired", now, f"fired {d.on_due}"):
            savepoint.rollback()
            return
        try:
            outcome = _fire_due(session, row, d.on_due, subject, registry, now, policy)
        except SvqmError as exc:
            savepoint.rollback()
            outcome = f"{d.on_due.replace('_', ' ')} was refused: {exc}"
            schedule.close(session, row, "failed", now, outcome)
            report.failed.append(f"{row.subject_kind} {row.subject_id} {row.kind}: {outcome}")
        else:
            savepoint.commit()
            report.fired[d.on_due] += 1
    report.due[row.kind] += 1
    roles = [*d.notify, *d.escalate_to]
    batch.tell(row, d, subject, roles, template="due", days=0, outcome=outcome)


def _fire_due(
    session: Session,
    row: ScheduledDeadline,
    trigger: str,
    subject: Application | Award,
    registry: SchemeRegistry,
    now: datetime,
    policy: Policy,
) -> str:
    source_title = policy.workflows.of(row.subject_kind).state(subject.state).title
    fire(
        session,
        subject,
        trigger,
        actor=SYSTEM,
        registry=registry,
        now=now,
        comment=f"{row.kind} passed on {row.due_at:%Y-%m-%d}",
    )
    dest = policy.workflows.of(row.subject_kind).state(subject.state).title
    return f"the {row.subject_kind} is now '{dest}' (it was '{source_title}')"
