"""What an applicant organisation reads: its dashboard, an application's task list, its history."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from sqlmodel import Session

from svqm.accounts import service as accounts
from svqm.evidence import pledges as pledge_service
from svqm.evidence import requirements as evidence_requirements
from svqm.evidence import service as evidence_service
from svqm.evidence.models import EvidenceItem
from svqm.notify.recipients import page_of
from svqm.policy import Level, Policy
from svqm.web.format import (
    day,
    dom_id,
    evidence_tag,
    file_kind,
    file_size,
    file_title,
    level_label,
    moment,
    reference,
    role_name,
    sentence,
    state_tag,
    status_change,
)
from svqm.web.views.deadlines import DeadlineView, describe
from svqm.web.views.pledges import DISPOSITIONS, STAFF_DISPOSITIONS
from svqm.web.views.triggers import TriggerForm, step_title, trigger_forms
from svqm.workflow import audits, deadlines, eligibility, messages, queries, schedule
from svqm.workflow import awards as award_queries
from svqm.workflow import service as workflow
from svqm.workflow.effects import members_covered
from svqm.workflow.models import Application
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor

# How many of the organisation's next deadlines the dashboard lists.
DASHBOARD_DEADLINES = 10


# --- the dashboard ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    organisation: str
    applications: list[dict[str, Any]]
    awards: list[dict[str, Any]]
    upcoming: list[dict[str, Any]]


def dashboard(session: Session, registry: SchemeRegistry, actor: Actor, now: datetime) -> Dashboard:
    """The organisation's applications and awards, and its next deadlines."""
    org_id = actor.organisation_id or 0
    # The deadlines are the schedule's rows, the same ones the reminders and the calendar use.
    upcoming = describe(session, registry, schedule.upcoming(session, organisation_id=org_id))
    soonest: dict[tuple[str, int], DeadlineView] = {}
    for view in upcoming:
        soonest.setdefault((view.subject_kind, view.subject_id), view)
    applications = []
    rows = queries.list_applications(session, actor, registry=registry)
    held = award_queries.organisation_awards(session, org_id)
    reader = actor.id or 0
    unread = messages.unread_counts(session, reader, "application", [a.id or 0 for a in rows])
    unread_awards = messages.unread_counts(session, reader, "award", [a.id or 0 for a in held])
    for app in rows:
        policy = registry.for_subject(session, app).policy
        first = soonest.get(("application", app.id or 0))
        applications.append(
            {
                "id": app.id,
                "href": f"/applications/{app.id}",
                "scheme": policy.name,
                "level": level_label(policy.level(app.level)),
                "state": state_tag(policy.workflows.application, app.state),
                "deadline": f"{first.label}: {day(first.due_at)}" if first else "None",
                "unread": unread.get(app.id or 0, 0),
                "messages": f"/applications/{app.id}/messages",
            }
        )
    awards = []
    for award in held:
        policy = registry.for_subject(session, award).policy
        awards.append(
            {
                "id": award.id,
                "scheme": policy.name,
                "level": level_label(policy.level(award.level)),
                "certificate": award.certificate_number,
                "state": state_tag(policy.workflows.award, award.state),
                "expires": day(award.expires_at),
                "href": f"/awards/{award.id}/verify",
                "page": f"/dashboard/awards/{award.id}",
                "unread": unread_awards.get(award.id or 0, 0),
                "messages": f"/awards/{award.id}/messages",
            }
        )
    return Dashboard(
        organisation=accounts.organisation_name(session, org_id) if org_id else "",
        applications=applications,
        awards=awards,
        upcoming=[
            {
                "due": day(v.due_at),
                "label": v.label,
                "what": v.subject,
                "href": v.applicant_path,
                "overdue": v.overdue(now),
            }
            for v in upcoming[:DASHBOARD_DEADLINES]
        ],
    )


# --- the application's task list ----------------------------------------------------------------


