"""Scoring against the standards: mandatory gates plus a weighted overall percentage. Pure.

The pass mark is a percentage (SVQM: 80%) or a number of points (B Corp: 80 of 200), the
level's own or the scheme's (`Policy.pass_mark`). Each question earns `weight x score /
max_score` points, so its weight is what it is worth at full marks. A points mark is also shown
as the percentage of the level's available points it stands for (`threshold`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from svqm.policy import Level, Policy


@dataclass
class ScoreResult:
    passed: bool
    overall_percent: float
    threshold: float
    standards: dict[str, float] = field(default_factory=dict)
    failed_mandatory: list[str] = field(default_factory=list)
    unscored: list[str] = field(default_factory=list)
    # Points earned and available; `pass_mark_points` is set when the mark is in points.
    points: float = 0.0
    points_available: float = 0.0
    pass_mark_points: float | None = None

    def _below_mark(self) -> bool:
        if self.pass_mark_points is not None:
            return self.points < self.pass_mark_points
        return self.overall_percent < self.threshold

    def reasons(self) -> list[str]:
        """Why the result is a fail, one line each; empty on a pass."""
        if self.passed:
            return []
        out = [f"not scored yet: {q}" for q in self.unscored]
        out += [f"mandatory question not met: {q}" for q in self.failed_mandatory]
        if self.pass_mark_points is not None and self._below_mark():
            out.append(
                f"overall score {self.points:g} points is below the "
                f"{self.pass_mark_points:g}-point pass mark"
            )
        elif self._below_mark():
            out.append(
                f"overall score {self.overall_percent:.1f}% is below the "
                f"{self.threshold:g}% pass mark"
            )
        return out


def evaluate(policy: Policy, level: Level, scores: dict[tuple[str, str], int]) -> ScoreResult:
    """Score a level's standards. An unscored question counts as 0 and fails the result."""
    unit, mark = policy.pass_mark(level)
    if not level.standards:
        return ScoreResult(
            passed=True, overall_percent=100.0, threshold=0.0 if unit == "points" else mark
        )
    total_weight = earned = 0.0
    result = ScoreResult(
        passed=False,
        overall_percent=0.0,
        threshold=mark,
        pass_mark_points=mark if unit == "points" else None,
    )
    for sid in level.standards:
        std = policy.standard(sid)
        std_weight = std_earned = 0.0
        for q in std.questions:
            key = (sid, q.id)
            score = scores.get(key)
            if score is None:
                result.unscored.append(f"{sid}/{q.id}")
                score = 0
            fraction = min(max(score, 0), q.max_score) / q.max_score
            std_weight += q.weight
            std_earned += q.weight * fraction
            met_at = q.max_score if q.met_at is None else q.met_at
            if q.mandatory and score < met_at:
                result.failed_mandatory.append(f"{sid}/{q.id} ({score} of {q.max_score})")
        result.standards[sid] = round(100 * std_earned / std_weight, 2)
        total_weight += std_weight
        earned += std_earned
    result.overall_percent = round(100 * earned / total_weight, 2)
    # Rounded only to drop float noise: 79.999 points must not pass an 80-point mark.
    result.points, result.points_available = round(earned, 6), round(total_weight, 6)
    if unit == "points":
        result.threshold = round(100 * mark / total_weight, 2)
    result.passed = not result.unscored and not result.failed_mandatory and not result._below_mark()
    return result
