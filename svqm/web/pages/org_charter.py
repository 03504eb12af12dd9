"""The organisation's own charter: its people edit it one pillar at a time and its priorities,
then publish it (/charter); anyone reads the published one (/organisations/{id}/charter)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from svqm.errors import GuardRefused, InvalidInput, NotFound, PermissionDenied, field_of
from svqm.evidence.charter import CharterText, organisation_pledges
from svqm.policy.charter import CharterRules, Pillar
from svqm.web.deps import (
    CSRF,
    ApplicantPage,
    CharterRulesDep,
    Id,
    NowDep,
    OptionalPageUser,
    Page,
    RegistryDep,
    SessionDep,
)
from svqm.web.errors import status_of
from svqm.web.format import sentence
from svqm.web.forms import FormDep, attempt, field, version_of
from svqm.web.ui import Errors, after_post, flash_of, render
from svqm.web.views import org_charter as views
from svqm.workflow import org_charter

router = APIRouter(dependencies=[CSRF], include_in_schema=False)

DONE = {
    "saved": "Your changes are saved. Publish the charter when it is ready.",
    "published": "Your charter is published. Anyone can read it on your organisation's page.",
}
# Blank rows each form offers beyond what is filled in.
SPARE_ROWS = 3


def _org(page: Page) -> int:
    org_id = page.actor.organisation_id
    if org_id is None:
        raise PermissionDenied("only an organisation's own people write its charter")
    org_charter.require_editor(page.session, page.actor, org_id)
    return org_id


def input_id(where: str | None) -> str:
    """The form input a service error's field names: pillars.place.entries[0].kind ->
    entries-0-kind, priorities[1].title -> p1-title."""
    if not where:
        return "main-content"
    where = re.sub(r"^pillars\.[^.]+\.?", "", where)
    where = re.sub(r"^priorities\[(\d+)\]\.", r"p\1-", where)
    where = re.sub(r"\[(\d+)\]", r"-\1", where).replace(".", "-")
    if where.endswith("-pledge_ids"):
        where = where.removesuffix("-pledge_ids") + "-pledges"
    return where or "main-content"


def _status(text: CharterText) -> str:
    if text.version == 0:
        return "Not started"
    if text.published_at is not None:
        return f"Published (revision {text.revision})"
    if text.published_revision is not None:
        return f"Changes not yet published (revision {text.published_revision} is published)"
    return "Not published yet"


@router.get("/charter", name="charter_overview")
def overview(
    page: ApplicantPage,
    rules: CharterRulesDep,
    done: str = "",
) -> HTMLResponse:
    """The charter as it stands: a summary card per pillar and for the priorities, each with
    a link to change it, and the button to publish."""
    return _overview(page, rules, flash=flash_of(done, DONE))


def _overview(
    page: Page, rules: CharterRules, *, status: int = 200, errors: Errors = None, flash: Any = None
) -> HTMLResponse:
    org_id = _org(page)
    text = views.working_copy(page.session, org_id)
    titles = {p.id or 0: p.title for p in organisation_pledges(page.session, org_id)}
    return render(
        page.request,
        "applicant/charter.html",
        auth=page.auth,
        title=rules.name,
        status=status,
        errors=errors,
        flash=flash,
        rules=rules,
        charter=views.shown(rules, text, titles, pledge_href=""),
        status_text=_status(text),
        version=text.version,
        may_publish=text.version > 0 and text.published_at is None,
        published_revision=text.published_revision,
        organisation_id=org_id,
    )


@router.post("/charter/publish", response_model=None)
def publish(page: ApplicantPage, rules: CharterRulesDep, form: FormDep) -> Response:
    """Publish the working copy (the page lists what it lacks first)."""
    org_id = _org(page)

    def write() -> None:
        org_charter.publish_charter(
            page.session,
            org_id,
            rules=rules,
            actor=page.actor,
            now=page.now,
            expected_version=version_of(form),
        )

    if failure := attempt(page.session, write):
        reasons = failure.unmet if isinstance(failure, GuardRefused) else [failure.detail]
        errors = [
            {"text": sentence(r), "href": f"#{(field_of(r) or 'main-content').replace('.', '-')}"}
            for r in reasons
        ]
        return _overview(page, rules, status=status_of(failure), errors=errors)
    return after_post("/charter", "published")


# --- one pillar ---------------------------------------------------------------------------------


def _pillar(rules: CharterRules, pillar_id: str) -> Pillar:
    pillar = rules.pillar(pillar_id)
    if pillar is None:
        raise NotFound(f"the charter has no pillar '{pillar_id}'")
    return pillar


def _typed_of(pillar: Pillar, content: dict[str, Any]) -> dict[str, Any]:
    entries = [dict(e) for e in content.get("entries", [])]
    return {
        "entries": entries + [{"name": "", "kind": "", "role": ""}] * SPARE_ROWS,
        "text": content.get("text", ""),
        "statements": dict(content.get("statements", {})),
        "items": "\n".join(content.get("items", [])),
    }


def _pillar_page(
    page: Page,
    rules: CharterRules,
    pillar: Pillar,
    *,
    typed: dict[str, Any] | None = None,
    status: int = 200,
    errors: Errors = None,
) -> HTMLResponse:
    org_id = _org(page)
    text = views.working_copy(page.session, org_id)
    if typed is None:
        typed = _typed_of(pillar, text.pillars.get(pillar.id) or {})
    return render(
        page.request,
        "applicant/charter_pillar.html",
        auth=page.auth,
        title=pillar.name,
        status=status,
        errors=errors,
        pillar=pillar,
        typed=typed,
        version=text.version,
    )


def _rows(form: FormData, second: str) -> list[dict[str, str]]:
    rows = []
    for i in range(org_charter.MAX_ENTRIES + SPARE_ROWS):
        if f"entries-{i}-name" not in form:
            break
        rows.append(
            {
                "name": field(form, f"entries-{i}-name", limit=500),
                second: field(form, f"entries-{i}-{second}", limit=500),
            }
        )
    return rows


@router.get("/charter/pillars/{pillar_id}", name="charter_pillar")
def pillar_form(page: ApplicantPage, rules: CharterRulesDep, pillar_id: str) -> HTMLResponse:
    """The form for one pillar, as its content asks (rows, texts or a list)."""
    return _pillar_page(page, rules, _pillar(rules, pillar_id))


@router.post("/charter/pillars/{pillar_id}", response_model=None)
def save_pillar(
    page: ApplicantPage, rules: CharterRulesDep, pillar_id: str, form: FormDep
) -> Response:
    """Save one pillar; rows left blank are dropped."""
    pillar = _pillar(rules, pillar_id)
    org_id = _org(page)
    second = "kind" if pillar.content == "collaborators" else "role"
    rows = [r for r in _rows(form, second) if r["name"] or r[second]]
    items = [line.strip() for line in field(form, "items", limit=20_000).splitlines()]
    given = org_charter.PillarInput(
        entries=[
            org_charter.EntryInput(r["name"], **{second: r[second]})
            for r in rows
            if pillar.content in ("collaborators", "leads")
        ],
        text=field(form, "text") if pillar.content in ("collaborators", "leads") else "",
        statements={f.id: field(form, f"statements-{f.id}") for f in pillar.fields},
        items=[i for i in items if i] if pillar.content == "list" else [],
    )

    def write() -> None:
        org_charter.save_charter(
            page.session,
            org_id,
            rules=rules,
            actor=page.actor,
            now=page.now,
            expected_version=version_of(form),
            pillars={pillar.id: given},
        )

    if failure := attempt(page.session, write):
        typed = {
            "entries": rows + [{"name": "", "kind": "", "role": ""}] * SPARE_ROWS,
            "text": field(form, "text"),
            "statements": given.statements,
            "items": field(form, "items", limit=20_000),
        }
        errors = [{"text": sentence(failure.detail), "href": f"#{input_id(failure.field)}"}]
        return _pillar_page(
            page, rules, pillar, typed=typed, status=status_of(failure), errors=errors
        )
    return after_post("/charter", "saved", f"#pillars-{pillar.id}")


# --- the priorities -----------------------------------------------------------------------------


def _priorities_page(
    page: Page,
    rules: CharterRules,
    *,
    typed: list[dict[str, Any]] | None = None,
    status: int = 200,
    errors: Errors = None,
) -> HTMLResponse:
    org_id = _org(page)
    text = views.working_copy(page.session, org_id)
    if typed is None:
        typed = [
            {
                "title": q.title,
                "target": q.target,
                "outcome": q.outcome,
                "day": str(q.target_date.day) if q.target_date else "",
                "month": str(q.target_date.month) if q.target_date else "",
                "year": str(q.target_date.year) if q.target_date else "",
                "pledge_ids": q.pledge_ids,
            }
            for q in text.priorities
        ]
        typed.append(_blank_priority())
    return render(
        page.request,
        "applicant/charter_priorities.html",
        auth=page.auth,
        title=rules.priorities.name,
        status=status,
        errors=errors,
        rules=rules,
        typed=typed,
        pledges=[
            {"id": p.id, "title": p.title} for p in organisation_pledges(page.session, org_id)
        ],
        version=text.version,
    )


def _blank_priority() -> dict[str, Any]:
    return {
        "title": "",
        "target": "",
        "outcome": "",
        "day": "",
        "month": "",
        "year": "",
        "pledge_ids": [],
    }


def _date(typed: dict[str, Any], at: str) -> date | None:
    parts = (typed["year"], typed["month"], typed["day"])
    if not any(parts):
        return None
    try:
        return date(*(int(p) for p in parts))
    except (ValueError, TypeError):
        raise InvalidInput(
            "the target date must be a real date, like 31 3 2027", field=f"{at}.target_date"
        ) from None


@router.get("/charter/priorities", name="charter_priorities")
def priorities_form(page: ApplicantPage, rules: CharterRulesDep) -> HTMLResponse:
    """Every priority with its target, outcome, target date and the pledges delivering it, and a
    blank one to add."""
    return _priorities_page(page, rules)


@router.post("/charter/priorities", response_model=None)
def save_priorities(page: ApplicantPage, rules: CharterRulesDep, form: FormDep) -> Response:
    """Save the priorities; one left blank is dropped (blank a priority to remove it)."""
    org_id = _org(page)
    typed: list[dict[str, Any]] = []
    for i in range(rules.priorities.max_count + 1):
        if f"p{i}-title" not in form:
            break
        row: dict[str, Any] = {
            name: field(form, f"p{i}-{name}", limit=6000)
            for name in ("title", "target", "outcome", "day", "month", "year")
        }
        ids = [v for v in form.getlist(f"p{i}-pledges") if isinstance(v, str) and v.isdigit()]
        row["pledge_ids"] = [int(v) for v in ids[:100] if len(v) < 10]
        typed.append(row)
    kept = [r for r in typed if any(r[k] for k in ("title", "target", "outcome"))]

    def write() -> None:
        given = [
            org_charter.PriorityInput(
                r["title"], r["target"], r["outcome"], _date(r, f"priorities[{i}]"), r["pledge_ids"]
            )
            for i, r in enumerate(kept)
        ]
        org_charter.save_charter(
            page.session,
            org_id,
            rules=rules,
            actor=page.actor,
            now=page.now,
            expected_version=version_of(form),
            priorities=given,
        )

    if failure := attempt(page.session, write):
        errors = [{"text": sentence(failure.detail), "href": f"#{input_id(failure.field)}"}]
        shown = kept + [_blank_priority()]
        return _priorities_page(page, rules, typed=shown, status=status_of(failure), errors=errors)
    return after_post("/charter", "saved", "#priorities")


# --- the public page ----------------------------------------------------------------------------


@router.get("/organisations/{organisation_id}/charter", name="organisation_charter")
def public_charter(
    request: Request,
    organisation_id: Id,
    auth: OptionalPageUser,
    session: SessionDep,
    registry: RegistryDep,
    rules: CharterRulesDep,
    now: NowDep,
) -> HTMLResponse:
    """The organisation's published charter (404 until it publishes one); a priority names the
    pledges delivering it that are already public, each linked to the organisation's page."""
    text = views.published(session, organisation_id)
    if text is None:
        raise NotFound(f"organisation {organisation_id} has published no charter")
    titles = views.public_pledges(session, registry, organisation_id, now)
    name = views.organisation_name(session, organisation_id)
    return render(
        request,
        "public/org_charter.html",
        auth=auth,
        title=f"{name}: {rules.name}",
        organisation={"id": organisation_id, "name": name},
        charter=views.shown(rules, text, titles, pledge_href=f"/organisations/{organisation_id}"),
        listed=bool(titles) or views.holds_award(session, registry, organisation_id, now),
    )
