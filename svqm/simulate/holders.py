"""Award holders: file what their award's deadlines ask for, then renew, upgrade or let it go."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from svqm.evidence import pledges as pledge_service
from svqm.simulate.cast import Cast
from svqm.simulate.world import Member
from svqm.workflow import progress, reports, schedule
from svqm.workflow.deadlines import add_months
from svqm.workflow.models import Award

LATE_NOW_AND_THEN = 0.05  # an on-time filer who is late this time
RENEW_LEAD_DAYS = (45, 150)  # how long before expiry a renewal application is opened
DELIVERY = (0.6, 1.3)  # how much of its targets an organisation delivers (below 1: it falls short)
REVIEW_DAYS = (2, 20)  # how long a report with figures waits for an assessor
SENT_BACK = 0.1  # reports an assessor sends back for more information
REFILE_DAYS = (3, 20)  # how long the holder takes to file the period again


class Holders(Cast):
    """What an organisation does with the award it holds."""

    def holding(self, session: Session, m: Member, award: Award, now: datetime) -> None:
        """A new award: plan its filings, then an upgrade or a renewal (or neither)."""
        assert award.id is not None
        m.award_id, m.award_level = award.id, award.level
        self._plan_filings(session, m, award, now)
        higher = self.next_level(award.level)
        if higher is not None and self.rng.random() < m.ambition:
            wait = higher.requires.held_months if higher.requires else 0
            eligible = add_months(award.issued_at, wait) + timedelta(days=self.rng.uniform(5, 60))
            when = max(eligible, now + timedelta(days=self.rng.uniform(30, 150)))
            if when < award.expires_at - timedelta(days=60):
                self.at(m, when, "apply_again", award.id, higher.id, after=now)
                return
        if m.renews:
            lead = timedelta(days=self.rng.uniform(*RENEW_LEAD_DAYS))
            self.at(m, award.expires_at - lead, "apply_again", award.id, award.level, after=now)

    def _apply_again(
        self, session: Session, m: Member, award_id: int, level_id: str, now: datetime
    ) -> None:
        """Apply again for the award's level (a renewal) or the next one (an upgrade)."""
        award = session.get(Award, award_id)
        if award is None or award.id != m.award_id or award.state not in self.renewable:
            return
        upgrade = level_id != award.level and award.state in self.in_force
        applied = self._apply(session, m, award_id, level_id if upgrade else award.level, now)
        if upgrade and not applied:
            self.later(m, now, (1, 30), "apply_again", award_id, award.level)

    def _plan_filings(self, session: Session, m: Member, award: Award, now: datetime) -> None:
        """Plan a filing for each open filing deadline not yet planned, by the holder's habit."""
        if not self.filings or m.reporting == "never":
            return
        assert award.id is not None
        rows = {r.kind: r for r in schedule.open_rows(session, "award", award.id)}
        for d in self.filings:
            row = rows.get(d.kind)
            if row is None or (award.id, d.kind) in self._planned:
                continue
            late = d.on_late_filing is not None and (
                m.reporting == "late" or self.rng.random() < LATE_NOW_AND_THEN
            )
            if late:
                when = row.due_at + timedelta(days=self.rng.uniform(2, 25))
            else:
                when = row.due_at - timedelta(days=self.rng.uniform(1, 45))
            self._planned.add((award.id, d.kind))
            self.at(m, when, "file", award.id, d.kind, after=now)

    def _file(self, session: Session, m: Member, award_id: int, kind: str, now: datetime) -> None:
        """File for one deadline if it is asked for now (on time, or late where that is allowed)."""
        self._planned.discard((award_id, kind))
        award = session.get(Award, award_id)
        if award is None or award.id != m.award_id:
            return
        d = next(d for d in self.filings if d.kind == kind)
        late, on_time = reports.filing_status(self.policy, award, d)
        if late or on_time:
            # The holder files where it may; otherwise an admin files on its behalf.
            filer = m.actor if "applicant" in d.filed_by else self.rng.choice(self.staff["admin"])
            if d is self.filings[0] and self._file_figures(session, m, award, f"{now:%Y}", now):
                self._plan_filings(session, m, award, now)
                return
            reports.file_report(
                session,
                award,
                self.store,
                period=f"{now:%Y}",
                # Chunks rather than a file object: see People._prepare.
                stream=(f"{d.label}\n".encode(),),
                filename=f"{d.kind}.txt",
                title=d.label,
                actor=filer,
                registry=self.registry,
                now=now,
                deadline=d.kind,
            )
            self.actions += 1
        self._plan_filings(session, m, award, now)

    def _figures(self, session: Session, award: Award) -> list[progress.Figure]:
        """This year's figure for each pledge with a numeric target, by the holder's delivery."""
        delivery = self._delivery.setdefault(award.organisation_id, self.rng.uniform(*DELIVERY))
        out = []
        for p in pledge_service.held_by(session, [award.application_id]):
            target = pledge_service.target_number(p.target)
            if target is None or p.id is None:
                continue
            actual = round(target * delivery * self.rng.uniform(0.85, 1.15), 1)
            out.append(progress.Figure(pledge_id=p.id, actual=actual, narrative="Simulated."))
        return out

    def _file_figures(
        self, session: Session, m: Member, award: Award, period: str, now: datetime
    ) -> bool:
        """The annual report as figures against the award's pledges (False: it holds none with a
        numeric target, so a document is filed); an assessor reviews it some days later."""
        figures = self._figures(session, award)
        if not figures:
            return False
        report = progress.file_figures(
            session,
            award,
            period=period,
            figures=figures,
            actor=m.actor,
            registry=self.registry,
            now=now,
            deadline=self.filings[0].kind,
        )
        assert report.id is not None
        self.actions += 1
        self.later(m, now, REVIEW_DAYS, "review_report", report.id)
        return True

    def _review_report(
        self, session: Session, m: Member, report_id: int, _arg: str, now: datetime
    ) -> None:
        """An assessor accepts the figures, or now and then asks for more information (the holder
        then files the period again)."""
        report = session.get(reports.AnnualReport, report_id)
        if report is None or progress.review_of(self.policy, report) != "awaiting_review":
            return
        reviewer = self.rng.choice(self.staff.get("assessor") or self.staff["admin"])
        sent_back = self.rng.random() < SENT_BACK
        progress.review_report(
            session,
            report,
            "more_information" if sent_back else "accepted",
            comment="Say how the figures were counted." if sent_back else "",
            actor=reviewer,
            registry=self.registry,
            now=now,
        )
        self.actions += 1
        if sent_back:
            self.later(m, now, REFILE_DAYS, "refile", report.award_id, report.period)

    def _refile(
        self, session: Session, m: Member, award_id: int, period: str, now: datetime
    ) -> None:
        """File a period sent back for more information again."""
        award = session.get(Award, award_id)
        if award is None or award.id != m.award_id:
            return
        late, on_time = reports.filing_status(self.policy, award, self.filings[0])
        if late or on_time:
            self._file_figures(session, m, award, period, now)
