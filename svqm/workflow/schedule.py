"""The schedule: each running deadline of a subject as a row, kept in step with its state.

The rows are the scheduler's whole memory. `sync` runs in the transaction of every state change,
so a deadline starts, moves or stops with the state that governs it; the sweep (svqm.notify)
reads only rows whose `wake_at` has come, through an index, however many rows there are.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Column, Index, Text, UniqueConstraint, and_, func, or_, update
from sqlmodel import Field, Session, SQLModel, col, select

from svqm.db import UtcDateTime
from svqm.policy import Deadline, Policy
from svqm.workflow import deadlines as arithmetic
from svqm.workflow.models import Application, Award

OPEN = "open"
# How a row ends: the subject left the deadline's states (cancelled), the deadline was met before
# it fell due (met: an annual report filed), or it passed (passed, fired, failed).
CLOSED_STATES = ("cancelled", "met", "passed", "fired", "failed")
# The ends that settle an occurrence: a repeat counts on from them (see `_settled` for one-offs).
DONE_STATES = ("met", "passed", "fired", "failed")


class ScheduledDeadline(SQLModel, table=True):
    """One occurrence of a policy deadline for one subject."""

    __tablename__ = "deadline"
    __table_args__ = (
        UniqueConstraint("subject_kind", "subject_id", "kind", "seq"),
        # The sweep reads open rows by wake time, and only those: one range of this index.
        Index("ix_deadline_wake", "status", "wake_at"),
        Index("ix_deadline_subject", "subject_kind", "subject_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subject_kind: str = Field(max_length=20)
    subject_id: int
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    scheme: str = Field(max_length=64)
    kind: str = Field(max_length=64)
    # seq numbers every row of this kind for the subject; occurrence counts the repeats of a
    # repeating deadline (the first annual report is 0, the second 1).
    seq: int = 0
    occurrence: int = 0
    due_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    # When the sweep must next look at the row: the next reminder or the due moment; NULL once
    # nothing is left to do.
    wake_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))
    # The reminder offsets (days before due) already handled, smallest last; "" for none.
    reminded: str = Field(default="", max_length=200)
    status: str = Field(default=OPEN, max_length=20)
    outcome: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))

    @property
    def reminded_days(self) -> list[int]:
        return [int(d) for d in self.reminded.split(",") if d]


def next_wake(deadline: Deadline, due: datetime, reminded: list[int]) -> datetime:
    """The first moment something is left to do: a reminder not yet sent, else the due moment."""
    handled = min(reminded) if reminded else None
    for days in deadline.remind_before_days:  # largest first
        if handled is None or days < handled:
            return due - timedelta(days=days)
    return due


def _kind(subject: Application | Award) -> str:
    return "application" if isinstance(subject, Application) else "award"


def open_rows(session: Session, kind: str, subject_id: int) -> list[ScheduledDeadline]:
    """The subject's open deadline rows."""
    return list(
        session.exec(
            select(ScheduledDeadline).where(
                ScheduledDeadline.subject_kind == kind,
                ScheduledDeadline.subject_id == subject_id,
                ScheduledDeadline.status == OPEN,
            )
        )
    )


def _last_done(
    session: Session, kind: str, subject_id: int, d: Deadline
) -> ScheduledDeadline | None:
    """The latest settled occurrence of a deadline for a subject, if any."""
    return session.exec(
        select(ScheduledDeadline)
        .where(
            ScheduledDeadline.subject_kind == kind,
            ScheduledDeadline.subject_id == subject_id,
            ScheduledDeadline.kind == d.kind,
            col(ScheduledDeadline.status).in_(DONE_STATES),
        )
        .order_by(col(ScheduledDeadline.occurrence).desc(), col(ScheduledDeadline.seq).desc())
        .limit(1)
    ).first()


def _next_seq(session: Session, kind: str, subject_id: int, d: Deadline) -> int:
    seq = session.exec(
        select(func.coalesce(func.max(ScheduledDeadline.seq) + 1, 0)).where(
            ScheduledDeadline.subject_kind == kind,
            ScheduledDeadline.subject_id == subject_id,
            ScheduledDeadline.kind == d.kind,
        )
    ).one()
    return int(seq)


def _settled(
    session: Session, kind: str, subject: Application | Award, d: Deadline, due: datetime
) -> bool:
    """Whether this one-off deadline, for this due time, is already settled.

    Met (by a filing) or passed (no `on_due`), it stays settled whatever the subject does next:
    reopening it would chase a filing already made, or announce the same date again. Fired or
    refused, it is settled only for the current stay in the state (from `state_changed_at`,
    inclusive, so a deadline fired into a state that also runs it does not fire again at once);
    after a later state change it opens again, as an award back in good standing is eligible to
    upgrade again. A deadline anchored on `state_entered` has a new due time in every stay.
    """
    found = session.exec(
        select(ScheduledDeadline.id)
        .where(
            ScheduledDeadline.subject_kind == kind,
            ScheduledDeadline.subject_id == subject.id,
            ScheduledDeadline.kind == d.kind,
            ScheduledDeadline.due_at == due,
            or_(
                col(ScheduledDeadline.status).in_(("met", "passed")),
                and_(
                    col(ScheduledDeadline.status).in_(("fired", "failed")),
                    col(ScheduledDeadline.closed_at) >= subject.state_changed_at,
                ),
            ),
        )
        .limit(1)
    ).first()
    return found is not None


