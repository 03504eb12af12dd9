"""Emails about what happened on a case, written to the outbox in the event's own transaction.

Each role the policy names (`notify:` on a transition, `notify_on_assign`) gets one outbox row
keyed by the audit event, so an event is told once however often anything runs. The row holds
paths, not addresses: the base URL is the one set when the email is sent.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from svqm.accounts.models import User
from svqm.evidence import service as evidence_service
from svqm.evidence.models import Review
from svqm.notify import digest, outbox
from svqm.notify.recipients import (
    SECOND_ASSESSOR,
    Audience,
    due_text,
    page_of,
    path_of,
    with_second_assessor,
)
from svqm.policy import Policy
from svqm.workflow import events, invoices, schedule, votes
from svqm.workflow.invoices import Invoice
from svqm.workflow.models import Award, DecisionVote, application_reference
from svqm.workflow.schedule import ScheduledDeadline

_BY = {
    "applicant": "the organisation",
    "assessor": "the assessor",
    "panel": "the panel",
    "admin": "an administrator",
}


_AS_SECOND = "assigned to you as the second assessor"
# What each of two assessors does, told when they are assigned to a double-marked case.
_PART = {
    "assessor": "You are its first assessor: you review the evidence, score every question and "
    "take the steps. A second assessor scores on their own; neither of you sees the other's "
    "scores until both of you have scored every question.",
    SECOND_ASSESSOR: "You are its second assessor: score every question on your own. Neither of "
    "you sees the other's scores until both of you have scored every question; the first "
    "assessor reviews the evidence and takes the steps.",
}


def _done_text(role: str, at: Any) -> str:
    if role == "system":
        return f"Done automatically on {due_text(at)}."
    return f"Done by {_BY.get(role, role)} on {due_text(at)}."


def subject_title(policy: Policy, kind: str, subject: Any) -> str:
    level = policy.level(subject.level).name
    if kind == "application":
        return f"{level} application {application_reference(subject.id)}"
    if kind == "report":
        return f"{level} award: {subject.title}"
    return f"{level} award ({subject.certificate_number})"


def _about(policy: Policy, kind: str, subject: Any, title: str) -> str:
    """The subject as a sentence names it: 'Silver application (reference SVQM-00012)'."""
    if kind == "application":
        level = policy.level(subject.level).name
        return f"{level} application (reference {application_reference(subject.id)})"
    if kind == "award":
        return (
            f"{policy.level(subject.level).name} award (certificate {subject.certificate_number})"
        )
    return title


def _happened(
    notice: events.Notice, role: str, about: str, organisation: str, state: str, step: str
) -> str:
    """What happened, in a sentence to this reader: the first line of their email."""
    what = notice.what
    mine = role == "applicant"
    # The applicant's own case is "your …"; staff read whose it is.
    case = (
        f"your {about}"
        if mine
        else f"the {about}" + (f" of {organisation}" if organisation else "")
    )
    t = notice.transition
    assigned = t is not None and "assign_assessor" in t.effects
    if what == "second_assignment" or (assigned and role == SECOND_ASSESSOR):
        return f"You have been assigned {case} as its second assessor."
    if what == "assignment" or (assigned and role == "assessor"):
        return f"You have been assigned {case} to assess."
    if what == "filed":
        return f"{organisation or 'The organisation'} has filed {case} for you to review."
    if what == "reminder":
        return f"This is a reminder about {case}. Its status is {state}."
    if what == "audit_proposed":
        return f"Audit start dates have been proposed for {case}."
    if what == "audit_confirmed":
        return f"The audit start date for {case} has been confirmed."
    if what == "vote_needed":
        return f"Your decision is needed on {case}. {step}."
    if t is not None and t.primary and mine and notice.event.actor_role == "applicant":
        return f"We have received {case}."
    if notice.event.source != notice.event.dest:
        return f"The status of {case} is now {state}."
    return f"{t.title if t else 'A step'}: {case}."


def _next(notice: events.Notice, role: str) -> str:
    """What the step's own words say comes next, to the side that took it: the rest of its
    `done` text after the first sentence ('An assessor will now review it.')."""
    t = notice.transition
    if t is None or notice.what != "transition" or role != notice.event.actor_role:
        return ""
    return t.done_next


# Built once: a step that invoices (the `issue_invoice` effect) tells the payer of its invoice.
_UNPAID_INVOICE = (
    select(Invoice)
    .where(
        col(Invoice.application_id) == bindparam("application_id"),
        Invoice.kind == invoices.INVOICE,
        Invoice.status == invoices.UNPAID,
    )
    .order_by(col(Invoice.id).desc())
    .limit(1)
)
_UNPAID_AWARD_INVOICE = (
    select(Invoice)
    .where(
        col(Invoice.award_id) == bindparam("award_id"),
        col(Invoice.application_id).is_(None),
        Invoice.kind == invoices.INVOICE,
        Invoice.status == invoices.UNPAID,
    )
    .order_by(col(Invoice.id).desc())
    .limit(1)
)


def _invoice(session: Session, notice: events.Notice) -> dict[str, Any]:
    """The unpaid invoice of a step that issues one (one read, only on such a step): its
    number, total, VAT, due date and PDF, for the applicant's email."""
    t = notice.transition
    if t is None or notice.what != "transition" or "issue_invoice" not in t.effects:
        return {}
    if notice.kind == "application":
        found = session.exec(_UNPAID_INVOICE, params={"application_id": notice.subject.id})
    elif notice.kind == "award":
        found = session.exec(_UNPAID_AWARD_INVOICE, params={"award_id": notice.subject.id})
    else:
        return {}
    inv = found.first()
    if inv is None:
        return {}
    return {
        "invoice": {
            "number": inv.number,
            "total": invoices.pounds(inv.total_pence),
            "vat": invoices.pounds(inv.vat_pence),
            "due_text": due_text(inv.due_at),
            "reference": inv.reference,
        },
        "invoice_path": f"/invoices/{inv.id}.pdf",
    }


