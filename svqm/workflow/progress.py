"""Progress against pledges: the figures an award holder reports each period, and their review.

A report with figures is an annual report (svqm.workflow.reports) whose rows here give, per pledge,
the actual value of its key value indicator and a short narrative. An assessor (or an admin)
accepts it, or asks for more information with a comment; the holder then files the period again.
Each decision is an audit event of the award.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import BinaryIO, Literal

from sqlalchemy import Column, Text, func
from sqlmodel import Field, Session, SQLModel, col, select

from svqm.accounts import service as accounts
from svqm.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from svqm.evidence import pledges as pledge_service
from svqm.evidence.storage import BlobStore, sanitise_filename
from svqm.workflow import reports
from svqm.workflow.models import Award
from svqm.workflow.reports import AnnualReport
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor, record_change

ReportDecision = Literal["accepted", "more_information"]


class PledgeProgress(SQLModel, table=True):
    """One pledge's figure in one report."""

    __tablename__ = "pledge_progress"

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="annual_report.id", index=True)
    pledge_id: int = Field(foreign_key="pledge.id", index=True)
    actual: float
    narrative: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # The holder's narrative is for the assessor only; the figure stays public once accepted.
    private: bool = False


class Figure(SQLModel):
    """A reported figure as the holder gives it."""

    pledge_id: int
    actual: float
    narrative: str = Field(default="", max_length=2000)
    private: bool = False


def check_figures(session: Session, award: Award, figures: list[Figure]) -> None:
    """Every figure is for a pledge the award holds, once each; refused naming what is wrong."""
    if not figures:
        raise InvalidInput("progress: give at least one pledge's figure", field="progress")
    held = {p.id: p for p in pledge_service.held_by(session, [award.application_id])}
    seen: set[int] = set()
    for i, f in enumerate(figures):
        if f.pledge_id not in held:
            known = ", ".join(str(pid) for pid in held) or "none"
            raise InvalidInput(
                f"progress[{i}].pledge_id: pledge {f.pledge_id} is not one this award holds "
                f"(its pledges: {known})",
                field="progress",
            )
        if f.pledge_id in seen:
            raise InvalidInput(
                f"progress[{i}].pledge_id: pledge {f.pledge_id} is given twice", field="progress"
            )
        seen.add(f.pledge_id)


def file_figures(
    session: Session,
    award: Award,
    *,
    period: str,
    figures: list[Figure],
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
    deadline: str | None = None,
    store: BlobStore | None = None,
    stream: BinaryIO | Iterable[bytes] | None = None,
    filename: str = "",
) -> AnnualReport:
    """File a period's report as figures: it meets the deadline like any filing and waits for an
    assessor's review. A supporting file (`stream`, `filename`) goes through the evidence store's
    checks (size, type) after every other check, and is kept with the report."""
    check_figures(session, award, figures)
    period, d, overdue = reports.checked_filing(
        session, award, period=period, actor=actor, registry=registry, deadline=deadline, now=now
    )
    assert award.id is not None
    # A period sent back for more information, filed again: its deadline was settled by the first
    # filing, so this one neither meets a deadline (next year's, early) nor fires anything.
    refiled = (
        session.exec(
            select(AnnualReport.id).where(
                AnnualReport.award_id == award.id,
                AnnualReport.deadline_kind == d.kind,
                func.lower(AnnualReport.period) == period.lower(),
                AnnualReport.review == "more_information",
            )
        ).first()
        is not None
    )
    blob, clean_name = None, ""
    if stream is not None:
        if store is None:
            raise ValueError("a file needs the store to keep it in")
        clean_name = sanitise_filename(filename)
        blob = store.put(stream)
    try:
        report = AnnualReport(
            award_id=award.id,
            deadline_kind=d.kind,
            period=period,
            title=f"{d.label} {period}",
            filename=clean_name if blob else "",
            sha256=blob.sha256 if blob else "",
            size=blob.size if blob else 0,
            content_type=blob.content_type if blob else "",
            submitted_by_id=actor.id,
            submitted_at=now,
            review="awaiting_review",
        )
        session.add(report)
        session.flush()
        add_figures(session, report, figures)
        if not refiled:
            reports.settle(
                session, award, d, report, overdue=overdue, actor=actor, registry=registry, now=now
            )
    except BaseException:
        if blob is not None and blob.created and store is not None:
            store.delete(blob.sha256)
        raise
    return report


