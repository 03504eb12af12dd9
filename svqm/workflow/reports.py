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

from sqlalchemy import func
from sqlmodel import Session, col, select

from svqm.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from svqm.evidence.storage import BlobStore, sanitise_filename
from svqm.policy import Deadline, Policy
from svqm.workflow import deadlines as arithmetic
from svqm.workflow import schedule
from svqm.workflow.deadlines import add_months

# The filings' tables live with the other subjects; read here as they always were.
from svqm.workflow.models import FILED as FILED
from svqm.workflow.models import AnnualReport as AnnualReport
from svqm.workflow.models import Award
from svqm.workflow.models import ReportFile as ReportFile
from svqm.workflow.schedule import ScheduledDeadline
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor, fire

_PERIOD = re.compile(r"^[0-9A-Za-z][0-9A-Za-z /\-]{0,19}$")


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
        report = new_report(award, d, period, actor, now, title=title.strip()[:200])
        report.filename, report.sha256 = clean_name, blob.sha256
        report.size, report.content_type = blob.size, blob.content_type
        session.add(report)
        session.flush()
        settle(session, award, d, report, overdue=overdue, actor=actor, registry=registry, now=now)
    except BaseException:
        if blob.created:
            store.delete(blob.sha256)
        raise
    return report


def _sent_back_states(session: Session, award: Award, registry: SchemeRegistry) -> list[str]:
    report = registry.for_subject(session, award).policy.workflows.report
    return [s.name for s in report.states if s.editable] if report else []


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

    A period is filed once; again only while its report is sent back (`sent_back`).
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
            col(AnnualReport.state).not_in(_sent_back_states(session, award, registry)),
        )
    ).first():
        raise Conflict(
            f"{d.label} for {period} is already filed; a correction is a new period or an admin's"
        )
    return period, d, overdue


def new_report(
    award: Award, d: Deadline, period: str, actor: Actor, now: datetime, *, title: str
) -> AnnualReport:
    """A filing of the award for one deadline and period, as filed now (a document; a report
    with figures then enters its workflow)."""
    assert award.id is not None
    return AnnualReport(
        award_id=award.id,
        organisation_id=award.organisation_id,
        scheme=award.scheme,
        level=award.level,
        policy_digest=award.policy_digest,
        deadline_kind=d.kind,
        period=period,
        title=title,
        filename="",
        sha256="",
        size=0,
        content_type="",
        submitted_by_id=actor.id,
        submitted_at=now,
        state=FILED,
        state_changed_at=now,
    )


def sent_back(
    session: Session, award: Award, kind: str, period: str, states: set[str]
) -> AnnualReport | None:
    """The award's report of this deadline and period that was sent back (in one of `states`,
    the report workflow's editable ones): filing the period again files it."""
    if not states:
        return None
    return session.exec(
        select(AnnualReport).where(
            AnnualReport.award_id == award.id,
            AnnualReport.deadline_kind == kind,
            func.lower(AnnualReport.period) == period.lower(),
            col(AnnualReport.state).in_(states),
        )
    ).first()


def _unanswered(session: Session, award: Award, kind: str) -> int | None:
    """The latest occurrence of the deadline that passed with no filing answering it."""
    answered = select(AnnualReport.deadline_id).where(col(AnnualReport.deadline_id).is_not(None))
    return session.exec(
        select(ScheduledDeadline.id)
        .where(
            ScheduledDeadline.subject_kind == "award",
            ScheduledDeadline.subject_id == award.id,
            ScheduledDeadline.kind == kind,
            col(ScheduledDeadline.status).in_(("passed", "fired", "failed")),
            col(ScheduledDeadline.id).not_in(answered),
        )
        .order_by(col(ScheduledDeadline.due_at).desc())
    ).first()


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
    """A filing made: late, it fires the deadline's `on_late_filing`; on time, it meets it.
    Either way the report records the occurrence it answers (`deadline_id`)."""
    if overdue:
        report.deadline_id = _unanswered(session, award, d.kind)
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
        report.deadline_id = _meet(session, award, d, report, registry, now)
        if report.deadline_id is None:
            report.deadline_id = _unanswered(session, award, d.kind)
    session.add(report)


def _meet(
    session: Session,
    award: Award,
    d: Deadline,
    report: AnnualReport,
    registry: SchemeRegistry,
    now: datetime,
) -> int | None:
    """Meet the deadline's open row; a repeating one only if it falls within one cycle from now.
    The row it met, if any.

    A second report in the same year is kept, but does not meet next year's deadline early.
    """
    policy = registry.for_subject(session, award).policy
    assert award.id is not None
    met = None
    for row in schedule.open_rows(session, "award", award.id):
        if row.kind != d.kind:
            continue
        if d.repeat_months is None or row.due_at <= add_months(now, d.repeat_months):
            if schedule.close(session, row, "met", now, f"report {report.id} filed"):
                met = row.id
    schedule.sync(session, policy, award, now)
    return met
