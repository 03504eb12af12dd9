"""Progress against pledges: the figures an award holder reports each period, and their review.

A report with figures is an annual report (svqm.workflow.reports) whose rows here give, per pledge,
the actual value of its key value indicator and a short narrative, with supporting files. Its
review follows the scheme's report workflow (policy `workflows.report`): an assessor (or an
admin) accepts it, or asks for more information with a comment; the holder then files the
period again. Each step is an audit event of the report (and noted on the award's trail).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, BinaryIO, Literal

from sqlalchemy import Column, Text, bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Field, Session, SQLModel, col, select

from svqm.db import PlainSelect
from svqm.errors import Conflict, InvalidInput, NotFound
from svqm.evidence import pledges as pledge_service
from svqm.evidence.storage import BlobStore, StoredBlob, sanitise_filename
from svqm.policy import Policy, Workflow
from svqm.workflow import awards as award_queries
from svqm.workflow import events, reports, schedule
from svqm.workflow.models import FILED, AnnualReport, Award, ReportFile
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor, fire, record_change

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


def review_of(policy: Policy, report: AnnualReport) -> str:
    """Where the report's review stands, in the engine's words whatever the scheme calls its
    states: filed (a document, no review), awaiting_review, accepted or more_information."""
    flow = policy.workflows.report
    if report.state == FILED or flow is None:
        return FILED
    state = flow.state(report.state)
    if state.published:
        return "accepted"
    if state.editable:
        return "more_information"
    return "awaiting_review" if state.reviewable else report.state


def report_workflow(session: Session, registry: SchemeRegistry, award: Award) -> Workflow:
    """The scheme's review of reports with figures (Conflict when it takes none)."""
    flow = registry.for_subject(session, award).policy.workflows.report
    if flow is None:
        raise Conflict("this scheme takes no figures: file its report as a document")
    return flow


Upload = tuple[BinaryIO | Iterable[bytes], str]


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
    files: Sequence[Upload] = (),
) -> AnnualReport:
    """File a period's report as figures: it meets the deadline like any filing and enters the
    scheme's report workflow, waiting for a reviewer. A period sent back is filed again on the
    same report (its figures replaced, its files added to), through the workflow's `resubmit`.
    Each supporting file (`files`: stream and name) goes through the evidence store's checks
    (size, type) after every other check."""
    check_figures(session, award, figures)
    flow = report_workflow(session, registry, award)
    period, d, overdue = reports.checked_filing(
        session, award, period=period, actor=actor, registry=registry, deadline=deadline, now=now
    )
    editable = {s.name for s in flow.states if s.editable}
    again = reports.sent_back(session, award, d.kind, period, editable)
    if files and store is None:
        raise ValueError("a file needs the store to keep it in")
    kept: list[tuple[StoredBlob, str]] = []
    try:
        for stream, filename in files:
            clean = sanitise_filename(filename)
            assert store is not None
            kept.append((store.put(stream), clean))
        if again is not None:
            report = again
            _replace_figures(session, report, figures)
            _add_files(session, report, kept, actor, now)
            assert flow.resubmit is not None
            fire(
                session,
                report,
                flow.resubmit,
                actor=actor,
                registry=registry,
                now=now,
                comment=f"{report.title} filed again",
            )
            return report
        report = reports.new_report(award, d, period, actor, now, title=f"{d.label} {period}")
        report.state = flow.initial
        report.assessor_id = award_queries.assessor_of(session, award)
        session.add(report)
        session.flush()
        add_figures(session, report, figures)
        _add_files(session, report, kept, actor, now)
        reports.settle(
            session, award, d, report, overdue=overdue, actor=actor, registry=registry, now=now
        )
        _opened(session, report, flow, actor, registry, now)
    except BaseException:
        for blob, _ in kept:
            if blob.created and store is not None:
                store.delete(blob.sha256)
        raise
    return report


def _opened(
    session: Session,
    report: AnnualReport,
    flow: Workflow,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
) -> None:
    """A report filed: its first audit event, its deadlines (the review's), and who is told."""
    event = record_change(
        session,
        report,
        "file_figures",
        actor=actor,
        registry=registry,
        now=now,
        comment=f"{report.title} filed",
    )
    policy = registry.for_subject(session, report).policy
    schedule.sync(session, policy, report, now)
    events.publish(
        session,
        events.Notice(
            kind="report",
            subject=report,
            event=event,
            policy=policy,
            roles=tuple(flow.notify_on_file),
            now=now,
            what="filed",
        ),
    )


