"""Organisations and users: create, find, and check passwords (argon2id)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, or_
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select
from zxcvbn import zxcvbn  # type: ignore[import-untyped]

from svqm.accounts.models import (
    MEMBER_ROLES,
    ROLES,
    STAFF_ROLES,
    ConflictOfInterest,
    Membership,
    Organisation,
    User,
)
from svqm.errors import InvalidInput

# argon2-cffi's defaults (t=3, m=64 MiB, p=4, argon2id) clear the ASVS Appendix C minimums.
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher.hash(password)


def password_needs_rehash(password_hash: str) -> bool:
    """Whether a hash was made with other parameters than today's (weaker ones, say): signing in
    with the password is the one moment it can be hashed again (SECURITY.md A1)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return False


def verify_password(user: User, password: str) -> bool:
    """Whether the password is the user's; False for accounts without one."""
    if not user.password_hash:
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# zxcvbn's score (0-4) a password must reach: 3 is "safely unguessable" against an offline
# attack on a slow hash, and refuses the common lists, keyboard walks, dates and repeats.
_MIN_SCORE = 3
MIN_PASSWORD = 12


def check_password_rules(password: str, *, context: list[str]) -> None:
    """12 to 128 characters, not common or guessable (zxcvbn, offline), not built of the
    account's own words (email, name, organisation). The refusal says why."""
    if "\x00" in password or any(ord(c) < 0x20 for c in password):
        raise InvalidInput("a password cannot contain control characters", field="password")
    if not password.strip():
        raise InvalidInput("a password cannot be only spaces", field="password")
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD} characters", field="password")
    if len(password) > 128:
        raise InvalidInput("a password may have at most 128 characters", field="password")
    lowered = password.casefold()
    words = [w for w in context if w and w.strip()]
    for word in words:
        if len(word.strip()) >= 4 and word.strip().casefold() in lowered:
            raise InvalidInput(
                "a password must not contain your email, name or organisation", field="password"
            )
    # Each word of the context too: what is left without them must still be a password.
    parts = {p.casefold() for w in words for p in re.split(r"[^\w]+", w) if len(p) >= 3}
    rest = lowered
    for part in sorted(parts, key=len, reverse=True):
        rest = rest.replace(part, "")
    if len(re.sub(r"[\W_]+", "", rest)) < 8:
        raise InvalidInput(
            "a password must not be made mostly of your email, name or organisation",
            field="password",
        )
    inputs = words + sorted(parts)
    verdict = zxcvbn(password[:100], user_inputs=inputs)
    if verdict["score"] < _MIN_SCORE:
        warning = verdict["feedback"].get("warning") or "This password is easy to guess."
        raise InvalidInput(
            f"this password is too easy to guess ({warning.rstrip('.').lower()}); "
            "use a few unrelated words or a password manager",
            field="password",
        )


def create_organisation(
    session: Session,
    *,
    name: str,
    sector: str = "",
    region: str = "",
    parent_id: int | None = None,
    regions: Iterable[str] | None = None,
) -> Organisation:
    """Register an organisation (a member of the group `parent_id`, if given); its region must be
    one of `regions` when they are given."""
    if not name.strip():
        raise InvalidInput("an organisation needs a name", field="name")
    check_region(region, regions)
    if parent_id is not None and session.get(Organisation, parent_id) is None:
        raise InvalidInput(f"no organisation {parent_id}", field="parent_id")
    org = Organisation(
        name=name.strip()[:200], sector=sector.strip()[:100], region=region, parent_id=parent_id
    )
    session.add(org)
    session.flush()
    return org


def check_region(region: str, regions: Iterable[str] | None) -> None:
    """InvalidInput unless the region is blank or one of the deployment's."""
    if region and regions is not None and region not in set(regions):
        raise InvalidInput("choose a region from the list", field="region")


def set_region(session: Session, org: Organisation, region: str, regions: Iterable[str]) -> None:
    """Say where the organisation works (blank: not given)."""
    check_region(region, regions)
    org.region = region
    session.add(org)
    session.flush()


def group_members(session: Session, organisation_id: int | None) -> list[Organisation]:
    """The organisations whose group this one is, by name."""
    if organisation_id is None:
        return []
    return list(
        session.exec(
            select(Organisation)
            .where(Organisation.parent_id == organisation_id)
            .order_by(col(Organisation.name), col(Organisation.id))
        )
    )


