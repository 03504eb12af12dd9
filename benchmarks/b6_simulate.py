"""B6: `svqm simulate` at scale: 10,000 organisations through the svqm scheme over 3 years.

Everything the simulation does goes through the real services on a throwaway migrated SQLite
file (svqm.simulate): applications, pledges, uploads, reviews, scores, transitions, filings,
the daily sweep and the dispatch of every reminder to a counting mailer.

Measured: simulated events per second over the whole run (set-up included): people's actions
through the services + deadline rows handled by the sweep + emails delivered; and peak memory,
VmHWM of this process, with VmRSS sampled every tenth of the run to show whether it stays flat.
No target beyond completing: the figures are for watching over time.

SVQM_B6_ORGANISATIONS and SVQM_B6_YEARS run a smaller population (the default takes long on a
slow machine); the result says which size was run.
"""

from __future__ import annotations

import os

from benchmarks.fixtures import registry
from benchmarks.report import Result
from svqm.simulate import Simulation

ID = "B6"
NAME = "Simulation at scale: events per second, peak memory"
ORGANISATIONS = int(os.environ.get("SVQM_B6_ORGANISATIONS", "10000"))
YEARS = float(os.environ.get("SVQM_B6_YEARS", "3"))
SEED = 1


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

    before = _status_mib("VmRSS")
    result = Simulation(reg, organisations=ORGANISATIONS, seed=SEED, verify_audit=False).run(
        years=YEARS, on_day=sample
    )
    peak = _status_mib("VmHWM")
    rate = result.events / result.wall_seconds
    return Result(
        id=ID,
        name=NAME,
        unit="events/s",
        measured={
            "events/s": rate,
            "events": result.events,
            "seconds": result.wall_seconds,
            "peak RSS MiB (VmHWM)": peak,
        },
        baseline={"RSS before MiB": before},
        ratio=rate,
        target=None,
        higher_is_better=True,
        detail={
            "organisations": ORGANISATIONS,
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
