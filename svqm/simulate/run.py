"""The simulation's clock and calendar: people's tasks by day, the sweep and the dispatcher each morning."""

from __future__ import annotations

import gc
import heapq
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import text
from sqlalchemy.engine import Engine

from svqm.clock import FixedClock
from svqm.config import Settings, get_settings
from svqm.db import UtcDateTime, session_scope
from svqm.errors import SvqmError
from svqm.notify.dispatch import dispatch
from svqm.notify.sweep import SweepReport, sweep
from svqm.simulate.payments import Paying
from svqm.simulate.people import People
from svqm.simulate.report import SimulationResult, labels_of, read_back
from svqm.simulate.route import at_work
from svqm.simulate.world import CountingMailer, Member, World, build_world, open_database
from svqm.workflow import schedule
from svqm.workflow.schemes import SchemeRegistry

START = datetime(2026, 1, 1, tzinfo=UTC)
SWEEP_HOUR = timedelta(hours=6)  # the sweep runs each simulated day at 06:00 UTC
# Organisations arrive over the first year (or the first half of a shorter run).
ARRIVALS_DAYS = 365

Task = tuple[datetime, int, int, str, int, str]  # when, order, member, task, subject id, argument


# The collector's thresholds during a run. Python's own (2,000 new objects, then 10 and 10
# collections) ran about 500 collections in a year of 100 organisations, 5% of its CPU: the
# rows and statements every event makes are freed by reference counting, not by the collector,
# and few are ever in a cycle. With these it runs a handful, for a few MiB more at the peak.
RUN_GC_THRESHOLDS = (50_000, 50, 100)


