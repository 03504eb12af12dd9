"""What anyone reads on an organisation's public page: its awards in force and its pledges by theme,
each with its target, the figures accepted so far and the chart of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from svqm.evidence.pledges import figure, number
from svqm.web.format import day, level_label, state_tag
from svqm.workflow import commitments
from svqm.workflow.commitments import AwardInForce, PublicPledge
from svqm.workflow.models import Award
from svqm.workflow.schemes import SchemeRegistry


@dataclass(frozen=True)
class OrganisationPage:
    title: str
    organisation: dict[str, Any]
    awards: list[dict[str, Any]]
    themes: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Words:
    """A pledge's figures as read, each written once for its row and its chart alike."""

    unit: str  # " people", or "" without a unit
    baseline: str  # "" without one
    actuals: list[str]  # each accepted figure, oldest period first
    target: str  # the target as `figure` writes it, with its unit
    due: str

    @classmethod
    def of(cls, p: PublicPledge) -> _Words:
        return cls(
            f" {p.unit}" if p.unit else "",
            number(p.baseline) if p.baseline is not None else "",
            [number(g.actual) for g in p.progress],
            figure(p.target, p.unit),
            day(p.due_date),
        )


def chart_of(p: PublicPledge, words: _Words) -> dict[str, Any]:
    """A pledge's chart: its baseline, each accepted figure and its target, and the words for them."""
    bars: list[dict[str, Any]] = []
    if p.baseline is not None:
        bars.append(
            {"label": "Baseline", "value": p.baseline, "kind": "baseline", "text": words.baseline}
        )
    bars += [
        {"label": g.period, "value": g.actual, "kind": "actual", "text": text}
        for g, text in zip(p.progress, words.actuals, strict=True)
    ]
    target = p.target_value
    shown: list[float] = [float(b["value"]) for b in bars]
    if target is not None:
        shown.append(target)
    latest = p.latest
    if latest is None:
        said = "No figures reported and accepted yet."
    else:
        said = f"Latest accepted figure: {words.actuals[-1]}{words.unit} in {latest.period}."
    target_words = f"Target {words.target}" if target is not None else ""
    return {
        "id": f"pledge-{p.id}-chart",
        "title": f"{p.indicator}: figures against the target",
        "description": " ".join(
            w
            for w in (
                f"Baseline {words.baseline}{words.unit}." if p.baseline is not None else "",
                f"{target_words} by {words.due}." if target_words else "",
                said,
            )
            if w
        ),
        "bars": bars,
        "target": target,
        "target_text": number(target) if target is not None else "",
        "largest": max([*shown, 1.0]),
        "smallest": min([*shown, 0.0]),
    }


def pledge_themes(
    session: Session,
    registry: SchemeRegistry,
    awards: Sequence[Award | AwardInForce],
    pledges: list[PublicPledge] | None = None,
) -> list[dict[str, Any]]:
    """The awards' pledges as awarded, by theme, each with its target, accepted figures and chart:
    what the public page and the holder's award page show alike (public/_pledge_progress.html)."""
    if pledges is None:
        pledges = commitments.award_pledges(session, awards)
    names: dict[str, str] = {}
    for a in awards:
        # The scheme version the award was made under (as `registry.for_subject`).
        for t in registry.by_digest(session, a.policy_digest).policy.themes:
            names.setdefault(t.id, t.name)
    by_theme: dict[str, list[dict[str, Any]]] = {}
    for p in pledges:
        words = _Words.of(p)
        unit_words = words.unit
        latest = p.latest
        by_theme.setdefault(p.theme, []).append(
            {
                "id": p.id,
                "title": p.title,
                "indicator": p.indicator,
                "unit": p.unit,
                "baseline": words.baseline,
                "target": words.target,
                "due": words.due,
                "latest": f"{words.actuals[-1]}{unit_words} ({latest.period})" if latest else "",
                "progress": [
                    {"period": g.period, "actual": f"{text}{unit_words}"}
                    for g, text in zip(p.progress, words.actuals, strict=True)
                ],
                "chart": chart_of(p, words),
            }
        )
    return [
        {"id": tid, "name": names.get(tid, tid), "pledges": rows}
        for tid, rows in sorted(by_theme.items(), key=lambda kv: names.get(kv[0], kv[0]))
    ]


def organisation_page(
    session: Session, registry: SchemeRegistry, organisation_id: int, now: datetime
) -> OrganisationPage:
    """The organisation's public commitments; NotFound when it holds no award in force."""
    found = commitments.commitments(session, registry, organisation_id, now)
    org = found.organisation
    awards = []
    for a in found.awards:
        policy = registry.by_digest(session, a.policy_digest).policy  # as `for_subject`
        awards.append(
            {
                "id": a.id,
                "scheme": policy.name,
                "level": level_label(policy.level(a.level)),
                "state": state_tag(policy.workflows.award, a.state),
                "issued": day(a.issued_at),
                "expires": day(a.expires_at),
                "certificate": a.certificate_number,
            }
        )
    themes = pledge_themes(session, registry, found.awards, found.pledges)
    return OrganisationPage(
        title=org.name,
        organisation={"id": org.id, "name": org.name, "sector": org.sector, "region": org.region},
        awards=awards,
        themes=themes,
    )
