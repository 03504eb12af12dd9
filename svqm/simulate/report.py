"""What a simulation produced, read back from its database, and the table `svqm simulate` prints."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from rich.table import Table
from sqlalchemy import func
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from svqm.evidence.models import AssessorScore, Pledge, ScoreChange
from svqm.evidence.pledges import target_number
from svqm.notify.models import DEAD, OutboxMessage
from svqm.policy import Policy
from svqm.workflow import audits, consultation, invoices, progress
from svqm.workflow.audit import count_events, verify_chain
from svqm.workflow.models import FILED, AnnualReport, Application, AuditEvent, Award, DecisionVote
from svqm.workflow.progress import PledgeProgress


@dataclass
class SimulationResult:
    """The figures of one run; everything but `wall_seconds` is the same for the same seed."""

    scheme: str
    scheme_name: str
    organisations: int
    years: float
    seed: int
    start: datetime
    end: datetime
    days: int
    awards_by_level: dict[str, int]  # level name -> awards issued
    in_force_by_level: dict[str, int]  # level name -> awards in force at the end
    award_states: dict[str, int]
    application_states: dict[str, int]
    renewals: int  # awards superseded by a new award of the same level
    upgrades: int  # ... by an award of a higher level
    award_events: dict[str, int]  # award trigger -> times fired
    reminders: dict[str, int]  # deadline kind -> reminders enqueued
    deadlines_passed: dict[str, int]  # deadline kind -> times it passed
    sweep_refusals: int
    emails_delivered: int
    emails_undeliverable: int
    actions: int  # what the simulated people did through the services
    sweep_rows: int  # deadline rows the sweeps handled
    audit_events: int
    audit_problems: list[str] | None  # None: not verified
    refused: dict[str, int] = field(default_factory=dict)  # steps the engine turned down
    # Pledges made, reported on (a figure filed), on track and missed (the latest accepted figure
    # meets its target, or falls short of it); reports with figures by their review.
    pledges: dict[str, int] = field(default_factory=dict)
    figure_reports: dict[str, int] = field(default_factory=dict)
    # Re-applications after a refusal, double marking and moderation, and the decisions of steps
    # that need several members (an appeal decided by two independent panel members).
    judgement: dict[str, int] = field(default_factory=dict)
    # Audits booked (a start date confirmed) and moved; consultation invitations and answers, and
    # consultations closed before the assessor's review (nobody invited).
    audits: dict[str, int] = field(default_factory=dict)
    consultation: dict[str, int] = field(default_factory=dict)
    # Invoices issued (on submission), paid (late: after the due date) and unpaid, credit notes
    # (withdrawals), those of re-applications, and steps that waited for payment.
    invoices: dict[str, int] = field(default_factory=dict)
    wall_seconds: float = 0.0
    labels: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def events(self) -> int:
        """Simulated events: people's actions, deadline rows swept and emails delivered."""
        return self.actions + self.sweep_rows + self.emails_delivered

    @property
    def awards_issued(self) -> int:
        return sum(self.awards_by_level.values())

    def figures(self) -> dict[str, Any]:
        """Every figure that a seed determines (for comparing two runs)."""
        out = asdict(self)
        out.pop("wall_seconds")
        return out


def _counts(session: Session, column: Any, *where: Any) -> dict[str, int]:
    rows = session.exec(select(column, func.count()).where(*where).group_by(column)).all()
    return {str(k): int(n) for k, n in sorted(rows)}


