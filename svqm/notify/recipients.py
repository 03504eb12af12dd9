"""Who hears about a deadline, at which address, and what their email says (its frozen context)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from svqm.accounts.models import Membership, Organisation, User
from svqm.db import PlainSelect
from svqm.notify.outbox import ContextLayout
from svqm.policy import Deadline, Policy
from svqm.workflow.models import application_reference

# Dates in emails are the scheme's home time, as its people read them.
_LOCAL = ZoneInfo("Europe/London")
# The second assessor of a double-marked application (`assessors: 2`): not a role of the
# policy's, but told of every event the policy tells its `assessor` of (never of deadlines: the
# first assessor takes the steps). Its rows are keyed by this name, like a role's.
SECOND_ASSESSOR = "second_assessor"
_HOME = {
    "applicant": "/dashboard",
    "assessor": "/assess",
    SECOND_ASSESSOR: "/assess",
    "panel": "/panel",
}


class Subject(Protocol):
    """What an email needs of its subject: an Application or Award row, or a plain copy of one."""

    @property
    def id(self) -> int | None: ...
    @property
    def organisation_id(self) -> int: ...
    @property
    def level(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def policy_digest(self) -> str: ...


def due_text(when: Any) -> str:
    """'Monday 2 March 2026': a deadline is a day to people (the time of day it was
    computed from would be an odd exact time in a subject line)."""
    return _due_text(when)


@lru_cache(maxsize=4096)
def _due_text(when: datetime) -> str:
    # Many deadlines share a due moment (the same anchor and offset), and formatting is dear.
    local = when.astimezone(_LOCAL)
    return f"{local:%A} {local.day} {local:%B %Y}"


# Built once (a sweep batch and every notice build an audience): expanding IN lists.
_NAMES = PlainSelect(
    sa_select(col(Organisation.id), col(Organisation.name)).where(
        col(Organisation.id).in_(bindparam("ids", expanding=True))
    )
)
_MEMBERS = PlainSelect(
    sa_select(
        col(Membership.organisation_id),
        col(User.email),
        col(User.role),
        col(User.active),
        col(User.name),
    )
    .join(User, col(User.id) == Membership.user_id)
    .where(col(Membership.organisation_id).in_(bindparam("ids", expanding=True)))
    .order_by(col(User.id))
)

_ASSESSORS = PlainSelect(
    sa_select(col(User.id), col(User.email), col(User.name)).where(
        col(User.active).is_(True), col(User.id).in_(bindparam("ids", expanding=True))
    )
)
_STAFF = PlainSelect(
    sa_select(col(User.email), col(User.name))
    .where(col(User.active).is_(True), col(User.role) == bindparam("role"))
    .order_by(col(User.id))
)


class Audience:
    """Addresses and links for one sweep batch, looked up once for all its subjects.

    Each lookup reads plain columns, once per organisation or role, never a user or
    organisation object per message.
    """

    def __init__(
        self, session: Session, base_url: str, subjects: Iterable[tuple[str, Subject]]
    ) -> None:
        self.session, self.base_url = session, base_url.rstrip("/")
        subjects = list(subjects)
        org_ids = {s.organisation_id for _, s in subjects}
        # Only applications and reports have assessors (an award's are its application's).
        assessor_ids = {
            aid
            for k, s in subjects
            if k in _ASSESSED
            for aid in (_assessor(k, s), _second_assessor(k, s))
            if aid is not None
        }
        # Plain rows straight from the connection (no ORM result machinery); pending changes
        # first, as the ORM's autoflush would.
        session.flush()
        conn = session.connection()
        self.organisations: dict[int, str] = {
            oid: name for oid, name in _NAMES.rows(conn, {"ids": list(org_ids)}) if oid is not None
        }
        self.members: dict[int, list[str]] = {}
        self.names: dict[str, str] = {}
        # Role and standing are checked here, not in SQL: given `role = 'applicant'`, SQLite
        # reads every applicant through the role index instead of these organisations' users.
        # Everyone acting for the organisation (memberships), not only those it is home to.
        members = _MEMBERS.rows(conn, {"ids": list(org_ids)})
        for org_id, email, role, active, name in members:
            if active and role == "applicant" and org_id is not None:
                self.members.setdefault(org_id, []).append(email)
                self.names[email] = name
        self.assessors: dict[int, str] = {}
        if assessor_ids:
            found = _ASSESSORS.rows(conn, {"ids": list(assessor_ids)})
            for uid, email, name in found:
                if uid is not None:
                    self.assessors[uid] = email
                    self.names[email] = name
        self._staff: dict[str, list[str]] = {}
        self._fixed: dict[tuple[Any, ...], _Fixed] = {}

    def addresses(self, kind: str, subject: Subject, role: str) -> list[str]:
        """Where `role`'s email about this subject goes (may be empty: then nobody can be told)."""
        if role == "applicant":
            return self.members.get(subject.organisation_id, [])
        if role == "assessor":
            aid = _assessor(kind, subject)
            return [self.assessors[aid]] if aid in self.assessors else []
        if role == SECOND_ASSESSOR:
            sid = _second_assessor(kind, subject)
            return [self.assessors[sid]] if sid in self.assessors else []
        if role not in self._staff:
            self.session.flush()  # pending changes first, as the ORM's autoflush would
            staff = _STAFF.rows(self.session.connection(), {"role": role})
            self.names.update(dict(staff))
            self._staff[role] = [email for email, _ in staff]
        return self._staff[role]

    def names_of(self, addresses: list[str]) -> list[str]:
        """The people's names, in the order of their addresses (those without one left out)."""
        return [self.names[a] for a in addresses if self.names.get(a)]

    def link(self, kind: str, subject: Subject, role: str) -> str:
        return self.base_url + path_of(kind, subject, role)

    def context(
        self,
        policy: Policy,
        kind: str,
        subject: Subject,
        d: Deadline,
        due: datetime,
        role: str,
        *,
        days_before: int,
        outcome: str = "",
    ) -> dict[str, Any]:
        """Everything the email says, as plain JSON-able values."""
        layout, values = self._context(policy, kind, subject, d, due, role, days_before, outcome)
        return layout.context(values)

    def encoded_context(
        self,
        policy: Policy,
        kind: str,
        subject: Subject,
        d: Deadline,
        due: datetime,
        role: str,
        *,
        days_before: int,
        outcome: str = "",
    ) -> str:
        """`context(...)` as the outbox stores it (the same text as `outbox.message` writes for
        it), the values shared by many messages encoded once."""
        layout, values = self._context(policy, kind, subject, d, due, role, days_before, outcome)
        return layout.encode(values)

    def _context(
        self,
        policy: Policy,
        kind: str,
        subject: Subject,
        d: Deadline,
        due: datetime,
        role: str,
        days_before: int,
        outcome: str,
    ) -> tuple[ContextLayout, tuple[Any, ...]]:
        fixed = self._fixed_part(policy, kind, subject.level, subject.state, d, role)
        level = fixed.level
        if kind == "application":
            title = f"{level} application {application_reference(subject.id or 0)}"
        elif kind == "report":
            title = f"{level} award: report for {getattr(subject, 'period', '')}"
        else:
            title = f"{level} award ({getattr(subject, 'certificate_number', '')})"
        organisation = self.organisations.get(subject.organisation_id, "applicant")
        addresses = self.addresses(kind, subject, role)
        values = (  # in the order of _VARYING
            organisation,
            self.names_of(addresses),
            f"{organisation} team" if role == "applicant" else "",
            title,
            due.isoformat(),
            due_text(due),
            days_before,
            outcome,
            self.link(kind, subject, role),
        )
        return fixed.layout, values

    def _fixed_part(
        self, policy: Policy, kind: str, level: str, state: str, d: Deadline, role: str
    ) -> _Fixed:
        """What the policy says about a kind of subject in a state: the same for many messages."""
        key = (policy.digest, kind, level, state, d.kind, role)
        found = self._fixed.get(key)
        if found is None:
            on_due = ""
            if d.on_due:
                t = policy.workflows.of(kind).transition(d.on_due, state)
                if t is not None:
                    dest = policy.workflows.of(kind).state(t.dest).title
                    on_due = f"the {kind} becomes '{dest}'"
            shared = {
                "scheme": policy.name,
                "contact": policy.contact,
                "label": d.label,
                "kind": d.kind,
                "on_due_text": on_due,
                "home_link": self.base_url + _HOME.get(role, "/admin/deadlines"),
                "audience": role,
            }
            found = self._fixed[key] = _Fixed(
                policy.level(level).name, ContextLayout(shared, _VARYING)
            )
        return found


