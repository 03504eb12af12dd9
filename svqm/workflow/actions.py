"""What applicants and assessors do to an application's content, checked against role and state.

Pledges and uploads are the applicant's while the state is `editable`; reviews and scores are the
assigned assessor's while it is `reviewable` (both flags come from the policy).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import BinaryIO

from sqlmodel import Session

from svqm.accounts import service as accounts
from svqm.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from svqm.evidence import marking
from svqm.evidence import pledges as pledge_service
from svqm.evidence import service as evidence_service
from svqm.evidence.models import (
    HELD,
    ApplicationPledge,
    EvidenceItem,
    ModerationCreate,
    Pledge,
    PledgeCreate,
    PledgeUpdate,
    Review,
    ReviewCreate,
    Score,
    ScoreChange,
    ScoreCreate,
)
from svqm.evidence.storage import BlobStore
from svqm.policy import Policy
from svqm.workflow.effects import members_covered
from svqm.workflow.models import Application
from svqm.workflow.schemes import Scheme, SchemeRegistry
from svqm.workflow.service import SYSTEM, Actor, record_change


def _as_applicant(actor: Actor, app: Application, scheme: Scheme, what: str) -> None:
    if actor.role != "applicant" or actor.organisation_id != app.organisation_id:
        if actor.role == "applicant":
            raise NotFound(f"no application {app.id}")
        raise PermissionDenied(f"only the applicant organisation may {what}")
    state = scheme.policy.workflows.application.state(app.state)
    if not state.editable:
        editable = [s.title for s in scheme.policy.workflows.application.states if s.editable]
        raise Conflict(
            f"you can {what} only while the application is "
            f"{' or '.join(editable)} (it is {state.title})"
        )


def _as_assessor(actor: Actor, app: Application, scheme: Scheme, what: str) -> None:
    if actor.role != "assessor" or actor.id != app.assessor_id:
        raise PermissionDenied(f"only the assessor assigned to this application may {what}")
    state = scheme.policy.workflows.application.state(app.state)
    if not state.reviewable:
        raise Conflict(
            f"you can {what} only while the application is under review (it is {state.title})"
        )


def add_pledge(
    session: Session,
    app: Application,
    data: PledgeCreate,
    *,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
) -> Pledge:
    """The applicant adds a pledge to its application: its own, or on a group's application
    either shared by every member or (`data.organisation_id`) one member's own."""
    scheme = registry.for_subject(session, app)
    _as_applicant(actor, app, scheme, "change pledges")
    assert app.id is not None
    return pledge_service.create_pledge(
        session,
        application_id=app.id,
        organisation_id=_pledge_owner(session, app, data.organisation_id),
        data=data,
        policy=scheme.policy,
        created_by_id=actor.id,
        today=now.date(),
        now=now,
    )


def _member_names(session: Session, members: Iterable[int]) -> str:
    return ", ".join(f"{accounts.organisation_name(session, m)} ({m})" for m in members)


def _pledge_owner(session: Session, app: Application, member: int | None) -> int:
    """Whose pledge it is: the applicant's, or a member the group's application covers (else
    InvalidInput naming the field and the members it may be)."""
    if member is None or member == app.organisation_id:
        return app.organisation_id
    covered = members_covered(session, app.id or 0)
    if member not in covered:
        which = (
            f"the members it covers are {_member_names(session, covered)}"
            if covered
            else "it is not a group's application covering members"
        )
        raise InvalidInput(
            f"organisation_id: organisation {member} is not a member this application covers "
            f"({which})",
            field="organisation_id",
        )
    return member


def _editable_hold(
    session: Session, pledge: Pledge, actor: Actor, registry: SchemeRegistry
) -> tuple[Application, ApplicationPledge, Scheme]:
    """The editable application of the actor's organisation that holds the pledge, and its hold.

    The pledge is the organisation's own, or a member's own made on the organisation's group
    application covering it (the group's people change it there, not the member's). Another
    organisation's pledge is not found; one no editable application holds is a conflict.
    """
    if actor.role != "applicant":
        raise PermissionDenied("only the organisation's applicants may change its pledges")
    if pledge.status != "active" or pledge.id is None:
        raise NotFound(f"no pledge {pledge.id}")
    mine = actor.organisation_id == pledge.organisation_id
    held = [
        link for link in pledge_service.links_of(session, pledge.id) if link.disposition in HELD
    ]
    holders = [
        (app, link)
        for link in held
        if (app := session.get(Application, link.application_id)) is not None
    ]
    ours = [
        (app, link)
        for app, link in holders
        if app.organisation_id == actor.organisation_id
        and (mine or pledge.organisation_id in members_covered(session, app.id or 0))
    ]
    if not mine and not ours:
        raise NotFound(f"no pledge {pledge.id}")
    for app, link in reversed(ours):
        scheme = registry.for_subject(session, app)
        if scheme.policy.workflows.application.state(app.state).editable:
            return app, link, scheme
    for app, _ in holders if mine else []:
        if (
            app.organisation_id != actor.organisation_id
            and (
                registry.for_subject(session, app).policy.workflows.application.state(app.state)
            ).editable
        ):
            raise PermissionDenied(
                "this pledge is made on the group's application: the group's people change it there"
            )
    raise Conflict(
        "this pledge can be changed only while an application holding it is still being "
        "prepared (it has been submitted); open a new application to revise or retire it"
    )


