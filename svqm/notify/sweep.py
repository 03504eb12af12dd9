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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import Integer, bindparam, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from svqm.db import ManyRows, PlainSelect, UtcDateTime, session_scope, table_of
from svqm.errors import SvqmError
from svqm.notify import consultation, outbox
from svqm.notify import digest as digests
from svqm.notify.recipients import Audience, Subject
from svqm.policy import Deadline, Policy
from svqm.workflow import consultation as consultation_rows
from svqm.workflow import schedule
from svqm.workflow.models import AnnualReport, Application, Award
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
    digests: int = 0

    def add(self, other: SweepReport) -> None:
        self.reminders.update(other.reminders)
        self.due.update(other.due)
        self.fired.update(other.fired)
        self.failed.extend(other.failed)
        self.rows += other.rows
        self.digests += other.digests


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
            break
    # Staff who chose a daily digest: their held event emails, once a day.
    with session_scope(engine) as session:
        report.digests = digests.send_digests(session, now)
    # Stakeholders who have not answered a consultation yet, before it closes.
    while True:
        with session_scope(engine) as session:
            reminded = consultation.remind(session, registry, now)
            more = len(consultation_rows.due_reminders(session, now, limit=1)) > 0
        if reminded:
            report.reminders["consultation"] += reminded
        if not more or not reminded:
            return report


def sweep_batch(
    session: Session, registry: SchemeRegistry, *, now: datetime, base_url: str, limit: int
) -> SweepReport:
    """One batch in the caller's transaction."""
    session.flush()  # what session.execute would flush first; the reads below go to the connection
    conn = session.connection()
    # Plain columns, not ORM objects: most rows only send a reminder and move on.
    rows = list(map(_Due._make, _DUE_ROWS.rows(conn, {"now": now, "limit": limit})))
    report = SweepReport(rows=len(rows))
    if not rows:
        return report
    subjects = _Subjects(session, rows)
    batch = _Batch(session, now, Audience(session, base_url, subjects.plain_items()), report)
    # Most rows share a policy version and a kind of deadline: looked up once a batch.
    deadlines: dict[tuple[str, str], tuple[Policy, Deadline | None]] = {}
    for row in rows:
        subject = subjects.get(row.subject_kind, row.subject_id)
        if subject is None:
            _close(session, row, "cancelled", now, "the subject no longer exists")
            continue
        found = deadlines.get((subject.policy_digest, row.kind))
        if found is None:
            policy = registry.by_digest(session, subject.policy_digest).policy
            found = deadlines[(subject.policy_digest, row.kind)] = (
                policy,
                policy.deadline(row.kind),
            )
        policy, d = found
        if d is None or subject.state not in d.while_in:
            _close(session, row, "cancelled", now, "no longer applies")
            continue
        if now < row.due_at:
            _remind(batch, row, d, policy, subject)
        else:
            _pass(batch, row, d, policy, subject, subjects, registry)
    batch.flush()
    return report


_T = table_of(ScheduledDeadline)
# Built once: the batch's due rows, through the (status, wake_at) index.
_DUE_ROWS = PlainSelect(
    sa_select(
        _T.c.id,
        _T.c.subject_kind,
        _T.c.subject_id,
        _T.c.organisation_id,
        _T.c.kind,
        _T.c.due_at,
        _T.c.reminded,
    )
    .where(_T.c.status == schedule.OPEN, _T.c.wake_at <= bindparam("now", type_=UtcDateTime()))
    .order_by(_T.c.wake_at, _T.c.id)
    .limit(bindparam("limit", type_=Integer()))
    .with_for_update(skip_locked=True)
)
# The reminders' progress, for many rows at once (only while nobody else moved them on).
_ADVANCE = ManyRows(
    update(_T)
    .where(
        _T.c.id == bindparam("b_id"),
        _T.c.status == schedule.OPEN,
        _T.c.reminded == bindparam("b_old"),
    )
    .values(reminded=bindparam("b_new"), wake_at=bindparam("b_wake"))
)


