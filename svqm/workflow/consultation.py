"""Stakeholder consultation: invitees answer a short form, once, through a link of their own.

The policy's `consultation` says which levels consult, when the form opens (after the confirmed
audit start) and closes, its questions and the standards the answers count toward. Each email
carries its own random token, of which only the SHA-256 is kept; any of an invitee's tokens
opens their form, and the form takes one answer. The answers are for the scheme's staff only.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Column, Index, Text, bindparam, update
from sqlmodel import Field, Session, SQLModel, col, func, select

from svqm.db import UtcDateTime, insert_now, new_row, rows_changed
from svqm.errors import Conflict, GuardRefused, InvalidInput, NotFound, PermissionDenied, Reason
from svqm.policy import Consultation, Policy
from svqm.workflow.models import Application

GROUPS = {"internal": "Internal (staff, volunteers, board)", "external": "External"}
TEXT_LIMIT = 2000
RATINGS = {1: "Poor", 2: "Fair", 3: "Good", 4: "Very good", 5: "Excellent"}


class ConsultationInvite(SQLModel, table=True):
    """One stakeholder invited to answer an application's consultation."""

    __tablename__ = "consultation_invite"
    # The reminder pass reads unanswered invitations by their next reminder, through this index.
    __table_args__ = (Index("ix_consultation_invite_remind", "remind_at"),)

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id", index=True)
    name: str = Field(default="", max_length=200)
    email: str = Field(max_length=254)
    group: str = Field(default="external", max_length=20)
    invited_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    opens_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    closes_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    answered_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    # The reminder offsets (days before the close) already handled, as deadlines keep them.
    reminded: str = Field(default="", max_length=200)
    remind_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))

    @property
    def reminded_days(self) -> list[int]:
        return [int(d) for d in self.reminded.split(",") if d]


class ConsultationToken(SQLModel, table=True):
    """The SHA-256 of one emailed link to an invitation (the invitation and each reminder)."""

    __tablename__ = "consultation_token"

    id: int | None = Field(default=None, primary_key=True)
    invite_id: int = Field(foreign_key="consultation_invite.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class ConsultationResponse(SQLModel, table=True):
    """An invitee's answers (JSON: question id to answer); one per invitation."""

    __tablename__ = "consultation_response"

    id: int | None = Field(default=None, primary_key=True)
    invite_id: int = Field(foreign_key="consultation_invite.id", unique=True)
    application_id: int = Field(foreign_key="application.id", index=True)
    answers: str = Field(sa_column=Column(Text, nullable=False))
    submitted_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))

    @property
    def answer_map(self) -> dict[str, str]:
        loaded = json.loads(self.answers)
        return {str(k): str(v) for k, v in loaded.items()}


@dataclass(frozen=True)
class Invitee:
    name: str
    email: str
    group: str = "external"


def rule_for(policy: Policy, app: Application) -> Consultation:
    """The policy's consultation, or InvalidInput when the application's level consults nobody."""
    if policy.consultation is None or not policy.consulted(app.level):
        level = policy.level(app.level).name
        raise InvalidInput(
            f"{level} applications of {policy.name} hold no stakeholder consultation"
        )
    return policy.consultation


def window(policy: Policy, app: Application) -> tuple[datetime, datetime] | None:
    """When the application's form opens and closes, once its audit start is confirmed."""
    rule = policy.consultation
    if rule is None or app.audit_starts_at is None:
        return None
    opens = app.audit_starts_at + timedelta(days=rule.opens_after_days)
    return opens, opens + timedelta(days=rule.open_days)


def next_remind(
    rule: Consultation, opens: datetime, closes: datetime, reminded: Sequence[int]
) -> datetime | None:
    """The next reminder moment (never before the form opens), or None when none is left."""
    handled = min(reminded) if reminded else None
    for days in rule.remind_before_days:  # largest first
        if handled is None or days < handled:
            return max(closes - timedelta(days=days), opens)
    return None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(session: Session, invite: ConsultationInvite, now: datetime) -> str:
    """A fresh link token for the invitation (the raw token is returned once, never stored)."""
    token = secrets.token_urlsafe(32)
    assert invite.id is not None
    insert_now(
        session,
        new_row(ConsultationToken, invite_id=invite.id, token_hash=_hash(token), created_at=now),
    )
    return token