def asked_about(session: Session, application_id: int) -> list[dict[str, str]]:
    """Every item the assessor collected a request for more on, each once, with their words."""
    out = []
    for item in evidence_service.asked_about(session, application_id):
        review = session.exec(
            select(Review)
            .where(Review.evidence_id == item.id, Review.decision == "more_information")
            .order_by(col(Review.id).desc())
        ).first()
        said = review.comment if review is not None and review.visibility != "internal" else ""
        out.append({"title": item.title or item.filename, "comment": said})
    return out


# Built once: every notice reads its subject's open deadlines and (an application's) award.
_OPEN_DEADLINES = (
    select(col(ScheduledDeadline.kind), col(ScheduledDeadline.due_at))
    .where(
        col(ScheduledDeadline.subject_kind) == bindparam("kind"),
        col(ScheduledDeadline.subject_id) == bindparam("id"),
        ScheduledDeadline.status == schedule.OPEN,
    )
    .order_by(col(ScheduledDeadline.due_at))
)
_AWARD_OF = select(col(Award.id), col(Award.issued_at), col(Award.certificate_number)).where(
    col(Award.application_id) == bindparam("application_id")
)


def _deadlines(session: Session, notice: events.Notice, role: str) -> list[dict[str, str]]:
    """The open deadlines of the subject that this role is reminded of, soonest first."""
    which = {"kind": notice.kind, "id": notice.subject.id}
    rows = session.exec(_OPEN_DEADLINES, params=which).all()
    out = []
    for kind, due in rows:
        d = notice.policy.deadline(kind)
        if d is not None and role in d.notify:
            out.append({"label": d.label, "due_text": due_text(due)})
    return out


def _award_paths(session: Session, notice: events.Notice, role: str) -> dict[str, str]:
    """An application that was just awarded: its award's page, certificate and verify links."""
    if notice.kind != "application":
        return {}
    award = session.exec(_AWARD_OF, params={"application_id": notice.subject.id}).first()
    if award is None:
        return {}
    award_id, issued_at, certificate_number = award
    if issued_at != notice.now:
        return {}
    return {
        "award_path": page_of("award", award_id, role),
        "certificate_path": f"/awards/{award_id}/certificate",
        "verify_path": f"/awards/{award_id}/verify",
        "certificate_number": certificate_number,
    }


def _members(session: Session, recorded: list[DecisionVote]) -> list[User]:
    ids = [v.member_id for v in recorded]
    if not ids:
        return []
    return list(session.exec(select(User).where(col(User.id).in_(ids))))


