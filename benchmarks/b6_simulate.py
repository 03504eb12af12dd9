"""B6: `svqm simulate` at scale: 10,000 organisations through the svqm scheme over 3 years.

Everything the simulation does goes through the real services on a throwaway migrated SQLite
file (svqm.simulate): applications, pledges, uploads, reviews, scores, transitions, filings,
the daily sweep and the dispatch of every reminder to a counting mailer.

Measured: simulated events per second over the whole run (set-up included): people's actions
through the services + deadline rows handled by the sweep + emails delivered; and peak memory,
VmHWM of this process, with VmRSS sampled every tenth of the run to show whether it stays flat.
Target: >= 1,000 events/s (wall time, the issue's figure). Beside it, steadier on a shared
machine: events per CPU second of this process (getrusage), and the CPU time and SQL statements
per event (every statement any engine sends, counted with SQLAlchemy's `before_cursor_execute`
event), which say where the floor is: each event is a call into the real services.

Size: `svqm simulate`'s own default is 10,000 organisations over 3 years, about two million
events; at 3-5 ms of CPU an event that is hours of CPU on this machine, far beyond `make bench`'s
time. The benchmark therefore runs 100 organisations over the same 3 years by default (every
stage of an award's life: applications, awards, annual reports, renewals and upgrades; about
15,000 events, 1-2 minutes of CPU), and reports the figures of that run only; nothing is
extrapolated. SVQM_B6_ORGANISATIONS and SVQM_B6_YEARS set another size (10000 and 3 for the
simulation's default); the result says which size was run.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from benchmarks.fixtures import registry
from benchmarks.report import Result, cpu_seconds
from svqm.simulate import Simulation

ID = "B6"
NAME = "Simulation at scale: events per second, peak memory"
ORGANISATIONS = int(os.environ.get("SVQM_B6_ORGANISATIONS", "100"))
YEARS = float(os.environ.get("SVQM_B6_YEARS", "3"))
SEED = 1
TARGET = 1000.0  # events per second


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def run() -> Result:
    reg = registry()
    days = max(1, round(YEARS * 365.25))
    samples: list[float] = []
    every = max(1, days // 10)

    def sample(day: int) -> None:
        if day % every == every - 1:
            samples.append(round(_status_mib("VmRSS"), 1))

    statements = [0]

    def count(*_: Any) -> None:
        statements[0] += 1

    before = _status_mib("VmRSS")
    event.listen(Engine, "before_cursor_execute", count)
    cpu = cpu_seconds()
    try:
        result = Simulation(reg, organisations=ORGANISATIONS, seed=SEED, verify_audit=False).run(
            years=YEARS, on_day=sample
        )
    finally:
        cpu = cpu_seconds() - cpu
        event.remove(Engine, "before_cursor_execute", count)
    peak = _status_mib("VmHWM")
    rate = result.events / result.wall_seconds
    per_cpu = result.events / cpu
    floor = (
        f"{ORGANISATIONS:,} organisations over {YEARS:g} years, {result.events:,} events: "
        f"{1000 * cpu / result.events:.2f} ms of CPU and {statements[0] / result.events:.1f} SQL "
        f"statements per event through the real services ({per_cpu:.0f} events per CPU "
        f"second); wall time {result.wall_seconds:.0f} s for {cpu:.0f} s of CPU"
    )
    return Result(
        id=ID,
        name=NAME,
        unit="events/s",
        measured={
            "events/s": rate,
            "events per CPU s": per_cpu,
            "CPU ms per event": 1000 * cpu / result.events,
            "SQL statements per event": statements[0] / result.events,
            "events": result.events,
            "seconds": result.wall_seconds,
            "peak RSS MiB (VmHWM)": peak,
        },
        baseline={"RSS before MiB": before},
        ratio=rate,
        target=TARGET,
        higher_is_better=True,
        floor=floor,
        absolute=True,
        detail={
            "cpu_seconds": cpu,
            "sql_statements": statements[0],
            "organisations": ORGANISATIONS,
            "simulate_default": "10,000 organisations x 3 years (not run here: hours of CPU)",
            "years": YEARS,
            "seed": SEED,
            "actions": result.actions,
            "sweep_rows": result.sweep_rows,
            "emails_delivered": result.emails_delivered,
            "audit_events": result.audit_events,
            "awards_issued": result.awards_issued,
            "rss_mib_every_tenth": samples,
            "refused": result.refused,
        },
    )