def read_back(session: Session, policy: Policy, *, verify: bool) -> dict[str, Any]:
    """The figures kept in the database: awards, states, supersessions, events, the outbox."""
    names = {lv.id: lv.name for lv in policy.levels}
    ranks = {lv.id: lv.rank for lv in policy.levels}
    in_force = [s.name for s in policy.workflows.award.states if s.in_force]
    old = aliased(Award)
    renewals = upgrades = 0
    for new_level, old_level in session.exec(
        select(Award.level, old.level).join(old, col(Award.supersedes_id) == old.id)
    ):
        if ranks[new_level] > ranks[old_level]:
            upgrades += 1
        else:
            renewals += 1
    problems: list[str] | None = None
    if verify:
        checked, found = verify_chain(session)
        problems = [str(p) for p in found]
    else:
        checked = count_events(session)

    def by_level(counts: dict[str, int]) -> dict[str, int]:
        return {names[k]: counts.get(k, 0) for k in sorted(names, key=ranks.__getitem__)}

    return {
        "awards_by_level": by_level(_counts(session, Award.level)),
        "in_force_by_level": by_level(
            _counts(session, Award.level, col(Award.state).in_(in_force))
        ),
        "award_states": _counts(session, Award.state),
        "application_states": _counts(session, Application.state),
        "renewals": renewals,
        "upgrades": upgrades,
        "award_events": _counts(session, AuditEvent.trigger, AuditEvent.subject_kind == "award"),
        "emails_undeliverable": session.exec(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == DEAD)
        ).one(),
        "audit_events": checked,
        "audit_problems": problems,
        "pledges": pledge_progress(session),
        "judgement": judgement_counts(session, policy),
        "audits": {
            "booked": _counts(session, AuditEvent.trigger).get(audits.CONFIRM, 0),
            "rescheduled": _counts(session, AuditEvent.trigger).get(audits.RESCHEDULE, 0),
        },
        "consultation": consultation.counts(session),
        "invoices": invoices.counts(session),
        # Each report with figures by where its review stands (filed again, it is one report).
        "figure_reports": dict(
            Counter(
                progress.review_of(policy, r).replace("_", " ")
                for r in session.exec(select(AnnualReport).where(AnnualReport.state != FILED))
            )
        ),
    }


def judgement_counts(session: Session, policy: Policy) -> dict[str, int]:
    """Re-applications, double marking and moderation, and decisions needing several members."""

    def count(model: Any, *where: Any) -> int:
        return int(session.exec(select(func.count()).select_from(model).where(*where)).one())

    several = [t.trigger for t in policy.workflows.application.transitions if t.quorum > 1]
    return {
        "re-applications after a refusal": count(
            Application, col(Application.reapplies_id).is_not(None)
        ),
        "applications scored by two assessors": int(
            session.exec(select(func.count(func.distinct(AssessorScore.application_id)))).one()
        ),
        "scores agreed from two close ones": count(
            ScoreChange, ScoreChange.kind == "agreed", col(ScoreChange.new).is_not(None)
        ),
        "scores settled by a moderator": count(ScoreChange, ScoreChange.kind == "moderated"),
        "panel members' decisions recorded": count(DecisionVote),
        "steps decided by several members agreeing": count(
            AuditEvent,
            col(AuditEvent.trigger).in_(several),
            AuditEvent.source != AuditEvent.dest,
        )
        if several
        else 0,
    }


def pledge_progress(session: Session) -> dict[str, int]:
    """Pledges made, reported on, on track and missed: a pledge is on track when its latest
    accepted figure meets its target, missed when it falls short (higher is better)."""
    made = session.exec(select(func.count()).select_from(Pledge)).one()
    reported = session.exec(select(func.count(func.distinct(PledgeProgress.pledge_id)))).one()
    latest: dict[int, float] = {}
    for pledge_id, actual in session.exec(
        select(PledgeProgress.pledge_id, PledgeProgress.actual)
        .join(AnnualReport, col(AnnualReport.id) == col(PledgeProgress.report_id))
        .where(col(AnnualReport.published).is_(True))
        .order_by(col(AnnualReport.id))
    ):
        latest[pledge_id] = actual
    on_track = missed = 0
    if latest:
        targets = {
            p.id: target_number(p.target)
            for p in session.exec(select(Pledge).where(col(Pledge.id).in_(list(latest))))
        }
        for pid, actual in latest.items():
            target = targets.get(pid)
            if target is None:
                continue
            if actual >= target:
                on_track += 1
            else:
                missed += 1
    return {"made": made, "reported": reported, "on track": on_track, "missed": missed}


