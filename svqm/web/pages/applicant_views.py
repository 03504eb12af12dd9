"""How the applicant pages present an application: tags, dates, checklist slots, triggers."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from svqm.evidence import pledges as pledge_service
from svqm.evidence import requirements as evidence_requirements
from svqm.evidence import service as evidence_service
from svqm.policy import Level, Policy, Workflow
from svqm.web.deps import (
    PageAuth,
    verify_csrf,
)
from svqm.web.pages.account import home_of, page
from svqm.workflow import deadlines, queries
from svqm.workflow import service as workflow
from svqm.workflow.models import Application
from svqm.workflow.schemes import SchemeRegistry

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

FormText = Annotated[str, Form()]
_UK = ZoneInfo("Europe/London")
# `?done=` words and the only text they can put on a page (never the query text itself).
DONE = {
    "signed-up": "Your organisation is registered and you are signed in.",
    "opened": "Application started. Make your pledges and upload your evidence, then submit it.",
    "pledge-added": "Pledge added.",
    "evidence-uploaded": "Evidence uploaded.",
}
EVENT_DONE = {
    "submit": "Application submitted. An assessor will now review it.",
    "resubmit": "Application sent back to the assessor.",
    "withdraw": "Application withdrawn.",
    "appeal": "Appeal sent. The panel will decide it.",
}
STALE = (
    "This application changed since you loaded the page. The page now shows the latest "
    "version: check it and try again"
)
STATE_TAGS = {
    "draft": "govuk-tag--grey",
    "changes_requested": "govuk-tag--yellow",
    "recommended_award": "govuk-tag--turquoise",
    "recommended_refusal": "govuk-tag--orange",
    "awarded": "govuk-tag--green",
    "not_awarded": "govuk-tag--red",
    "appealed": "govuk-tag--purple",
    "not_awarded_final": "govuk-tag--red",
    "withdrawn": "govuk-tag--grey",
    # award states
    "active": "govuk-tag--green",
    "upgrade_eligible": "govuk-tag--green",
    "report_due": "govuk-tag--orange",
    "renewal_due": "govuk-tag--yellow",
    "suspended": "govuk-tag--red",
    "expired": "govuk-tag--grey",
    "lapsed": "govuk-tag--grey",
    "renewed": "govuk-tag--grey",
}
EVIDENCE_TAGS = {
    "missing": ("Missing", "govuk-tag--grey"),
    "pending": ("Awaiting review", ""),
    "accepted": ("Accepted", "govuk-tag--green"),
    "more_information": ("More information needed", "govuk-tag--yellow"),
    "rejected": ("Rejected", "govuk-tag--red"),
}
ROLE_NAMES = {
    "applicant": "Applicant",
    "assessor": "Assessor",
    "panel": "Panel",
    "admin": "Administrator",
    "system": "The service (automatic)",
}
PLEDGE_FIELDS = ("theme", "title", "description", "indicator", "target")


# --- small presentation helpers ---------------------------------------------------------------


def day(value: date | datetime) -> str:
    """'5 January 2026' (UK time for moments)."""
    if isinstance(value, datetime):
        value = value.astimezone(_UK).date()
    return f"{value.day} {value:%B %Y}"


def moment(value: datetime) -> str:
    local = value.astimezone(_UK)
    return f"{local.day} {local:%B %Y} at {local:%H:%M}"


def level_label(level: Level) -> str:
    """'Bronze (Level 1)'."""
    return f"{level.name} ({', '.join(level.aliases)})" if level.aliases else level.name


def state_tag(flow: Workflow, state: str) -> dict[str, str]:
    return {"text": flow.state(state).title, "classes": STATE_TAGS.get(state, "")}


def dom_id(slot: str) -> str:
    return "slot-" + re.sub(r"[^a-z0-9]+", "-", slot.lower()).strip("-")


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def file_size(size: int) -> str:
    return (
        f"{size} bytes"
        if size < 1024
        else (f"{size / 1024:.0f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MB")
    )


def problem(
    request: Request, who: PageAuth | None, status_code: int, title: str, text: str
) -> HTMLResponse:
    """An error page: not found, forbidden."""
    home = home_of(who.user) if who else "/"
    return page(
        request,
        "error.html",
        auth=who,
        status_code=status_code,
        title=title,
        detail=text,
        unmet=[],
        home=home,
    )


def not_found(request: Request, who: PageAuth) -> HTMLResponse:
    return problem(
        request,
        who,
        404,
        "Page not found",
        "There is nothing here, or it is not yours to see. Check the address, or go "
        "back to your home page.",
    )


def rule_text(policy: Policy, level: Level) -> str:
    rule = level.pledge_rule
    if rule is None or not (rule.min_pledges or rule.min_distinct_themes):
        return "There is no minimum number of pledges at this level."
    scope = ""
    if rule.themes == "mandatory":
        names = ", ".join(t.name for t in policy.themes if t.mandatory)
        scope = f" on the mandatory themes ({names})"
    parts = []
    if rule.min_pledges:
        parts.append(f"at least {rule.min_pledges} pledges{scope}")
        scope = ""
    if rule.min_distinct_themes:
        parts.append(f"pledges under at least {rule.min_distinct_themes} different themes{scope}")
    return f"{level.name} needs {' and '.join(parts)}."


def checklist_slots(
    session: Session, app: Application, policy: Policy, level: Level
) -> list[dict[str, Any]]:
    """The evidence checklist as the page shows it, with versions and the latest comment."""
    assert app.id is not None
    slots = evidence_requirements.checklist(
        session, application_id=app.id, policy=policy, level=level
    )
    reviews = evidence_service.reviews_of(session, [i.id for s in slots for i in s.items if i.id])
    out = []
    for slot in slots:
        versions = {i.id: i.version for i in slot.items}
        said = [r for r in reviews if r.evidence_id in versions and r.comment.strip()]
        latest = said[-1] if said else None
        text, classes = EVIDENCE_TAGS.get(slot.status, (slot.status, ""))
        requirement = policy.requirement(slot.requirement_id)
        out.append(
            {
                "id": slot.id,
                "dom": dom_id(slot.id),
                "title": slot.title,
                "description": requirement.description if requirement else "",
                "satisfied": slot.satisfied,
                "tag": {"text": text, "classes": classes},
                "comment": {
                    "text": latest.comment,
                    "version": versions[latest.evidence_id],
                    "decision": EVIDENCE_TAGS.get(latest.decision, (latest.decision, ""))[0],
                    "when": moment(latest.at),
                }
                if latest
                else None,
                "versions": [
                    {
                        "version": i.version,
                        "filename": i.filename,
                        "size": file_size(i.size),
                        "when": moment(i.uploaded_at),
                        "href": f"/evidence/{i.id}/download",
                        "status": EVIDENCE_TAGS.get(i.status, (i.status, ""))[0],
                    }
                    for i in sorted(slot.items, key=lambda i: -i.version)
                ],
            }
        )
    return out


def trigger_forms(
    session: Session,
    app: Application,
    flow: Any,
    who: PageAuth,
    registry: SchemeRegistry,
    now: datetime,
) -> list[dict[str, Any]]:
    """What the applicant may do from here, with every unmet requirement of each."""
    ready, unmet = workflow.available(session, app, actor=who.actor, registry=registry, now=now)
    out = []
    for name in flow.triggers_from(app.state):
        if name not in ready and name not in unmet:
            continue
        t = flow.transition(name, app.state)
        out.append(
            {
                "name": name,
                "title": {"submit": "Submit application", "resubmit": "Resubmit application"}.get(
                    name, t.title
                ),
                "unmet": [sentence(r) for r in unmet.get(name, [])],
                "needs_comment": "has_comment" in t.guards,
                "primary": name in ("submit", "resubmit"),
            }
        )
    return sorted(out, key=lambda t: not t["primary"])


def application_page_response(
    request: Request,
    who: PageAuth,
    session: Session,
    registry: SchemeRegistry,
    now: datetime,
    app: Application,
    *,
    status_code: int = 200,
    errors: list[dict[str, str]] | None = None,
    flash: dict[str, str] | None = None,
    pledge_form: dict[str, str] | None = None,
    upload: dict[str, str] | None = None,
    comment: dict[str, str] | None = None,
) -> HTMLResponse:
    """The application's task list page; also re-rendered, with what was typed, after an error."""
    assert app.id is not None
    scheme = registry.for_subject(session, app)
    policy = scheme.policy
    level = policy.level(app.level)
    wf = policy.workflows.application
    owner = who.user.role == "applicant" and who.user.organisation_id == app.organisation_id
    editable = owner and wf.state(app.state).editable
    pledges = pledge_service.list_pledges(session, app.id)
    rule_unmet = [
        sentence(r) for r in pledge_service.pledge_rule_unmet(pledges, level.pledge_rule, policy)
    ]
    slots = checklist_slots(session, app, policy, level)
    triggers = (
        trigger_forms(session, app, scheme.flows["application"], who, registry, now)
        if owner
        else []
    )
    primary = next((t for t in triggers if t["primary"]), None)
    themes = {t.id: t.name for t in policy.themes}
    events = workflow.history(session, app)
    upload = upload or {"slot": "", "title": "", "error": ""}
    errors = list(errors or [])
    if upload["error"]:
        known = any(s["id"] == upload["slot"] for s in slots)
        href = f"#{dom_id(upload['slot'])}-file" if known else "#evidence"
        errors.append({"text": upload["error"], "href": href})
    return page(
        request,
        "applicant/application.html",
        auth=who,
        status_code=status_code,
        title=f"{level.name} application",
        errors=errors or None,
        flash=flash,
        app={
            "id": app.id,
            "version": app.version,
            "scheme": policy.name,
            "level": level_label(level),
            "state": state_tag(wf, app.state),
            "started": day(app.created_at),
            "changed": moment(app.state_changed_at),
        },
        owner=owner,
        editable=editable,
        rule=rule_text(policy, level),
        rule_unmet=rule_unmet,
        pledges=[
            {
                "theme": themes.get(p.theme, p.theme),
                "title": p.title,
                "description": p.description,
                "indicator": p.indicator,
                "target": p.target,
                "due": day(p.due_date),
            }
            for p in pledges
        ],
        themes=[{"value": "", "text": "Choose a theme", "selected": False}]
        + [
            {
                "value": t.id,
                "text": f"{t.name} (mandatory)" if t.mandatory else t.name,
                "selected": t.id == (pledge_form or {}).get("theme"),
            }
            for t in policy.themes
        ],
        pledge_form=pledge_form or dict.fromkeys((*PLEDGE_FIELDS, "day", "month", "year"), ""),
        slots=slots,
        upload=upload,
        triggers=triggers,
        primary=primary,
        comment=comment or {"trigger": "", "text": ""},
        slots_done=sum(1 for s in slots if s["satisfied"]),
        deadlines=[
            {"label": deadlines.deadline(policy, kind).label, "due": day(due)}
            for kind, due in queries.open_deadlines(session, app.id)
        ],
        comments=[
            {
                "when": moment(e.at),
                "who": ROLE_NAMES.get(e.actor_role, e.actor_role),
                "what": trigger_title(wf, e.trigger),
                "text": e.comment,
            }
            for e in reversed(events)
            if e.actor_role in ("assessor", "panel") and e.comment.strip()
        ],
    )


def trigger_title(wf: Workflow, trigger: str) -> str:
    t = next((t for t in wf.transitions if t.trigger == trigger), None)
    return t.title if t else sentence(trigger.replace("_", " "))
