"""Named guards that policies reference. Each returns every reason it is unmet (empty list = met)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, select

from svqm.errors import Reason
from svqm.evidence import marking
from svqm.evidence import pledges as pledge_service
from svqm.evidence import requirements as evidence_requirements
from svqm.evidence import service as evidence_service
from svqm.evidence.models import Pledge
from svqm.policy import Policy, parse_policy
from svqm.workflow import deadlines, eligibility, invoices
from svqm.workflow.deadlines import add_months
from svqm.workflow.effects import members_covered
from svqm.workflow.models import Application, AuditEvent, Award, PolicySnapshot, Subject

_UK = ZoneInfo("Europe/London")


@dataclass(frozen=True)
class GuardContext:
    session: Session
    policy: Policy
    kind: str
    subject: Subject
    actor_id: int | None
    actor_role: str
    now: datetime
    comment: str
    argument: str = ""
    # Shared by the guards of one evaluation, so what several of them read is read once.
    cache: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Guard:
    check: Callable[[GuardContext], list[str]]
    # What the guard's `name:argument` refers to ("deadline"), or None if it takes none.
    argument: str | None = None
    # What the person firing the trigger gives to meet it ("comment"), if anything: screens ask
    # for it with the step instead of listing it as unmet beforehand.
    asks: str | None = None
    # Whether what it refuses is the person, not the subject's readiness (fresh eyes on an
    # appeal): whoever it refuses on every step open to them is told so instead of offered them.
    bars: bool = False


GUARDS: dict[str, Guard] = {}


def guard(
    name: str, argument: str | None = None, asks: str | None = None, *, bars: bool = False
) -> Callable[[Callable[[GuardContext], list[str]]], Callable[[GuardContext], list[str]]]:
    def register(fn: Callable[[GuardContext], list[str]]) -> Callable[[GuardContext], list[str]]:
        GUARDS[name] = Guard(fn, argument, asks, bars)
        return fn

    return register


def _asks(ref: str) -> str | None:
    return GUARDS[ref.partition(":")[0]].asks


def checked_before(refs: list[str]) -> list[str]:
    """The guards that must hold before the step is taken (not those met by what is given then)."""
    return [ref for ref in refs if _asks(ref) is None]


def barring(refs: list[str]) -> list[str]:
    """The guards among `refs` that bar a person rather than wait on the subject."""
    return [ref for ref in refs if GUARDS[ref.partition(":")[0]].bars]


def asks_for(refs: list[str], what: str) -> bool:
    """Whether the step's guards ask the person for this ("comment") when they take it."""
    return any(_asks(ref) == what for ref in refs)


def evaluate(ctx: GuardContext, refs: list[str]) -> list[str]:
    """Every unmet reason of the guards named in `refs` (`name` or `name:argument`)."""
    unmet: list[str] = []
    for ref in refs:
        name, _, argument = ref.partition(":")
        unmet.extend(GUARDS[name].check(_with_argument(ctx, argument)))
    return unmet


def _id(ctx: GuardContext) -> int:
    """The subject's id (guards run on saved rows, except `prerequisite_held` on a new one)."""
    assert ctx.subject.id is not None
    return ctx.subject.id


def _with_argument(ctx: GuardContext, argument: str) -> GuardContext:
    from dataclasses import replace

    # The same context when the argument is the same (most guards take none): it is frozen.
    return ctx if argument == ctx.argument else replace(ctx, argument=argument)


@guard("has_comment", asks="comment")
def has_comment(ctx: GuardContext) -> list[str]:
    """A comment explaining the decision is given."""
    if ctx.comment.strip():
        return []
    return [Reason("a comment explaining this step is required", field="comment")]