def _next_due(
    session: Session, policy: Policy, kind: str, subject: Application | Award, d: Deadline
) -> tuple[int, datetime] | None:
    """(occurrence, due) of the row to open now, or None when there is none to open.

    A repeat counts on from the last occurrence met or passed; `repeat_from: met` counts from
    when it was met (a missed one from its due time). A settled one-off deadline stays closed.
    """
    assert subject.id is not None
    anchor = arithmetic.anchor_time(d, subject)
    occurrence, previous = 0, None
    if d.repeat_months:
        last = _last_done(session, kind, subject.id, d)
        if last is not None:
            occurrence = last.occurrence + 1
            met = last.status == "met" and last.closed_at is not None
            previous = last.closed_at if met else last.due_at
    due = arithmetic.due_at(policy, d, anchor, occurrence, previous=previous)
    if arithmetic.beyond_expiry(d, subject, due):
        return None
    if not d.repeat_months and _settled(session, kind, subject, d, due):
        return None
    return occurrence, due


def sync(session: Session, policy: Policy, subject: Application | Award, now: datetime) -> None:
    """Open the deadlines the subject's state now runs, and cancel those it no longer runs."""
    kind = _kind(subject)
    assert subject.id is not None
    wanted = {d.kind: d for d in policy.deadlines if arithmetic.applies(d, kind, subject)}
    for row in open_rows(session, kind, subject.id):
        d = wanted.pop(row.kind, None)
        if d is None:
            close(session, row, "cancelled", now, f"the {kind} left the deadline's states")
    for d in wanted.values():
        nxt = _next_due(session, policy, kind, subject, d)
        if nxt is None:
            continue
        occurrence, due = nxt
        session.add(
            ScheduledDeadline(
                subject_kind=kind,
                subject_id=subject.id,
                organisation_id=subject.organisation_id,
                scheme=subject.scheme,
                kind=d.kind,
                seq=_next_seq(session, kind, subject.id, d),
                occurrence=occurrence,
                due_at=due,
                wake_at=next_wake(d, due, []),
                created_at=now,
            )
        )
    session.flush()


def close(
    session: Session, row: ScheduledDeadline, status: str, now: datetime, outcome: str
) -> bool:
    """Close an open row (conditionally: False if another process closed it first)."""
    assert status in CLOSED_STATES
    result = session.execute(
        update(ScheduledDeadline)
        .where(col(ScheduledDeadline.id) == row.id, col(ScheduledDeadline.status) == OPEN)
        .values(status=status, wake_at=None, closed_at=now, outcome=outcome)
        .execution_options(synchronize_session=False)
    )
    changed = result.rowcount == 1  # type: ignore[attr-defined]
    if changed:
        row.status, row.wake_at, row.closed_at, row.outcome = status, None, now, outcome
    return changed


def upcoming(
    session: Session, *, organisation_id: int | None = None, limit: int = 200
) -> list[ScheduledDeadline]:
    """Open deadlines, soonest first (one organisation's, or everyone's for admins)."""
    query = select(ScheduledDeadline).where(ScheduledDeadline.status == OPEN)
    if organisation_id is not None:
        query = query.where(ScheduledDeadline.organisation_id == organisation_id)
    return list(session.exec(query.order_by(col(ScheduledDeadline.due_at)).limit(limit)))


def for_subject(session: Session, kind: str, subject_id: int) -> list[ScheduledDeadline]:
    """Every deadline row of a subject, open and closed, in due order."""
    return list(
        session.exec(
            select(ScheduledDeadline)
            .where(
                ScheduledDeadline.subject_kind == kind,
                ScheduledDeadline.subject_id == subject_id,
            )
            .order_by(col(ScheduledDeadline.due_at), col(ScheduledDeadline.id))
        )
    )


def open_due(
    session: Session, kind: str, subject_ids: Iterable[int]
) -> dict[int, list[tuple[str, datetime]]]:
    """Each subject's open deadlines as (kind, due), soonest first: what the sweep will act on."""
    ids = set(subject_ids)
    found: dict[int, list[tuple[str, datetime]]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = session.exec(
        select(ScheduledDeadline.subject_id, ScheduledDeadline.kind, ScheduledDeadline.due_at)
        .where(
            ScheduledDeadline.subject_kind == kind,
            col(ScheduledDeadline.subject_id).in_(ids),
            ScheduledDeadline.status == OPEN,
        )
        .order_by(col(ScheduledDeadline.due_at), col(ScheduledDeadline.id))
    )
    for subject_id, deadline_kind, due in rows:
        found[subject_id].append((deadline_kind, due))
    return found


def subjects_of(
    session: Session, rows: Iterable[ScheduledDeadline]
) -> dict[tuple[str, int], Application | Award]:
    """The rows' subjects by (kind, id), two queries in all."""
    rows = list(rows)
    found: dict[tuple[str, int], Application | Award] = {}
    for kind, model in (("application", Application), ("award", Award)):
        ids = {r.subject_id for r in rows if r.subject_kind == kind}
        if ids:
            for subject in session.exec(select(model).where(col(model.id).in_(ids))):
                assert subject.id is not None
                found[(kind, subject.id)] = subject
    return found