def rule_text(policy: Policy, level: Level) -> str:
    """The level's pledge rule in words."""
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
        session,
        application_id=app.id,
        policy=policy,
        level=level,
        members=members_covered(session, app.id),
    )
    reviews = evidence_service.reviews_of(session, [i.id for s in slots for i in s.items if i.id])
    # A per-member item of a group's application: done once every member's own is in.
    each: dict[str, list[bool]] = {}
    for slot in slots:
        if slot.member_id is not None:
            each.setdefault(slot.requirement_id, []).append(slot.satisfied)
    # An upload made while the application is with its applicant, since it last came back to
    # them (or since it was opened), goes to review only when the application is sent.
    editable = policy.workflows.application.state(app.state).editable

    def sent(item: EvidenceItem | None) -> bool:
        # Nothing uploaded: "sent" once the application has gone (then it is missing from it).
        if item is None:
            return not editable
        return not editable or item.uploaded_at < app.state_changed_at

    out = []
    for slot in slots:
        members_done = each.get(slot.requirement_id) if slot.member_id is not None else None
        versions = {i.id: i.version for i in slot.items}
        said = [
            r
            for r in reviews
            if r.evidence_id in versions and r.comment.strip() and r.visibility != "internal"
        ]
        latest = said[-1] if said else None
        requirement = policy.requirement(slot.requirement_id)
        out.append(
            {
                "id": slot.id,
                "dom": dom_id(slot.id),
                "title": slot.title,
                "description": requirement.description if requirement else "",
                "satisfied": slot.satisfied,
                "member": slot.member_name,
                "each_member": (
                    f"Each member uploads its own: {sum(members_done)} of {len(members_done)} "
                    "members done"
                    if members_done
                    else ""
                ),
                "met_by": slot.met_by or "",
                "met_by_charter": slot.met_by_charter,
                "tag": evidence_tag(slot.status, sent=sent(slot.current)),
                "comment": {
                    "text": latest.comment,
                    "version": versions[latest.evidence_id],
                    "decision": evidence_tag(latest.decision)["text"],
                    "when": day(latest.at),
                }
                if latest
                else None,
                "versions": [
                    {
                        "version": i.version,
                        "title": file_title(i.title, slot.title),
                        "filename": i.filename,
                        "size": file_size(i.size),
                        "kind": file_kind(i.content_type),
                        "when": day(i.uploaded_at),
                        "href": f"/evidence/{i.id}/download",
                        "status": evidence_tag(i.status, sent=sent(i))["text"],
                        "note": i.note,
                    }
                    for i in sorted(slot.items, key=lambda i: -i.version)
                ],
            }
        )
    return out


@dataclass(frozen=True)
class TaskList:
    """An application as its applicant works on it (staff see it read-only)."""

    title: str
    app: dict[str, Any]
    owner: bool
    editable: bool
    rule: str
    rule_unmet: list[str]
    pledges: list[dict[str, Any]]
    themes: list[dict[str, Any]]
    slots: list[dict[str, Any]]
    triggers: list[TriggerForm]
    primary: TriggerForm | None
    slots_done: int
    deadlines: list[dict[str, str]]
    comments: list[dict[str, str]]
    organisation: dict[str, str]
    # Evidence asked for each pledge, which cannot be uploaded before there are pledges.
    waiting: list[str]
    # An audited level's booking: {"status": none|proposed|confirmed, "start": day} (else None).
    audit: dict[str, str] | None = None
    # The eligibility questions' outcome (svqm.workflow.eligibility), or None if none are asked.
    eligibility_status: str | None = None
    # A group's application: whose a new pledge is (every member's, or one member's own), as
    # the options of a select; empty for an organisation's own application.
    members: list[dict[str, Any]] = field(default_factory=list)
    # Staff reading it: the page where their role acts on the application ({"href", "text"}).
    staff_page: dict[str, str] | None = None

    def context(self) -> dict[str, Any]:
        """The template's variables (all but the title, which the page takes on its own)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "title"}

    def slot_href(self, slot_id: str) -> str:
        """Where an upload error links: the slot's file input, or the evidence section."""
        known = any(s["id"] == slot_id for s in self.slots)
        return f"#{dom_id(slot_id)}-file" if known else "#evidence"


# What the link to each staff role's own page of an application says.
_STAFF_PAGES = {
    "assessor": "open the review screen",
    "panel": "open the panel's case page",
    "admin": "open the admin page for this application",
}


def staff_page(application_id: int, role: str) -> dict[str, str] | None:
    """Where a member of staff reading an application's task list acts on it: the same page
    their emails link to (who may read the task list may read that page: the same access)."""
    text = _STAFF_PAGES.get(role)
    if text is None:
        return None
    return {"href": page_of("application", application_id, role), "text": text}


