"""The assessor's pages: the queue, the review screen, scoring and recommendation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session
from starlette.datastructures import FormData

from svqm.errors import InvalidInput, NotFound, StaleVersion
from svqm.evidence import service as evidence_service
from svqm.evidence.models import ReviewCreate, ScoreCreate
from svqm.policy import Policy
from svqm.web.deps import Id, NowDep, PageAuth, PageUser, RegistryDep, SessionDep, verify_csrf
from svqm.web.pages import flash_of
from svqm.web.pages.panel import (
    case_context,
    filter_options,
    fire_from,
    load_case,
    trigger_titles,
)
from svqm.web.pages.public import (
    Errors,
    FormDep,
    after_post,
    attempt,
    blank,
    field,
    only,
    show,
    version_of,
)
from svqm.workflow import actions, deadlines, queries
from svqm.workflow.models import Application
from svqm.workflow.schemes import SchemeRegistry

# Queue rows per page: enough to work from, few enough to render quickly under load.
PAGE_SIZE = 50

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

DECISIONS = {
    "accepted": "Accepted",
    "more_information": "More information needed",
    "rejected": "Rejected",
}
MESSAGES = {"reviewed": "Your review has been saved.", "scored": "Your scores have been saved."}

# --- the queue -----------------------------------------------------------------------------------


@router.get("/assess")
def queue(
    request: Request,
    auth: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    state: str = "",
    level: str = "",
    scheme: str = "",
    due_before: str = "",
    done: str = "",
    page: str = "",
) -> HTMLResponse:
    """The applications assigned to this assessor, filtered by state, level, scheme and due date."""
    if denied := only(request, auth, "assessor"):
        return denied
    errors, due_by = None, None
    try:
        due_by = date.fromisoformat(due_before.strip()) if blank(due_before) else None
    except ValueError:
        errors = [
            {"text": "Enter the due date as a date, for example 2026-03-31", "href": "#due_before"}
        ]
    filters = queries.ApplicationFilter(
        state=blank(state), level=blank(level), scheme=blank(scheme)
    )
    number = int(page) if page.isdigit() and 0 < int(page) < 10_000 else 1
    # A page of PAGE_SIZE rows; the due-date filter looks at a wider window, as it is computed.
    window = 500 if due_by else PAGE_SIZE + 1
    start = 0 if due_by else (number - 1) * PAGE_SIZE
    lines = queries.list_queue_lines(session, auth.actor, filters, limit=window, offset=start)
    more = len(lines) > PAGE_SIZE and not due_by
    lines = lines if due_by else lines[:PAGE_SIZE]
    query = {"state": state, "level": level, "scheme": scheme, "due_before": due_before}
    kept = {k: v[:64] for k, v in query.items() if v}
    pages = {
        "previous": f"/assess?{urlencode({**kept, 'page': number - 1})}" if number > 1 else None,
        "next": f"/assess?{urlencode({**kept, 'page': number + 1})}" if more else None,
    }
    return show(
        request,
        "assessor/queue.html",
        auth,
        "Your applications to assess",
        errors=errors,
        flash=flash_of(done, MESSAGES),
        options=filter_options(registry),
        rows=queue_rows(session, registry, lines, now, due_by),
        query={k: v[:64] for k, v in query.items()},
        pages=pages,
    )


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One line of the queue, ready to print (attributes, not a dict: Jinja tries them first)."""

    id: int
    organisation: str
    scheme: str
    level: str
    state: str
    # The next deadline as "Label: 5 February 2026, 09:00 UTC", or None when none runs.
    deadline: str | None


def queue_rows(
    session: Session,
    registry: SchemeRegistry,
    lines: list[Any],
    now: datetime,
    due_by: date | None = None,
) -> list[QueueRow]:
    """The queue's lines from `queries.list_queue_lines`, with names, titles and next deadline.

    What depends only on the policy, the state and the level (names, titles, whether any deadline
    runs) is worked out once per combination, not once per line.
    """
    known: dict[tuple[str, str, str], tuple[Policy, str, str, str, bool]] = {}
    rows = []
    for line in lines:
        key = (line.policy_digest, line.state, line.level)
        if (fixed := known.get(key)) is None:
            policy = registry.for_subject(session, line).policy
            state = policy.workflows.application.state(line.state).title
            runs = any(deadlines.applies(d, "application", line) for d in policy.deadlines)
            fixed = known[key] = (policy, policy.name, policy.level(line.level).name, state, runs)
        policy, scheme_name, level_name, state_title, runs = fixed
        kind, due = (line.deadline_kind, line.deadline_due) if runs else (None, None)
        if due_by is not None and (due is None or due.date() > due_by):
            continue
        text = None
        if kind is not None and due is not None:
            # The same words as the `datetime` macro prints, without a macro call per line.
            text = f"{deadlines.deadline(policy, kind).label}: {due:%-d %B %Y, %H:%M} UTC"
        rows.append(
            QueueRow(line.id, line.organisation or "", scheme_name, level_name, state_title, text)
        )
    return rows


