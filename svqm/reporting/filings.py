"""An award's filings as its holder reads them: what was filed, and what can be filed now."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from svqm.errors import NotFound
from svqm.policy import Policy
from svqm.workflow.deadlines import add_months
from svqm.workflow.models import Award
from svqm.workflow.reports import AnnualReport, filing_deadlines, filing_status
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
    """A filing the admin dashboard chases: late or missing (nothing filed, the award in a state
    its deadline's `on_late_filing` leaves: in force, late; out of force, missing), or a report
    with figures not accepted (awaiting review, or sent back for more information)."""

    award: Award
    label: str
    kind: str  # late, missing, awaiting_review, more_information
    period: str = ""
    report_id: int | None = None
    since: datetime | None = None


def to_chase(session: Session, registry: SchemeRegistry, *, limit: int = 50) -> list[Chase]:
    """Late, missing and not-accepted reports, oldest first within each kind (at most `limit`
    of each)."""
    out: list[Chase] = []
    # Which award states, per current scheme, a late filing would bring back, and the deadline.
    waiting: list[tuple[str, set[str], set[str], str]] = []
    for sch in registry.current.values():
        policy = sch.policy
        flow = policy.workflows.award
        in_force = {s.name for s in flow.states if s.in_force}
        for d in filing_deadlines(policy):
            if d.on_late_filing:
                waiting.append((sch.id, flow.leaves(d.on_late_filing), in_force, d.label))
    for scheme, states, in_force, label in waiting:
        rows = session.exec(
            select(Award)
            .where(Award.scheme == scheme, col(Award.state).in_(states))
            .order_by(col(Award.id))
            .limit(limit)
        )
        for a in rows:
            out.append(Chase(a, label, "late" if a.state in in_force else "missing"))
    labels = {
        d.kind: d.label for sch in registry.current.values() for d in filing_deadlines(sch.policy)
    }
    for review in ("awaiting_review", "more_information"):
        pending = session.exec(
            select(AnnualReport, Award)
            .join(Award, col(Award.id) == col(AnnualReport.award_id))
            .where(AnnualReport.review == review)
            .order_by(col(AnnualReport.submitted_at), col(AnnualReport.id))
            .limit(limit)
        )
        for report, award in pending:
            if review == "more_information" and _filed_again(session, report):
                continue
            out.append(
                Chase(
                    award,
                    labels.get(report.deadline_kind, report.deadline_kind),
                    review,
                    period=report.period,
                    report_id=report.id,
                    since=report.reviewed_at or report.submitted_at,
                )
            )
    return out


def _filed_again(session: Session, report: AnnualReport) -> bool:
    """Whether the period sent back for more information was filed again since."""
    return (
        session.exec(
            select(AnnualReport.id).where(
                AnnualReport.award_id == report.award_id,
                AnnualReport.deadline_kind == report.deadline_kind,
                func.lower(AnnualReport.period) == report.period.lower(),
                col(AnnualReport.id) > (report.id or 0),
            )
        ).first()
        is not None
    )


def awaiting_review(session: Session, *, limit: int = 200) -> list[tuple[AnnualReport, Award]]:
    """Reports with figures waiting for an assessor's review, oldest first."""
    return [
        (r, a)
        for r, a in session.exec(
            select(AnnualReport, Award)
            .join(Award, col(Award.id) == col(AnnualReport.award_id))
            .where(AnnualReport.review == "awaiting_review")
            .order_by(col(AnnualReport.submitted_at), col(AnnualReport.id))
            .limit(limit)
        )
    ]


def get_report(session: Session, report_id: int) -> AnnualReport:
    """A filed report, by id."""
    report = session.get(AnnualReport, report_id)
    if report is None:
        raise NotFound(f"no report {report_id}")
    return report