def add_figures(session: Session, report: AnnualReport, figures: list[Figure]) -> None:
    """Store the report's figures."""
    assert report.id is not None
    for f in figures:
        session.add(
            PledgeProgress(
                report_id=report.id,
                pledge_id=f.pledge_id,
                actual=f.actual,
                narrative=f.narrative.strip(),
                private=f.private,
            )
        )
    session.flush()


def get_report(session: Session, award_id: int, report_id: int) -> AnnualReport:
    """A report of the award, by id."""
    report = session.get(AnnualReport, report_id)
    if report is None or report.award_id != award_id:
        raise NotFound(f"no report {report_id} of award {award_id}")
    return report


def figures_of(session: Session, report_ids: list[int]) -> dict[int, list[PledgeProgress]]:
    """The figures of these reports, by report."""
    out: dict[int, list[PledgeProgress]] = {rid: [] for rid in report_ids}
    if not report_ids:
        return out
    for row in session.exec(
        select(PledgeProgress)
        .where(col(PledgeProgress.report_id).in_(report_ids))
        .order_by(col(PledgeProgress.id))
    ):
        out[row.report_id].append(row)
    return out


def accepted_figures(session: Session, pledge_ids: list[int]) -> dict[int, list[tuple[str, float]]]:
    """Each pledge's accepted figures, one per period (the latest accepted), oldest period first."""
    if not pledge_ids:
        return {}
    rows = session.exec(
        select(PledgeProgress.pledge_id, AnnualReport.period, PledgeProgress.actual)
        .join(AnnualReport, col(AnnualReport.id) == col(PledgeProgress.report_id))
        .where(
            col(PledgeProgress.pledge_id).in_(pledge_ids),
            AnnualReport.review == "accepted",
        )
        .order_by(col(AnnualReport.id))
    )
    by_pledge: dict[int, dict[str, float]] = {}
    for pledge_id, period, actual in rows:
        by_pledge.setdefault(pledge_id, {})[period] = actual
    return {pid: sorted(periods.items()) for pid, periods in by_pledge.items()}


def review_report(
    session: Session,
    report: AnnualReport,
    decision: ReportDecision,
    *,
    comment: str,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
) -> AnnualReport:
    """An assessor (or an admin) accepts the report's figures or asks for more information."""
    if actor.role not in ("assessor", "admin"):
        raise PermissionDenied("reports are reviewed by an assessor or an admin")
    award = session.get(Award, report.award_id)
    if award is None:
        raise NotFound(f"no report {report.id}")
    if actor.role == "assessor" and accounts.conflicted(session, actor.id, award.organisation_id):
        raise PermissionDenied(
            "conflict of interest: you may not review this organisation's report"
        )
    if report.review != "awaiting_review":
        raise Conflict(f"this report has already been reviewed ({report.review.replace('_', ' ')})")
    if decision == "more_information" and not comment.strip():
        raise InvalidInput(
            "say what is missing: a comment is required unless accepting", field="comment"
        )
    report.review = decision
    report.review_comment = comment.strip()
    report.reviewed_by_id = actor.id
    report.reviewed_at = now
    session.add(report)
    words = "accepted" if decision == "accepted" else "more information asked for"
    record_change(
        session,
        award,
        "review_report",
        actor=actor,
        registry=registry,
        now=now,
        comment=f"report {report.period} ({report.id}): {words}"
        + (f": {comment.strip()}" if comment.strip() else ""),
    )
    return report
