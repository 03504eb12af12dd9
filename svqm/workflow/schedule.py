"""The schedule: each running deadline of a subject as a row, kept in step with its state.

The rows are the scheduler's whole memory. `sync` runs in the transaction of every state change,
so a deadline starts, moves or stops with the state that governs it; the sweep (svqm.notify)
reads only rows whose `wake_at` has come, through an index, however many rows there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Column,
    Index,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    func,
    insert,
    update,
)
from sqlalchemy import select as sa_select
from sqlalchemy.orm.util import identity_key
from sqlmodel import Field, Session, SQLModel, col, select

from svqm.db import UtcDateTime, rows_changed, table_of
from svqm.policy import Deadline, Policy
from svqm.workflow import deadlines as arithmetic
from svqm.workflow.models import AnnualReport, Application, Award, Subject, kind_of

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


# `sync` runs in every state change, so its statements are built once, on the Core table: no
# per-call statement building or ORM result machinery, and each is a single round trip.
_TABLE = table_of(ScheduledDeadline)
_SUBJECT = and_(
    _TABLE.c.subject_kind == bindparam("s_kind"), _TABLE.c.subject_id == bindparam("s_id")
)
_CLOSE_SET: dict[str, Any] = {
    "status": bindparam("s_status"),
    "wake_at": None,
    "closed_at": bindparam("s_now"),
    "outcome": bindparam("s_outcome"),
}
# Cancelled rows settle nothing, and a subject moving back and forth leaves many of them
# behind, so they are not read (the insert below still counts them for `seq`).
_PAST = sa_select(
    _TABLE.c.id,
    _TABLE.c.kind,
    _TABLE.c.seq,
    _TABLE.c.occurrence,
    _TABLE.c.status,
    _TABLE.c.due_at,
    _TABLE.c.closed_at,
).where(_SUBJECT, _TABLE.c.status.in_((OPEN, *DONE_STATES)))
_CLOSE_ALL = (
    update(_TABLE)
    .where(_SUBJECT, _TABLE.c.status == OPEN)
    .values(**_CLOSE_SET)
    .returning(_TABLE.c.id)
)
_CLOSE_IDS = (
    update(_TABLE)
    .where(_TABLE.c.id.in_(bindparam("s_ids", expanding=True)), _TABLE.c.status == OPEN)
    .values(**_CLOSE_SET)
    .returning(_TABLE.c.id)
)
_PRIOR = _TABLE.alias("prior")
# seq numbers every row of the kind, cancelled ones too: the next one is worked out in the
# insert itself (the subject's row lock, taken by its version bump, keeps it from racing).
_OPEN = insert(_TABLE).values(
    seq=select(func.coalesce(func.max(_PRIOR.c.seq) + 1, 0))
    .where(
        _PRIOR.c.subject_kind == bindparam("s_kind"),
        _PRIOR.c.subject_id == bindparam("s_id"),
        _PRIOR.c.kind == bindparam("s_deadline"),
    )
    .scalar_subquery()
)


class _Past(NamedTuple):
    """What `sync` needs of one of the subject's open or settled rows."""

    id: int
    kind: str
    seq: int
    occurrence: int
    status: str
    due_at: datetime
    closed_at: datetime | None


def _settled(done: list[_Past], subject: Subject, due: datetime) -> bool:
    """Whether this one-off deadline (its settled rows `done`), for this due time, is settled.

    Met (by a filing) or passed (no `on_due`), it stays settled whatever the subject does next:
    reopening it would chase a filing already made, or announce the same date again. Fired or
    refused, it is settled only for the current stay in the state (from `state_changed_at`,
    inclusive, so a deadline fired into a state that also runs it does not fire again at once);
    after a later state change it opens again, as an award back in good standing is eligible to
    upgrade again. A deadline anchored on `state_entered` has a new due time in every stay.
    """
    for r in done:
        if r.due_at != due:
            continue
        if r.status in ("met", "passed"):
            return True
        if r.closed_at is not None and r.closed_at >= subject.state_changed_at:
            return True  # fired or failed during this stay
    return False


def _next_due(
    policy: Policy, subject: Subject, d: Deadline, done: list[_Past]
) -> tuple[int, datetime] | None:
    """(occurrence, due) of the row to open now, or None when there is none to open.

    `done` are the deadline's settled rows. A repeat counts on from the last occurrence met or
    passed; `repeat_from: met` counts from when it was met (a missed one from its due time).
    A settled one-off deadline stays closed.
    """
    anchor = arithmetic.anchor_time(d, subject)
    occurrence, previous = 0, None
    if d.repeat_months and done:
        last = max(done, key=lambda r: (r.occurrence, r.seq))
        occurrence = last.occurrence + 1
        met = last.status == "met" and last.closed_at is not None
        previous = last.closed_at if met else last.due_at
    due = arithmetic.due_at(policy, d, anchor, occurrence, previous=previous)
    if arithmetic.beyond_expiry(d, subject, due):
        return None
    if not d.repeat_months and _settled(done, subject, due):
        return None
    return occurrence, due


