"""The admin's home: the dashboard (charts with their figures) and the CSV downloads of everything."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import IO

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlmodel import Session

from svqm.accounts import service as accounts
from svqm.notify import outbox
from svqm.reporting import exports, filings
from svqm.web.deps import CSRF, AdminPage, SettingsDep
from svqm.web.format import day
from svqm.web.ui import render
from svqm.web.views.dashboard import figures
from svqm.workflow import eligibility
from svqm.workflow.schemes import SchemeRegistry

router = APIRouter(dependencies=[CSRF], include_in_schema=False)

# A download is written to a spooled file inside the request's transaction, so it is one consistent
# reading and a database error is an error page rather than a cut-off file; the spool stays in
# memory up to this size, then moves to a temporary file, and goes out in chunks.
SPOOL_BYTES = 4 * 1024 * 1024
CHUNK_BYTES = 64 * 1024


@router.get("/admin")
def overview(page: AdminPage, settings: SettingsDep, region: str = "") -> HTMLResponse:
    """The dashboard: eligibility decisions waiting, awards, applications, deadlines (of one
    region, if chosen) and workloads, and undelivered email."""
    chosen = region if region in settings.REGIONS else ""
    return render(
        page.request,
        "admin/overview.html",
        auth=page.auth,
        title="Administration",
        dead_letters=outbox.dead_letter_count(page.session),
        regions={r: r for r in settings.REGIONS},
        region=chosen,
        chase=reports_to_chase(page.session, page.registry, page.now, chosen or None),
        eligibility_waiting=eligibility.waiting(page.session, page.registry),
        **figures(page.session, page.registry, page.now, chosen or None),
    )


CHASE_TAGS = {
    "late": {"text": "Late", "classes": "govuk-tag--orange"},
    "missing": {"text": "Missing", "classes": "govuk-tag--red"},
    "awaiting_review": {"text": "Awaiting review", "classes": "govuk-tag--blue"},
    "more_information": {"text": "More information needed", "classes": "govuk-tag--yellow"},
}


def reports_to_chase(
    session: Session, registry: SchemeRegistry, now: datetime, region: str | None
) -> list[dict[str, object]]:
    """Late, missing and not-accepted reports (of the region chosen), as the dashboard lists
    them: late and missing by each filing's time against the deadline it answers."""
    return [
        {
            "organisation": accounts.organisation_name(session, c.award.organisation_id),
            "certificate": c.award.certificate_number,
            "label": c.label,
            "period": c.period,
            "kind": c.kind,
            "tag": CHASE_TAGS[c.kind],
            "since": day(c.since) if c.since else "",
            "due": day(c.due_at) if c.due_at else "",
            "href": f"/reports/{c.report_id}" if c.report_id else f"/awards/{c.award.id}/verify",
        }
        for c in filings.to_chase(session, registry, now=now, region=region)
    ]


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
def awards_csv(page: AdminPage) -> StreamingResponse:
    """Every award as CSV (the columns of `svqm export awards`)."""
    return _download(page.session, page.registry, "awards", page.now)


@router.get("/admin/exports/applications.csv")
def applications_csv(page: AdminPage) -> StreamingResponse:
    """Every application as CSV (the columns of `svqm export applications`)."""
    return _download(page.session, page.registry, "applications", page.now)
