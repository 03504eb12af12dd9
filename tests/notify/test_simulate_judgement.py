"""`svqm simulate` with the opt-in settings of issue 18 on: Silver double-marked and moderated,
appeals decided by two independent panel members; the report counts them and re-applications."""

from __future__ import annotations

import pytest

from svqm.simulate.report import report_table
from svqm.simulate.run import Simulation
from tests.judgement_policies import judgement_registry


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    registry = judgement_registry(tmp_path_factory.mktemp("judgement"))
    # Twelve organisations over three years (about 15 s of CPU; thirty took 40 s and more) are
    # enough for seed 1 to double-mark, moderate, re-apply and appeal.
    return Simulation(registry, organisations=12, seed=1).run(years=3)


def test_the_report_counts_double_marking_moderation_appeals_and_reapplications(result):
    counts = result.judgement
    assert counts["applications scored by two assessors"] > 0
    assert counts["scores agreed from two close ones"] > 0
    assert counts["scores settled by a moderator"] > 0
    assert counts["re-applications after a refusal"] > 0
    # Each appeal took two agreeing members: more decisions recorded than appeals decided.
    decided = counts["steps decided by several members agreeing"]
    assert decided > 0
    assert counts["panel members' decisions recorded"] >= 2 * decided
    assert result.audit_problems == []
    assert result.refused == {}


def test_the_table_shows_the_counts(result):
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(report_table(result))
    text = console.export_text()
    assert "scores settled by a moderator" in text
    assert "re-applications after a refusal" in text