@guard("independent_of_decision", bars=True)
def independent_of_decision(ctx: GuardContext) -> list[str]:
    """The person deciding took no earlier step on the subject (an appeal by fresh eyes)."""
    if ctx.actor_id is None:
        return []
    of_subject = (AuditEvent.subject_kind == ctx.kind, AuditEvent.subject_id == _id(ctx))
    # Steps before the subject entered its present state (the decision, then the appeal).
    entered = ctx.session.exec(
        select(func.max(AuditEvent.seq)).where(
            *of_subject,
            AuditEvent.dest == ctx.subject.state,
            AuditEvent.source != AuditEvent.dest,
        )
    ).one()
    took_part = ctx.session.exec(
        select(AuditEvent.id).where(
            *of_subject,
            AuditEvent.seq < (entered if entered is not None else 1 << 30),
            AuditEvent.actor_id == ctx.actor_id,
            AuditEvent.actor_role != "applicant",
        )
    ).first()
    if took_part is None:
        return []
    return ["you took part in the decision under appeal: a member who did not must decide this"]


@guard("eligibility_met")
def eligibility_met(ctx: GuardContext) -> list[str]:
    """The eligibility questions are answered, no industry named is one the scheme does not
    accredit, and an admin has approved any case-by-case one."""
    return eligibility.unmet(ctx.session, ctx.policy, _id(ctx))


# Who may confirm an audit date (the policy's `audit.confirmed_by`), as a sentence names them.
_CONFIRMER = {"assessor": "the assessor", "admin": "an admin"}


@guard("audit_date_confirmed")
def audit_date_confirmed(ctx: GuardContext) -> list[str]:
    """An audited level's start date is confirmed: the review is the audit, and dates can be
    confirmed only before it starts (the `audit` rule's states)."""
    if not isinstance(ctx.subject, Application) or not ctx.policy.audited(ctx.subject.level):
        return []
    if ctx.subject.audit_starts_at is not None:
        return []
    assert ctx.policy.audit is not None
    who = " or ".join(_CONFIRMER[r] for r in ctx.policy.audit.confirmed_by)
    return [
        "the audit start date is not confirmed yet (the applicant proposes dates, then "
        f"{who} confirms one)"
    ]


@guard("invoice_paid")
def invoice_paid(ctx: GuardContext) -> list[str]:
    """Every invoice of the application is paid (or credited): payment before review."""
    return [f"invoice {i.number} unpaid" for i in invoices.unpaid(ctx.session, _id(ctx))]


@guard("pledge_rule_met")
def pledge_rule_met(ctx: GuardContext) -> list[str]:
    """The application's pledges meet its level's pledge rule."""
    level = ctx.policy.level(ctx.subject.level)
    pledges = _pledges(ctx)
    carried = pledge_service.carried_count(ctx.session, _id(ctx))
    return pledge_service.pledge_rule_unmet(pledges, level.pledge_rule, ctx.policy, carried=carried)


@guard("prerequisite_held")
def prerequisite_held(ctx: GuardContext) -> list[str]:
    """The organisation holds the award the level requires, for long enough."""
    level = ctx.policy.level(ctx.subject.level)
    need = level.requires
    if need is None:
        return []
    required = ctx.policy.level(need.level)
    in_force = {s.name for s in ctx.policy.workflows.award.states if s.in_force}
    awards = ctx.session.exec(
        select(Award).where(
            Award.organisation_id == ctx.subject.organisation_id,
            Award.scheme == ctx.policy.id,
        )
    ).all()
    ranks = {lv.id: lv.rank for lv in ctx.policy.levels}
    for award in awards:
        if award.state not in in_force or ranks.get(award.level, 0) < required.rank:
            continue
        if (
            ranks[award.level] > required.rank
            or add_months(award.issued_at, need.held_months) <= ctx.now
        ):
            return []
    for eq in need.equivalents:
        if _holds_other(ctx, eq.scheme, eq.level, eq.held_months):
            return []
    held = f" held for at least {need.held_months} months" if need.held_months else ""
    return [f"{level.name} needs a {required.name} award in force{held}"]


def _holds_other(ctx: GuardContext, scheme: str, level: str, held_months: int) -> bool:
    """The organisation holds an in-force award of another scheme's level, long enough.

    In force by the state names of the award's own scheme version, read from its snapshot.
    """
    rows = ctx.session.exec(
        select(Award, PolicySnapshot.source_text)
        .join(PolicySnapshot, PolicySnapshot.digest == Award.policy_digest)  # type: ignore[arg-type]
        .where(
            Award.organisation_id == ctx.subject.organisation_id,
            Award.scheme == scheme,
            Award.level == level,
        )
    ).all()
    for award, text in rows:
        key = f"in_force:{award.policy_digest}"
        if key not in ctx.cache:
            other = parse_policy(text, source=f"{scheme}.yaml", scheme_id=scheme)
            ctx.cache[key] = {s.name for s in other.workflows.award.states if s.in_force}
        if award.state in ctx.cache[key] and add_months(award.issued_at, held_months) <= ctx.now:
            return True
    return False


