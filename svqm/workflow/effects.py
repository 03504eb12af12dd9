"""Named effects that a transition runs in the same transaction as its state change.

Effects write rows (an award, an assignment); they never send anything. Each returns a note
that goes into the transition's audit comment.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from svqm.accounts.models import ConflictOfInterest, User
from svqm.db import table_of
from svqm.evidence.models import HELD, ApplicationPledge, Pledge
from svqm.policy import Policy
from svqm.workflow import invoices, schedule
from svqm.workflow.deadlines import add_months
from svqm.workflow.models import Application, ApplicationMember, Award, Subject


@dataclass(frozen=True)
class EffectContext:
    session: Session
    policy: Policy
    subject: Subject
    now: datetime
    # Fires a system transition on another subject (kept as a callable to avoid an import cycle).
    fire_system: Callable[[Subject, str, str], None]


EFFECTS: dict[str, Callable[[EffectContext], str]] = {}


def effect(name: str) -> Callable[[Callable[[EffectContext], str]], Callable[[EffectContext], str]]:
    def register(fn: Callable[[EffectContext], str]) -> Callable[[EffectContext], str]:
        EFFECTS[name] = fn
        return fn

    return register


# Built once, on the Core table: every upload, step and notice asks which organisations an
# application covers (one plain column: the ORM's execution cost more than the database).
_MEMBERS_TABLE = table_of(ApplicationMember)
_MEMBERS_COVERED = (
    sa_select(_MEMBERS_TABLE.c.organisation_id)
    .where(_MEMBERS_TABLE.c.application_id == bindparam("application_id"))
    .order_by(_MEMBERS_TABLE.c.organisation_id)
)


def members_covered(session: Session, application_id: int) -> list[int]:
    """The organisations a group's application covers ([] for an organisation's own)."""
    session.flush()  # pending changes first, as the ORM's autoflush would
    found = session.connection().execute(_MEMBERS_COVERED, {"application_id": application_id})
    return list(found.scalars())


@effect("issue_invoice")
def issue_invoice(ctx: EffectContext) -> str:
    """Invoice the fee of the policy's price table: a submitted application's (a
    re-application's share), or an award's renewal."""
    subject = ctx.subject
    assert isinstance(subject, Application | Award)
    return invoices.issue_for(ctx.session, ctx.policy, subject, ctx.now)


@effect("credit_invoices")
def credit_invoices(ctx: EffectContext) -> str:
    """A credit note for every invoice of a withdrawn application not credited yet."""
    assert isinstance(ctx.subject, Application)
    return invoices.credit_for(ctx.session, ctx.policy, ctx.subject, ctx.now)


@effect("issue_award")
def issue_award(ctx: EffectContext) -> str:
    """Create the award for an awarded application (one for each organisation a group's
    application covers); each supersedes the awards of its holder it renews or upgrades."""
    app = ctx.subject
    assert isinstance(app, Application)
    assert app.id is not None
    holders = members_covered(ctx.session, app.id) or [app.organisation_id]
    issued = [_award_for(ctx, app, holder) for holder in holders]
    return "; ".join(f"award {a.id} issued ({a.certificate_number})" for a in issued)


def _member_record(ctx: EffectContext, app: Application, member: int) -> Application:
    """The member's own record of the group's application, in the same (awarded) state,
    holding the pledges its award carries: the group's shared ones and the member's own (those
    of other members stay theirs)."""
    record = Application(
        organisation_id=member,
        scheme=app.scheme,
        scheme_version=app.scheme_version,
        policy_digest=app.policy_digest,
        level=app.level,
        state=app.state,
        group_application_id=app.id,
        created_by_id=app.created_by_id,
        created_at=ctx.now,
        state_changed_at=ctx.now,
    )
    ctx.session.add(record)
    ctx.session.flush()
    held = ctx.session.exec(
        select(ApplicationPledge)
        .join(Pledge, col(Pledge.id) == col(ApplicationPledge.pledge_id))
        .where(
            ApplicationPledge.application_id == app.id,
            col(ApplicationPledge.disposition).in_(HELD),
            col(Pledge.organisation_id).in_((app.organisation_id, member)),
        )
        .order_by(col(ApplicationPledge.pledge_id))
    ).all()
    ctx.session.add_all(
        ApplicationPledge(
            application_id=record.id or 0, pledge_id=link.pledge_id, disposition=link.disposition
        )
        for link in held
    )
    ctx.session.flush()
    return record


# Built once: each award issued reads the awards it supersedes.
_SUPERSEDED = (
    select(Award)
    .where(
        col(Award.organisation_id) == bindparam("holder"),
        col(Award.scheme) == bindparam("scheme"),
        col(Award.state).in_(bindparam("states", expanding=True)),
    )
    .order_by(col(Award.id))
)


def _award_for(ctx: EffectContext, app: Application, holder: int) -> Award:
    level = ctx.policy.level(app.level)
    if holder != app.organisation_id:
        app = _member_record(ctx, app, holder)
    # Every award that the policy's `supersede` trigger can leave (those in force, and expired
    # ones still restorable) is superseded; the cross-checks guarantee it is the system's.
    supersede = ctx.policy.workflows.award.supersede
    assert supersede is not None
    renewable = ctx.policy.workflows.award.leaves(supersede)
    which = {"holder": holder, "scheme": app.scheme, "states": sorted(renewable)}
    superseded = ctx.session.exec(_SUPERSEDED, params=which).all()
    award = Award(
        organisation_id=holder,
        application_id=app.id or 0,
        scheme=app.scheme,
        scheme_version=app.scheme_version,
        policy_digest=app.policy_digest,
        level=app.level,
        state=ctx.policy.workflows.award.initial,
        certificate_number=f"{app.scheme.upper()}-{ctx.now:%Y}-{secrets.token_hex(4).upper()}",
        issued_at=ctx.now,
        expires_at=add_months(ctx.now, level.validity_months),
        supersedes_id=superseded[-1].id if superseded else None,
        state_changed_at=ctx.now,
    )
    ctx.session.add(award)
    ctx.session.flush()
    schedule.sync(ctx.session, ctx.policy, award, ctx.now)
    for old in superseded:
        ctx.fire_system(old, supersede, f"superseded by award {award.id}")
    return award


@effect("extend_validity")
def extend_validity(ctx: EffectContext) -> str:
    """A restored award's expiry moves on by whole validity periods from the old one.

    As ISO/IEC 17021-1 restores a certificate: the new expiry is based on the prior cycle, not on
    the day of the decision.
    """
    award = ctx.subject
    assert isinstance(award, Award)
    months = ctx.policy.level(award.level).validity_months
    expires = award.expires_at
    while expires <= ctx.now:
        expires = add_months(expires, months)
    award.expires_at = expires
    ctx.session.add(award)
    ctx.session.flush()
    return f"valid until {expires:%Y-%m-%d}"


def open_workload(session: Session, policy: Policy) -> dict[int, int]:
    """Open applications per assessor (those not in a terminal state)."""
    terminal = [s.name for s in policy.workflows.application.states if s.terminal]
    rows = session.exec(_WORKLOAD, params={"terminal": terminal}).all()
    return {int(aid): int(n) for aid, n in rows if aid is not None}


# Built once: every submission assigns the least-loaded assessor free of conflicts.
_WORKLOAD = (
    select(Application.assessor_id, func.count())
    .where(
        col(Application.assessor_id).is_not(None),
        col(Application.state).not_in(bindparam("terminal", expanding=True)),
    )
    .group_by(col(Application.assessor_id))
)
_ELIGIBLE_ASSESSORS = (
    select(User)
    .where(
        User.role == "assessor",
        col(User.active).is_(True),
        (col(User.organisation_id).is_(None))
        | (col(User.organisation_id) != bindparam("organisation_id")),
        col(User.id).not_in(
            select(ConflictOfInterest.user_id).where(
                col(ConflictOfInterest.organisation_id) == bindparam("organisation_id")
            )
        ),
    )
    .order_by(col(User.id))
)


def eligible_assessors(session: Session, organisation_id: int) -> list[User]:
    """Active assessors with no conflict: not a member, no declared conflict of interest."""
    return list(session.exec(_ELIGIBLE_ASSESSORS, params={"organisation_id": organisation_id}))


@effect("assign_assessor")
def assign_assessor(ctx: EffectContext) -> str:
    """Assign the least-loaded assessor with no conflict, if none is assigned yet; at a
    double-marked level, a second one as well (a different person)."""
    app = ctx.subject
    assert isinstance(app, Application)
    notes = []
    double = ctx.policy.level(app.level).assessors > 1
    candidates = eligible_assessors(ctx.session, app.organisation_id)
    load = open_workload(ctx.session, ctx.policy) if candidates else {}

    def least_loaded(exclude: int | None) -> User | None:
        free = [u for u in candidates if u.id != exclude]
        if not free:
            return None
        return min(free, key=lambda u: (load.get(u.id or 0, 0), u.id))

    if app.assessor_id is not None:
        kept = ctx.session.get(User, app.assessor_id)
        notes.append(f"{kept.name or kept.email if kept else 'The assessor'} stays the assessor")
    elif (first := least_loaded(app.second_assessor_id)) is None:
        notes.append("no assessor available: an admin must assign one")
    else:
        app.assessor_id = first.id
        notes.append(f"Assigned to {first.name or first.email} for assessment")
    if double and app.second_assessor_id is None:
        second = least_loaded(app.assessor_id)
        if second is None:
            notes.append("no second assessor available: an admin must assign one")
        else:
            app.second_assessor_id = second.id
            notes.append(f"{second.name or second.email} is the second assessor")
    ctx.session.add(app)
    ctx.session.flush()
    return "; ".join(notes)