def _replace_figures(session: Session, report: AnnualReport, figures: list[Figure]) -> None:
    for row in session.exec(select(PledgeProgress).where(PledgeProgress.report_id == report.id)):
        session.delete(row)
    session.flush()
    add_figures(session, report, figures)


def _add_files(
    session: Session,
    report: AnnualReport,
    kept: list[tuple[StoredBlob, str]],
    actor: Actor,
    now: datetime,
) -> None:
    assert report.id is not None
    for blob, name in kept:
        session.add(
            ReportFile(
                report_id=report.id,
                filename=name,
                sha256=blob.sha256,
                size=blob.size,
                content_type=blob.content_type,
                uploaded_by_id=actor.id,
                uploaded_at=now,
            )
        )
    session.flush()


def files_of(session: Session, report_id: int) -> list[ReportFile]:
    """A report's supporting files, in the order they were given."""
    return list(
        session.exec(
            select(ReportFile).where(ReportFile.report_id == report_id).order_by(col(ReportFile.id))
        )
    )


def get_file(session: Session, report_id: int, file_id: int) -> ReportFile:
    """One supporting file of a report."""
    found = session.get(ReportFile, file_id)
    if found is None or found.report_id != report_id:
        raise NotFound(f"report {report_id} has no file {file_id}")
    return found


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


# Built once, with bind parameters (the public page reads them on every request).
_ACCEPTED_BASE = (
    sa_select(col(PledgeProgress.pledge_id), col(AnnualReport.period), col(PledgeProgress.actual))
    .join(AnnualReport, col(AnnualReport.id) == col(PledgeProgress.report_id))
    .where(
        col(PledgeProgress.pledge_id).in_(bindparam("pledge_ids", expanding=True)),
        col(AnnualReport.published).is_(True),
    )
)
_ACCEPTED = PlainSelect(_ACCEPTED_BASE.order_by(col(AnnualReport.id)))
_ACCEPTED_ON_THEIRS = PlainSelect(
    _ACCEPTED_BASE.join(Award, col(Award.id) == col(AnnualReport.award_id))
    .where(col(Award.organisation_id).in_(bindparam("organisation_ids", expanding=True)))
    .order_by(col(AnnualReport.id))
)


def accepted_figures(
    session: Session, pledge_ids: list[int], organisations: Iterable[int] | None = None
) -> dict[int, list[tuple[str, float]]]:
    """Each pledge's accepted figures, one per period (the latest accepted), oldest period first;
    `organisations`: only those reported on these organisations' awards (the members of a group
    share its pledges, each reporting its own figures)."""
    if not pledge_ids:
        return {}
    params: dict[str, Any] = {"pledge_ids": list(pledge_ids)}
    if organisations is None:
        statement = _ACCEPTED
    else:
        statement, params["organisation_ids"] = _ACCEPTED_ON_THEIRS, list(organisations)
    session.flush()  # as the ORM's autoflush would: the read is on the session's connection
    by_pledge: dict[int, dict[str, float]] = {}
    for pledge_id, period, actual in statement.rows(session.connection(), params):
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
    visibility: str = "applicant",
) -> AnnualReport:
    """An assessor (or an admin) accepts the report's figures or asks for more information: the
    report workflow's step from its state into a published state, or into an editable one."""
    award = session.get(Award, report.award_id)
    if award is None:
        raise NotFound(f"no report {report.id}")
    if report.state == FILED:
        raise Conflict("this report is a document filing: it has no figures to review")
    flow = report_workflow(session, registry, award)
    state = flow.state(report.state)
    if not state.reviewable:
        raise Conflict(f"this report has already been reviewed ({state.title.lower()})")
    step = next(
        (
            t
            for t in flow.transitions
            if report.state in t.source
            and (
                flow.state(t.dest).published
                if decision == "accepted"
                else flow.state(t.dest).editable
            )
        ),
        None,
    )
    if step is None:
        raise Conflict(f"the scheme's report workflow has no step for '{decision}' from here")
    if decision == "more_information" and not comment.strip():
        raise InvalidInput(
            "say what is missing: a comment is required unless accepting", field="comment"
        )
    report.review_comment = comment.strip()
    report.reviewed_by_id = actor.id
    report.reviewed_at = now
    session.add(report)
    fire(
        session,
        report,
        step.trigger,
        actor=actor,
        registry=registry,
        now=now,
        comment=comment.strip(),
        visibility=visibility,
    )
    words = "accepted" if decision == "accepted" else "more information asked for"
    record_change(
        session,
        award,
        "review_report",
        actor=actor,
        registry=registry,
        now=now,
        comment=f"report {report.period} ({report.id}): {words}"
        + (f": {comment.strip()}" if comment.strip() and visibility != "internal" else ""),
    )
    return report
