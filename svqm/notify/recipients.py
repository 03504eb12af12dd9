"""Who hears about a deadline, at which address, and what their email says (its frozen context)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from svqm.accounts.models import Organisation, User
from svqm.policy import Deadline
from svqm.workflow.models import Application, Award
from svqm.workflow.schedule import ScheduledDeadline
from svqm.workflow.schemes import SchemeRegistry

# Dates in emails are the scheme's home time, as its people read them.
_LOCAL = ZoneInfo("Europe/London")


def due_text(when: Any) -> str:
    """'Monday 2 March 2026, 14:05 (UK time)'."""
    local = when.astimezone(_LOCAL)
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M} (UK time)"


class Audience:
    """Addresses and links for one sweep batch, looked up once for all its subjects."""

    def __init__(
        self,
        session: Session,
        base_url: str,
        subjects: Iterable[Application | Award],
        registry: SchemeRegistry,
    ) -> None:
        self.session, self.base_url, self.registry = session, base_url.rstrip("/"), registry
        subjects = list(subjects)
        org_ids = {s.organisation_id for s in subjects}
        assessor_ids = {s.assessor_id for s in subjects if isinstance(s, Application)} - {None}
        self.organisations = {
            o.id: o.name
            for o in session.exec(select(Organisation).where(col(Organisation.id).in_(org_ids)))
        }
        self.members: dict[int, list[str]] = {}
        for user in self._active(col(User.organisation_id).in_(org_ids), User.role == "applicant"):
            assert user.organisation_id is not None
            self.members.setdefault(user.organisation_id, []).append(user.email)
        self.assessors = {u.id: u.email for u in self._active(col(User.id).in_(assessor_ids))}
        self._staff: dict[str, list[str]] = {}

    def _active(self, *where: Any) -> list[User]:
        query = select(User).where(col(User.active).is_(True), *where).order_by(col(User.id))
        return list(self.session.exec(query))

    def addresses(self, subject: Application | Award, role: str) -> list[str]:
        """Where `role`'s email about this subject goes (may be empty: then nobody can be told)."""
        if role == "applicant":
            return self.members.get(subject.organisation_id, [])
        if role == "assessor":
            aid = subject.assessor_id if isinstance(subject, Application) else None
            return [self.assessors[aid]] if aid in self.assessors else []
        if role not in self._staff:
            self._staff[role] = [u.email for u in self._active(User.role == role)]
        return self._staff[role]

    def link(self, subject: Application | Award, role: str) -> str:
        app = isinstance(subject, Application)
        path = {
            "applicant": f"/applications/{subject.id}" if app else "/dashboard",
            "assessor": f"/assess/{subject.id}",
            "panel": f"/panel/{subject.id}",
            "admin": f"/admin/applications/{subject.id}" if app else "/admin/awards",
        }[role]
        return self.base_url + path

    def context(
        self,
        subject: Application | Award,
        d: Deadline,
        row: ScheduledDeadline,
        role: str,
        *,
        days_before: int,
        outcome: str = "",
    ) -> dict[str, Any]:
        """Everything the email says, as plain JSON-able values."""
        policy = self.registry.for_subject(self.session, subject).policy
        level = policy.level(subject.level).name
        if isinstance(subject, Application):
            title = f"{level} application ({subject.id})"
        else:
            title = f"{level} award ({subject.certificate_number})"
        on_due = ""
        if d.on_due:
            t = policy.workflows.of(row.subject_kind).transition(d.on_due, subject.state)
            if t is not None:
                dest = policy.workflows.of(row.subject_kind).state(t.dest).title
                on_due = f"the {row.subject_kind} becomes '{dest}'"
        home = {"applicant": "/dashboard", "assessor": "/assess", "panel": "/panel"}
        return {
            "organisation": self.organisations.get(subject.organisation_id, "applicant"),
            "scheme": policy.name,
            "label": d.label,
            "kind": d.kind,
            "subject_title": title,
            "due_at": row.due_at.isoformat(),
            "due_text": due_text(row.due_at),
            "days_before": days_before,
            "on_due_text": on_due,
            "outcome": outcome,
            "link": self.link(subject, role),
            "home_link": self.base_url + home.get(role, "/admin/deadlines"),
            "audience": role,
        }
