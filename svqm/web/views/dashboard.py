"""The admin's home: each chart's bars and the figures of the tables beside them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from svqm.reporting import dashboard
from svqm.workflow.schemes import SchemeRegistry

DOWNLOADS = {"awards": "awards.csv", "applications": "applications.csv"}


def _bars(pairs: list[tuple[str, int]], notes: list[str] | None = None) -> list[dict[str, Any]]:
    """A chart's bars: each its label, its value and (`notes`) a smaller second line."""
    return [
        {"label": label, "value": value, "note": notes[i] if notes else ""}
        for i, (label, value) in enumerate(pairs)
    ]


def figures(
    session: Session, registry: SchemeRegistry, now: datetime, region: str | None = None
) -> dict[str, Any]:
    """What the dashboard shows: each chart's bars, and the rows of the tables beside them;
    awards, applications and deadlines of one region's organisations when one is given."""
    awards = dashboard.awards_by_scheme_and_level(session, registry, region)
    states = dashboard.applications_by_state(session, registry, region)
    deadlines = dashboard.open_deadlines(session, registry, now, region)
    workload = dashboard.assessor_workload(session, registry)
    buckets = [
        ("Overdue", sum(d.overdue for d in deadlines)),
        (f"Due within {dashboard.SOON_DAYS} days", sum(d.soon for d in deadlines)),
        (
            f"Due in {dashboard.SOON_DAYS + 1} to {dashboard.MONTH_DAYS} days",
            sum(d.month for d in deadlines),
        ),
        (f"Due after {dashboard.MONTH_DAYS} days", sum(d.later for d in deadlines)),
    ]
    return {
        "awards": awards,
        # The level, and under it the scheme's name (its id is no one's word for it).
        "award_bars": _bars(
            [(a.level_name, a.in_force) for a in awards], [a.scheme_name for a in awards]
        ),
        "states": states,
        "state_bars": _bars([(s.title, s.count) for s in states]),
        "deadlines": deadlines,
        "deadline_buckets": buckets,
        "deadline_bars": _bars(buckets) if deadlines else [],
        "workload": workload,
        "workload_bars": _bars(
            [(w.name + ("" if w.active else " (disabled)"), w.open) for w in workload]
        ),
        "soon_days": dashboard.SOON_DAYS,
        "month_days": dashboard.MONTH_DAYS,
        "downloads": DOWNLOADS,
    }