def task_list(
    session: Session,
    registry: SchemeRegistry,
    app: Application,
    actor: Actor,
    now: datetime,
    *,
    theme: str = "",
    member: str = "",
) -> TaskList:
    """Read the application's task list; `theme` (and `member`, whose pledge) is what was
    chosen in a refused pledge form."""
    assert app.id is not None
    scheme = registry.for_subject(session, app)
    policy = scheme.policy
    level = policy.level(app.level)
    flow = policy.workflows.application
    owner = actor.role == "applicant" and actor.organisation_id == app.organisation_id
    holds = pledge_service.application_pledges(session, app.id)
    pledges = [p for p, link in holds if link.disposition != "retired"]
    carried = sum(1 for _, link in holds if link.disposition in ("carried", "revised"))
    rule_unmet = pledge_service.pledge_rule_unmet(
        pledges, level.pledge_rule, policy, carried=carried
    )
    slots = checklist_slots(session, app, policy, level)
    triggers = [
        replace(f, unmet=[sentence(r) for r in f.unmet])
        for f in (trigger_forms(session, app, actor, registry, now) if owner else [])
    ]
    themes = {t.id: t.name for t in policy.themes}
    org = accounts.get_organisation(session, app.organisation_id)
    per_pledge = [policy.requirement(rid) for rid in level.evidence]
    audit = None
    if policy.audited(app.level):
        booked = audits.current(session, app.id)
        start = audits.start_day(policy, app)
        audit = {
            "status": "confirmed" if start else (booked.status if booked else "none"),
            "start": audits.day_text(start) if start else "",
            # Whether dates may be proposed in the application's state (the policy's states).
            "open": "yes" if app.state in audits.rule_for(policy, app).states else "",
            "unsent": "yes" if app.state == flow.initial else "",
            # How many start dates the policy asks for (the task's hint says it).
            "proposals": str(audits.rule_for(policy, app).proposals),
        }
    asked = policy.eligibility
    covered = members_covered(session, app.id)
    names = accounts.organisation_names(session, covered)

    def whose(owner: int) -> str:
        if not covered:
            return ""
        return f"{names[owner]}'s own" if owner in names else "Shared by every member"

    kind = "application"
    if app.reapplies_id is not None:
        kind = "re-application"
    elif award_queries.renewed_by(session, policy, app) is not None:
        kind = "renewal application"
    return TaskList(
        members=[{"value": "", "text": "All members (shared)", "selected": not member}]
        + [
            {
                "value": str(m),
                "text": names.get(m, f"Organisation {m}"),
                "selected": member == str(m),
            }
            for m in covered
        ]
        if covered
        else [],
        eligibility_status=(
            eligibility.outcome(asked, eligibility.answers(session, app.id)).status
            if asked is not None
            else None
        ),
        audit=audit,
        title=f"{level.name} {kind}",
        app={
            "kind": kind,
            "id": app.id,
            "version": app.version,
            "scheme": policy.name,
            "level": level_label(level),
            "state": state_tag(flow, app.state),
            "started": day(app.created_at),
            "changed": day(app.state_changed_at),
            "reference": reference(app.id),
            "open": flow.state(app.state).editable,
        },
        owner=owner,
        staff_page=None if owner else staff_page(app.id, actor.role),
        editable=owner and flow.state(app.state).editable,
        rule=rule_text(policy, level),
        rule_unmet=[sentence(r) for r in rule_unmet],
        pledges=[
            {
                "id": p.id,
                "theme": themes.get(p.theme, p.theme),
                "title": p.title,
                "description": p.description,
                "indicator": p.indicator,
                "target": pledge_service.figure(p.target, p.unit),
                "baseline": pledge_service.figure(p.baseline, p.unit),
                "due": day(p.due_date),
                "held": (DISPOSITIONS if owner else STAFF_DISPOSITIONS).get(
                    link.disposition, link.disposition
                ),
                "retired": link.disposition == "retired",
                "whose": whose(p.organisation_id),
            }
            for p, link in holds
        ],
        themes=[{"value": "", "text": "Choose a theme", "selected": False}]
        + [
            {
                "value": t.id,
                "text": f"{t.name} (mandatory)" if t.mandatory else t.name,
                "selected": t.id == theme,
            }
            for t in policy.themes
        ],
        slots=slots,
        triggers=triggers,
        primary=next((t for t in triggers if t.primary), None),
        slots_done=sum(1 for s in slots if s["satisfied"]),
        deadlines=[
            {"label": deadlines.deadline(policy, kind).label, "due": day(due)}
            for kind, due in queries.open_deadlines(session, app.id)
        ],
        comments=[
            {
                "when": day(e.at),
                "who": role_name(e.actor_role),
                "what": step_title(flow, e.trigger),
                "text": e.comment,
            }
            for e in reversed(workflow.history(session, app))
            if e.actor_role in ("assessor", "panel")
            and e.comment.strip()
            and e.visibility != "internal"
        ],
        organisation={"name": org.name, "sector": org.sector} if org else {},
        waiting=[]
        if pledges
        else [r.title for r in per_pledge if r is not None and r.per == "pledge"],
    )


@dataclass(frozen=True)
class History:
    title: str
    app: dict[str, Any]
    events: list[dict[str, Any]]


def history(session: Session, registry: SchemeRegistry, app: Application, actor: Actor) -> History:
    """The application's audit trail for its reader, newest first."""
    policy = registry.for_subject(session, app).policy
    flow = policy.workflows.application
    staff = actor.role != "applicant"
    return History(
        title=f"History of application {reference(app.id or 0)}",
        app={"id": app.id, "scheme": policy.name, "level": level_label(policy.level(app.level))},
        events=[
            {
                "when": moment(e.at),
                "what": step_title(flow, e.trigger),
                "who": "You"
                if e.actor_id is not None and e.actor_id == actor.id
                else role_name(e.actor_role),
                "moved": status_change(flow, e.source, e.dest) if e.source != e.dest else "",
                "comment": e.comment if staff or e.visibility != "internal" else "",
                "internal": e.visibility == "internal",
            }
            for e in reversed(workflow.history(session, app))
            # An applicant never reads staff-only words; a step that moved the case still shows.
            if staff or e.visibility != "internal" or e.source != e.dest
        ],
    )