def _check_staff(actor_role: str, actor_id: int | None, app: Application) -> None:
    if actor_role == "admin":
        return
    if actor_role == "assessor" and actor_id == app.assessor_id:
        return
    if actor_role == "assessor":
        raise PermissionDenied("only the assessor assigned to this application may consult")
    raise PermissionDenied("the assessor or an admin invites stakeholders")


def invite(
    session: Session,
    policy: Policy,
    app: Application,
    invitees: Sequence[Invitee],
    *,
    actor_role: str,
    actor_id: int | None,
    now: datetime,
) -> list[tuple[ConsultationInvite, str]]:
    """Invite stakeholders (each invitation with its first token); the caller emails them.

    Raises InvalidInput for a level that does not consult or too many invitees; GuardRefused
    naming each bad or repeated address or group; Conflict before the audit start date is
    confirmed or once it has closed.
    """
    _check_staff(actor_role, actor_id, app)
    rule = rule_for(policy, app)
    span = window(policy, app)
    if span is None:
        raise Conflict("the audit start date is not confirmed yet: the consultation opens after it")
    opens, closes = span
    if closes <= now:
        raise Conflict("the consultation has closed")
    if not invitees:
        raise InvalidInput("name at least one stakeholder to invite", field="email")
    assert app.id is not None
    known = set(
        session.exec(
            select(func.lower(ConsultationInvite.email)).where(
                ConsultationInvite.application_id == app.id
            )
        )
    )
    if len(known) + len(invitees) > rule.max_invitations:
        raise InvalidInput(
            f"a consultation invites at most {rule.max_invitations} people "
            f"({len(known)} invited already)",
            field="email",
        )
    problems: list[str] = []
    seen: set[str] = set()
    for n, person in enumerate(invitees):
        email = person.email.strip()
        local, at, domain = email.partition("@")
        if not (local and at and "." in domain) or len(email) > 254 or " " in email:
            problems.append(Reason(f"'{email}' is not an email address", field=f"email.{n}"))
        elif email.lower() in known or email.lower() in seen:
            problems.append(Reason(f"{email} is invited already", field=f"email.{n}"))
        if person.group not in GROUPS:
            problems.append(
                Reason("say whether the stakeholder is internal or external", field=f"group.{n}")
            )
        if len(person.name) > 200:
            problems.append(Reason("a name is at most 200 characters", field=f"name.{n}"))
        seen.add(email.lower())
    if problems:
        raise GuardRefused(f"{len(problems)} invitation(s) cannot be sent", list(problems))
    out = []
    for person in invitees:
        row = ConsultationInvite(
            application_id=app.id,
            name=person.name.strip(),
            email=person.email.strip(),
            group=person.group,
            invited_by_id=actor_id,
            created_at=now,
            opens_at=opens,
            closes_at=closes,
            remind_at=next_remind(rule, opens, closes, []),
        )
        session.add(row)
        session.flush()
        out.append((row, new_token(session, row, now)))
    return out


def follow_start(session: Session, policy: Policy, app: Application) -> None:
    """A moved audit start moves the unanswered invitations' window and reminders with it."""
    rule, span = policy.consultation, window(policy, app)
    if rule is None or span is None:
        return
    opens, closes = span
    pending = session.exec(
        select(ConsultationInvite).where(
            ConsultationInvite.application_id == app.id,
            col(ConsultationInvite.answered_at).is_(None),
        )
    )
    for row in pending:
        row.opens_at, row.closes_at, row.reminded = opens, closes, ""
        row.remind_at = next_remind(rule, opens, closes, [])
        session.add(row)
    session.flush()


