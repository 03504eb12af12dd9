"""Who acts for which organisation: memberships, the organisation a session acts for, and
invitations by email (single-use, expiring)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import event, inspect, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from svqm.accounts.models import (
    MEMBER_ROLES,
    Invitation,
    Membership,
    Organisation,
    User,
    UserSession,
)
from svqm.db import rows_changed
from svqm.errors import Conflict, InvalidInput, NotFound, PermissionDenied


@dataclass(frozen=True)
class MembershipLine:
    """One organisation a person acts for, as lists show it."""

    organisation_id: int
    name: str
    role: str
    parent_id: int | None


def get_membership(
    session: Session, user_id: int | None, organisation_id: int | None
) -> Membership | None:
    """The person's membership of this organisation, if they have one."""
    if user_id is None or organisation_id is None:
        return None
    return session.exec(
        select(Membership).where(
            Membership.user_id == user_id, Membership.organisation_id == organisation_id
        )
    ).first()


def add_membership(
    session: Session, *, user_id: int, organisation_id: int, role: str = "member"
) -> Membership:
    """Let the person act for the organisation in this role (kept as it is if they already do)."""
    if role not in MEMBER_ROLES:
        raise InvalidInput(
            f"role must be one of {', '.join(MEMBER_ROLES)} (got '{role}')", field="role"
        )
    found = get_membership(session, user_id, organisation_id)
    if found is not None:
        return found
    row = Membership(user_id=user_id, organisation_id=organisation_id, role=role)
    session.add(row)
    session.flush()
    return row


def memberships_of(session: Session, user_id: int | None) -> list[MembershipLine]:
    """The organisations the person acts for, by name."""
    if user_id is None:
        return []
    rows = session.exec(
        select(
            Membership.organisation_id, Organisation.name, Membership.role, Organisation.parent_id
        )
        .join(Organisation, col(Organisation.id) == Membership.organisation_id)
        .where(Membership.user_id == user_id)
        .order_by(col(Organisation.name), col(Organisation.id))
    )
    return [MembershipLine(int(oid), name, role, parent) for oid, name, role, parent in rows]


def members_of(session: Session, organisation_id: int) -> list[tuple[User, str]]:
    """The people acting for the organisation, with their role there, oldest first."""
    rows = session.exec(
        select(User, Membership.role)
        .join(Membership, col(Membership.user_id) == User.id)
        .where(Membership.organisation_id == organisation_id)
        .order_by(col(Membership.id))
    )
    return [(user, role) for user, role in rows]


def acting_organisation(session: Session, user: User, row: UserSession) -> int | None:
    """The organisation a session acts for: the one it chose while it is still one of the
    person's memberships, else the person's own."""
    chosen = row.organisation_id
    if chosen is not None and chosen != user.organisation_id:
        if get_membership(session, user.id, chosen) is not None:
            return chosen
    return user.organisation_id


_ACTING = "svqm_acting_organisation_id"


def act_for(user: User, organisation_id: int | None) -> None:
    """For the rest of this unit of work the person acts for this organisation.

    Set as the loaded value, not as a change, so nothing is written back to their row; and
    kept when the row is read again (a refused write expires every row of the session).
    """
    if organisation_id == user.organisation_id:
        return
    inspect(user).info[_ACTING] = organisation_id
    set_committed_value(user, "organisation_id", organisation_id)


@event.listens_for(User, "refresh")
def _keep_acting(target: User, _context: object, _attrs: object) -> None:
    info = inspect(target).info
    if _ACTING in info:
        set_committed_value(target, "organisation_id", info[_ACTING])


def switch_organisation(
    session: Session, row: UserSession, user: User, organisation_id: int
) -> None:
    """The session acts for this organisation from now on; only one the person is a member of
    (any other is 'not found': that would say it exists)."""
    if get_membership(session, user.id, organisation_id) is None:
        raise NotFound(f"no organisation {organisation_id} among yours")
    row.organisation_id = organisation_id
    session.add(row)
    session.flush()
    act_for(user, organisation_id)


# --- invitations --------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def require_lead(session: Session, user: User, organisation_id: int) -> None:
    """PermissionDenied unless the person is a lead of the organisation."""
    found = get_membership(session, user.id, organisation_id)
    if found is None or found.role != "lead":
        raise PermissionDenied("only a lead of the organisation may do this")


def invite(
    session: Session,
    *,
    organisation_id: int,
    email: str,
    role: str,
    invited_by: User,
    now: datetime,
    valid_for: timedelta,
) -> tuple[str, Invitation]:
    """An invitation for this email to act for the organisation; the raw token is returned once."""
    require_lead(session, invited_by, organisation_id)
    email = email.strip().lower()
    if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
        raise InvalidInput(f"'{email}' is not an email address", field="email")
    if role not in MEMBER_ROLES:
        raise InvalidInput(
            f"role must be one of {', '.join(MEMBER_ROLES)} (got '{role}')", field="role"
        )
    token = secrets.token_urlsafe(32)
    row = Invitation(
        token_hash=_token_hash(token),
        organisation_id=organisation_id,
        email=email,
        role=role,
        invited_by_id=invited_by.id,
        created_at=now,
        expires_at=now + valid_for,
    )
    session.add(row)
    session.flush()
    return token, row


def find_invitation(session: Session, token: str, now: datetime) -> Invitation:
    """The live invitation behind a token; a used, expired or unknown one is refused."""
    row = (
        session.exec(select(Invitation).where(Invitation.token_hash == _token_hash(token))).first()
        if token and len(token) <= 200
        else None
    )
    if row is None:
        raise NotFound("this invitation is not known; ask for a new one")
    if row.accepted_at is not None:
        raise Conflict("this invitation has already been used; ask for a new one")
    if now >= row.expires_at:
        raise Conflict("this invitation has expired; ask for a new one")
    return row


def accept_invitation(session: Session, token: str, user: User, now: datetime) -> Membership:
    """The signed-in person takes up the invitation: once only, before it expires.

    Claimed with a conditional UPDATE, so two uses racing give one membership and one refusal.
    """
    row = find_invitation(session, token, now)
    if user.role != "applicant":
        raise PermissionDenied("staff accounts cannot act for an organisation they assess")
    claimed = session.execute(
        update(Invitation)
        .where(col(Invitation.id) == row.id, col(Invitation.accepted_at).is_(None))
        .values(accepted_at=now, accepted_by_id=user.id)
        .execution_options(synchronize_session=False)
    )
    if rows_changed(claimed) != 1:
        raise Conflict("this invitation has already been used; ask for a new one")
    return add_membership(
        session, user_id=user.id or 0, organisation_id=row.organisation_id, role=row.role
    )
