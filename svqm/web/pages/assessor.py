"""The assessor's pages: the queue, the review screen, scoring and recommendation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from svqm.accounts.models import STAFF_ROLES
from svqm.errors import InvalidInput, NotFound, StaleVersion, UnsupportedFileType
from svqm.evidence import service as evidence_service
from svqm.evidence.models import ReviewCreate, ScoreCreate
from svqm.policy import Policy
from svqm.web.deps import CSRF, AnyPage, AssessorCase, AssessorPage, Case, Id, StoreDep
from svqm.web.format import file_kind, reference
from svqm.web.forms import (
    FormDep,
    ListQueryDep,
    attempt,
    field,
    fire_from,
    version_of,
    visibility_of,
)
from svqm.web.security import PREVIEWABLE, inline_preview
from svqm.web.ui import Errors, after_post, flash_of, render
from svqm.web.views import audits as audit_views
from svqm.web.views.case import case_file
from svqm.web.views.queues import list_page
from svqm.web.views.triggers import done_messages
from svqm.workflow import actions, queries
from svqm.workflow import service as workflow

# Queue rows per page: enough to work from, few enough to render quickly under load.
PAGE_SIZE = 50

router = APIRouter(dependencies=[CSRF], include_in_schema=False)

DECISIONS = {
    "accepted": "Accepted",
    "more_information": "More information needed",
    "rejected": "Rejected",
}
MESSAGES = {
    "reviewed": "Your review has been saved.",
    "accepted": "The items you chose have been accepted.",
    "scored": "Your scores have been saved.",
}


@router.get("/assess")
def queue(page: AssessorPage, query: ListQueryDep, done: str = "") -> HTMLResponse:
    """The open applications assigned to this assessor, the next deadline first; filtered by state,
    level, scheme and due date, searched by organisation or reference."""
    view = list_page(
        page.session,
        page.registry,
        page.actor,
        query,
        path="/assess",
        sort="due",
        per_page=PAGE_SIZE,
        now=page.now,
    )
    return render(
        page.request,
        "assessor/queue.html",
        auth=page.auth,
        title="Your applications to assess",
        flash=flash_of(done, MESSAGES),
        **view.context(),
    )


def _screen(case: Case, **shown: Any) -> HTMLResponse:
    """The review screen; `shown` carries a failure (with its href) or a flash message.

    The policy's hand-back step is not among the plain steps: it is the "send back" form, which
    lists every collected request for more information."""
    view = case_file(case.session, case.registry, case.app, case.actor, case.now)
    title = f"Review the application from {view.organisation}"
    assert case.app.id is not None
    hand_back = view.policy.workflows.application.hand_back
    context = view.context()
    context["forms"] = [f for f in view.forms if f.trigger != hand_back]
    # The items left to review and those asked more on (to send back together), in one read.
    remaining, collected = evidence_service.unreviewed_and_asked(case.session, case.app.id)
    return render(
        case.request,
        "assessor/review.html",
        auth=case.auth,
        title=title,
        decisions=DECISIONS,
        previewable=PREVIEWABLE,
        hand_back=next((f for f in view.forms if f.trigger == hand_back), None),
        collected=collected,
        remaining=remaining,
        consultation=audit_views.consultation_page(case.session, case.registry, case.app),
        audit_start=audit_views.start_text(case.session, case.registry, case.app),
        gates=[
            (s, q, q.max_score if q.met_at is None else q.met_at)
            for s in view.standards
            for q in s.questions
            if q.mandatory
        ],
        **shown,
        **context,
    )


def _same_version(case: Case, form: FormData) -> None:
    if version_of(form) != case.app.version:
        raise StaleVersion(
            f"application {reference(case.app.id or 0)} changed since you opened it; "
            "check it and try again"
        )


@router.get("/assess/{application_id}")
def review_screen(case: AssessorCase, done: str = "") -> HTMLResponse:
    """Evidence, reviews, scores, the running result and the steps the assessor may take."""
    flow = case.registry.for_subject(case.session, case.app).policy.workflows.application
    return _screen(case, flash=flash_of(done, MESSAGES | done_messages([flow])))


@router.get("/evidence/{evidence_id}/preview", response_model=None)
def preview_evidence(evidence_id: Id, page: AnyPage, store: StoreDep) -> Response:
    """A PDF or image evidence version shown inside the case page, for staff who may see its
    application ("no evidence N" to everyone else); another kind of file is only downloaded."""
    if page.actor.role not in STAFF_ROLES:
        raise NotFound(f"no evidence {evidence_id}")
    item, _ = queries.get_visible_evidence(
        page.session, evidence_id, page.actor, registry=page.registry
    )
    if item.content_type not in PREVIEWABLE:
        raise UnsupportedFileType(
            f"a {file_kind(item.content_type)} cannot be shown in the page: download it instead"
        )
    return inline_preview(str(store.path_for(item.sha256)), item.filename, item.content_type)


@router.post("/assess/{application_id}/evidence/{evidence_id}/review")
def review_evidence(case: AssessorCase, evidence_id: Id, form: FormDep) -> Response:
    """Accept an item, ask for more information (collected until the case is sent back), or
    reject it."""
    decision = field(form, "decision")

    def write() -> None:
        _same_version(case, form)
        item = evidence_service.get_evidence(case.session, evidence_id)
        if item.application_id != case.app.id:
            raise NotFound(f"no evidence {evidence_id} in application {case.app.id}")
        if decision not in DECISIONS:
            raise InvalidInput("choose accepted, more information needed or rejected")
        review = ReviewCreate.model_validate(
            {
                "decision": decision,
                "comment": field(form, "comment"),
                "visibility": visibility_of(form),
            }
        )
        actions.review_evidence(
            case.session,
            case.app,
            item,
            review,
            actor=case.actor,
            registry=case.registry,
            now=case.now,
        )

    if failure := attempt(case.session, write):
        href = f"#{'decision' if decision not in DECISIONS else 'comment'}-{evidence_id}"
        return _screen(case, failure=failure, href=href)
    return after_post(f"/assess/{case.app.id}", "reviewed")


@router.post("/assess/{application_id}/accept-remaining")
def accept_remaining(case: AssessorCase, form: FormDep) -> Response:
    """Accept at once the items not reviewed yet that the assessor left ticked."""
    chosen = [int(v) for v in form.getlist("accept") if isinstance(v, str) and v.isdigit()]

    def write() -> None:
        _same_version(case, form)
        actions.accept_remaining(
            case.session,
            case.app,
            chosen,
            actor=case.actor,
            registry=case.registry,
            now=case.now,
        )

    if failure := attempt(case.session, write):
        return _screen(case, failure=failure, href="#accept-remaining")
    return after_post(f"/assess/{case.app.id}", "accepted")


@router.post("/assess/{application_id}/hand-back")
def hand_back(case: AssessorCase, form: FormDep) -> Response:
    """Send the case back once, asking for every collected item (the policy's hand-back step).

    The assessor's covering note is optional when items are collected: each item says its own."""
    flow = case.registry.for_subject(case.session, case.app).policy.workflows.application
    trigger = flow.hand_back
    if trigger is None:
        raise NotFound("this scheme does not hand applications back")
    comment = field(form, "comment")
    collected = actions.collected_requests(case.session, case.app)
    if not comment and collected:
        n = len(collected)
        comment = f"Please answer the {n} request{'s' if n != 1 else ''} for more information."

    def write() -> None:
        workflow.fire(
            case.session,
            case.app,
            trigger,
            actor=case.actor,
            registry=case.registry,
            now=case.now,
            comment=comment,
            expected_version=version_of(form),
            visibility="applicant",
        )

    if failure := attempt(case.session, write):
        return _screen(case, failure=failure, href="#hand-back-comment")
    return after_post(f"/assess/{case.app.id}", trigger)


def _parse_scores(
    form: FormData, policy: Policy, level_id: str
) -> tuple[list[ScoreCreate], Errors]:
    """Every answered question of the level's standards, with its note; blank answers are left
    alone, and a note needs its score."""
    entries, errors = [], []
    for sid in policy.level(level_id).standards:
        standard = policy.standard(sid)
        for q in standard.questions:
            name = f"score-{sid}-{q.id}"
            raw = field(form, name, limit=10)
            note = field(form, f"note-{sid}-{q.id}")
            visibility = (
                "applicant"
                if field(form, f"visibility-{sid}-{q.id}") == "applicant"
                else "internal"
            )
            if raw.isdigit():
                entries.append(
                    ScoreCreate.model_validate(
                        {
                            "standard": sid,
                            "question": q.id,
                            "score": int(raw),
                            "note": note,
                            "visibility": visibility,
                        }
                    )
                )
            elif raw:
                text = (
                    f"{standard.name}: enter a whole number from 0 to {q.max_score} for '{q.text}'"
                )
                errors.append({"text": text, "href": f"#{name}"})
            elif note:
                text = f"{standard.name}: choose a score for '{q.text}' to go with your note"
                errors.append({"text": text, "href": f"#{name}"})
    return entries, errors


@router.post("/assess/{application_id}/scores")
def save_scores(case: AssessorCase, form: FormDep) -> Response:
    """Score every question of the level's standards at once: all saved, or none."""
    policy = case.registry.for_subject(case.session, case.app).policy
    entries, errors = _parse_scores(form, policy, case.app.level)
    if errors:
        return _screen(case, errors=errors, status=422)

    def write() -> None:
        _same_version(case, form)
        for entry in entries:
            actions.score_question(
                case.session,
                case.app,
                entry,
                actor=case.actor,
                registry=case.registry,
                now=case.now,
            )

    if failure := attempt(case.session, write):
        return _screen(case, failure=failure, href="#scores")
    return after_post(f"/assess/{case.app.id}", "scored")


@router.post("/assess/{application_id}/events/{trigger}")
def fire_event(case: AssessorCase, trigger: str, form: FormDep) -> Response:
    """Start the review, ask for more information, or recommend award or refusal."""
    if failure := fire_from(form, case, case.app, trigger):
        return _screen(case, failure=failure, href=f"#trigger-{trigger}")
    return after_post(f"/assess/{case.app.id}", trigger)