def _uk_day(moment: datetime) -> str:
    """'Friday 8 January 2027': a deadline is a day, in Europe/London, as every page shows it."""
    local = moment.astimezone(_UK)
    return f"{local:%A} {local.day} {local:%B %Y}"


def _due(ctx: GuardContext) -> datetime:
    d = deadlines.deadline(ctx.policy, ctx.argument)
    return deadlines.due_at(ctx.policy, d, deadlines.anchor_time(d, ctx.subject))


@guard("before_deadline", argument="deadline")
def before_deadline(ctx: GuardContext) -> list[str]:
    """The named deadline has not passed yet."""
    due = _due(ctx)
    label = deadlines.deadline(ctx.policy, ctx.argument).label
    return [] if ctx.now < due else [f"{label} passed on {_uk_day(due)}"]


@guard("after_deadline", argument="deadline")
def after_deadline(ctx: GuardContext) -> list[str]:
    """The named deadline has passed."""
    due = _due(ctx)
    label = deadlines.deadline(ctx.policy, ctx.argument).label
    return [] if ctx.now >= due else [f"{label} is not until {_uk_day(due)}"]


def _slots(ctx: GuardContext) -> list[evidence_requirements.Slot]:
    if "slots" not in ctx.cache:
        ctx.cache["slots"] = _checklist(ctx)
    slots: list[evidence_requirements.Slot] = ctx.cache["slots"]
    return slots


def _pledges(ctx: GuardContext) -> list[Pledge]:
    """The application's pledges, read once for the pledge rule and the checklist."""
    if "pledges" not in ctx.cache:
        ctx.cache["pledges"] = pledge_service.list_pledges(ctx.session, _id(ctx))
    pledges: list[Pledge] = ctx.cache["pledges"]
    return pledges


def _checklist(ctx: GuardContext) -> list[evidence_requirements.Slot]:
    return evidence_requirements.checklist(
        ctx.session,
        application_id=_id(ctx),
        policy=ctx.policy,
        level=ctx.policy.level(ctx.subject.level),
        members=members_covered(ctx.session, _id(ctx)),
        pledges=_pledges(ctx),
    )


@guard("required_evidence_present")
def required_evidence_present(ctx: GuardContext) -> list[str]:
    """Every evidence slot of the level has at least one upload."""
    return evidence_requirements.missing(_slots(ctx))


@guard("all_evidence_accepted")
def all_evidence_accepted(ctx: GuardContext) -> list[str]:
    """The latest version in every slot has been accepted by the assessor."""
    return evidence_requirements.not_accepted(_slots(ctx))


def _marking_unmet(ctx: GuardContext) -> list[str]:
    """At a double-marked level, what stands between the two assessors' scores and agreement."""
    level = ctx.policy.level(ctx.subject.level)
    if level.assessors < 2 or not isinstance(ctx.subject, Application):
        return []
    return marking.marking(
        ctx.session,
        application_id=_id(ctx),
        policy=ctx.policy,
        level=level,
        first_id=ctx.subject.assessor_id,
        second_id=ctx.subject.second_assessor_id,
    ).reasons()


@guard("scores_agreed")
def scores_agreed(ctx: GuardContext) -> list[str]:
    """Double marking: both assessors have scored every question and each has its agreed score."""
    return _marking_unmet(ctx)


@guard("score_passes")
def score_passes(ctx: GuardContext) -> list[str]:
    """Every mandatory question met and the weighted overall score at or above the pass mark
    (at a double-marked level, on the agreed scores, once every question has one)."""
    unagreed = _marking_unmet(ctx)
    if unagreed:
        return unagreed
    result = evidence_service.score_result(
        ctx.session,
        application_id=_id(ctx),
        policy=ctx.policy,
        level=ctx.policy.level(ctx.subject.level),
    )
    return result.reasons()