def revise_pledge(
    session: Session,
    pledge: Pledge,
    data: PledgeUpdate,
    *,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
) -> Pledge:
    """The applicant changes a pledge of its editable application; the change is audited."""
    app, link, scheme = _editable_hold(session, pledge, actor, registry)
    changed = pledge_service.revise(
        session, pledge, link, data, policy=scheme.policy, actor_id=actor.id, now=now
    )
    if changed:
        record_change(
            session,
            app,
            "revise_pledge",
            actor=actor,
            registry=registry,
            now=now,
            comment=f"pledge '{pledge.title}' revised ({', '.join(changed)}); "
            f"revision {pledge.revision}",
        )
    return pledge


def withdraw_pledge(
    session: Session, pledge: Pledge, *, actor: Actor, registry: SchemeRegistry, now: datetime
) -> str:
    """The applicant takes a pledge out of its editable application: withdrawn if made there,
    retired if carried in from an earlier award. Audited; returns which."""
    app, link, _ = _editable_hold(session, pledge, actor, registry)
    change = pledge_service.withdraw(session, pledge, link, actor_id=actor.id, now=now)
    record_change(
        session,
        app,
        "withdraw_pledge" if change == "withdrawn" else "retire_pledge",
        actor=actor,
        registry=registry,
        now=now,
        comment=f"pledge '{pledge.title}' {change}",
    )
    return change


def upload_evidence(
    session: Session,
    app: Application,
    store: BlobStore,
    *,
    requirement: str,
    pledge_id: int | None,
    stream: BinaryIO | Iterable[bytes],
    filename: str,
    title: str,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
    note: str = "",
    member_id: int | None = None,
) -> EvidenceItem:
    """The applicant uploads evidence for a checklist slot, with an optional note for the
    assessor; on a group's application, `member_id` names the member a `per_member` item is
    for. Checks happen before any byte is read."""
    scheme = registry.for_subject(session, app)
    _as_applicant(actor, app, scheme, "upload evidence")
    assert app.id is not None
    level = scheme.policy.level(app.level)
    slot = evidence_service.resolve_slot(
        session,
        application_id=app.id,
        policy=scheme.policy,
        level=level,
        requirement=requirement,
        pledge_id=pledge_id,
        member_id=member_id,
        members=members_covered(session, app.id),
    )
    return evidence_service.add_evidence(
        session,
        store,
        slot=slot,
        application_id=app.id,
        stream=stream,
        filename=filename,
        title=title,
        uploaded_by_id=actor.id,
        now=now,
        note=note,
    )


def review_evidence(
    session: Session,
    app: Application,
    item: EvidenceItem,
    data: ReviewCreate,
    *,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
) -> Review:
    """The assigned assessor decides on one evidence item.

    A "more information" is collected, not sent: the application stays with the assessor, who
    reviews the rest and then hands it back once (`hand_back`), asking for every collected item.
    """
    scheme = registry.for_subject(session, app)
    _as_assessor(actor, app, scheme, "review evidence")
    if item.application_id != app.id:
        raise NotFound(f"no evidence {item.id} in application {app.id}")
    return evidence_service.review_evidence(session, item, data, reviewer_id=actor.id, now=now)


def accept_remaining(
    session: Session,
    app: Application,
    evidence_ids: Iterable[int],
    *,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
) -> list[Review]:
    """Accept, at once, the chosen items among the current versions not reviewed yet.

    Every chosen id must be such an item (a reviewed, superseded or foreign one is refused by
    name), so a page that went stale cannot accept what the assessor did not see."""
    scheme = registry.for_subject(session, app)
    _as_assessor(actor, app, scheme, "review evidence")
    assert app.id is not None
    remaining = {i.id: i for i in evidence_service.remaining(session, app.id)}
    chosen = list(dict.fromkeys(evidence_ids))
    if not chosen:
        raise InvalidInput("choose at least one item to accept", field="accept")
    stale = [str(i) for i in chosen if i not in remaining]
    if stale:
        raise Conflict(
            f"evidence {', '.join(stale)} is not waiting for review any more; "
            "check the page and try again"
        )
    accept = ReviewCreate(decision="accepted")
    return [
        evidence_service.review_evidence(
            session, remaining[i], accept, reviewer_id=actor.id, now=now
        )
        for i in chosen
    ]


def collected_requests(session: Session, app: Application) -> list[EvidenceItem]:
    """The current items the assessor has asked more on, to be sent back together."""
    assert app.id is not None
    return evidence_service.asked_about(session, app.id)


def _as_marker(actor: Actor, app: Application, scheme: Scheme) -> None:
    """One of a double-marked application's two assessors, while it is under review."""
    if actor.role != "assessor" or actor.id not in (app.assessor_id, app.second_assessor_id):
        raise PermissionDenied("only the two assessors of this application may score it")
    state = scheme.policy.workflows.application.state(app.state)
    if not state.reviewable:
        raise Conflict(
            f"you can score the standards only while the application is under review "
            f"(it is {state.title})"
        )