def on_notice(session: Session, notice: events.Notice) -> None:
    """One outbox row for each role told of the event.

    A step the system takes when a deadline passes is already told by that deadline's own
    email ("what happened"); it gets an event email too only when the policy has more to say
    (its `notice`: how to start the renewal it opened)."""
    subject, policy, event = notice.subject, notice.policy, notice.event
    if event.actor_role == "system" and not (notice.transition and notice.transition.notice):
        return
    flow = policy.workflows.of(notice.kind)
    audience = Audience(session, "", [(notice.kind, subject)])
    title = subject_title(policy, notice.kind, subject)
    about = _about(policy, notice.kind, subject, title)
    state = flow.state(event.dest).title
    if notice.what == "assignment":
        step, headline = "Assessor assigned", f"{title}: assigned to you for assessment"
    elif notice.what == "second_assignment":
        step, headline = "Second assessor assigned", f"{title}: {_AS_SECOND}"
    elif notice.what == "filed":
        step, headline = "Report filed", f"{title}: filed, to review"
    elif notice.what == "reminder":
        step, headline = "Reminder", f"{title}: a reminder about your application ({state})"
    elif notice.what == "audit_proposed":
        step, headline = "Audit dates proposed", f"{title}: audit start dates proposed"
    elif notice.what == "audit_confirmed":
        step, headline = "Audit date confirmed", f"{title}: audit start date confirmed"
    elif notice.what == "vote_needed":
        assert notice.transition is not None
        t = notice.transition
        agreeing = len([v for v in votes.recorded(session, subject) if v.trigger == t.trigger])
        step = f"{t.title}: {agreeing} of {t.quorum} members agree"
        headline = f"{title}: your decision is needed ({t.title.lower()})"
    else:
        assert notice.transition is not None
        step = notice.transition.title
        headline = f"{title}: {state}"
    items: list[dict[str, str]] = []
    if notice.kind == "application" and event.trigger == flow.hand_back:
        assert subject.id is not None
        items = asked_about(session, subject.id)
    organisation = audience.organisations.get(subject.organisation_id, "")
    invoice = _invoice(session, notice) if "applicant" in notice.roles else {}
    rows = []
    # A step that assigned the assessor (an effect) tells them so in its subject line.
    assigned = notice.transition is not None and "assign_assessor" in notice.transition.effects
    roles = list(dict.fromkeys(notice.roles))
    if notice.what == "second_assignment":
        # The admin chose the second assessor: it is they who are told, not the first.
        roles = [SECOND_ASSESSOR if r == "assessor" else r for r in roles]
    elif notice.what != "assignment":
        # The second assessor of a double-marked case hears of all the first does.
        roles = with_second_assessor(notice.kind, subject, roles)
    if (
        notice.kind == "report"
        and "assessor" in roles
        and not audience.addresses(notice.kind, subject, "assessor")
    ):
        # A report of an award no assessor assessed (self-service), or whose assessor has left:
        # the admins are told instead, not nobody.
        roles = [r for r in roles if r != "assessor"] + (["admin"] if "admin" not in roles else [])
    # Asking for decisions: not the members who have recorded theirs.
    decided = (
        {u.email for u in _members(session, votes.recorded(session, subject))}
        if notice.what == "vote_needed"
        else set()
    )
    for role in roles:
        to = [a for a in audience.addresses(notice.kind, subject, role) if a not in decided]
        if not to and notice.what == "vote_needed":
            continue
        if assigned and role == "assessor":
            subject_line = f"{title}: assigned to you for assessment"
        elif assigned and role == SECOND_ASSESSOR:
            subject_line = f"{title}: {_AS_SECOND}"
        elif (
            role == "applicant"
            and event.actor_role == "applicant"
            and notice.what == "transition"
            and notice.transition is not None
            and notice.transition.primary
        ):
            subject_line = f"{title}: received"
        else:
            subject_line = headline
        told_of_part = (assigned or notice.what in ("assignment", "second_assignment")) and (
            role == SECOND_ASSESSOR
            or (role == "assessor" and getattr(subject, "second_assessor_id", None) is not None)
        )
        context = {
            "subject": subject_line,
            "names": audience.names_of(to),
            "greeting_fallback": f"{organisation} team" if role == "applicant" else "",
            "organisation": organisation,
            "scheme": policy.name,
            "contact": policy.contact,
            "subject_title": title,
            "step": step,
            "happened": _happened(notice, role, about, organisation, state, step),
            "next_text": _next(notice, role),
            "done_text": _done_text(event.actor_role, event.at),
            "state": state,
            "moved": event.source != event.dest,
            # The system's own notes ("renewal passed on …") are not words to pass on.
            # A hand-back lists each item once; its comment is the assessor's covering note.
            "comment": ""
            if event.actor_role == "system" or (notice.internal and role == "applicant")
            else notice.comment,
            # What a booking step says is the engine's account of it (the dates), not a
            # person's words: it is told without "In their words".
            "comment_intro": ""
            if notice.what in ("audit_proposed", "audit_confirmed")
            else "In their words",
            "items": items,
            "deadlines": _deadlines(session, notice, role),
            "notice": notice.transition.notice if notice.transition else "",
            "part": _PART.get(role, "") if told_of_part else "",
            "path": path_of(notice.kind, subject, role),
            "audience": role,
            **_award_paths(session, notice, role),
            **(invoice if role == "applicant" else {}),
        }
        rows.append(
            outbox.message(
                key=f"event:{notice.kind}-{subject.id}:{event.seq}:{role}",
                template="event",
                context=context,
                to_addrs=to,
                now=notice.now,
                organisation_id=subject.organisation_id,
            )
        )
    # A decision, and a reminder, goes at once; any other event waits for a digest-chooser's day.
    decision = event.actor_role == "panel" or flow.state(event.dest).terminal
    if not decision and notice.what != "reminder":
        rows = digest.split(session, rows)
    outbox.enqueue_many(session, rows)


events.subscribe(on_notice)
