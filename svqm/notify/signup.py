"""Public sign-up of an organisation: one answer whether or not the email is known (no
enumeration, ASVS 6.3.8); the address's owner is told by email either way, through the outbox."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlmodel import Session

from svqm.accounts import auth
from svqm.accounts import service as accounts
from svqm.accounts.models import User
from svqm.config import Settings
from svqm.errors import InvalidInput
from svqm.notify import outbox


def register_organisation(
    session: Session,
    *,
    name: str,
    sector: str,
    email: str,
    password: str,
    now: datetime,
    source: str,
    settings: Settings,
    person_name: str = "",
) -> User | None:
    """Create the organisation and its applicant, or (for a known email) tell its owner.

    Every check a stranger could tell apart (the email's form, the password rules, the throttle)
    runs before the email is looked up, so a refusal says nothing about whether it exists. The
    user made, or None; callers answer the same for both.
    """
    auth.check_signup(session, source, now, settings)
    email = email.strip().lower()
    if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
        raise InvalidInput(f"'{email}' is not an email address", field="email")
    if not name.strip():
        raise InvalidInput("an organisation needs a name", field="name")
    accounts.check_password_rules(password, context=[email, email.split("@")[0], name.strip()])
    auth.record_signup(session, source, now)
    login = settings.BASE_URL.rstrip("/") + "/login"
    known = accounts.get_user_by_email(session, email)
    if known is not None:
        # The argon2 hash a new account costs, so the two answers take the same time.
        accounts.hash_password(password)
        outbox.enqueue(
            session,
            key=f"signup-exists:{known.id}:{secrets.token_hex(8)}",
            template="signup_exists",
            context={"organisation": name.strip()[:200], "link": login},
            to_addrs=[known.email],
            now=now,
        )
        return None
    org = accounts.create_organisation(session, name=name, sector=sector)
    user = accounts.add_user(
        session,
        email=email,
        role="applicant",
        organisation_id=org.id,
        password=password,
        name=person_name.strip(),
    )
    outbox.enqueue(
        session,
        key=f"signup-welcome:{user.id}",
        template="signup_welcome",
        context={
            "organisation": org.name,
            "link": login,
            "names": [user.name] if user.name else [],
        },
        to_addrs=[user.email],
        organisation_id=org.id,
        now=now,
    )
    return user
