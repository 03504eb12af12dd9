"""`svqm sweep`, `svqm scheduler` and `svqm simulate`: deadlines, reminders and the outbox."""

from __future__ import annotations

import logging
import signal
from datetime import UTC, datetime
from types import FrameType
from typing import Annotated

import typer

from svqm.cli import _database, _fail, _quiet_libraries, _registry, app, out
from svqm.clock import Clock, FixedClock, SystemClock
from svqm.config import get_settings
from svqm.notify import scheduler as notify_scheduler
from svqm.notify.dispatch import dispatch, mailer_from
from svqm.notify.sweep import sweep as run_sweep

COMMANDS = ("sweep", "scheduler", "simulate")


def parse_time(text: str) -> datetime:
    """An ISO 8601 time with its zone ("2026-01-31T09:00Z"), as UTC."""
    try:
        when = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise _fail(f"--now: '{text}' is not an ISO 8601 time (e.g. 2026-01-31T09:00Z)") from None
    if when.tzinfo is None:
        raise _fail(f"--now: '{text}' has no time zone; add Z for UTC (2026-01-31T09:00Z)")
    try:
        return when.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the last datetime in UTC
        raise _fail(f"--now: '{text}' is out of range") from None


@app.command()
def sweep(
    now: Annotated[
        str | None,
        typer.Option("--now", help="Sweep as of this ISO 8601 time (default: the clock)."),
    ] = None,
) -> None:
    """One sweep of the deadlines, then one dispatch of the outbox (what cron would run)."""
    settings = get_settings()
    clock: Clock = FixedClock(parse_time(now)) if now else SystemClock()
    with _database() as engine:
        report = run_sweep(engine, _registry(), now=clock.now(), base_url=settings.BASE_URL)
        sent = dispatch(engine, mailer_from(settings), settings, clock)
    out.print(
        f"swept {report.rows} deadline(s) as of {clock.now():%Y-%m-%dT%H:%MZ}: "
        f"{sum(report.reminders.values())} reminder(s), {sum(report.due.values())} due, "
        f"{sum(report.fired.values())} action(s) fired, {len(report.failed)} refused",
        markup=False,
    )
    for line in report.failed:
        out.print(f"  refused: {line}", markup=False)
    out.print(
        f"outbox: {sent.sent} sent, {sent.retried} to retry, {sent.dead} dead-lettered",
        markup=False,
    )


outbox_app = typer.Typer(help="The email outbox.", no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")


@outbox_app.command("retry")
def outbox_retry(
    filter_: Annotated[
        str,
        typer.Option(
            "--filter",
            help="Only dead letters whose last error, kind or recipients contain this text.",
        ),
    ] = "",
) -> None:
    """Send again, in bulk, the dead-lettered messages (all, or those matching --filter)."""
    from svqm.db import session_scope
    from svqm.notify import outbox

    with _database() as engine, session_scope(engine) as session:
        count = outbox.retry_dead(session, now=SystemClock().now(), containing=filter_)
    out.print(f"{count} dead-lettered message(s) queued to be sent again", markup=False)


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


@app.command()
def scheduler() -> None:
    """Run the scheduler as a process of its own: the sweep and the outbox dispatcher."""
    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    _quiet_libraries()
    # Stop cleanly on SIGTERM as on Ctrl-C: the job in progress finishes its current message.
    signal.signal(signal.SIGTERM, _stop)
    with _database() as engine:
        blocking = notify_scheduler.blocking(engine, _registry(), settings, SystemClock())
        out.print(
            f"scheduler: sweeping every {settings.SWEEP_INTERVAL_SECONDS:g} s, dispatching every "
            f"{settings.DISPATCH_INTERVAL_SECONDS:g} s (Ctrl-C to stop)",
            markup=False,
        )
        try:
            blocking.start()
        except (KeyboardInterrupt, SystemExit):
            blocking.shutdown(wait=True)


@app.command()
def simulate(
    organisations: Annotated[int, typer.Option(help="Organisations in the population.", min=1)],
    years: Annotated[float, typer.Option(help="Simulated years.", min=0.1, max=20)],
    scheme: Annotated[str, typer.Option(help="The scheme (a policy file's name).")] = "svqm",
    seed: Annotated[int, typer.Option(help="Random seed (the same seed, the same run).")] = 1,
) -> None:
    """Run a synthetic population through a scheme over simulated time, then report.

    With SVQM_DATABASE_URL set, the simulation fills that database (empty, e.g. PostgreSQL for a
    rehearsal) and keeps its evidence under SVQM_VAR_DIR/simulation; else a temporary SQLite."""
    import os
    from pathlib import Path

    from svqm.simulate import Simulation, report_table

    registry = _registry()
    if scheme not in registry.ids():
        raise _fail(f"no scheme '{scheme}' (schemes: {', '.join(registry.ids())})")
    url = os.environ.get("SVQM_DATABASE_URL") or None
    workdir = Path(get_settings().VAR_DIR) / "simulation" if url else None
    result = Simulation(
        registry,
        scheme=scheme,
        organisations=organisations,
        seed=seed,
        database_url=url,
        workdir=workdir,
    ).run(years=years, progress=True)
    if url:
        out.print(f"the simulation is kept in {url.split('@')[-1]} (evidence in {workdir})")
    out.print(report_table(result))