@contextmanager
def _few_collections() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(*RUN_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


@contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    path = Path(tempfile.mkdtemp(prefix="svqm-simulate-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Simulation:
    """A synthetic population run through one scheme, day by day, through the real services.

    Args:
        registry: the schemes; `scheme` must be one of them.
        organisations: how many organisations (each with one applicant) take part.
        seed: every random choice comes from `random.Random(seed)`: the same seed, the same run.
        workdir: keep the database and evidence there (default: a temporary directory, deleted).
        verify_audit: check every audit hash chain at the end.
        database_url: populate this (empty) database instead of a new SQLite file, e.g. a
            PostgreSQL one for a rehearsal; it is migrated first and kept.
    """

    def __init__(
        self,
        registry: SchemeRegistry,
        *,
        scheme: str = "svqm",
        organisations: int,
        seed: int = 1,
        start: datetime = START,
        workdir: Path | None = None,
        settings: Settings | None = None,
        verify_audit: bool = True,
        database_url: str | None = None,
    ) -> None:
        registry.get(scheme)  # NotFound for an unknown scheme, before any work
        self.registry, self.scheme, self.organisations, self.seed = (
            registry,
            scheme,
            organisations,
            seed,
        )
        self.start, self.workdir, self.verify_audit = start, workdir, verify_audit
        self.database_url = database_url
        # A bigger claim per dispatch round than the default: the simulated mailer never waits.
        self.settings = (settings or get_settings()).model_copy(update={"OUTBOX_BATCH": 500})
        self._agenda: list[Task] = []
        self._order = 0

    def _later(self, m: Member, when: datetime, task: str, sid: int, arg: str) -> None:
        self._order += 1
        heapq.heappush(self._agenda, (when, self._order, m.index, task, sid, arg))

    def run(
        self, *, years: float, progress: bool = False, on_day: Callable[[int], None] | None = None
    ) -> SimulationResult:
        """Simulate `years` of the scheme and report what happened (`on_day(n)` after each day)."""
        began = time.perf_counter()
        days = max(1, round(years * 365.25))
        rng = random.Random(self.seed)
        self._agenda, self._order = [], 0
        with _workdir(self.workdir) as root, _few_collections():
            engine = open_database(root, self.database_url)
            try:
                world = build_world(engine, root, organisations=self.organisations, rng=rng)
                people = Paying(
                    self.registry, self.scheme, world.store, world.staff, rng, self._later
                )
                first = people.first_level.id
                arrivals = min(ARRIVALS_DAYS, days / 2)
                for m in world.members:
                    when = at_work(self.start + timedelta(days=rng.uniform(0, arrivals)), rng)
                    self._later(m, when, "apply", 0, first)
                swept, mailer = self._days(world, people, days, progress, on_day)
                with session_scope(engine, write=False) as session:
                    stored = read_back(session, people.policy, verify=self.verify_audit)
                stored["invoices"]["steps that waited for payment"] = people.waited
                stored["consultation"]["closed before the review"] = people.closed_before_review
            finally:
                engine.dispose()
        return SimulationResult(
            scheme=self.scheme,
            scheme_name=people.policy.name,
            organisations=self.organisations,
            years=years,
            seed=self.seed,
            start=self.start,
            end=self.start + timedelta(days=days),
            days=days,
            reminders=dict(sorted(swept.reminders.items())),
            deadlines_passed=dict(sorted(swept.due.items())),
            sweep_refusals=len(swept.failed),
            emails_delivered=mailer.sent,
            actions=people.actions,
            sweep_rows=swept.rows,
            refused=dict(sorted(people.refused.items())),
            wall_seconds=time.perf_counter() - began,
            labels=labels_of(people.policy),
            **stored,
        )

    def _days(
        self,
        world: World,
        people: People,
        days: int,
        progress: bool,
        on_day: Callable[[int], None] | None,
    ) -> tuple[SweepReport, CountingMailer]:
        """Each day: the sweep and the dispatcher at 06:00, then the day's tasks in one transaction.

        A day on which no deadline row wakes is skipped by the sweep: it would find nothing.
        """
        engine, clock = world.engine, FixedClock(self.start)
        swept, mailer = SweepReport(), CountingMailer()
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("days"),
            TimeElapsedColumn(),
        )
        wake = _next_wake(engine)
        with Progress(
            *columns, console=Console(stderr=True), transient=True, disable=not progress
        ) as bar:
            job = bar.add_task("simulating", total=days)
            for day in range(days):
                morning = self.start + timedelta(days=day)
                clock.at = morning + SWEEP_HOUR
                changed = wake is not None and wake <= clock.at
                if changed:
                    today = sweep(
                        engine, self.registry, now=clock.at, base_url=self.settings.BASE_URL
                    )
                    swept.add(today)
                    # Only the sweep fills the outbox, and this mailer never fails: no retries.
                    if today.reminders or today.due:
                        dispatch(engine, mailer, self.settings, clock)
                if self._tasks(world, people, clock, until=morning + timedelta(days=1)) or changed:
                    wake = _next_wake(engine)
                events = people.actions + swept.rows + mailer.sent
                bar.update(job, advance=1, description=f"{morning:%Y-%m-%d} {events:,} events")
                if on_day is not None:
                    on_day(day)
        return swept, mailer

    def _tasks(self, world: World, people: People, clock: FixedClock, *, until: datetime) -> bool:
        """Run every task due before `until`, each in a savepoint, committing once for the day."""
        agenda = self._agenda
        if not agenda or agenda[0][0] >= until:
            return False
        with session_scope(world.engine) as session:
            while agenda and agenda[0][0] < until:
                when, _, index, task, sid, arg = heapq.heappop(agenda)
                clock.at = when
                savepoint = session.begin_nested()
                try:
                    people.act(session, world.members[index], task, sid, arg, when)
                except SvqmError as exc:
                    savepoint.rollback()
                    session.expire_all()
                    people.refused[f"{task}: {type(exc).__name__}"] += 1
                else:
                    savepoint.commit()
        return True


# Ordered by the wake index and `+status` kept off the status index: SQLite would otherwise pick
# ix_deadline_status and scan every open row (closed rows have no wake_at, so few are skipped).
_NEXT_WAKE = text(
    "SELECT wake_at FROM deadline WHERE +status = :open AND wake_at IS NOT NULL "
    "ORDER BY wake_at LIMIT 1"
).columns(wake_at=UtcDateTime())


def _next_wake(engine: Engine) -> datetime | None:
    """When the sweep next has something to do: the earliest wake-up of an open deadline."""
    with engine.connect() as conn:
        wake: datetime | None = conn.execute(_NEXT_WAKE, {"open": schedule.OPEN}).scalar()
        return wake
