"""APScheduler 3.x wiring: two jobs with fixed ids that wake the sweep and the dispatcher.

The database is the schedule; these jobs only wake it up, so nothing about a subject is ever an
APScheduler job, and a scheduler that was down catches up on its next run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED, BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine

from svqm.clock import Clock
from svqm.config import Settings
from svqm.notify.dispatch import dispatch, mailer_from
from svqm.notify.sweep import sweep
from svqm.workflow.schemes import SchemeRegistry

log = logging.getLogger("svqm.notify")
SWEEP_JOB, DISPATCH_JOB = "sweep-deadlines", "dispatch-outbox"
S = TypeVar("S", bound=BaseScheduler)


def _never() -> bool:
    return False


def jobs(
    engine: Engine,
    registry: SchemeRegistry,
    settings: Settings,
    clock: Clock,
    stopping: Callable[[], bool] = _never,
) -> tuple[Callable[[], None], Callable[[], None]]:
    """The two job bodies; each logs and swallows its errors so the next run still happens.

    `stopping()` turns True when the process shuts down: a dispatch then finishes the message in
    hand and hands the rest back, rather than sending everything due before the process exits.
    """
    mailer = mailer_from(settings)

    def sweep_job() -> None:
        try:
            report = sweep(engine, registry, now=clock.now(), base_url=settings.BASE_URL)
        except Exception:
            log.exception("the deadline sweep failed; it will run again")
            return
        if report.rows:
            log.info(
                "sweep: %s rows, reminders %s, fired %s",
                report.rows,
                dict(report.reminders),
                dict(report.fired),
            )
        # Anything the sweep enqueued goes out now rather than at the next dispatch tick, in a
        # thread of its own: the sweep never waits on mail (a hanging relay must not hold up
        # the deadlines).
        threading.Thread(target=dispatch_job, name="svqm-dispatch-after-sweep").start()

    # One dispatch at a time in this process: the sweep calls dispatch_job beside the scheduled
    # job (max_instances does not see that call), and two dispatchers could each be between
    # send and mark-sent when the process dies, duplicating two messages for one crash. A call
    # that finds a dispatch running does not wait: it asks that one to run once more.
    running, wanted = threading.Lock(), threading.Event()

    def dispatch_job() -> None:
        wanted.set()
        while wanted.is_set() and not stopping() and running.acquire(blocking=False):
            try:
                wanted.clear()
                _dispatch_once()
            finally:
                running.release()

    def _dispatch_once() -> None:
        try:
            report = dispatch(engine, mailer, settings, clock, stop=stopping)
        except Exception:
            log.exception("the outbox dispatch failed; it will run again")
            return
        if report.sent or report.retried or report.dead:
            log.info(
                "dispatch: sent %s, retrying %s, dead %s", report.sent, report.retried, report.dead
            )

    return sweep_job, dispatch_job


def build_scheduler(
    factory: Callable[..., S],
    engine: Engine,
    registry: SchemeRegistry,
    settings: Settings,
    clock: Clock,
) -> S:
    """A scheduler (Background or Blocking) with the two jobs, each due at once on start."""
    scheduler = factory(timezone=UTC)
    # shutdown() marks the scheduler stopped before it waits for the running jobs.
    sweep_job, dispatch_job = jobs(
        engine, registry, settings, clock, lambda: scheduler.state == STATE_STOPPED
    )
    now = datetime.now(UTC)
    for job_id, fn, seconds in (
        (SWEEP_JOB, sweep_job, settings.SWEEP_INTERVAL_SECONDS),
        (DISPATCH_JOB, dispatch_job, settings.DISPATCH_INTERVAL_SECONDS),
    ):
        scheduler.add_job(
            fn,
            IntervalTrigger(seconds=seconds),
            id=job_id,
            name=job_id,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            next_run_time=now,
        )
    return scheduler


def background(
    engine: Engine, registry: SchemeRegistry, settings: Settings, clock: Clock
) -> BackgroundScheduler:
    """For `svqm serve`: runs in a thread of the web process."""
    return build_scheduler(BackgroundScheduler, engine, registry, settings, clock)


def blocking(
    engine: Engine, registry: SchemeRegistry, settings: Settings, clock: Clock
) -> BlockingScheduler:
    """For `svqm scheduler`: the process does nothing else."""
    return build_scheduler(BlockingScheduler, engine, registry, settings, clock)
