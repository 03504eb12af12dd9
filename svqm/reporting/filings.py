"""An award's filings as its holder reads them: what was filed, and what can be filed now."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from svqm.policy import Policy
from svqm.workflow.deadlines import add_months
from svqm.workflow.models import Award
from svqm.workflow.reports import AnnualReport, filing_deadlines, filing_status
from svqm.workflow.schedule import OPEN, ScheduledDeadline


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