class _Due(NamedTuple):
    """What the sweep needs of a deadline row."""

    id: int
    subject_kind: str
    subject_id: int
    organisation_id: int
    kind: str
    due_at: datetime
    reminded: str


class _Plain(NamedTuple):
    """A plain copy of a subject's row: what the checks and the emails read."""

    id: int
    organisation_id: int
    level: str
    state: str
    policy_digest: str
    assessor_id: int | None = None
    certificate_number: str = ""
    award_id: int | None = None
    period: str = ""


_MODELS: dict[str, type[Application] | type[Award] | type[AnnualReport]] = {
    "application": Application,
    "award": Award,
    "report": AnnualReport,
}
# The columns of each kind of subject an email needs beyond those they share.
_OWN = {
    "application": ("assessor_id",),
    "award": ("certificate_number",),
    "report": ("assessor_id", "award_id", "period"),
}

# Built once: each kind's plain columns for a batch's subjects (an expanding IN list).
_SUBJECT_ROWS = {
    kind: PlainSelect(
        sa_select(
            col(model.id),
            col(model.organisation_id),
            col(model.level),
            col(model.state),
            col(model.policy_digest),
            *(getattr(model, name) for name in _OWN[kind]),
        ).where(col(model.id).in_(bindparam("ids", expanding=True)))
    )
    for kind, model in _MODELS.items()
}
_SHARED = 5  # the columns every kind of subject gives first (id to policy_digest)


def _plain_of(kind: str) -> Any:
    """A function making a _Plain of a row of `_SUBJECT_ROWS[kind]` (the shared columns, then
    the kind's own; the other fields keep their defaults), at C speed."""
    own = _OWN[kind]
    others = [f for f in _Plain._fields[_SHARED:] if f not in own]
    defaults = tuple(_Plain._field_defaults[f] for f in others)
    # Where each field is in the row followed by the defaults of the fields it does not give.
    given = [*_Plain._fields[:_SHARED], *own, *others]
    pick = itemgetter(*(given.index(f) for f in _Plain._fields))
    make = _Plain._make
    return lambda row: make(pick(row + defaults))


_MAKE_PLAIN = {kind: _plain_of(kind) for kind in _MODELS}


class _Subjects:
    """The batch's subjects: plain copies, read in two queries, until the workflow acts.

    A state change moves the subject it fires on, and may move others (a renewal supersedes the
    old award), so from the first one on every subject is read through the session, whose
    objects the workflow keeps up to date.
    """

    def __init__(self, session: Session, rows: list[_Due]) -> None:
        self.session, self.live = session, False
        self.plain: dict[tuple[str, int], _Plain] = {}
        conn = session.connection()
        by_kind: dict[str, dict[int, None]] = {}  # each kind's ids, once each, in order
        for r in rows:
            by_kind.setdefault(r.subject_kind, {})[r.subject_id] = None
        for kind, statement in _SUBJECT_ROWS.items():
            ids = list(by_kind.get(kind, ()))
            if not ids:
                continue
            make = _MAKE_PLAIN[kind]
            for found in statement.rows(conn, {"ids": ids}):
                self.plain[(kind, found[0])] = make(found)

    def plain_items(self) -> list[tuple[str, _Plain]]:
        return [(kind, s) for (kind, _), s in self.plain.items()]

    def get(self, kind: str, subject_id: int) -> _Plain | Application | Award | AnnualReport | None:
        if self.live:
            return self._row(kind, subject_id)
        return self.plain.get((kind, subject_id))

    def acted_on(self, kind: str, subject_id: int) -> Application | Award | AnnualReport | None:
        """The subject as the workflow's object, to fire on; every later read goes live too."""
        self.live = True
        return self._row(kind, subject_id)

    def _row(self, kind: str, subject_id: int) -> Application | Award | AnnualReport | None:
        if kind == "application":
            return self.session.get(Application, subject_id)
        if kind == "report":
            return self.session.get(AnnualReport, subject_id)
        return self.session.get(Award, subject_id)


