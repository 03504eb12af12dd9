"""The admin's home: the dashboard (charts with their figures) and the CSV downloads of everything."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlmodel import Session

from svqm.web.deps import NowDep, PageUser, RegistryDep, SessionDep, verify_csrf
from svqm.web.pages.admin_ops import dead_letter_count
from svqm.web.pages.public import only, show
from svqm.workflow import dashboard, exports
from svqm.workflow.schemes import SchemeRegistry

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

# A download is written to a spooled file inside the request's transaction, so it is one consistent
# reading and a database error is an error page rather than a cut-off file; the spool stays in
# memory up to this size, then moves to a temporary file, and goes out in chunks.
SPOOL_BYTES = 4 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
DOWNLOADS = {"awards": "awards.csv", "applications": "applications.csv"}


def _bars(pairs: list[tuple[str, int]]) -> list[dict[str, Any]]:
    return [{"label": label, "value": value} for label, value in pairs]


def _figures(session: Session, registry: SchemeRegistry, now: datetime) -> dict[str, Any]:
    """What the dashboard shows: each chart's bars, and the rows of the tables beside them."""
    awards = dashboard.awards_by_scheme_and_level(session, registry)
    states = dashboard.applications_by_state(session, registry)
    deadlines = dashboard.open_deadlines(session, registry, now)
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
        "award_bars": _bars([(f"{a.level_name}, {a.scheme}", a.in_force) for a in awards]),
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


@router.get("/admin")
def overview(
    request: Request, auth: PageUser, session: SessionDep, registry: RegistryDep, now: NowDep
) -> HTMLResponse:
    """The dashboard: awards, applications, deadlines and workloads, and undelivered email."""
    if denied := only(request, auth, "admin"):
        return denied
    figures = _figures(session, registry, now)
    dead = dead_letter_count(session)
    return show(
        request, "admin/overview.html", auth, "Administration", dead_letters=dead, **figures
    )


def _chunks(spool: IO[bytes]) -> Iterator[bytes]:
    with spool:
        while block := spool.read(CHUNK_BYTES):
            yield block


def _download(
    session: Session, registry: SchemeRegistry, kind: str, now: datetime
) -> StreamingResponse:
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # closed by _chunks
    text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
    try:
        exports.export(session, registry, kind, "csv", text)
        text.flush()
    except BaseException:
        spool.close()
        raise
    text.detach()  # the spool outlives the wrapper
    spool.seek(0)
    name = f"svqm-{kind}-{now:%Y-%m-%d}.csv"
    return StreamingResponse(
        _chunks(spool),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/admin/exports/awards.csv")
def awards_csv(
    request: Request, auth: PageUser, session: SessionDep, registry: RegistryDep, now: NowDep
) -> Response:
    """Every award as CSV (the columns of `svqm export awards`)."""
    return only(request, auth, "admin") or _download(session, registry, "awards", now)


@router.get("/admin/exports/applications.csv")
def applications_csv(
    request: Request, auth: PageUser, session: SessionDep, registry: RegistryDep, now: NowDep
) -> Response:
    """Every application as CSV (the columns of `svqm export applications`)."""
    return only(request, auth, "admin") or _download(session, registry, "applications", now)
