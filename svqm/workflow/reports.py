"""Filings: documents an award holder (or an admin) files to meet an award's deadline.

A policy deadline with `filed_by` is met by a filing: SVQM's annual report, B Corp's annual fee
receipt and updated assessment, an ISO surveillance audit report. Filed while the deadline runs,
the filing closes its open row as met (and the next repeat opens). Filed while the award is in a
state the deadline's `on_late_filing` trigger leaves (it was missed), it fires that trigger, which
brings the award back into good standing. What was filed is read by svqm.reporting.filings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import BinaryIO

from sqlalchemy import Column, Text, func
from sqlmodel import Field, Session, SQLModel, col, select

from svqm.db import UtcDateTime
from svqm.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from svqm.evidence.storage import BlobStore, sanitise_filename
from svqm.policy import Deadline, Policy
from svqm.workflow import deadlines as arithmetic
from svqm.workflow import schedule
from svqm.workflow.deadlines import add_months
from svqm.workflow.models import Award
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor, fire

_PERIOD = re.compile(r"^[0-9A-Za-z][0-9A-Za-z /\-]{0,19}$")


class AnnualReport(SQLModel, table=True):
    __tablename__ = "annual_report"

    id: int | None = Field(default=None, primary_key=True)
    award_id: int = Field(foreign_key="award.id", index=True)
    # The deadline the filing was for (SVQM's annual report, a B Corp fee, an ISO surveillance).
    deadline_kind: str = Field(max_length=64)
    period: str = Field(max_length=20)
    title: str = Field(default="", max_length=200)
    filename: str = Field(max_length=255)
    sha256: str = Field(max_length=64)
    size: int
    content_type: str = Field(max_length=100)
    submitted_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    submitted_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    # A report with figures (svqm.workflow.progress) is reviewed: awaiting_review, then accepted or
    # more_information. A document-only filing is "filed" and needs no review.
    review: str = Field(default="filed", max_length=20)
    review_comment: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    reviewed_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    reviewed_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))


def filing_deadlines(policy: Policy) -> list[Deadline]:
    """The deadlines a filing meets, in policy order."""
    return [d for d in policy.deadlines if d.filed_by]


def filing_deadline(policy: Policy, kind: str | None) -> Deadline:
    """The deadline a filing is for: the named one, or the scheme's only one."""
    filings = filing_deadlines(policy)
    names = ", ".join(d.kind for d in filings) or "none"
    if kind is None:
        if len(filings) == 1:
            return filings[0]
        if not filings:
            raise Conflict(f"{policy.name} has no deadline that a filing meets")
        raise InvalidInput(
            f"deadline: say which deadline the filing is for ({names})", field="deadline"
        )
    found = next((d for d in filings if d.kind == kind), None)
    if found is None:
        raise InvalidInput(
            f"deadline: '{kind}' is not met by a filing (filings: {names})", field="deadline"
        )
    return found


def filing_status(policy: Policy, award: Award, d: Deadline) -> tuple[bool, bool]:
    """(late, on time): whether a filing now would fire `on_late_filing`, or meet the deadline."""
    workflow = policy.workflows.award
    late = d.on_late_filing is not None and (
        workflow.transition(d.on_late_filing, award.state) is not None
    )
    return late, arithmetic.applies(d, "award", award)


def _check(
    session: Session, award: Award, actor: Actor, registry: SchemeRegistry, kind: str | None
) -> tuple[Deadline, bool]:
    """The deadline and whether the filing is late; refuses whoever may not file, and when."""
    if actor.role == "applicant" and actor.organisation_id != award.organisation_id:
        raise NotFound(f"no award {award.id}")
    if actor.role not in ("applicant", "admin"):
        raise PermissionDenied("filings are made by the award holder or an admin")
    policy = registry.for_subject(session, award).policy
    d = filing_deadline(policy, kind)
    if actor.role not in d.filed_by:
        raise PermissionDenied(f"{d.label}: filed by {' or '.join(d.filed_by)} only")
    late, on_time = filing_status(policy, award, d)
    if not (late or on_time):
        state = policy.workflows.award.state(award.state).title
        raise Conflict(f"{d.label} cannot be filed while the award is {state}")
    return d, late