def _close(session: Session, row: _Due, status: str, now: datetime, outcome: str) -> bool:
    return bool(schedule.close_ids(session, [row.id], status, now, outcome))


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

    def advance(self, row: _Due, reminded: list[int], wake: datetime) -> None:
        text = ",".join(map(str, sorted(set(reminded), reverse=True)))
        self.advances.append({"b_id": row.id, "b_old": row.reminded, "b_new": text, "b_wake": wake})

    def tell(
        self,
        row: _Due,
        d: Deadline,
        policy: Policy,
        subject: Subject,
        roles: Sequence[str],
        *,
        template: str,
        days: int,
        outcome: str = "",
    ) -> None:
        kind = row.subject_kind
        for role in dict.fromkeys(roles):
            encoded = self.audience.encoded_context(
                policy, kind, subject, d, row.due_at, role, days_before=days, outcome=outcome
            )
            self.messages.append(
                outbox.message(
                    key=_key(row, days, role),
                    template=template,
                    encoded=encoded,
                    to_addrs=self.audience.addresses(kind, subject, role),
                    now=self.now,
                    organisation_id=row.organisation_id,
                    deadline_id=row.id,
                )
            )

    def flush(self) -> None:
        if self.advances:
            _ADVANCE.execute(self.session.connection(), self.advances)
        outbox.enqueue_many(self.session, self.messages)
        self.advances, self.messages = [], []


def _key(row: _Due, days: int, role: str) -> str:
    due = row.due_at.date().isoformat()  # YYYY-MM-DD, without strftime's cost
    return f"{row.subject_kind}-{row.subject_id}:{row.kind}:{due}:{days}d:{role}"


@lru_cache(maxsize=256)
def _days(days: int) -> timedelta:
    return timedelta(days=days)


def _remind(batch: _Batch, row: _Due, d: Deadline, policy: Policy, subject: Subject) -> None:
    """Send the latest reminder whose moment has come; older missed ones are only marked done."""
    handled = [int(days) for days in row.reminded.split(",") if days] if row.reminded else []
    floor = min(handled) if handled else None
    # A reminder `days` before due has come when due - days <= now, that is due - now <= days.
    left = row.due_at - batch.now
    passed = [
        days
        for days in d.remind_before_days
        if left <= _days(days) and (floor is None or days < floor)
    ]
    reminded = handled + passed
    batch.advance(row, reminded, schedule.next_wake(d, row.due_at, reminded))
    if not passed:
        return  # woken early (the policy's offsets changed): look again at the right time
    batch.tell(row, d, policy, subject, list(d.notify), template="reminder", days=min(passed))
    batch.report.reminders[row.kind] += 1


def _pass(
    batch: _Batch,
    row: _Due,
    d: Deadline,
    policy: Policy,
    subject: Subject,
    subjects: _Subjects,
    registry: SchemeRegistry,
) -> None:
    """The deadline has passed: close its row, fire its action, tell who needs to know."""
    session, now, report = batch.session, batch.now, batch.report
    if d.on_due is None:
        if not _close(session, row, "passed", now, "passed"):
            return
        outcome = ""
    else:
        acted = subjects.acted_on(row.subject_kind, row.subject_id)
        assert acted is not None
        subject = acted  # told about as the workflow left it
        savepoint = session.begin_nested()
        # Closed first, so the sync inside `fire` finds the row already done.
        if not _close(session, row, "fired", now, f"fired {d.on_due}"):
            savepoint.rollback()
            return
        try:
            outcome = _fire_due(session, row, d.on_due, acted, registry, now, policy)
        except SvqmError as exc:
            savepoint.rollback()
            outcome = f"{d.on_due.replace('_', ' ')} was refused: {exc}"
            _close(session, row, "failed", now, outcome)
            report.failed.append(f"{row.subject_kind} {row.subject_id} {row.kind}: {outcome}")
        else:
            savepoint.commit()
            report.fired[d.on_due] += 1
    report.due[row.kind] += 1
    roles = [*d.notify, *d.escalate_to]
    batch.tell(row, d, policy, subject, roles, template="due", days=0, outcome=outcome)


def _fire_due(
    session: Session,
    row: _Due,
    trigger: str,
    subject: Application | Award | AnnualReport,
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