# --- the review screen ---------------------------------------------------------------------------


def _screen(
    request: Request,
    auth: PageAuth,
    session: Session,
    registry: SchemeRegistry,
    now: datetime,
    app: Application,
    **page: Any,
) -> HTMLResponse:
    """The review screen; `page` carries a failure (with its href) or a flash message."""
    context = case_context(session, registry, app, auth, now)
    title = f"Review the application from {context['organisation']}"
    return show(
        request, "assessor/review.html", auth, title, decisions=DECISIONS, **page, **context
    )


def _same_version(app: Application, version: int) -> None:
    if version != app.version:
        raise StaleVersion(
            f"application {app.id} changed since you opened it; check it and try again"
        )


@router.get("/assess/{application_id}")
def review_screen(
    request: Request,
    application_id: Id,
    auth: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    done: str = "",
) -> HTMLResponse:
    """Evidence, reviews, scores, the running result and the steps the assessor may take."""
    app = load_case(request, auth, session, application_id, "assessor")
    if isinstance(app, Response):
        return app
    flash = flash_of(done, MESSAGES | trigger_titles(registry))
    return _screen(request, auth, session, registry, now, app, flash=flash)


@router.post("/assess/{application_id}/evidence/{evidence_id}/review")
def review_evidence(
    request: Request,
    application_id: Id,
    evidence_id: Id,
    auth: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    form: FormDep,
) -> Response:
    """Accept an item, ask for more information (the application goes back), or reject it."""
    app = load_case(request, auth, session, application_id, "assessor")
    if isinstance(app, Response):
        return app
    decision = field(form, "decision")

    def write() -> None:
        _same_version(app, version_of(form))
        item = evidence_service.get_evidence(session, evidence_id)
        if item.application_id != app.id:
            raise NotFound(f"no evidence {evidence_id} in application {app.id}")
        if decision not in DECISIONS:
            raise InvalidInput("choose accepted, more information needed or rejected")
        review = ReviewCreate(decision=decision, comment=field(form, "comment"))
        actions.review_evidence(
            session, app, item, review, actor=auth.actor, registry=registry, now=now
        )

    if failure := attempt(session, write):
        href = f"#{'decision' if decision not in DECISIONS else 'comment'}-{evidence_id}"
        return _screen(request, auth, session, registry, now, app, failure=failure, href=href)
    return after_post(f"/assess/{application_id}", "reviewed")


def _parse_scores(
    form: FormData, policy: Policy, level_id: str
) -> tuple[list[ScoreCreate], Errors]:
    """Every answered question of the level's standards; blank answers are left alone."""
    entries, errors = [], []
    for sid in policy.level(level_id).standards:
        standard = policy.standard(sid)
        for q in standard.questions:
            name = f"score-{sid}-{q.id}"
            raw = field(form, name, limit=10)
            if raw.isdigit():
                entries.append(ScoreCreate(standard=sid, question=q.id, score=int(raw)))
            elif raw:
                text = (
                    f"{standard.name}: enter a whole number from 0 to {q.max_score} for '{q.text}'"
                )
                errors.append({"text": text, "href": f"#{name}"})
    return entries, errors


@router.post("/assess/{application_id}/scores")
def save_scores(
    request: Request,
    application_id: Id,
    auth: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    form: FormDep,
) -> Response:
    """Score every question of the level's standards at once: all saved, or none."""
    app = load_case(request, auth, session, application_id, "assessor")
    if isinstance(app, Response):
        return app
    policy = registry.for_subject(session, app).policy
    entries, errors = _parse_scores(form, policy, app.level)
    if errors:
        return _screen(request, auth, session, registry, now, app, errors=errors, status=422)

    def write() -> None:
        _same_version(app, version_of(form))
        for entry in entries:
            actions.score_question(
                session, app, entry, actor=auth.actor, registry=registry, now=now
            )

    if failure := attempt(session, write):
        return _screen(request, auth, session, registry, now, app, failure=failure, href="#scores")
    return after_post(f"/assess/{application_id}", "scored")


@router.post("/assess/{application_id}/events/{trigger}")
def fire_event(
    request: Request,
    application_id: Id,
    trigger: str,
    auth: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    form: FormDep,
) -> Response:
    """Start the review, ask for more information, or recommend award or refusal."""
    app = load_case(request, auth, session, application_id, "assessor")
    if isinstance(app, Response):
        return app
    if failure := fire_from(form, session, app, trigger, auth, registry, now):
        href = f"#trigger-{trigger}"
        return _screen(request, auth, session, registry, now, app, failure=failure, href=href)
    return after_post(f"/assess/{application_id}", trigger)
