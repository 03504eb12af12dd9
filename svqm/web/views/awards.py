"""Awards as people read them: the public record, the verdict of a check, and the holder's page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from svqm.accounts import service as accounts
from svqm.credentials.verification import Verification
from svqm.evidence.pledges import figure, number
from svqm.policy import Policy
from svqm.reporting import filings
from svqm.web.format import Tag, day, file_size, level_label, report_tag, state_tag
from svqm.web.schemas import AwardPublic
from svqm.web.views.applying import level_choices
from svqm.web.views.deadlines import describe, status_tag
from svqm.web.views.organisations import pledge_themes
from svqm.workflow import awards as award_queries
from svqm.workflow import commitments, progress, schedule
from svqm.workflow import service as workflow
from svqm.workflow.models import FILED, AnnualReport, Award
from svqm.workflow.reports import filing_deadlines
from svqm.workflow.schemes import SchemeRegistry


def award_public(session: Session, award: Award, registry: SchemeRegistry) -> AwardPublic:
    """An award as anyone may see it (the API's body and the directory's line)."""
    policy = registry.for_subject(session, award).policy
    return AwardPublic(
        id=award.id or 0,
        organisation_id=award.organisation_id,
        organisation_name=accounts.organisation_name(session, award.organisation_id),
        scheme=award.scheme,
        scheme_version=award.scheme_version,
        level=award.level,
        level_name=policy.level(award.level).name,
        state=award.state,
        version=award.version,
        certificate_number=award.certificate_number,
        issued_at=award.issued_at,
        expires_at=award.expires_at,
        supersedes_id=award.supersedes_id,
        verify_url=f"/awards/{award.id}/verify",
        certificate_url=f"/awards/{award.id}/certificate",
        credential_url=f"/api/v1/awards/{award.id}/credential",
    )


def verdict_of(
    result: Verification, session: Session, registry: SchemeRegistry, award: Award | None
) -> str:
    """The credential's verdict, unless the record says a newer award replaced it (superseded) or
    it left force early (expired: a lapsed or ended award whose dates have not run out)."""
    if result.verdict != "valid" or award is None:
        return result.verdict
    flow = registry.for_subject(session, award).policy.workflows.award
    if flow.state(award.state).in_force:
        return "valid"
    # A newer award supersedes an older one by firing the policy's `supersede` trigger on it.
    superseded = flow.enters(flow.supersede) if flow.supersede else set()
    return "superseded" if award.state in superseded else "expired"


def checked_award(
    session: Session, registry: SchemeRegistry, award: Award, result: Verification
) -> dict[str, Any]:
    """What the verify page and the certificate show of a checked award."""
    policy = registry.for_subject(session, award).policy
    successor = award_queries.successor_of(session, award)
    themes = {t.id: t.name for t in policy.themes}
    return {
        # The pledges as awarded: public fields only (no draft, narrative or file).
        "pledges": [
            {
                "theme": themes.get(p.theme, p.theme),
                "title": p.title,
                "indicator": p.indicator,
                "target": figure(p.target, p.unit),
                "due": day(p.due_date),
            }
            for p in commitments.award_pledges(session, [award])
        ],
        "award": award_public(session, award, registry),
        "scheme_name": policy.name,
        "state_title": policy.workflows.award.state(award.state).title,
        "verdict": verdict_of(result, session, registry, award),
        "checks": result.checks,
        "successor": successor.id if successor else None,
    }


@dataclass(frozen=True)
class HolderAward:
    """One of an organisation's awards as its holder sees it: deadlines, filings, what to file."""

    award: dict[str, Any]
    organisation: str
    deadlines: list[dict[str, Any]]
    reports: list[dict[str, Any]]
    filings: list[dict[str, Any]]
    several_filings: bool
    # What the holder may apply for from this award: a renewal, the next level (see `next_steps`).
    next_steps: list[dict[str, Any]]
    # The award's pledges by theme with their accepted figures and charts (as the public page),
    # and the rows of the figures form: one per pledge the award holds.
    themes: list[dict[str, Any]]
    pledges: list[dict[str, Any]]
    # The newest report with figures a reviewer sent back for more information, if any: its
    # period, its filing and its figures as filed, which the figures form offers to file again.
    sent_back: dict[str, Any] | None = None

    def entered(self) -> dict[str, str]:
        """The filing form as first shown: this year's period, and the filing if only one."""
        return {
            "period": next((f["period"] for f in self.filings if f["period"]), ""),
            "title": "",
            "deadline": self.filings[0]["kind"] if len(self.filings) == 1 else "",
        }

    def figures_entered(self) -> dict[str, str]:
        """The figures form as first shown: a report sent back is filed again (its period, its
        filing and its figures, to change), or else this year's period."""
        if self.sent_back is None:
            return {"period": self.entered()["period"]}
        return dict(self.sent_back["form"])