def _describe(policy: Policy, change: ScoreChange) -> str:
    """One score change in words: the question, old and new score, whose, and the note."""
    std = policy.standard(change.standard)
    q = next((q for q in std.questions if q.id == change.question), None)
    text = f"{std.name}: {q.text if q else change.question}"

    def shown(n: int | None) -> str:
        return "not scored" if n is None else str(n)

    whose = {"agreed": " (agreed)", "moderated": " (moderated)"}.get(change.kind, "")
    line = f"{text}{whose}: {shown(change.old)} to {shown(change.new)}"
    return f"{line}; note: {change.note}" if change.note else line


def _audit_scores(
    session: Session,
    app: Application,
    changes: list[ScoreChange],
    what: str,
    *,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
) -> None:
    """Every score change is an audit event of the application: who, old, new and the note."""
    if not changes:
        return
    policy = registry.for_subject(session, app).policy
    record_change(
        session,
        app,
        what,
        actor=actor,
        registry=registry,
        now=now,
        comment="\n".join(_describe(policy, c) for c in changes),
        visibility="internal",
    )


def score_question(
    session: Session,
    app: Application,
    data: ScoreCreate,
    *,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
) -> Score | None:
    """The assigned assessor scores one question; audited when the score or its note changes.

    At a double-marked level each of the two assessors records their own score (the agreed one,
    returned, exists once both have scored: see svqm.evidence.marking)."""
    scheme = registry.for_subject(session, app)
    assert app.id is not None
    policy = scheme.policy
    level = policy.level(app.level)
    if level.assessors < 2:
        _as_assessor(actor, app, scheme, "score the standards")
        row, change = evidence_service.set_score(
            session,
            application_id=app.id,
            policy=policy,
            level=level,
            data=data,
            assessor_id=actor.id,
            now=now,
        )
        _audit_scores(
            session,
            app,
            [change] if change else [],
            "score",
            actor=actor,
            registry=registry,
            now=now,
        )
        return row
    _as_marker(actor, app, scheme)
    assert actor.id is not None
    people = {"first_id": app.assessor_id, "second_id": app.second_assessor_id}
    own = marking.record_own(
        session,
        application_id=app.id,
        policy=policy,
        level=level,
        standard=data.standard,
        question=data.question,
        score=data.score,
        note=data.note,
        assessor_id=actor.id,
        now=now,
        **people,
    )
    _audit_scores(session, app, own, "score", actor=actor, registry=registry, now=now)
    if own:
        agreed = marking.agree(
            session, application_id=app.id, policy=policy, level=level, now=now, **people
        )
        _audit_scores(
            session, app, agreed, "agree_scores", actor=SYSTEM, registry=registry, now=now
        )
    return evidence_service.score_row(session, app.id, data.standard, data.question)


def moderate_score(
    session: Session,
    app: Application,
    data: ModerationCreate,
    *,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
) -> ScoreChange | None:
    """The scheme's moderator records a question's agreed score with a note (audited)."""
    scheme = registry.for_subject(session, app)
    policy = scheme.policy
    level = policy.level(app.level)
    assert app.id is not None
    check_moderator(session, app, scheme, actor)
    change = marking.moderate(
        session,
        application_id=app.id,
        policy=policy,
        level=level,
        data=data,
        moderator_id=actor.id,
        first_id=app.assessor_id,
        second_id=app.second_assessor_id,
        now=now,
    )
    _audit_scores(
        session,
        app,
        [change] if change else [],
        "moderate_score",
        actor=actor,
        registry=registry,
        now=now,
    )
    return change


def moderator_barred(session: Session, app: Application, scheme: Scheme, actor: Actor) -> list[str]:
    """Why this person may not moderate the application's scores (empty: they may)."""
    policy = scheme.policy
    who = policy.settings.moderation.moderator
    if actor.role != who:
        return [
            f"Only {'an admin' if who == 'admin' else 'a panel member'} moderates these scores."
        ]
    reasons = []
    if actor.id is not None and actor.id in (app.assessor_id, app.second_assessor_id):
        reasons.append("You scored this application: someone who did not must moderate it.")
    if actor.organisation_id is not None and actor.organisation_id == app.organisation_id:
        reasons.append("You belong to the organisation that applied.")
    reasons += accounts.conflict_reasons(session, actor.id, app.organisation_id)
    return reasons


def check_moderator(session: Session, app: Application, scheme: Scheme, actor: Actor) -> None:
    """PermissionDenied unless the actor may moderate; Conflict when there is nothing to
    moderate (one assessor scores the level) or the application is not under review."""
    reasons = moderator_barred(session, app, scheme, actor)
    if reasons:
        raise PermissionDenied(" ".join(reasons))
    level = scheme.policy.level(app.level)
    if level.assessors < 2:
        raise Conflict(f"{level.name} is scored by one assessor: there is nothing to moderate")
    state = scheme.policy.workflows.application.state(app.state)
    if not state.reviewable:
        raise Conflict(
            f"scores are moderated only while the application is under review (it is {state.title})"
        )
