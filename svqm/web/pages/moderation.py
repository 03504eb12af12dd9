"""The moderator's pages: the list of double-marked applications waiting for moderation, and each
one's two sets of scores side by side, with the agreed score of each question the two assessors
differ on too much, recorded with a note."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from svqm.errors import InvalidInput, StaleVersion
from svqm.evidence.models import ModerationCreate
from svqm.web.deps import CSRF, Case, ModeratorCase, ModeratorPage
from svqm.web.format import reference
from svqm.web.forms import FormDep, attempt, field, version_of
from svqm.web.ui import after_post, flash_of, render
from svqm.web.views.case import case_file
from svqm.workflow import actions, judgement

router = APIRouter(dependencies=[CSRF], include_in_schema=False)
MESSAGES = {"moderated": "The agreed score has been recorded."}


def _screen(case: Case, **shown: Any) -> HTMLResponse:
    view = case_file(case.session, case.registry, case.app, case.actor, case.now)
    scheme = case.registry.for_subject(case.session, case.app)
    return render(
        case.request,
        "moderation/case.html",
        auth=case.auth,
        title=f"Moderate the scores of the application from {view.organisation}",
        barred=actions.moderator_barred(case.session, case.app, scheme, case.actor),
        **shown,
        **view.context(),
    )


@router.get("/moderate")
def moderation_queue(page: ModeratorPage) -> HTMLResponse:
    """The applications whose two assessors' scores differ beyond the threshold, waiting for
    this person to moderate them."""
    return render(
        page.request,
        "moderation/queue.html",
        auth=page.auth,
        title="Scores to moderate",
        waiting=judgement.awaiting_moderation(page.session, page.registry, page.actor),
    )


@router.get("/moderate/{application_id}")
def moderation_screen(case: ModeratorCase, done: str = "") -> HTMLResponse:
    """Both assessors' scores (once both are in), what is agreed, and what awaits the moderator."""
    return _screen(case, flash=flash_of(done, MESSAGES))


@router.post("/moderate/{application_id}")
def moderate(case: ModeratorCase, form: FormDep) -> Response:
    """Record the agreed score of one question with the moderator's note."""
    key = field(form, "question", limit=130)
    standard, _, question = key.partition("/")
    raw = field(form, f"score-{key}", limit=10)
    note = field(form, f"note-{key}")
    anchor = f"#moderate-{standard}-{question}"
    if not raw.isdigit():
        error = InvalidInput("choose the agreed score", field="score")
        return _screen(case, failure=error, href=anchor)
    if not note.strip():
        error = InvalidInput("say why this is the agreed score: a note is required", field="note")
        return _screen(case, failure=error, href=anchor)

    def write() -> None:
        if version_of(form) != case.app.version:
            raise StaleVersion(
                f"application {reference(case.app.id or 0)} changed since you opened it; "
                "check it and try again"
            )
        actions.moderate_score(
            case.session,
            case.app,
            ModerationCreate(standard=standard, question=question, score=int(raw), note=note),
            actor=case.actor,
            registry=case.registry,
            now=case.now,
        )

    if failure := attempt(case.session, write):
        return _screen(case, failure=failure, href=anchor)
    return after_post(f"/moderate/{case.app.id}", "moderated")