def sync(session: Session, policy: Policy, subject: Subject, now: datetime) -> None:
    """Open the deadlines the subject's state now runs, and cancel those it no longer runs.

    At most three statements whatever the policy: a state that runs no deadline cancels the
    open rows in one update; otherwise one read of the subject's open and settled rows, one
    update for those to cancel and one insert for those to open.
    """
    kind = kind_of(subject)
    assert subject.id is not None
    # Core statements do not autoflush: pending ORM changes must reach the database first.
    session.flush()
    # On the session's connection: these Core statements need none of the ORM's execution.
    conn = session.connection()
    wanted = {d.kind: d for d in policy.deadlines if arithmetic.applies(d, kind, subject)}
    outcome = f"the {kind} left the deadline's states"
    if not wanted:
        params = {"s_kind": kind, "s_id": subject.id}
        closed = conn.execute(_CLOSE_ALL, {**params, **_closing("cancelled", now, outcome)})
        _tell_loaded(session, closed.scalars().all(), "cancelled", now, outcome)
        session.flush()
        return
    past = [_Past(*r) for r in conn.execute(_PAST, {"s_kind": kind, "s_id": subject.id})]
    # An open row keeps its deadline (and its due time); a second open row of a kind, or one
    # of a kind the state no longer runs, is cancelled.
    stale = [r.id for r in past if r.status == OPEN and wanted.pop(r.kind, None) is None]
    if stale:
        close_ids(session, stale, "cancelled", now, outcome)
    opening = []
    for d in wanted.values():
        done = [r for r in past if r.kind == d.kind and r.status in DONE_STATES]
        nxt = _next_due(policy, subject, d, done)
        if nxt is None:
            continue
        occurrence, due = nxt
        opening.append(
            {
                "s_kind": kind,
                "s_id": subject.id,
                "s_deadline": d.kind,
                "subject_kind": kind,
                "subject_id": subject.id,
                "organisation_id": subject.organisation_id,
                "scheme": subject.scheme,
                "kind": d.kind,
                "occurrence": occurrence,
                "due_at": due,
                "wake_at": next_wake(d, due, []),
                "reminded": "",
                "status": OPEN,
                "outcome": "",
                "created_at": now,
                "closed_at": None,
            }
        )
    if opening:
        conn.execute(_OPEN, opening)
    session.flush()


def _closing(status: str, now: datetime, outcome: str) -> dict[str, Any]:
    assert status in CLOSED_STATES
    return {"s_status": status, "s_now": now, "s_outcome": outcome}


def close_ids(
    session: Session, ids: list[int], status: str, now: datetime, outcome: str
) -> list[int]:
    """Close open rows by id in one statement; the ids it closed (others were closed already)."""
    params = {"s_ids": ids, **_closing(status, now, outcome)}
    closed = list(session.connection().execute(_CLOSE_IDS, params).scalars())
    _tell_loaded(session, closed, status, now, outcome)
    return closed


def _tell_loaded(
    session: Session, ids: Sequence[int], status: str, now: datetime, outcome: str
) -> None:
    """Copies of closed rows already loaded in this session are told, as `close` tells its row."""
    for row_id in ids:
        row = session.identity_map.get(identity_key(ScheduledDeadline, row_id))
        if row is not None:
            row.status, row.wake_at, row.closed_at, row.outcome = status, None, now, outcome


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
    changed = rows_changed(result) == 1
    if changed:
        row.status, row.wake_at, row.closed_at, row.outcome = status, None, now, outcome
    return changed


def failed(session: Session, *, limit: int = 100) -> list[ScheduledDeadline]:
    """Deadlines whose due action could not run (the sweep records why in `outcome`), newest first."""
    return list(
        session.exec(
            select(ScheduledDeadline)
            .where(ScheduledDeadline.status == "failed")
            .order_by(col(ScheduledDeadline.closed_at).desc(), col(ScheduledDeadline.id).desc())
            .limit(limit)
        )
    )


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


# Built once: building this query on each call (every API read and page that shows deadlines)
# cost several times more than running it. The ids are an expanding parameter.
_OPEN_DUE = (
    select(ScheduledDeadline.subject_id, ScheduledDeadline.kind, ScheduledDeadline.due_at)
    .where(
        ScheduledDeadline.subject_kind == bindparam("kind"),
        col(ScheduledDeadline.subject_id).in_(bindparam("ids", expanding=True)),
        ScheduledDeadline.status == OPEN,
    )
    .order_by(col(ScheduledDeadline.due_at), col(ScheduledDeadline.id))
)


def open_due(
    session: Session, kind: str, subject_ids: Iterable[int]
) -> dict[int, list[tuple[str, datetime]]]:
    """Each subject's open deadlines as (kind, due), soonest first: what the sweep will act on."""
    ids = set(subject_ids)
    found: dict[int, list[tuple[str, datetime]]] = {i: [] for i in ids}
    if not ids:
        return found
    # Plain rows on the session's connection (after what is pending, as the ORM's autoflush
    # would): the ORM's handling of a column read cost more than the query.
    session.flush()
    rows = session.connection().execute(_OPEN_DUE, {"kind": kind, "ids": sorted(ids)})
    for subject_id, deadline_kind, due in rows:
        found[subject_id].append((deadline_kind, due))
    return found


def subjects_of(
    session: Session, rows: Iterable[ScheduledDeadline]
) -> dict[tuple[str, int], Subject]:
    """The rows' subjects by (kind, id), two queries in all."""
    rows = list(rows)
    found: dict[tuple[str, int], Subject] = {}
    apps = {r.subject_id for r in rows if r.subject_kind == "application"}
    awards = {r.subject_id for r in rows if r.subject_kind == "award"}
    filed = {r.subject_id for r in rows if r.subject_kind == "report"}
    if filed:
        for report in session.exec(select(AnnualReport).where(col(AnnualReport.id).in_(filed))):
            assert report.id is not None
            found[("report", report.id)] = report
    if apps:
        for app in session.exec(select(Application).where(col(Application.id).in_(apps))):
            assert app.id is not None
            found[("application", app.id)] = app
    if awards:
        for award in session.exec(select(Award).where(col(Award.id).in_(awards))):
            assert award.id is not None
            found[("award", award.id)] = award
    return found