# Why a link does not open a form, in words for the person who followed it.
UNKNOWN, USED, CLOSED, NOT_YET = "unknown", "used", "closed", "not_yet"


@dataclass(frozen=True)
class Link:
    """What a followed link finds: its invitation, or why there is none to answer."""

    invite: ConsultationInvite | None
    problem: str = ""


def follow(session: Session, token: str, now: datetime) -> Link:
    """The invitation behind a link, and whether its form may be answered now."""
    if not token or len(token) > 200:
        return Link(None, UNKNOWN)
    found = session.exec(
        select(ConsultationInvite)
        .join(ConsultationToken, col(ConsultationToken.invite_id) == ConsultationInvite.id)
        .where(ConsultationToken.token_hash == _hash(token))
    ).first()
    if found is None:
        return Link(None, UNKNOWN)
    if found.answered_at is not None:
        return Link(found, USED)
    if found.closes_at <= now:
        return Link(found, CLOSED)
    if found.opens_at > now:
        return Link(found, NOT_YET)
    return Link(found)


def answer(
    session: Session, policy: Policy, token: str, answers: dict[str, str], now: datetime
) -> ConsultationResponse:
    """Record an invitee's answers, once (a second answer, or a lost race, is a Conflict).

    Raises GuardRefused naming each question answered wrongly, Conflict for a
    link that does not open a form now (used, closed, not yet open), NotFound for an unknown one.
    """
    link = follow(session, token, now)
    if link.invite is None:
        raise NotFound("no such invitation")
    if link.problem:
        raise Conflict(link.problem)
    rule = policy.consultation
    assert rule is not None
    clean: dict[str, str] = {}
    problems: list[str] = []
    for q in rule.questions:
        given = (answers.get(q.id) or "").strip()
        if not given:
            if q.required:
                problems.append(Reason(f"Answer '{q.text}'", field=q.id))
            continue
        if q.kind == "rating" and given not in {str(n) for n in RATINGS}:
            problems.append(Reason(f"Choose a rating from 1 to 5 for '{q.text}'", field=q.id))
        elif len(given) > TEXT_LIMIT:
            problems.append(Reason(f"'{q.text}': at most {TEXT_LIMIT} characters", field=q.id))
        clean[q.id] = given
    if problems:
        raise GuardRefused(f"{len(problems)} answer(s) to check", list(problems))
    invite_row = link.invite
    taken = session.execute(
        update(ConsultationInvite)
        .where(
            col(ConsultationInvite.id) == invite_row.id,
            col(ConsultationInvite.answered_at).is_(None),
        )
        .values(answered_at=now, remind_at=None)
        .execution_options(synchronize_session=False)
    )
    if rows_changed(taken) != 1:
        raise Conflict(USED)
    invite_row.answered_at, invite_row.remind_at = now, None
    assert invite_row.id is not None
    row = ConsultationResponse(
        invite_id=invite_row.id,
        application_id=invite_row.application_id,
        answers=json.dumps(clean, sort_keys=True),
        submitted_at=now,
    )
    session.add(row)
    session.flush()
    return row


def invitations(session: Session, application_id: int) -> list[ConsultationInvite]:
    """The application's invitations, in the order they were made."""
    return list(
        session.exec(
            select(ConsultationInvite)
            .where(ConsultationInvite.application_id == application_id)
            .order_by(col(ConsultationInvite.id))
        )
    )


def responses(session: Session, application_id: int) -> list[ConsultationResponse]:
    return list(
        session.exec(
            select(ConsultationResponse)
            .where(ConsultationResponse.application_id == application_id)
            .order_by(col(ConsultationResponse.id))
        )
    )


@dataclass
class QuestionSummary:
    id: str
    text: str
    kind: str
    count: int = 0
    mean: float | None = None
    words: list[str] = field(default_factory=list)


