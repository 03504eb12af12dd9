"""The three comparison schemes (B Corp-, IiP- and ISO/IEC 17021-style) written as policy files alone,
and the language features they needed: points pass marks, level pass marks, filings, repeats that
count from when they were met and end with a calendar year, and deadlines that stop at expiry."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from svqm.cli import app as cli
from svqm.evidence.scoring import evaluate
from svqm.policy import Deadline, Policy, parse_policy
from svqm.workflow import deadlines as arithmetic
from svqm.workflow.schemes import SchemeRegistry, known_effects, known_guards
from tests.conftest import POLICIES

SCHEMES = ["bcorp-style", "iip-style", "iso17021-style"]
runner = CliRunner()


def _all(policy: Policy, level_id: str, score: int) -> dict[tuple[str, str], int]:
    """The same score for every question of the level."""
    level = policy.level(level_id)
    return {(sid, q.id): score for sid in level.standards for q in policy.standard(sid).questions}


# The files pass the check and draw ---------------------------------------------------------------


def test_each_scheme_passes_policy_check() -> None:
    files = [POLICIES / f"{s}.yaml" for s in SCHEMES]
    result = runner.invoke(cli, ["policy", "check", *map(str, files)])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert [line.split(" (")[0] for line in result.stdout.splitlines()] == [
        f"ok: {f}" for f in files
    ]


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
@pytest.mark.parametrize("kind", ["application", "award"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_each_scheme_diagram_renders_as_svg(scheme: str, kind: str, tmp_path: Path) -> None:
    target = tmp_path / f"{scheme}-{kind}.svg"
    result = runner.invoke(
        cli,
        ["policy", "diagram", scheme, "--kind", kind, "--format", "svg", "--output", str(target)],
    )
    assert result.exit_code == 0, result.stderr
    root = ET.fromstring(target.read_text(encoding="utf-8"))
    assert root.tag in ("svg", "{http://www.w3.org/2000/svg}svg")
    # Every scheme's award workflow has `renew` (issue_award needs it); every application `submit`.
    assert ("renew" if kind == "award" else "submit") in target.read_text(encoding="utf-8")


def test_unconfirmed_values_are_marked(registry: SchemeRegistry) -> None:
    for scheme in SCHEMES:
        text = (POLICIES / f"{scheme}.yaml").read_text(encoding="utf-8")
        assert "[U]" in text, scheme
        assert registry.get(scheme).policy.workflows.award.initial == "active"


# B Corp: 80 verified points of 200 -----------------------------------------------------------------


def test_bcorp_passes_on_80_points_of_200(registry: SchemeRegistry) -> None:
    policy = registry.get("bcorp-style").policy
    level = policy.level("certified")
    assert policy.pass_mark(level) == ("points", 80)
    top = evaluate(policy, level, _all(policy, "certified", 4))
    assert (top.points, top.points_available) == (200, 200)
    # Half marks are 100 points: a pass on points although only 50% overall.
    half = evaluate(policy, level, _all(policy, "certified", 2))
    assert half.passed
    assert (half.points, half.overall_percent) == (100, 50.0)
    # The points mark is shown as the share of the available points it stands for.
    assert half.threshold == 40.0
    quarter = evaluate(policy, level, _all(policy, "certified", 1))
    assert not quarter.passed
    assert quarter.reasons() == ["overall score 50 points is below the 80-point pass mark"]


def test_percent_schemes_keep_their_mark(registry: SchemeRegistry) -> None:
    policy = registry.get("svqm").policy
    assert policy.pass_mark(policy.level("silver")) == ("percent", 80)
    result = evaluate(policy, policy.level("silver"), _all(policy, "silver", 4))
    assert result.passed
    assert result.pass_mark_points is None
    assert result.threshold == 80


# IiP: four levels, each with its own mark ------------------------------------------------------------


def test_iip_levels_and_their_pass_marks(registry: SchemeRegistry) -> None:
    policy = registry.get("iip-style").policy
    assert [lv.name for lv in sorted(policy.levels, key=lambda lv: lv.rank)] == [
        "Accredited",
        "Silver",
        "Gold",
        "Platinum",
    ]
    assert policy.find_level("Standard") is policy.level("accredited")
    established = _all(policy, "silver", 2)
    assert evaluate(policy, policy.level("silver"), established).passed
    gold = evaluate(policy, policy.level("gold"), established)
    assert gold.reasons() == ["overall score 50.0% is below the 75% pass mark"]
    # Every indicator must at least be Developed, whatever the level.
    one_gap = {**_all(policy, "accredited", 4), ("leading", "living_values"): 0}
    assert evaluate(policy, policy.level("accredited"), one_gap).failed_mandatory == [
        "leading/living_values (0 of 4)"
    ]


# Filings -----------------------------------------------------------------------------------------


def test_svqm_annual_report_is_a_filing_without_saying_so(registry: SchemeRegistry) -> None:
    for scheme in ("svqm", "svqm-health"):
        d = registry.get(scheme).policy.deadline("annual_report")
        assert d is not None
        assert (d.filed_by, d.on_late_filing) == (["applicant", "admin"], "file_report")


def test_a_policy_that_says_filed_by_is_taken_as_written() -> None:
    text = (POLICIES / "svqm.yaml").read_text(encoding="utf-8")
    old = "filed_by: [applicant, admin], on_late_filing: file_report,"
    assert text.count(old) == 1
    text = text.replace(old, "filed_by: [admin],")
    policy = parse_policy(
        text,
        source="svqm.yaml",
        scheme_id="svqm",
        known_guards=known_guards(),
        known_effects=known_effects(),
    )
    d = policy.deadline("annual_report")
    assert d is not None
    assert (d.filed_by, d.on_late_filing) == (["admin"], None)


def test_the_new_schemes_file_under_their_own_names(registry: SchemeRegistry) -> None:
    filings = {
        scheme: {
            d.kind: (d.filed_by, d.on_late_filing)
            for d in registry.get(scheme).policy.deadlines
            if d.filed_by
        }
        for scheme in SCHEMES
    }
    assert filings == {
        "bcorp-style": {
            "annual_fee": (["applicant", "admin"], "pay_fee"),
            "updated_assessment": (["applicant", "admin"], "file_assessment"),
        },
        "iip-style": {"annual_review": (["admin"], "complete_review")},
        "iso17021-style": {"surveillance": (["admin"], "reinstate")},
    }


# Deadline arithmetic -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "period", "zone", "end"),
    [
        (
            datetime(2028, 2, 20, 9, tzinfo=UTC),
            "year",
            "Europe/London",
            datetime(2029, 1, 1, tzinfo=UTC),
        ),
        # A moment at a year's first instant belongs to that year.
        (
            datetime(2028, 1, 1, tzinfo=UTC),
            "year",
            "Europe/London",
            datetime(2029, 1, 1, tzinfo=UTC),
        ),
        # New Year's Eve evening in New York is already the new year in UTC: the local year counts.
        (
            datetime(2029, 1, 1, 2, tzinfo=UTC),
            "year",
            "America/New_York",
            datetime(2029, 1, 1, 5, tzinfo=UTC),
        ),
        (
            datetime(2028, 12, 15, tzinfo=UTC),
            "month",
            "Europe/London",
            datetime(2029, 1, 1, tzinfo=UTC),
        ),
        # The end of June in London is 23:00 UTC (summer time).
        (
            datetime(2028, 6, 3, tzinfo=UTC),
            "month",
            "Europe/London",
            datetime(2028, 6, 30, 23, tzinfo=UTC),
        ),
    ],
)
def test_end_of_a_calendar_period(when, period, zone, end) -> None:
    assert arithmetic.end_of(when, period, arithmetic.zone(zone)) == end


def test_iso_surveillance_first_within_12_months_then_once_each_calendar_year(
    registry: SchemeRegistry,
) -> None:
    policy = registry.get("iso17021-style").policy
    d = policy.deadline("surveillance")
    assert d is not None
    decision = datetime(2026, 3, 16, 9, tzinfo=UTC)
    assert arithmetic.due_at(policy, d, decision) == datetime(2027, 3, 16, 9, tzinfo=UTC)
    # Held in February 2027: the next is due by the end of 2028.
    held = datetime(2027, 2, 20, 10, tzinfo=UTC)
    assert arithmetic.due_at(policy, d, decision, 1, previous=held) == datetime(
        2029, 1, 1, tzinfo=UTC
    )
    # Held early, still in the decision's year: 2027 needs its own.
    early = datetime(2026, 12, 1, tzinfo=UTC)
    assert arithmetic.due_at(policy, d, decision, 1, previous=early) == datetime(
        2028, 1, 1, tzinfo=UTC
    )
    # In another time zone the year ends there.
    elsewhere = policy.model_copy(
        update={"settings": policy.settings.model_copy(update={"time_zone": "America/New_York"})}
    )
    assert arithmetic.due_at(elsewhere, d, decision, 1, previous=held) == datetime(
        2029, 1, 1, 5, tzinfo=UTC
    )


def test_a_repeat_from_its_due_time_can_end_with_the_month(registry: SchemeRegistry) -> None:
    policy = registry.get("svqm").policy
    d = Deadline(
        kind="return",
        label="Monthly return",
        subject="award",
        while_in=["active"],
        anchor="issued",
        offset={"days": 10},
        repeat_months=1,
        repeat_to_end_of="month",
    )
    issued = datetime(2027, 1, 5, 9, tzinfo=UTC)
    # The first falls on its offset; each repeat at the end of its month, London time.
    assert arithmetic.due_at(policy, d, issued) == datetime(2027, 1, 15, 9, tzinfo=UTC)
    assert arithmetic.due_at(policy, d, issued, 1) == datetime(2027, 3, 1, tzinfo=UTC)
    # The clocks went forward on 28 March: March ends at midnight BST, 23:00 UTC.
    assert arithmetic.due_at(policy, d, issued, 2) == datetime(2027, 3, 31, 23, tzinfo=UTC)


def test_until_expiry_leaves_out_the_recertification_year(registry: SchemeRegistry) -> None:
    policy = registry.get("iip-style").policy
    d = policy.deadline("annual_review")
    assert d is not None

    class Held:
        state = "active"
        level = "silver"
        issued_at = datetime(2026, 1, 5, 9, tzinfo=UTC)
        expires_at = datetime(2029, 1, 5, 9, tzinfo=UTC)

    dues = [arithmetic.due_at(policy, d, Held.issued_at, n) for n in range(3)]
    assert [arithmetic.beyond_expiry(d, Held, due) for due in dues] == [False, False, True]
    # Shown from the policy alone: the review is the next thing due in year 2, nothing in year 3.
    when = datetime(2027, 6, 1, tzinfo=UTC)
    assert ("annual_review", dues[1]) in arithmetic.running(policy, "award", Held, when)
    late = datetime(2028, 6, 1, tzinfo=UTC)
    assert "annual_review" not in dict(arithmetic.running(policy, "award", Held, late))
