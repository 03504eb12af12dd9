"""Deadline rows as people read them: the policy's label, the subject named, the reminder offsets.

The schedule (svqm.workflow.schedule) stores kinds and subject ids; the dashboard, the admin's
deadline list, the award page and the calendar feed all need the same words for them, so they are
made here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from svqm.accounts import service as accounts
from svqm.policy import Policy
from svqm.web.format import Tag, level_label, reference
from svqm.workflow import schedule
from svqm.workflow.models import AnnualReport, Award, Subject
from svqm.workflow.schedule import ScheduledDeadline
from svqm.workflow.schemes import SchemeRegistry


@dataclass(frozen=True)
class DeadlineView:
    """One deadline row, described."""

    id: int
    kind: str
    label: str
    subject_kind: str  # "application" | "award"
    subject_id: int
    subject: str  # "Social Value Quality Mark: Silver award SVQM-2026-0001"
    organisation_id: int
    organisation: str
    due_at: datetime
    remind_before_days: tuple[int, ...]
    status: str
    outcome: str
    closed_at: datetime | None
    # A report's award (its holder reads its reports on the award's page).
    award_id: int | None = None

    def overdue(self, now: datetime) -> bool:
        """Still open although its moment has passed (the sweep has not acted on it yet)."""
        return self.status == "open" and self.due_at <= now

    @property
    def applicant_path(self) -> str:
        """Where the organisation's own people see the subject."""
        if self.subject_kind == "application":
            return f"/applications/{self.subject_id}"
        if self.subject_kind == "report":
            return f"/dashboard/awards/{self.award_id}#reports"
        return f"/dashboard/awards/{self.subject_id}"

    @property
    def admin_path(self) -> str:
        """Where an admin sees the subject."""
        if self.subject_kind == "application":
            return f"/admin/applications/{self.subject_id}"
        if self.subject_kind == "report":
            return f"/reports/{self.subject_id}"
        return f"/admin/awards#award-{self.subject_id}"


# How each status of a row reads on a page (GOV.UK tag text and colour).
STATUS_TAGS = {
    "open": ("Open", "govuk-tag--blue"),
    "met": ("Met", "govuk-tag--green"),
    "passed": ("Passed", "govuk-tag--grey"),
    "fired": ("Passed, action taken", "govuk-tag--grey"),
    "cancelled": ("No longer running", "govuk-tag--grey"),
    "failed": ("Action failed", "govuk-tag--red"),
}
OVERDUE_TAG = {"text": "Overdue", "classes": "govuk-tag--red"}


def status_tag(view: DeadlineView, now: datetime) -> Tag:
    """The tag of a row: its status, or Overdue for an open row whose moment has passed."""
    if view.overdue(now):
        return OVERDUE_TAG
    text, classes = STATUS_TAGS.get(view.status, (view.status, ""))
    return {"text": text, "classes": classes}


def subject_text_of(policy: Policy, subject: Subject) -> str:
    """'Social Value Quality Mark: Silver award SVQM-2026-0001'."""
    level = level_label(policy.level(subject.level))
    if isinstance(subject, Award):
        return f"{policy.name}: {level} award {subject.certificate_number}"
    if isinstance(subject, AnnualReport):
        return f"{policy.name}: {level} award, {subject.title}"
    return f"{policy.name}: {level} application {reference(subject.id or 0)}"


def describe(
    session: Session, registry: SchemeRegistry, rows: Sequence[ScheduledDeadline]
) -> list[DeadlineView]:
    """Describe rows in their order; subjects and organisations are read in one query each."""
    subjects = schedule.subjects_of(session, rows)
    names = accounts.organisation_names(session, {r.organisation_id for r in rows})
    views = []
    for row in rows:
        subject = subjects.get((row.subject_kind, row.subject_id))
        label, subject_text = row.kind, f"{row.subject_kind} {row.subject_id}"
        reminders: tuple[int, ...] = ()
        if subject is not None:
            policy = registry.for_subject(session, subject).policy
            subject_text = subject_text_of(policy, subject)
            # A policy edited since may have dropped the kind: keep the row, show its kind.
            found = policy.deadline(row.kind)
            if found is not None:
                label, reminders = found.label, tuple(found.remind_before_days)
        views.append(
            DeadlineView(
                id=row.id or 0,
                kind=row.kind,
                label=label,
                subject_kind=row.subject_kind,
                subject_id=row.subject_id,
                subject=subject_text,
                organisation_id=row.organisation_id,
                organisation=names.get(row.organisation_id, ""),
                due_at=row.due_at,
                remind_before_days=reminders,
                status=row.status,
                outcome=row.outcome,
                closed_at=row.closed_at,
                award_id=subject.award_id if isinstance(subject, AnnualReport) else None,
            )
        )
    return views