def file_report(
    session: Session,
    award: Award,
    store: BlobStore,
    *,
    period: str,
    stream: BinaryIO | Iterable[bytes],
    filename: str,
    title: str,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
    deadline: str | None = None,
) -> AnnualReport:
    """Store the filed document and record it; every check runs before a byte is read.

    `deadline` names the deadline the filing is for (`annual_fee`); left out, it is the scheme's
    only filing deadline (SVQM's annual report).
    """
    period, d, overdue = checked_filing(
        session, award, period=period, actor=actor, registry=registry, deadline=deadline, now=now
    )
    clean_name = sanitise_filename(filename)
    assert award.id is not None
    blob = store.put(stream)
    try:
        report = AnnualReport(
            award_id=award.id,
            deadline_kind=d.kind,
            period=period,
            title=title.strip()[:200],
            filename=clean_name,
            sha256=blob.sha256,
            size=blob.size,
            content_type=blob.content_type,
            submitted_by_id=actor.id,
            submitted_at=now,
        )
        session.add(report)
        session.flush()
        settle(session, award, d, report, overdue=overdue, actor=actor, registry=registry, now=now)
    except BaseException:
        if blob.created:
            store.delete(blob.sha256)
        raise
    return report


_YEAR = re.compile(r"(\d{4})")


def _check_year(period: str, award: Award, now: datetime) -> None:
    """Every year a period names lies within the award's life: from the year before it was
    issued to the year after this one (no 1900, no 2999)."""
    first, last = award.issued_at.year - 1, now.year + 1
    for year in (int(y) for y in _YEAR.findall(period)):
        if not first <= year <= last:
            raise InvalidInput(
                f"period: {year} is outside this award's years ({first} to {last})",
                field="period",
            )


def checked_filing(
    session: Session,
    award: Award,
    *,
    period: str,
    actor: Actor,
    registry: SchemeRegistry,
    deadline: str | None,
    now: datetime,
) -> tuple[str, Deadline, bool]:
    """The clean period, the deadline filed for and whether it is late; refuses what may not be.

    A period is filed once; again only when every filing of it was sent back for more information.
    """
    period = period.strip()
    if not _PERIOD.fullmatch(period):
        raise InvalidInput(
            "period: give the reporting year, e.g. 2027 (letters, digits, / or -)", field="period"
        )
    _check_year(period, award, now)
    d, overdue = _check(session, award, actor, registry, deadline)
    if session.exec(
        select(AnnualReport.id).where(
            AnnualReport.award_id == award.id,
            AnnualReport.deadline_kind == d.kind,
            func.lower(AnnualReport.period) == period.lower(),
            col(AnnualReport.review) != "more_information",
        )
    ).first():
        raise Conflict(
            f"{d.label} for {period} is already filed; a correction is a new period or an admin's"
        )
    return period, d, overdue


def settle(
    session: Session,
    award: Award,
    d: Deadline,
    report: AnnualReport,
    *,
    overdue: bool,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
) -> None:
    """A filing made: late, it fires the deadline's `on_late_filing`; on time, it meets it."""
    if overdue:
        assert d.on_late_filing is not None
        fire(
            session,
            award,
            d.on_late_filing,
            actor=actor,
            registry=registry,
            now=now,
            comment=f"{d.label.lower()} {report.period} filed ({report.id})",
        )
    else:
        _meet(session, award, d, report, registry, now)


def _meet(
    session: Session,
    award: Award,
    d: Deadline,
    report: AnnualReport,
    registry: SchemeRegistry,
    now: datetime,
) -> None:
    """Meet the deadline's open row; a repeating one only if it falls within one cycle from now.

    A second report in the same year is kept, but does not meet next year's deadline early.
    """
    policy = registry.for_subject(session, award).policy
    assert award.id is not None
    for row in schedule.open_rows(session, "award", award.id):
        if row.kind != d.kind:
            continue
        if d.repeat_months is None or row.due_at <= add_months(now, d.repeat_months):
            schedule.close(session, row, "met", now, f"report {report.id} filed")
    schedule.sync(session, policy, award, now)
