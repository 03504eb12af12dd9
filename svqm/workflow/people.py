"""An admin's changes to people, each an audit event of the person (subject kind `user`) chained
like a case's: editing a user's name, role and organisations, disabling and re-enabling them, and
removing a recorded conflict of interest with the reason for it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, delete, select

from svqm.accounts import auth as accounts_auth
from svqm.accounts import members
from svqm.accounts.models import ROLES, ConflictOfInterest, Membership, Organisation, User
from svqm.errors import InvalidInput, NotFound, PermissionDenied
from svqm.workflow.audit import append_event
from svqm.workflow.models import AuditEvent
from svqm.workflow.service import Actor

KIND = "user"


def _admin(actor: Actor) -> None:
    if actor.role != "admin":
        raise PermissionDenied("only an admin may change people's accounts")


def _locked(session: Session, user_id: int) -> User:
    """The user's row, locked: its audit chain cannot fork under two admins at once."""
    user = session.exec(select(User).where(User.id == user_id).with_for_update()).first()
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def _record(
    session: Session, user: User, actor: Actor, now: datetime, trigger: str, comment: str
) -> AuditEvent:
    assert user.id is not None
    last = session.exec(
        select(func.max(AuditEvent.seq)).where(
            AuditEvent.subject_kind == KIND, AuditEvent.subject_id == user.id
        )
    ).one()
    state = "active" if user.active else "disabled"
    return append_event(
        session,
        subject_kind=KIND,
        subject_id=user.id,
        seq=(last or 0) + 1,
        at=now,
        actor_id=actor.id,
        actor_role=actor.role,
        trigger=trigger,
        source=state,
        dest=state,
        comment=comment,
        visibility="internal",
    )


def _named(session: Session, organisation_id: int) -> str:
    org = session.get(Organisation, organisation_id)
    return org.name if org else f"organisation {organisation_id}"


def history(session: Session, user_id: int) -> list[AuditEvent]:
    """The person's account events, oldest first."""
    return list(
        session.exec(
            select(AuditEvent)
            .where(AuditEvent.subject_kind == KIND, AuditEvent.subject_id == user_id)
            .order_by(col(AuditEvent.seq))
        )
    )


def edit_user(
    session: Session,
    user_id: int,
    *,
    name: str,
    role: str,
    organisation_id: int | None,
    leave: Sequence[int] = (),
    actor: Actor,
    now: datetime,
) -> User:
    """Change a person's name, role and organisations.

    `organisation_id` is the one they act for by default: a membership of it is added if they
    have none; `leave` are organisations whose membership ends. An applicant keeps at least one
    membership, and acts by default for one of them. A new role ends every session the person
    has, so the next sign-in asks for what the role needs (staff: a second factor)."""
    _admin(actor)
    user = _locked(session, user_id)
    name = name.strip()
    if len(name) > 200:
        raise InvalidInput("the name must be 200 characters or fewer", field="name")
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)} (got '{role}')", field="role")
    if user.id == actor.id and role != user.role:
        raise InvalidInput("you cannot change your own role", field="role")
    if organisation_id is not None and session.get(Organisation, organisation_id) is None:
        raise InvalidInput(f"no organisation {organisation_id}", field="organisation_id")
    if organisation_id is not None and organisation_id in leave:
        raise InvalidInput(
            "the organisation they act for cannot also be one they stop acting for",
            field="organisation_id",
        )
    before = {m.organisation_id for m in members.memberships_of(session, user.id)}
    changes = []
    if organisation_id is not None and organisation_id not in before:
        members.add_membership(
            session, user_id=user_id, organisation_id=organisation_id, role="member"
        )
        changes.append(f"now acts for {_named(session, organisation_id)}")
    gone = sorted(set(leave) & before)
    if gone:
        session.exec(
            delete(Membership).where(
                col(Membership.user_id) == user_id, col(Membership.organisation_id).in_(gone)
            )
        )
        changes.append("no longer acts for " + ", ".join(_named(session, g) for g in gone))
    remaining = (before | ({organisation_id} if organisation_id else set())) - set(gone)
    default = organisation_id
    if default is None and role == "applicant":
        default = min(remaining) if remaining else None
    if role == "applicant" and default is None:
        raise InvalidInput(
            "an applicant must belong to an organisation: choose one", field="organisation_id"
        )
    if name != user.name:
        changes.append(f"name '{user.name}' to '{name}'")
        user.name = name
    if role != user.role:
        changes.append(f"role {user.role} to {role}")
        user.role = role
        accounts_auth.revoke_all(session, user_id, now)
        if accounts_auth.needs_second_factor(user):
            accounts_auth.ensure_totp_secret(session, user)
    if default != user.organisation_id:
        changes.append(
            f"acts by default for {_named(session, default) if default else 'no organisation'}"
        )
        user.organisation_id = default
    if not changes:
        return user
    session.add(user)
    session.flush()
    _record(session, user, actor, now, "edit", "Changed: " + "; ".join(changes) + ".")
    return user


def disable_user(session: Session, user_id: int, *, actor: Actor, now: datetime) -> User:
    """Disable a person's account and end every session and token they have."""
    _admin(actor)
    user = _locked(session, user_id)
    if user.id == actor.id:
        raise InvalidInput("you cannot disable yourself")
    if not user.active:
        return user
    accounts_auth.disable(session, user, now)
    session.flush()
    _record(session, user, actor, now, "disable", "Account disabled.")
    return user


def enable_user(session: Session, user_id: int, *, actor: Actor, now: datetime) -> User:
    """Let a disabled person sign in again (with their own password and second factor)."""
    _admin(actor)
    user = _locked(session, user_id)
    if user.active:
        return user
    user.active = True
    session.add(user)
    session.flush()
    _record(session, user, actor, now, "enable", "Account enabled again.")
    return user


def remove_conflict(
    session: Session, conflict_id: int, *, reason: str, actor: Actor, now: datetime
) -> ConflictOfInterest:
    """Remove a recorded conflict of interest, saying why; the person's history keeps both the
    conflict as it was and the reason."""
    _admin(actor)
    reason = reason.strip()
    if not reason:
        raise InvalidInput("enter the reason the conflict no longer applies", field="reason")
    row = session.get(ConflictOfInterest, conflict_id)
    if row is None:
        raise NotFound(f"no conflict {conflict_id}")
    user = _locked(session, row.user_id)
    named = _named(session, row.organisation_id)
    was = f" (recorded as: {row.reason})" if row.reason else ""
    session.delete(row)
    session.flush()
    _record(
        session,
        user,
        actor,
        now,
        "remove_conflict",
        f"Conflict of interest with {named}{was} removed: {reason[:500]}",
    )
    return row
