"""The only writer of a subject's state: fire a trigger, open an application, assign an assessor."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Update, bindparam, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from svqm.accounts import service as accounts
from svqm.accounts.models import Organisation, User
from svqm.db import rows_changed, table_of
from svqm.errors import (
    GuardRefused,
    InvalidInput,
    NotFound,
    PermissionDenied,
    StaleVersion,
    TransitionRefused,
)
from svqm.evidence import pledges as pledge_service
from svqm.evidence.carry import carry_forward
from svqm.policy import Policy, TransitionDef
from svqm.workflow import events, schedule, votes
from svqm.workflow import guards as guard_registry
from svqm.workflow.audit import append_event
from svqm.workflow.effects import EFFECTS, EffectContext
from svqm.workflow.machine import SubjectFlow
from svqm.workflow.models import (
    AnnualReport,
    Application,
    ApplicationMember,
    AuditEvent,
    Award,
    Subject,
    kind_of,
)
from svqm.workflow.schemes import Scheme, SchemeRegistry


@dataclass(frozen=True)
class Actor:
    """Who fires a trigger: a user in one role, or the system (the scheduler)."""

    id: int | None
    role: str
    organisation_id: int | None = None

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(user.id, user.role, user.organisation_id)


SYSTEM = Actor(None, "system")
__all__ = ["SYSTEM", "Actor", "Subject", "kind_of"]


def _authorise(actor: Actor, subject: Subject, t: TransitionDef, kind: str) -> None:
    """Role first, then who within the role: own organisation, the assigned assessor, four eyes."""
    if actor.role not in t.roles:
        allowed = ", ".join(t.roles)
        raise PermissionDenied(f"a {actor.role} may not '{t.trigger}' (allowed: {allowed})")
    if actor.role == "applicant" and actor.organisation_id != subject.organisation_id:
        raise NotFound(f"no {kind} {subject.id}")
    assessor_id = subject.assessor_id if isinstance(subject, Application) else None
    # A report is reviewed by any assessor free of conflicts (checked in `fire`), or an admin.
    reviewed = isinstance(subject, AnnualReport)
    if actor.role == "assessor" and assessor_id != actor.id and not reviewed:
        raise PermissionDenied(f"only the assessor assigned to this {kind} may '{t.trigger}'")
    if actor.role == "panel" and (
        actor.id == assessor_id or actor.organisation_id == subject.organisation_id
    ):
        raise PermissionDenied(
            "a panel member who assessed an application, or who belongs to the organisation "
            "that applied, cannot decide it: another panel member must"
        )


def _on_route(scheme: Scheme, subject: Subject, t: TransitionDef) -> bool:
    """Whether the step is one for the subject's level (self-service levels take their own)."""
    if t.self_service is None or not isinstance(subject, Application):
        return True
    return scheme.policy.level(subject.level).self_service == t.self_service


def _context(
    session: Session, scheme: Scheme, subject: Subject, actor: Actor, now: datetime, comment: str
) -> guard_registry.GuardContext:
    return guard_registry.GuardContext(
        session=session,
        policy=scheme.policy,
        kind=kind_of(subject),
        subject=subject,
        actor_id=actor.id,
        actor_role=actor.role,
        now=now,
        comment=comment,
    )


@cache
def _bump_statement(model: type[Subject], state_changed: bool) -> Update:
    """The conditional version bump for a table, built once: it runs in every state change."""
    table = table_of(model)
    values: dict[str, Any] = {"version": bindparam("b_new"), "state": bindparam("b_state")}
    if state_changed:
        values["state_changed_at"] = bindparam("b_now")
    return (
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.version == bindparam("b_version"))
        .values(**values)
    )


def _bump(
    session: Session, subject: Subject, *, state: str, now: datetime, state_changed: bool
) -> int:
    """Conditional write: only if nobody changed the row since we read it (else StaleVersion)."""
    # A Core statement does not autoflush as the ORM's would: pending changes go first.
    session.flush()
    result = session.connection().execute(
        _bump_statement(type(subject), state_changed),
        {
            "b_id": subject.id,
            "b_version": subject.version,
            "b_new": subject.version + 1,
            "b_state": state,
            "b_now": now,
        },
    )
    if rows_changed(result) != 1:
        raise StaleVersion(
            f"{kind_of(subject)} {subject.id} was changed by someone else; reload it and try again"
        )
    set_committed_value(subject, "version", subject.version + 1)
    set_committed_value(subject, "state", state)
    if state_changed:
        set_committed_value(subject, "state_changed_at", now)
    return subject.version


