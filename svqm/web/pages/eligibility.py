"""Eligibility: the organisation answers the scheme's questions (a task of the application);
an admin decides a case-by-case industry, approving it with conditions or refusing it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from svqm.errors import InvalidInput, PermissionDenied
from svqm.web.deps import CSRF, AdminCase, ApplicationCase, Case
from svqm.web.errors import status_of
from svqm.web.format import sentence
from svqm.web.forms import FormDep, attempt, field, version_of
from svqm.web.ui import Errors, after_post, flash_of, render
from svqm.web.views import applicant as applicant_views
from svqm.web.views import eligibility as views
from svqm.workflow import screening

router = APIRouter(dependencies=[CSRF], include_in_schema=False)

DONE = {
    "approved": "Eligibility approved. The conditions are recorded on the application.",
    "refused": "Eligibility refused. The organisation can see the reason.",
}
# The words of each status, for people.
STATUS_TEXT = {
    "not_answered": "Not answered yet",
    "eligible": "Eligible",
    "excluded": "Not eligible: the scheme does not accredit this industry",
    "awaiting_decision": "Waiting for the scheme to decide (case by case)",
    "approved": "Eligible, on the conditions agreed",
    "refused": "Not eligible: refused by the scheme",
}


def _page(
    case: Case,
    *,
    status: int = 200,
    errors: Errors = None,
    flash: dict[str, str] | None = None,
    typed: dict[str, Any] | None = None,
) -> HTMLResponse:
    tasks = applicant_views.task_list(case.session, case.registry, case.app, case.actor, case.now)
    shown = views.public(case.session, case.registry, case.app)
    policy = case.registry.for_subject(case.session, case.app).policy
    draft = case.app.state == policy.workflows.application.initial
    if typed is None:
        typed = {
            "sector": shown.sector or "",
            "turnover_band": shown.turnover_band or "",
            "industries": shown.industries,
            "conditions": "",
        }
    return render(
        case.request,
        "tasks/eligibility.html",
        auth=case.auth,
        title="Eligibility",
        status=status,
        errors=errors,
        flash=flash,
        typed=typed,
        eligibility=shown,
        status_text=STATUS_TEXT.get(shown.status, shown.status),
        may_answer=draft and case.actor.role == "applicant" and shown.asked,
        may_decide=draft
        and case.actor.role == "admin"
        and shown.status in ("awaiting_decision", "approved", "refused"),
        **tasks.context(),
    )


@router.get("/applications/{application_id}/eligibility")
def eligibility_page(case: ApplicationCase, done: str = "") -> HTMLResponse:
    """The questions and the answers given; the form for whoever may act now."""
    return _page(case, flash=flash_of(done, DONE))


def _industries(form: FormData) -> list[str]:
    return [v.strip()[:64] for v in form.getlist("industries") if isinstance(v, str) and v.strip()]


@router.post("/applications/{application_id}/eligibility", response_model=None)
def answer(case: ApplicationCase, form: FormDep) -> Response:
    """The organisation's answers (radios and checkboxes of the policy's choices)."""
    if case.actor.role != "applicant":
        raise PermissionDenied("the organisation answers its eligibility questions")
    sector = field(form, "sector", limit=64)
    band = field(form, "turnover_band", limit=64)
    industries = _industries(form)
    typed = {"sector": sector, "turnover_band": band, "industries": industries, "conditions": ""}
    errors = []
    if not typed["sector"]:
        errors.append({"text": "Choose your organisation's sector", "href": "#sector"})
    if not typed["turnover_band"]:
        errors.append({"text": "Choose your organisation's turnover", "href": "#turnover_band"})
    if errors:
        return _page(case, status=422, errors=errors, typed=typed)

    def write() -> None:
        screening.answer(
            case.session,
            case.app,
            sector=sector,
            turnover_band=band,
            industries=industries,
            actor=case.actor,
            registry=case.registry,
            now=case.now,
            expected_version=version_of(form),
        )

    if failure := attempt(case.session, write):
        href = (
            f"#{failure.field}"
            if isinstance(failure, InvalidInput) and failure.field
            else "#sector"
        )
        errors = [{"text": sentence(failure.detail), "href": href.split(".")[0]}]
        return _page(case, status=status_of(failure), errors=errors, typed=typed)
    # Save and continue: back to the task list (the next task is there), its banner saying
    # what the answers mean (the task list's words: pages/applicant.py's DONE).
    outcome = views.public(case.session, case.registry, case.app).status
    return after_post(f"/applications/{case.app.id}", f"eligibility-{outcome}")


@router.post("/applications/{application_id}/eligibility/decision", response_model=None)
def decide(case: AdminCase, form: FormDep) -> Response:
    """An admin approves the case-by-case industry with the conditions agreed, or refuses it."""
    choice = field(form, "decision", limit=10)
    conditions = field(form, "conditions", limit=4000)
    typed = {"sector": "", "turnover_band": "", "industries": [], "conditions": conditions}
    if choice not in ("approve", "decline"):
        errors = [{"text": "Choose whether to approve or refuse", "href": "#decision"}]
        return _page(case, status=422, errors=errors, typed=typed)

    def write() -> None:
        screening.decide(
            case.session,
            case.app,
            approve=choice == "approve",
            conditions=conditions,
            actor=case.actor,
            registry=case.registry,
            now=case.now,
            expected_version=version_of(form),
        )

    if failure := attempt(case.session, write):
        href = "#conditions" if isinstance(failure, InvalidInput) else "#main-content"
        errors = [{"text": sentence(failure.detail), "href": href}]
        return _page(case, status=status_of(failure), errors=errors, typed=typed)
    word = "approved" if choice == "approve" else "refused"
    return after_post(f"/applications/{case.app.id}/eligibility", word)