def organisation_places(session: Session, ids: Iterable[int]) -> dict[int, tuple[str, str, str]]:
    """(sector, region, group's name or "") of these organisations, in one query."""
    wanted = set(ids)
    if not wanted:
        return {}
    parent = aliased(Organisation)
    rows = session.exec(
        select(Organisation.id, Organisation.sector, Organisation.region, parent.name)
        .outerjoin(parent, col(parent.id) == col(Organisation.parent_id))
        .where(col(Organisation.id).in_(wanted))
    )
    return {int(oid): (sector, region, group or "") for oid, sector, region, group in rows if oid}


def get_user_by_email(session: Session, email: str) -> User | None:
    """The user with this email (case-insensitive), if any."""
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def add_user(
    session: Session,
    *,
    email: str,
    role: str,
    organisation_id: int | None = None,
    password: str | None = None,
    name: str = "",
    member_role: str = "lead",
) -> User:
    """Create a user; applicants belong to an organisation (a membership in `member_role`),
    staff may not need one."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
        raise InvalidInput(f"'{email}' is not an email address", field="email")
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)} (got '{role}')", field="role")
    if role == "applicant" and organisation_id is None:
        raise InvalidInput(
            "an applicant must belong to an organisation (--organisation ID)",
            field="organisation_id",
        )
    org = session.get(Organisation, organisation_id) if organisation_id is not None else None
    if organisation_id is not None and org is None:
        raise InvalidInput(f"no organisation {organisation_id}", field="organisation_id")
    if get_user_by_email(session, email) is not None:
        raise InvalidInput(f"a user with email {email} already exists", field="email")
    password_hash = None
    if password is not None:
        context = [email, email.split("@")[0], name, org.name if org else ""]
        check_password_rules(password, context=context)
        password_hash = hash_password(password)
    user = User(
        email=email,
        role=role,
        organisation_id=organisation_id,
        password_hash=password_hash,
        name=name,
    )
    session.add(user)
    session.flush()
    if organisation_id is not None:
        if member_role not in MEMBER_ROLES:
            raise InvalidInput(f"role must be one of {', '.join(MEMBER_ROLES)}", field="role")
        session.add(
            Membership(user_id=user.id or 0, organisation_id=organisation_id, role=member_role)
        )
        session.flush()
    return user


# Built once: on every assessor's and panel member's case page and API read, building the
# statements anew (and asking twice) cost more than the database's answer.
_CONFLICTED = select(
    or_(
        select(Membership.id)
        .where(
            Membership.user_id == bindparam("user_id"),
            Membership.organisation_id == bindparam("organisation_id"),
        )
        .exists(),
        select(ConflictOfInterest.id)
        .where(
            ConflictOfInterest.user_id == bindparam("user_id"),
            ConflictOfInterest.organisation_id == bindparam("organisation_id"),
        )
        .exists(),
    )
)


def conflicted(session: Session, user_id: int | None, organisation_id: int) -> bool:
    """Whether the user acts for, or has declared a conflict with, the organisation."""
    if user_id is None:
        return False
    found = session.execute(
        _CONFLICTED, {"user_id": user_id, "organisation_id": organisation_id}
    ).scalar()
    return bool(found)


def conflict_reasons(session: Session, user_id: int | None, organisation_id: int) -> list[str]:
    """Why the user may not assess or decide the organisation's cases, in plain words (empty:
    no conflict): they act for it, or a conflict of interest with it is on record."""
    if user_id is None:
        return []
    name = organisation_name(session, organisation_id)
    reasons = []
    member = select(Membership.id).where(
        Membership.user_id == user_id, Membership.organisation_id == organisation_id
    )
    if session.exec(member).first() is not None:
        reasons.append(f"You act for {name}, the organisation that applied.")
    recorded = session.exec(
        select(ConflictOfInterest)
        .where(
            ConflictOfInterest.user_id == user_id,
            ConflictOfInterest.organisation_id == organisation_id,
        )
        .order_by(col(ConflictOfInterest.id))
    ).all()
    for c in recorded:
        why = f" ({c.reason})" if c.reason else ""
        reasons.append(f"A conflict of interest with {name} is on record for you{why}.")
    return reasons


def declared_conflicts(
    session: Session, user_id: int | None, organisation_ids: Iterable[int]
) -> dict[int, str]:
    """The organisations among these the user has a conflict of interest on record with, each
    with its reason ("" when none was given), in one query."""
    wanted = set(organisation_ids)
    if user_id is None or not wanted:
        return {}
    rows = session.exec(
        select(ConflictOfInterest)
        .where(
            ConflictOfInterest.user_id == user_id,
            col(ConflictOfInterest.organisation_id).in_(wanted),
        )
        .order_by(col(ConflictOfInterest.id))
    ).all()
    found: dict[int, str] = {}
    for c in rows:
        found.setdefault(c.organisation_id, c.reason)
    return found


def declare_conflict(
    session: Session, *, user_id: int, organisation_id: int, reason: str, recorded_by_id: int | None
) -> ConflictOfInterest:
    """Record that a user may not assess or decide an organisation's applications."""
    if session.get(User, user_id) is None:
        raise InvalidInput(f"no user {user_id}")
    if session.get(Organisation, organisation_id) is None:
        raise InvalidInput(f"no organisation {organisation_id}")
    row = ConflictOfInterest(
        user_id=user_id,
        organisation_id=organisation_id,
        reason=reason.strip()[:500],
        recorded_by_id=recorded_by_id,
    )
    session.add(row)
    session.flush()
    return row