def holder_award(
    session: Session, registry: SchemeRegistry, award: Award, now: datetime
) -> HolderAward:
    """Read an award's page for its holder."""
    assert award.id is not None
    policy = registry.for_subject(session, award).policy
    rows = schedule.for_subject(session, "award", award.id)
    views = describe(session, registry, rows)
    labels = {d.kind: d.label for d in filing_deadlines(policy)}
    pledge_rows = commitments.award_pledges(session, [award])
    tag: Tag = state_tag(policy.workflows.award, award.state)
    filed = filings.reports_of(session, award.id)
    back = next(
        (
            r
            for r in filed
            if r.state != FILED and progress.review_of(policy, r) == "more_information"
        ),
        None,
    )
    return HolderAward(
        award={
            "id": award.id,
            "scheme": policy.name,
            "level": level_label(policy.level(award.level)),
            "certificate": award.certificate_number,
            "state": tag,
            "issued": day(award.issued_at),
            "expires": day(award.expires_at),
            "verify": f"/awards/{award.id}/verify",
            "organisation_id": award.organisation_id,
        },
        organisation=accounts.organisation_name(session, award.organisation_id),
        deadlines=[
            {"label": v.label, "due": day(v.due_at), "tag": status_tag(v, now)}
            for v in reversed(views)
        ],
        reports=[
            {
                "period": r.period,
                "for": labels.get(r.deadline_kind, r.deadline_kind),
                "title": r.title,
                "files": [{"name": r.filename, "size": file_size(r.size)}]
                if r.filename
                else [
                    {"name": f.filename, "size": file_size(f.size)}
                    for f in progress.files_of(session, r.id or 0)
                ],
                "filed": day(r.submitted_at),
                "review": report_tag(policy, r.state),
                # The reviewer's words when they asked for more (what the holder must answer).
                "comment": r.review_comment
                if progress.review_of(policy, r) == "more_information"
                else "",
            }
            for r in filed
        ],
        filings=[
            {
                "kind": f.kind,
                "label": f.label,
                "overdue": f.overdue,
                "due": day(f.due_at) if f.due_at else "",
                "period": f.period,
            }
            for f in filings.filable_now(policy, award, rows)
        ],
        several_filings=len(labels) > 1,
        next_steps=next_steps(session, policy, award, now),
        themes=pledge_themes(session, registry, [award], pledge_rows),
        pledges=[
            {
                "id": p.id,
                "title": p.title,
                "indicator": p.indicator,
                "unit": p.unit,
                "target": figure(p.target, p.unit),
            }
            for p in pledge_rows
        ],
        sent_back=_sent_back(session, back) if back is not None else None,
    )


def _sent_back(session: Session, report: AnnualReport) -> dict[str, Any]:
    """A report sent back for more information, and the figures form filled with it."""
    assert report.id is not None
    form = {"period": report.period, "deadline": report.deadline_kind}
    for f in progress.figures_of(session, [report.id])[report.id]:
        form[f"actual-{f.pledge_id}"] = number(f.actual).replace(",", "")
        form[f"narrative-{f.pledge_id}"] = f.narrative
        if f.private:
            form[f"private-{f.pledge_id}"] = "yes"
    return {"period": report.period, "comment": report.review_comment, "form": form}


def next_steps(
    session: Session, policy: Policy, award: Award, now: datetime
) -> list[dict[str, Any]]:
    """What the award's holder may apply for from it: a renewal (the same level) while a new award
    would supersede this one, and the next level up while this one is in force. Each says whether
    it can be started now (the level's prerequisite, the rule `open_application` checks), or the
    open application to continue instead; none once a renewal or upgrade has superseded it."""
    flow = policy.workflows.award
    renewable = flow.leaves(flow.supersede) if flow.supersede else set()
    if award.state not in renewable or award_queries.successor_of(session, award) is not None:
        return []
    in_force = {s.name for s in flow.states if s.in_force}
    ranks = sorted(policy.levels, key=lambda lv: lv.rank)
    rank = policy.level(award.level).rank
    higher = [lv for lv in ranks if lv.rank > rank]
    wanted = [("same", policy.level(award.level))]
    if higher and award.state in in_force:
        wanted.append(("next", higher[0]))
    choices = {c.id: c for c in level_choices(session, policy, award.organisation_id, now)[0]}
    steps = []
    for kind, level in wanted:
        label = level_label(level)
        steps.append(
            {
                "kind": kind,
                "level": label,
                "value": f"{policy.id}:{level.id}",
                "button": "Start renewal" if kind == "same" else "Apply for the next level",
                "ready": choices[level.id].ready,
                "needs": choices[level.id].needs,
                "open": workflow.open_application_id(
                    session, policy, award.organisation_id, level.id
                ),
                "carries": level.carry_pledges,
            }
        )
    return steps
