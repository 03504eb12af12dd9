"""An award's filings as its holder reads them: what was filed, and what can be filed now."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, true
from sqlmodel import Session, col, select

from svqm.accounts.models import Organisation
from svqm.errors import NotFound
from svqm.policy import Policy
from svqm.workflow.deadlines import add_months
from svqm.workflow.models import AnnualReport, Award
from svqm.workflow.reports import filing_deadlines, filing_status
from svqm.workflow.schedule import OPEN, ScheduledDeadline
from svqm.workflow.schemes import SchemeRegistry


def reports_of(session: Session, award_id: int) -> list[AnnualReport]:
    """An award's filings, newest first."""
    return list(
        session.exec(
            select(AnnualReport)
            .where(AnnualReport.award_id == award_id)
            .order_by(col(AnnualReport.id).desc())
        )
    )


@dataclass(frozen=True)
class Filable:
    """A filing deadline of the award that a filing now would meet, or fire late."""

    kind: str
    label: str
    overdue: bool
    # The open occurrence's due time, when one is open.
    due_at: datetime | None

    @property
    def period(self) -> str:
        """The reporting year that ends at the due time, as '2026-27' ('' when none is open)."""
        if self.due_at is None:
            return ""
        start = add_months(self.due_at, -12)
        return f"{start.year}-{self.due_at.year % 100:02d}"


def filable_now(policy: Policy, award: Award, rows: Sequence[ScheduledDeadline]) -> list[Filable]:
    """Each filing deadline of the scheme that a filing would meet on time, or that is overdue
    and whose late filing the award's state allows (the test the filing itself applies)."""
    found = []
    for d in filing_deadlines(policy):
        late, on_time = filing_status(policy, award, d)
        if late or on_time:
            row = next((r for r in rows if r.kind == d.kind and r.status == OPEN), None)
            found.append(Filable(d.kind, d.label, late, row.due_at if row else None))
    return found


@dataclass(frozen=True)
class Chase:
    """A filing the admin dashboard chases, read off each filing's time against the deadline
    row it answers: late (filed after that occurrence fell due), missing (an occurrence passed
    and nothing answers it), or a report with figures not accepted (awaiting review, or sent
    back for more information and not yet filed again)."""

    award: Award
    label: str
    kind: str  # late, missing, awaiting_review, more_information
    period: str = ""
    report_id: int | None = None
    since: datetime | None = None
    due_at: datetime | None = None


def _in_region(column: Any, region: str | None) -> ColumnElement[bool]:
    if not region:
        return true()
    return col(column).in_(select(Organisation.id).where(Organisation.region == region))


def report_states(registry: SchemeRegistry, flag: str) -> set[str]:
    """The report states, across the current schemes, with this flag (reviewable, editable)."""
    return {
        s.name
        for sch in registry.current.values()
        if sch.policy.workflows.report is not None
        for s in sch.policy.workflows.report.states
        if getattr(s, flag)
    }


def to_chase(
    session: Session,
    registry: SchemeRegistry,
    *,
    now: datetime,
    region: str | None = None,
    limit: int = 50,
) -> list[Chase]:
    """Late, missing and not-accepted reports (of one region's organisations, if given): the
    newest first within late and missing, the oldest first within the others (at most `limit`
    of each)."""
    labels = {
        d.kind: d.label for sch in registry.current.values() for d in filing_deadlines(sch.policy)
    }
    live = {
        (sch.id, s.name)
        for sch in registry.current.values()
        for s in sch.policy.workflows.award.states
        if not s.terminal
    }
    out: list[Chase] = []
    late = session.exec(
        select(AnnualReport, Award, ScheduledDeadline.due_at)
        .join(Award, col(Award.id) == col(AnnualReport.award_id))
        .join(ScheduledDeadline, col(ScheduledDeadline.id) == col(AnnualReport.deadline_id))
        .where(
            col(AnnualReport.submitted_at) > col(ScheduledDeadline.due_at),
            _in_region(Award.organisation_id, region),
        )
        .order_by(col(AnnualReport.submitted_at).desc(), col(AnnualReport.id).desc())
        .limit(limit)
    )
    for report, award, due in late:
        out.append(
            Chase(
                award,
                labels.get(report.deadline_kind, report.deadline_kind),
                "late",
                period=report.period,
                report_id=report.id,
                since=report.submitted_at,
                due_at=due,
            )
        )
    answered = select(AnnualReport.deadline_id).where(col(AnnualReport.deadline_id).is_not(None))
    missing = session.exec(
        select(ScheduledDeadline, Award)
        .join(Award, col(Award.id) == col(ScheduledDeadline.subject_id))
        .where(
            ScheduledDeadline.subject_kind == "award",
            col(ScheduledDeadline.kind).in_(labels),
            col(ScheduledDeadline.due_at) <= now,
            col(ScheduledDeadline.status).in_((OPEN, "passed", "fired", "failed")),
            col(ScheduledDeadline.id).not_in(answered),
            _in_region(Award.organisation_id, region),
        )
        .order_by(col(ScheduledDeadline.due_at).desc(), col(ScheduledDeadline.id).desc())
        .limit(limit)
    )
    for row, award in missing:
        if (award.scheme, award.state) not in live:
            continue  # an award withdrawn or expired is chased for nothing more
        out.append(Chase(award, labels.get(row.kind, row.kind), "missing", due_at=row.due_at))
    for kind, flag in (("awaiting_review", "reviewable"), ("more_information", "editable")):
        pending = session.exec(
            select(AnnualReport, Award)
            .join(Award, col(Award.id) == col(AnnualReport.award_id))
            .where(
                col(AnnualReport.state).in_(report_states(registry, flag)),
                _in_region(Award.organisation_id, region),
            )
            .order_by(col(AnnualReport.state_changed_at), col(AnnualReport.id))
            .limit(limit)
        )
        for report, award in pending:
            out.append(
                Chase(
                    award,
                    labels.get(report.deadline_kind, report.deadline_kind),
                    kind,
                    period=report.period,
                    report_id=report.id,
                    since=report.state_changed_at,
                )
            )
    return out


def awaiting_review(
    session: Session, registry: SchemeRegistry, *, limit: int = 200
) -> list[tuple[AnnualReport, Award]]:
    """Reports with figures waiting for a reviewer (in a reviewable state), oldest first."""
    return [
        (r, a)
        for r, a in session.exec(
            select(AnnualReport, Award)
            .join(Award, col(Award.id) == col(AnnualReport.award_id))
            .where(col(AnnualReport.state).in_(report_states(registry, "reviewable")))
            .order_by(col(AnnualReport.state_changed_at), col(AnnualReport.id))
            .limit(limit)
        )
    ]


def get_report(session: Session, report_id: int) -> AnnualReport:
    """A filed report, by id."""
    report = session.get(AnnualReport, report_id)
    if report is None:
        raise NotFound(f"no report {report_id}")
    return report