@dataclass
class Summary:
    """What staff read of an application's consultation."""

    invited: int
    answered: int
    by_group: dict[str, tuple[int, int]]
    questions: list[QuestionSummary]
    standards: list[str]
    opens_at: datetime | None
    closes_at: datetime | None

    @property
    def mean_rating(self) -> float | None:
        """The mean of every rating given, on 1 to 5 (None before any)."""
        rated = [q for q in self.questions if q.kind == "rating" and q.mean is not None]
        total = sum(q.count for q in rated)
        if not total:
            return None
        return sum((q.mean or 0) * q.count for q in rated) / total


def summary(session: Session, policy: Policy, app: Application) -> Summary | None:
    """The consultation of the application, summed up (None for a level that does not consult)."""
    rule = policy.consultation
    if rule is None or not policy.consulted(app.level):
        return None
    assert app.id is not None
    invites = invitations(session, app.id)
    answers = [r.answer_map for r in responses(session, app.id)]
    groups: dict[str, tuple[int, int]] = {}
    for row in invites:
        asked, done = groups.get(row.group, (0, 0))
        groups[row.group] = (asked + 1, done + (row.answered_at is not None))
    questions = []
    for q in rule.questions:
        given = [a[q.id] for a in answers if a.get(q.id)]
        item = QuestionSummary(q.id, q.text, q.kind, count=len(given))
        if q.kind == "rating" and given:
            item.mean = sum(int(v) for v in given) / len(given)
        elif q.kind == "text":
            item.words = given
        questions.append(item)
    span = window(policy, app)
    return Summary(
        invited=len(invites),
        answered=sum(1 for r in invites if r.answered_at is not None),
        by_group=groups,
        questions=questions,
        # Only the standards this level is assessed on (Gold adds one Silver has not).
        standards=[
            policy.standard(s).name
            for s in rule.standards
            if s in policy.level(app.level).standards
        ],
        opens_at=span[0] if span else None,
        closes_at=span[1] if span else None,
    )


# Built once: every sweep asks for the reminders that have come.
_DUE_REMINDERS = (
    select(ConsultationInvite)
    .where(
        col(ConsultationInvite.remind_at).is_not(None),
        col(ConsultationInvite.remind_at) <= bindparam("now", type_=UtcDateTime()),
    )
    .order_by(col(ConsultationInvite.remind_at), col(ConsultationInvite.id))
    .limit(bindparam("limit"))
)


def due_reminders(session: Session, now: datetime, *, limit: int = 200) -> list[ConsultationInvite]:
    """Unanswered invitations whose next reminder has come, through the reminder index."""
    return list(session.exec(_DUE_REMINDERS, params={"now": now, "limit": limit}))


def reminder_due(rule: Consultation, row: ConsultationInvite, now: datetime) -> int | None:
    """The reminder to send now (days before the close) and record it handled, with every
    earlier one missed; None when the form has closed or been answered (nothing is sent)."""
    come = [d for d in rule.remind_before_days if row.closes_at - timedelta(days=d) <= now]
    handled = row.reminded_days
    fresh = [d for d in come if not handled or d < min(handled)]
    late = row.answered_at is not None or row.closes_at <= now
    if fresh:
        row.reminded = ",".join(str(d) for d in sorted({*handled, *fresh}, reverse=True))
    row.remind_at = (
        None if late else next_remind(rule, row.opens_at, row.closes_at, row.reminded_days)
    )
    session_note = min(fresh) if fresh and not late else None
    return session_note


def counts(session: Session) -> dict[str, int]:
    """Invitations made and answered, everywhere (the simulation's report)."""
    invited = session.exec(select(func.count()).select_from(ConsultationInvite)).one()
    answered = session.exec(
        select(func.count())
        .select_from(ConsultationInvite)
        .where(col(ConsultationInvite.answered_at).is_not(None))
    ).one()
    return {"invited": int(invited), "answered": int(answered)}


def application_of(session: Session, row: ConsultationInvite) -> Application:
    """The application an invitation is about."""
    app = session.get(Application, row.application_id)
    if app is None:
        raise NotFound("no such invitation")
    return app