def fire(
    session: Session,
    subject: Subject,
    trigger: str,
    *,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
    comment: str = "",
    expected_version: int | None = None,
    visibility: str = "applicant",
) -> AuditEvent:
    """Fire `trigger` on a subject as `actor`, in the caller's transaction.

    `visibility` says who may read the comment: "applicant" (everyone on the case) or
    "internal" (staff only; an applicant's own comment is always the applicant's).

    Checks the version, that the trigger leaves the current state, the actor's role and
    standing, and every guard; then moves the state through the scheme's shared machine, bumps
    the version with a conditional update, runs the transition's effects and appends one audit
    event. Nothing is committed here.

    Raises:
        StaleVersion: `expected_version` (or the row as read) is no longer current.
        TransitionRefused: the trigger does not leave the current state.
        PermissionDenied / NotFound: the actor may not fire it on this subject.
        GuardRefused: with every unmet reason.
    """
    if visibility not in ("applicant", "internal"):
        raise InvalidInput("a comment is for the 'applicant' or 'internal' to staff")
    kind = kind_of(subject)
    scheme = registry.for_subject(session, subject)
    flow = scheme.flows[kind]
    roles = flow.roles_for(trigger)
    if not roles:
        raise TransitionRefused(f"the {kind} workflow has no trigger '{trigger}'")
    # A role that may never fire this trigger is refused before anything about the subject.
    if actor.role not in roles:
        raise PermissionDenied(
            f"a {actor.role} may not '{trigger}' (allowed: {', '.join(sorted(roles))})"
        )
    if expected_version is not None and expected_version != subject.version:
        raise StaleVersion(
            f"{kind} {subject.id} is at version {subject.version}, not "
            f"{expected_version}; reload it and try again"
        )
    t = flow.transition(trigger, subject.state)
    if t is None:
        allowed = ", ".join(flow.triggers_from(subject.state)) or "none"
        raise TransitionRefused(
            f"'{trigger}' is not allowed while the {kind} is "
            f"'{subject.state}' (allowed now: {allowed})"
        )
    if not _on_route(scheme, subject, t):
        raise TransitionRefused(
            f"'{trigger}' is not a step for {scheme.policy.level(subject.level).name} applications"
        )
    _authorise(actor, subject, t, kind)
    if actor.role in ("assessor", "panel") and accounts.conflicted(
        session, actor.id, subject.organisation_id
    ):
        raise PermissionDenied("conflict of interest: you may not act on this organisation's case")
    unmet = guard_registry.evaluate(
        _context(session, scheme, subject, actor, now, comment), t.guards
    )
    if unmet:
        raise GuardRefused(f"cannot '{trigger}' yet: {len(unmet)} requirement(s) unmet", unmet)
    agreeing = 0
    if t.quorum > 1 and actor.id is not None:
        agreeing = votes.record(session, subject, t, member_id=actor.id, comment=comment, now=now)
        if agreeing < t.quorum:
            recorded = _record_decision(
                session, subject, t, actor, comment, agreeing, now, visibility
            )
            # The members still to decide are told their decision is needed for the quorum.
            events.publish(
                session,
                events.Notice(
                    kind=kind,
                    subject=subject,
                    event=recorded,
                    policy=scheme.policy,
                    roles=tuple(r for r in t.roles if r != "system"),
                    now=now,
                    comment=comment.strip(),
                    transition=t,
                    what="vote_needed",
                    internal=True,
                ),
            )
            return recorded
    source = subject.state
    dest = flow.move(SubjectFlow(source), trigger)
    seq = _bump(session, subject, state=dest, now=now, state_changed=True) - 1
    if isinstance(subject, AnnualReport):
        # What the public pages read: whether the report's figures stand accepted.
        subject.published = flow.workflow.state(dest).published
        session.add(subject)
    notes = [
        EFFECTS[name](
            EffectContext(
                session=session,
                policy=scheme.policy,
                subject=subject,
                now=now,
                fire_system=lambda other, trig, why: _fire_system(
                    session, other, trig, why, registry, now
                ),
            )
        )
        for name in t.effects
    ]
    if agreeing:
        notes.append(f"decided by {agreeing} members agreeing")
    # The deadlines move with the state, in the same transaction.
    schedule.sync(session, scheme.policy, subject, now)
    text = "\n".join([comment.strip(), *notes]).strip()
    assert subject.id is not None
    event = append_event(
        session,
        subject_kind=kind,
        subject_id=subject.id,
        seq=seq,
        at=now,
        actor_id=actor.id,
        actor_role=actor.role,
        trigger=trigger,
        source=source,
        dest=dest,
        comment=text,
        visibility="applicant" if actor.role in ("applicant", "system") else visibility,
    )
    events.publish(
        session,
        events.Notice(
            kind=kind,
            subject=subject,
            event=event,
            policy=scheme.policy,
            roles=tuple(t.notify),
            now=now,
            comment=comment.strip(),
            transition=t,
            internal=event.visibility == "internal",
        ),
    )
    return event


