"""The admin's view of what the scheduler does: open and overdue deadlines, due actions that
failed, and the email outbox with its dead letters (which an admin may send again).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, col, select

from svqm.errors import NotFound
from svqm.notify import outbox
from svqm.notify.models import DEAD, OutboxMessage
from svqm.web.deadline_views import describe, status_tag
from svqm.web.deps import Id, NowDep, PageAuth, PageUser, RegistryDep, SessionDep, verify_csrf
from svqm.web.pages import flash_of
from svqm.web.pages.applicant_views import moment
from svqm.web.pages.public import after_post, attempt, error_page, only, show
from svqm.workflow import schedule
from svqm.workflow.schedule import ScheduledDeadline

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

MESSAGES = {"retried": "The message will be sent again at the next delivery run."}
# Enough to see what needs attention; older rows are in the database.
DEADLINE_LIMIT = 300
FAILED_LIMIT = 100
OUTBOX_LIMIT = 50
OUTBOX_STATUS_TAGS = {
    "pending": ("Waiting to send", "govuk-tag--blue"),
    "sending": ("Sending", "govuk-tag--turquoise"),
    "sent": ("Sent", "govuk-tag--green"),
    "dead": ("Not delivered", "govuk-tag--red"),
}


def dead_letter_count(session: Session) -> int:
    """How many messages gave up; the admin home shows a banner while there are any."""
    return outbox.counts(session)[DEAD]


def _failed_rows(session: Session) -> list[ScheduledDeadline]:
    """Deadlines whose due action could not run (the sweep records why in `outcome`)."""
    return list(
        session.exec(
            select(ScheduledDeadline)
            .where(ScheduledDeadline.status == "failed")
            .order_by(col(ScheduledDeadline.closed_at).desc(), col(ScheduledDeadline.id).desc())
            .limit(FAILED_LIMIT)
        )
    )


@router.get("/admin/deadlines")
def deadlines(
    request: Request, auth: PageUser, session: SessionDep, registry: RegistryDep, now: NowDep
) -> HTMLResponse:
    """Every organisation's open deadlines, soonest (so overdue) first, and failed due actions."""
    if denied := only(request, auth, "admin"):
        return denied
    open_views = describe(session, registry, schedule.upcoming(session, limit=DEADLINE_LIMIT))
    failed_views = describe(session, registry, _failed_rows(session))

    def row(v: Any) -> dict[str, Any]:
        return {
            "due": moment(v.due_at),
            "organisation": v.organisation,
            "subject": v.subject,
            "href": v.admin_path,
            "label": v.label,
            "tag": status_tag(v, now),
            "overdue": v.overdue(now),
            "outcome": v.outcome,
            "closed": moment(v.closed_at) if v.closed_at else "",
        }

    open_rows = [row(v) for v in open_views]
    return show(
        request,
        "admin/deadlines.html",
        auth,
        "Deadlines",
        open_rows=open_rows,
        overdue=sum(1 for r in open_rows if r["overdue"]),
        failed_rows=[row(v) for v in failed_views],
        limit=DEADLINE_LIMIT,
    )


def _message(session: Session, m: OutboxMessage, *, with_attempts: bool) -> dict[str, Any]:
    text, classes = OUTBOX_STATUS_TAGS.get(m.status, (m.status, ""))
    attempts = outbox.attempts_of(session, m.id or 0) if with_attempts else []
    return {
        "id": m.id,
        "key": m.key,
        "template": m.template,
        "recipients": m.to_addrs,
        "tag": {"text": text, "classes": classes},
        "attempts": m.attempts,
        "last_error": m.last_error,
        "created": moment(m.created_at),
        "history": [
            {"at": moment(a.at), "outcome": a.outcome, "detail": a.detail} for a in attempts
        ],
    }


def _outbox_page(request: Request, auth: PageAuth, session: Session, **page: Any) -> HTMLResponse:
    dead = outbox.listing(session, status=DEAD, limit=OUTBOX_LIMIT)
    return show(
        request,
        "admin/outbox.html",
        auth,
        "Email outbox",
        counts=[
            {"status": OUTBOX_STATUS_TAGS[s][0], "count": n}
            for s, n in outbox.counts(session).items()
        ],
        dead=[_message(session, m, with_attempts=True) for m in dead],
        newest=[
            _message(session, m, with_attempts=False)
            for m in outbox.listing(session, limit=OUTBOX_LIMIT)
        ],
        **page,
    )


@router.get("/admin/outbox")
def outbox_page(
    request: Request, auth: PageUser, session: SessionDep, done: str = ""
) -> HTMLResponse:
    """Messages by status, the dead letters first (each can be sent again), then the newest."""
    if denied := only(request, auth, "admin"):
        return denied
    return _outbox_page(request, auth, session, flash=flash_of(done, MESSAGES))


@router.post("/admin/outbox/{message_id}/retry")
def retry(
    request: Request, message_id: Id, auth: PageUser, session: SessionDep, now: NowDep
) -> Response:
    """Send a dead-lettered message again: it goes back to the queue with fresh attempts."""
    if denied := only(request, auth, "admin"):
        return denied
    if session.get(OutboxMessage, message_id) is None:
        return error_page(request, NotFound(f"no outbox message {message_id}"), auth)
    if failure := attempt(session, lambda: outbox.retry(session, message_id, now=now)):
        return _outbox_page(request, auth, session, failure=failure, href=f"#message-{message_id}")
    return after_post("/admin/outbox", "retried")