class _Fixed(NamedTuple):
    level: str  # the level's name
    layout: ContextLayout  # the context's shared values, and where the others go


# The context's values that differ between messages of one `_Fixed` (in `_context`'s order).
_VARYING = (
    "organisation",
    "names",
    "greeting_fallback",
    "subject_title",
    "due_at",
    "due_text",
    "days_before",
    "outcome",
    "link",
)


def path_of(kind: str, subject: Any, role: str) -> str:
    """The path of the page where `role` acts on this subject: a report's reviewers on the
    report, its holder on the award's page, where its reports are."""
    if kind == "report":
        if role == "applicant":
            return f"/dashboard/awards/{subject.award_id}#reports"
        return f"/reports/{subject.id}"
    return page_of(kind, subject.id, role)


def page_of(kind: str, subject_id: int | None, role: str) -> str:
    """The path of the page where `role` acts on this application or award."""
    if kind == "application":
        return {
            "applicant": f"/applications/{subject_id}",
            "assessor": f"/assess/{subject_id}",
            SECOND_ASSESSOR: f"/assess/{subject_id}",
            "panel": f"/panel/{subject_id}",
        }.get(role, f"/admin/applications/{subject_id}")
    if role == "applicant":
        return f"/dashboard/awards/{subject_id}"
    # Only admins have a staff page for awards; other staff read the award's public record.
    return "/admin/awards" if role == "admin" else f"/awards/{subject_id}/verify"


_ASSESSED = ("application", "report")


def _assessor(kind: str, subject: Subject) -> int | None:
    return getattr(subject, "assessor_id", None) if kind in ("application", "report") else None


def _second_assessor(kind: str, subject: Subject) -> int | None:
    return getattr(subject, "second_assessor_id", None) if kind == "application" else None


def with_second_assessor(kind: str, subject: Subject, roles: Iterable[str]) -> list[str]:
    """The roles told of an event, the second assessor (if the application has one) right after
    the assessor: they hear of everything the first does."""
    out: list[str] = []
    for role in dict.fromkeys(roles):
        out.append(role)
        if role == "assessor" and _second_assessor(kind, subject) is not None:
            out.append(SECOND_ASSESSOR)
    return list(dict.fromkeys(out))