def labels_of(policy: Policy) -> dict[str, str]:
    """How the table names states, triggers and deadline kinds: the policy's own labels."""
    out: dict[str, str] = {}
    for kind in ("application", "award"):
        wf = policy.workflows.of(kind)
        out |= {f"{kind}:{s.name}": s.title for s in wf.states}
        out |= {f"{kind}:{t.trigger}": t.title for t in wf.transitions}
    out |= {f"deadline:{d.kind}": d.label for d in policy.deadlines}
    return out


def _n(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def report_table(result: SimulationResult) -> Table:
    """The result as a rich table: awards, renewals, expiries, suspensions, reminders, emails."""
    r, label = result, result.labels
    table = Table(
        title=(
            f"Simulation of {r.scheme_name} ({r.scheme}): {r.organisations:,} organisations, "
            f"{r.years:g} year{'' if r.years == 1 else 's'}, seed {r.seed}"
        )
    )
    table.add_column("measure", overflow="fold")
    table.add_column("value", justify="right")

    def section(title: str, rows: dict[str, int], kind: str = "") -> None:
        table.add_row(f"[bold]{title}[/]", _n(sum(rows.values())))
        for key, n in rows.items():
            table.add_row(f"  {label.get(f'{kind}:{key}', key)}", _n(n))
        table.add_section()

    table.add_row("simulated period", f"{r.start:%Y-%m-%d} to {r.end:%Y-%m-%d} ({r.days:,} days)")
    table.add_section()
    section("awards issued", r.awards_by_level)
    section("awards in force at the end", r.in_force_by_level)
    table.add_row("renewals (superseded by the same level)", _n(r.renewals))
    table.add_row("upgrades (superseded by a higher level)", _n(r.upgrades))
    table.add_section()
    section("award events (expiries, suspensions, ...)", r.award_events, "award")
    section("applications by state at the end", r.application_states, "application")
    section("reminders by kind", r.reminders, "deadline")
    section("deadlines passed by kind", r.deadlines_passed, "deadline")
    table.add_row("[bold]pledges made[/]", _n(r.pledges.get("made", 0)))
    for key in ("reported", "on track", "missed"):
        table.add_row(f"  {key}", _n(r.pledges.get(key, 0)))
    section("reports with figures by review", r.figure_reports)
    section("re-applications, double marking and panel decisions", r.judgement)
    table.add_row("[bold]audits booked[/]", _n(r.audits.get("booked", 0)))
    table.add_row("  rescheduled", _n(r.audits.get("rescheduled", 0)))
    table.add_row(
        "[bold]stakeholders invited to consultations[/]", _n(r.consultation.get("invited", 0))
    )
    table.add_row("  answered", _n(r.consultation.get("answered", 0)))
    table.add_row(
        "  closed before the review (nobody invited)",
        _n(r.consultation.get("closed before the review", 0)),
    )
    table.add_row("[bold]invoices issued[/]", _n(r.invoices.get("issued", 0)))
    for key in (
        "paid",
        "paid after the due date",
        "unpaid",
        "credit notes",
        "for re-applications",
        "steps that waited for payment",
    ):
        table.add_row(f"  {key}", _n(r.invoices.get(key, 0)))
    table.add_row("emails delivered (counting mailer)", _n(r.emails_delivered))
    table.add_row("emails with nobody to send to", _n(r.emails_undeliverable))
    table.add_row("steps the engine refused", _n(sum(r.refused.values()) + r.sweep_refusals))
    table.add_section()
    table.add_row("[bold]simulated events[/]", _n(r.events))
    table.add_row("  people's actions through the services", _n(r.actions))
    table.add_row("  deadline rows handled by the sweep", _n(r.sweep_rows))
    table.add_row("  emails delivered", _n(r.emails_delivered))
    audit = (
        "not verified"
        if r.audit_problems is None
        else ("chains intact" if not r.audit_problems else f"{len(r.audit_problems)} PROBLEMS")
    )
    table.add_row("audit events", f"{r.audit_events:,} ({audit})")
    rate = r.events / r.wall_seconds if r.wall_seconds else 0.0
    table.add_row("wall time", f"{r.wall_seconds:,.1f} s ({rate:,.0f} events/s)")
    return table