def _record_decision(
    session: Session,
    subject: Subject,
    t: TransitionDef,
    actor: Actor,
    comment: str,
    agreeing: int,
    now: datetime,
    visibility: str,
) -> AuditEvent:
    """One member's decision on a step that needs more of them: audited, the state unchanged
    (so the deadlines running, the panel's 21 days among them, keep their dates)."""
    seq = _bump(session, subject, state=subject.state, now=now, state_changed=False) - 1
    assert subject.id is not None
    return append_event(
        session,
        subject_kind=kind_of(subject),
        subject_id=subject.id,
        seq=seq,
        at=now,
        actor_id=actor.id,
        actor_role=actor.role,
        trigger="record_decision",
        source=subject.state,
        dest=subject.state,
        comment=f"{t.title}: {agreeing} of {t.quorum} members agree so far\n{comment.strip()}".strip(),
        visibility=visibility,
    )


def _fire_system(
    session: Session,
    subject: Subject,
    trigger: str,
    comment: str,
    registry: SchemeRegistry,
    now: datetime,
) -> None:
    fire(session, subject, trigger, actor=SYSTEM, registry=registry, now=now, comment=comment)


def barred(
    session: Session,
    subject: Subject,
    *,
    actor: Actor,
    registry: SchemeRegistry | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Why this person may take no step on the subject at all, in plain words (empty: nothing
    bars them): four eyes and conflicts of interest, the rules `fire` enforces for staff, told
    before any step is offered; with `registry` and `now`, also a guard that bars the person on
    every step open to them now (one who took part in the decision appealed)."""
    if actor.role not in ("assessor", "panel"):
        return []
    reasons = _barred_by_role(session, subject, actor)
    if not reasons and registry is not None and now is not None:
        reasons = _barred_by_guards(session, subject, actor, registry, now)
    return reasons


def _barred_by_guards(
    session: Session, subject: Subject, actor: Actor, registry: SchemeRegistry, now: datetime
) -> list[str]:
    """The reasons of the guards that bar a person, where they refuse every step open to the
    person's role from the present state (none open, or one they do not refuse: nothing)."""
    kind = kind_of(subject)
    scheme = registry.for_subject(session, subject)
    flow = scheme.flows[kind]
    context = _context(session, scheme, subject, actor, now, "")
    found: list[str] = []
    for trigger in flow.triggers_from(subject.state):
        t = flow.transition(trigger, subject.state)
        assert t is not None
        if not _on_route(scheme, subject, t):
            continue
        try:
            _authorise(actor, subject, t, kind)
        except (PermissionDenied, NotFound):
            continue
        why = guard_registry.evaluate(context, guard_registry.barring(t.guards))
        if not why:
            return []
        found += [w for w in why if w not in found]
    return found


def _barred_by_role(session: Session, subject: Subject, actor: Actor) -> list[str]:
    """Four eyes and conflicts of interest, for a member of staff."""
    reasons = []
    if actor.role == "panel":
        assessor_id = subject.assessor_id if isinstance(subject, Application) else None
        if actor.id is not None and actor.id == assessor_id:
            reasons.append(
                "You assessed this application, so another panel member, who did not assess "
                "it, must decide."
            )
        if actor.organisation_id is not None and actor.organisation_id == subject.organisation_id:
            reasons.append(
                "You belong to the organisation that applied, so a panel member from outside "
                "it must decide."
            )
    reasons += accounts.conflict_reasons(session, actor.id, subject.organisation_id)
    return reasons


def available(
    session: Session, subject: Subject, *, actor: Actor, registry: SchemeRegistry, now: datetime
) -> tuple[list[str], dict[str, list[str]]]:
    """Triggers the actor may fire now, and for the others open to them, what a guard would refuse.

    Nothing for a person `barred` from the subject (they are told why instead)."""
    if actor.role in ("assessor", "panel") and accounts.conflicted(
        session, actor.id, subject.organisation_id
    ):
        return [], {}
    kind = kind_of(subject)
    scheme = registry.for_subject(session, subject)
    flow = scheme.flows[kind]
    ready: list[str] = []
    unmet: dict[str, list[str]] = {}
    # One context for every trigger: guards that read the same evidence read it once.
    context = _context(session, scheme, subject, actor, now, "")
    for trigger in flow.triggers_from(subject.state):
        t = flow.transition(trigger, subject.state)
        assert t is not None
        if not _on_route(scheme, subject, t):
            continue
        try:
            _authorise(actor, subject, t, kind)
        except (PermissionDenied, NotFound):
            continue
        # What the person gives when firing (a comment) is asked for then, not fixed first.
        reasons = guard_registry.evaluate(context, guard_registry.checked_before(t.guards))
        if t.quorum > 1 and (decided := votes.mine(session, subject, actor.id)) is not None:
            chose = flow.transition(decided.trigger, subject.state)
            reasons.append(
                f"you have recorded your decision ({chose.title if chose else decided.trigger}); "
                "other members decide next"
            )
        if reasons:
            unmet[trigger] = reasons
        else:
            ready.append(trigger)
    return ready, unmet


def _members_of_group(session: Session, group_id: int, members: Sequence[int]) -> list[int]:
    """The distinct organisations asked for, each one a member of the group (or InvalidInput)."""
    wanted = sorted(set(members))
    if not wanted:
        return []
    found = set(
        session.exec(
            select(Organisation.id).where(
                col(Organisation.id).in_(wanted), Organisation.parent_id == group_id
            )
        )
    )
    strangers = [m for m in wanted if m not in found]
    if strangers:
        raise InvalidInput(
            "a group's application can cover only its own member organisations "
            f"(not {', '.join(map(str, strangers))})",
            field="members",
        )
    return wanted


def open_application_id(
    session: Session, policy: Policy, organisation_id: int, level_id: str
) -> int | None:
    """The organisation's application for the level that is still open, if any: one that blocks
    opening another. A closed application, or a refusal the organisation may apply again from
    at once (its appeal window may still be open), does not."""
    states = policy.workflows.application.states
    closed = [s.name for s in states if s.terminal or s.reapply]
    return session.exec(
        select(Application.id).where(
            Application.organisation_id == organisation_id,
            Application.scheme == policy.id,
            Application.level == level_id,
            col(Application.state).not_in(closed),
        )
    ).first()


def open_application(
    session: Session,
    *,
    organisation_id: int,
    scheme_id: str,
    level: str,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
    members: Sequence[int] = (),
) -> Application:
    """Start an application for a level (by id, name or alias) under the scheme's current policy.

    A group's application may cover `members`, organisations of the group: one application,
    assessed once, and an award for each of them.
    """
    if actor.role != "applicant":
        raise PermissionDenied("applications are opened by the organisation's own applicants")
    if actor.organisation_id != organisation_id:
        raise NotFound(f"no organisation {organisation_id}")
    scheme = registry.get(scheme_id)
    found = scheme.policy.find_level(level)
    if found is None:
        names = ", ".join(
            f"{lv.name} ({', '.join(lv.aliases)})" if lv.aliases else lv.name
            for lv in scheme.policy.levels
        )
        raise InvalidInput(f"'{level}' is not a level of {scheme.policy.name} (levels: {names})")
    states = scheme.policy.workflows.application.states
    existing = open_application_id(session, scheme.policy, organisation_id, found.id)
    if existing is not None:
        raise InvalidInput(
            f"this organisation already has an open {found.name} application "
            f"({existing}); continue that one or withdraw it first"
        )
    registry.record_snapshot(session, scheme)
    app = Application(
        organisation_id=organisation_id,
        scheme=scheme.id,
        scheme_version=scheme.policy.version,
        policy_digest=scheme.policy.digest,
        level=found.id,
        state=scheme.policy.workflows.application.initial,
        created_by_id=actor.id,
        created_at=now,
        state_changed_at=now,
    )
    # Checked on the unsaved row: a refused application leaves nothing behind.
    unmet = guard_registry.evaluate(
        _context(session, scheme, app, actor, now, ""), ["prerequisite_held"]
    )
    if unmet:
        raise GuardRefused(f"cannot apply for {found.name} yet", unmet)
    refused = session.exec(
        select(Application.id)
        .where(
            Application.organisation_id == organisation_id,
            Application.scheme == scheme.id,
            Application.level == found.id,
            col(Application.state).in_([s.name for s in states if s.reapply]),
        )
        .order_by(col(Application.id).desc())
    ).first()
    app.reapplies_id = refused
    covered = _members_of_group(session, organisation_id, members)
    session.add(app)
    session.flush()
    session.add_all(
        ApplicationMember(application_id=app.id or 0, organisation_id=m) for m in covered
    )
    _carry_pledges(session, registry, scheme, app, actor, now)
    if refused is not None:
        assert app.id is not None
        carry_forward(session, from_id=refused, to_id=app.id, by_id=actor.id, now=now)
    schedule.sync(session, scheme.policy, app, now)
    return app


def assign_assessor(
    session: Session,
    application: Application,
    assessor_id: int,
    *,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
    expected_version: int | None = None,
    second: bool = False,
) -> AuditEvent:
    """An admin (re)assigns the application's assessor (or, `second`, the second assessor of a
    double-marked level); audited like any change."""
    if actor.role != "admin":
        raise PermissionDenied("only an admin may assign assessors")
    if expected_version is not None and expected_version != application.version:
        raise StaleVersion("the application changed since you read it")
    assessor = session.get(User, assessor_id)
    if assessor is None or assessor.role != "assessor" or not assessor.active:
        raise InvalidInput("the person chosen is not an active assessor")
    if accounts.conflicted(session, assessor.id, application.organisation_id):
        raise InvalidInput(
            "conflict of interest: the assessor belongs to, or has declared a conflict with, "
            "the applicant organisation"
        )
    level = registry.for_subject(session, application).policy.level(application.level)
    other = application.assessor_id if second else application.second_assessor_id
    if second and level.assessors < 2:
        raise InvalidInput(f"{level.name} is scored by one assessor: there is no second to assign")
    if other is not None and other == assessor.id:
        raise InvalidInput("the two assessors of an application must be different people")
    seq = _bump(session, application, state=application.state, now=now, state_changed=False) - 1
    if second:
        application.second_assessor_id = assessor.id
    else:
        application.assessor_id = assessor.id
    session.add(application)
    session.flush()
    event = _same_state_event(
        session,
        application,
        seq,
        actor,
        "assign_assessor",
        f"{assessor.name or assessor.email} is the second assessor"
        if second
        else f"Assigned to {assessor.name or assessor.email} for assessment",
        now,
    )
    policy = registry.for_subject(session, application).policy
    events.publish(
        session,
        events.Notice(
            kind="application",
            subject=application,
            event=event,
            policy=policy,
            roles=tuple(policy.workflows.application.notify_on_assign),
            now=now,
            what="second_assignment" if second else "assignment",
        ),
    )
    return event


def _same_state_event(
    session: Session,
    application: Application,
    seq: int,
    actor: Actor,
    trigger: str,
    comment: str,
    now: datetime,
) -> AuditEvent:
    """The audit event of a step that leaves the application in its state (assign, remind)."""
    assert application.id is not None
    return append_event(
        session,
        subject_kind="application",
        subject_id=application.id,
        seq=seq,
        at=now,
        actor_id=actor.id,
        actor_role=actor.role,
        trigger=trigger,
        source=application.state,
        dest=application.state,
        comment=comment,
    )


def send_reminder(
    session: Session,
    application: Application,
    *,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
    comment: str = "",
    expected_version: int | None = None,
) -> AuditEvent:
    """An admin reminds the organisation of an open application (what is asked of it, and its
    running deadlines); audited, and emailed in the same transaction."""
    if actor.role != "admin":
        raise PermissionDenied("only an admin may send reminders")
    if expected_version is not None and expected_version != application.version:
        raise StaleVersion("the application changed since you read it")
    policy = registry.for_subject(session, application).policy
    state = policy.workflows.application.state(application.state)
    if state.terminal:
        raise InvalidInput(
            f"the application is finished ({state.title}): there is nothing to remind"
        )
    seq = _bump(session, application, state=application.state, now=now, state_changed=False) - 1
    event = _same_state_event(
        session, application, seq, actor, "send_reminder", comment or "reminder sent", now
    )
    events.publish(
        session,
        events.Notice(
            kind="application",
            subject=application,
            event=event,
            policy=policy,
            roles=("applicant",),
            now=now,
            comment=comment,
            what="reminder",
        ),
    )
    return event


def record_change(
    session: Session,
    subject: Subject,
    what: str,
    *,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
    comment: str,
    visibility: str = "applicant",
) -> AuditEvent:
    """Audit a change to a subject's content that leaves its state alone (a pledge revised).

    The version moves on, so a step decided on the content as it was read is a stale write.
    """
    registry.for_subject(session, subject)
    seq = _bump(session, subject, state=subject.state, now=now, state_changed=False) - 1
    assert subject.id is not None
    return append_event(
        session,
        subject_kind=kind_of(subject),
        subject_id=subject.id,
        seq=seq,
        at=now,
        actor_id=actor.id,
        actor_role=actor.role,
        trigger=what,
        source=subject.state,
        dest=subject.state,
        comment=comment,
        visibility=visibility,
    )


def _carry_pledges(
    session: Session,
    registry: SchemeRegistry,
    scheme: Scheme,
    app: Application,
    actor: Actor,
    now: datetime,
) -> None:
    """Bring the pledges of the organisation's awards in force into `app`: its awards in the
    scheme, and those of other schemes' levels that count as its prerequisite."""
    policy = scheme.policy
    level = policy.level(app.level)
    if not level.carry_pledges:
        return
    sources: list[tuple[str, str | None, Policy]] = [(scheme.id, None, policy)]
    if level.requires is not None:
        sources += [
            (eq.scheme, eq.level, registry.get(eq.scheme).policy)
            for eq in level.requires.equivalents
            if eq.scheme in registry.current
        ]
    holders: list[int] = []
    for scheme_id, level_id, source in sources:
        in_force = [s.name for s in source.workflows.award.states if s.in_force]
        query = select(Award.application_id).where(
            Award.organisation_id == app.organisation_id,
            Award.scheme == scheme_id,
            col(Award.state).in_(in_force),
        )
        if level_id is not None:
            query = query.where(Award.level == level_id)
        holders += session.exec(query).all()
    assert app.id is not None
    pledge_service.carry(
        session,
        application_id=app.id,
        pledges=pledge_service.held_by(session, holders),
        actor_id=actor.id,
        now=now,
    )


# Built once, with bind parameters (every case page and the history pages read it).
_HISTORY = (
    select(AuditEvent)
    .where(
        col(AuditEvent.subject_kind) == bindparam("subject_kind"),
        col(AuditEvent.subject_id) == bindparam("subject_id"),
    )
    .order_by(col(AuditEvent.seq))
)


def history(session: Session, subject: Subject) -> list[AuditEvent]:
    """The subject's audit events, oldest first."""
    params = {"subject_kind": kind_of(subject), "subject_id": subject.id}
    return list(session.exec(_HISTORY, params=params))


def offered_for_rows(
    session: Session, rows: Iterable[tuple[int, str, str]], *, role: str, registry: SchemeRegistry
) -> Iterator[tuple[int, SubjectFlow, tuple[str, ...]]]:
    """Bind (id, state, policy_digest) application rows and list the triggers `role` may fire.

    For queues and lists: no guards run, so this is what the role could do, not what is ready.
    """
    flows: dict[str, Any] = {}
    for subject_id, state, digest in rows:
        flow = flows.get(digest)
        if flow is None:
            stub = Application(
                organisation_id=0,
                scheme="",
                scheme_version="",
                level="",
                state=state,
                policy_digest=digest,
            )
            flow = flows[digest] = registry.for_subject(session, stub).flows["application"]
        yield subject_id, SubjectFlow(state), flow.offered(state, role)