def person_name(user: User) -> str:
    """How staff pages name a person: 'Asha Assessor (assessor)'."""
    return _named(user.name, user.email, user.role)


def _named(name: str | None, email: str, role: str) -> str:
    return f"{name or email} ({role})"


# Built once, with bind parameters: every case page names its people (twice, for its history
# and its record of judgement), and building the statement anew cost more than running it.
_NAMES = sa_select(col(User.id), col(User.name), col(User.email), col(User.role)).where(
    col(User.id).in_(bindparam("ids", expanding=True))
)


def display_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    """Display names of these people (`person_name`), in one query."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    session.flush()  # as the ORM's autoflush would: the read is on the session's connection
    rows = session.connection().execute(_NAMES, {"ids": sorted(wanted)})
    return {uid: _named(name, email, role) for uid, name, email, role in rows if uid is not None}


def organisation_names(session: Session, ids: Iterable[int] | None = None) -> dict[int, str]:
    """Names of these organisations (every one, by name, when no ids are given), in one query."""
    wanted = None if ids is None else set(ids)
    if wanted is not None and not wanted:
        return {}
    query = select(Organisation.id, Organisation.name).order_by(col(Organisation.name))
    if wanted is not None:
        query = query.where(col(Organisation.id).in_(wanted))
    return {int(oid): name for oid, name in session.exec(query) if oid is not None}


def organisation_name(session: Session, organisation_id: int) -> str:
    """An organisation's name ('Organisation 7' if it no longer exists)."""
    org = session.get(Organisation, organisation_id)
    return org.name if org else f"Organisation {organisation_id}"


def list_users(session: Session) -> list[User]:
    """Every user, oldest first."""
    return list(session.exec(select(User).order_by(col(User.id))))


def list_conflicts(session: Session) -> list[ConflictOfInterest]:
    """Every declared conflict of interest, oldest first."""
    return list(session.exec(select(ConflictOfInterest).order_by(col(ConflictOfInterest.id))))


def organisation_sectors(session: Session, ids: Iterable[int]) -> dict[int, str]:
    """The sectors of these organisations, in one query."""
    wanted = set(ids)
    if not wanted:
        return {}
    query = select(Organisation.id, Organisation.sector).where(col(Organisation.id).in_(wanted))
    return {int(oid): sector for oid, sector in session.exec(query) if oid is not None}


def get_user(session: Session, user_id: int | None) -> User | None:
    return session.get(User, user_id) if user_id is not None else None


def get_organisation(session: Session, organisation_id: int | None) -> Organisation | None:
    return session.get(Organisation, organisation_id) if organisation_id is not None else None


def update_profile(
    session: Session, user: User, *, name: str | None = None, email_digest: bool | None = None
) -> User:
    """A person changes their own name, and (staff only) whether their event emails come as one
    daily digest. Refused, naming each field, when the name is empty or an applicant asks for
    the digest (an organisation's people are sent every email as it happens)."""
    problems = []
    clean = None
    if name is not None:
        clean = " ".join(name.split())
        if not clean:
            problems.append(InvalidInput("enter your name", field="name"))
        elif len(clean) > 200:
            problems.append(InvalidInput("a name is at most 200 characters", field="name"))
    if email_digest is not None and user.role not in STAFF_ROLES:
        problems.append(
            InvalidInput(
                "the daily digest is for staff: an organisation's people get each email as it "
                "happens",
                field="email_digest",
            )
        )
    if problems:
        detail = "; ".join(p.detail for p in problems)
        raise InvalidInput(detail, field=problems[0].field)
    if clean is not None:
        user.name = clean
    if email_digest is not None:
        user.email_digest = email_digest
    session.add(user)
    session.flush()
    return user
