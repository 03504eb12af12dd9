"""The admin's view of what the scheduler does: open and overdue deadlines, due actions that
failed, and the email outbox with its dead letters (which an admin may send again)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from svqm.errors import NotFound
from svqm.notify import outbox
from svqm.web.deps import CSRF, AdminPage, Id, Page
from svqm.web.forms import FormDep, attempt, field
from svqm.web.ui import after_post, flash_of, render
from svqm.web.views.operations import deadline_rows, outbox_view
from svqm.workflow import schedule

router = APIRouter(dependencies=[CSRF], include_in_schema=False)

MESSAGES = {
    "retried": "The message will be sent again at the next delivery run.",
    "retried_many": "The messages will be sent again at the next delivery run.",
    "retried_none": "No message that was not delivered matched.",
}
# Enough to see what needs attention; older rows are in the database.
DEADLINE_LIMIT = 300
FAILED_LIMIT = 100


@router.get("/admin/deadlines")
def deadlines(page: AdminPage) -> HTMLResponse:
    """Every organisation's open deadlines, soonest (so overdue) first, and failed due actions."""
    session, registry = page.session, page.registry
    open_rows = deadline_rows(
        session, registry, schedule.upcoming(session, limit=DEADLINE_LIMIT), page.now
    )
    failed_rows = deadline_rows(
        session, registry, schedule.failed(session, limit=FAILED_LIMIT), page.now
    )
    return render(
        page.request,
        "admin/deadlines.html",
        auth=page.auth,
        title="Deadlines",
        open_rows=open_rows,
        overdue=sum(1 for r in open_rows if r["overdue"]),
        failed_rows=failed_rows,
        limit=DEADLINE_LIMIT,
    )


def _outbox_page(page: Page, **shown: Any) -> HTMLResponse:
    return render(
        page.request,
        "admin/outbox.html",
        auth=page.auth,
        title="Email outbox",
        **outbox_view(page.session),
        **shown,
    )


@router.get("/admin/outbox")
def outbox_page(page: AdminPage, done: str = "") -> HTMLResponse:
    """Messages by status, the dead letters first (each can be sent again), then the newest."""
    return _outbox_page(page, flash=flash_of(done, MESSAGES))


@router.post("/admin/outbox/retry")
def retry_many(page: AdminPage, form: FormDep) -> Response:
    """Send again every dead letter whose error, kind or recipients contain the words given."""
    words = field(form, "containing", limit=200)
    sent_back = outbox.retry_dead(page.session, now=page.now, containing=words)
    return after_post("/admin/outbox", "retried_many" if sent_back else "retried_none")


@router.post("/admin/outbox/{message_id}/retry")
def retry(page: AdminPage, message_id: Id) -> Response:
    """Send a dead-lettered message again: it goes back to the queue with fresh attempts."""
    failure = attempt(page.session, lambda: outbox.retry(page.session, message_id, now=page.now))
    if isinstance(failure, NotFound):
        raise failure
    if failure is not None:
        return _outbox_page(page, failure=failure, href=f"#message-{message_id}")
    return after_post("/admin/outbox", "retried")
