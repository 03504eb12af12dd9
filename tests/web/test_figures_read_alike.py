"""One way of writing a number everywhere: a pledge's target reads "8,000 hours" in the list, the
table, the chart, the verify page and the credential alike (svqm.evidence.pledges.figure)."""

from __future__ import annotations

import base64
import re

import pytest
from sqlmodel import select

from svqm.clock import FixedClock
from svqm.db import session_scope
from svqm.evidence.models import Pledge, PledgeRevision
from svqm.evidence.pledges import figure, number
from svqm.workflow.models import Award
from tests.web.award_world import T0, app_client, issue_award

pytestmark = pytest.mark.filterwarnings(
    "ignore:EdDSA is deprecated via RFC 9864:joserfc.errors.SecurityWarning"
)


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (8000, "hours", "8,000 hours"),
        ("8000", "hours", "8,000 hours"),
        ("8,000", "", "8,000"),
        ("30%", "", "30%"),
        (12.5, "", "12.5"),
        ("1200 hours a year", "", "1,200 hours a year"),
        ("every site", "", "every site"),
        (None, "hours", ""),
        (1, "sessions", "1 session"),
        ("1", "tonnes of CO2e", "1 tonne of CO2e"),
        (1, "people", "1 person"),
        (1, "activities", "1 activity"),
        (1, "MWh", "1 MWh"),
        (15, "%", "15%"),
        (2, "sessions", "2 sessions"),
    ],
)
def test_a_figure_is_written_one_way(value, unit, text):
    assert figure(value, unit) == text


def test_number_groups_thousands_and_drops_trailing_zeros():
    assert (number(1200), number(12.50), number(0.25), number(None)) == (
        "1,200",
        "12.5",
        "0.25",
        "",
    )


def test_a_target_reads_the_same_in_the_list_and_on_the_chart(engine, registry, tmp_path):
    issued = issue_award(engine, registry, tmp_path)
    with session_scope(engine) as s:
        award = s.get(Award, issued.award_id)
        assert award is not None
        pledge = s.exec(
            select(Pledge).where(Pledge.organisation_id == award.organisation_id)
        ).first()
        assert pledge is not None
        # As awarded: the pledge's revisions too (the award shows the one it was awarded at).
        for row in [
            pledge,
            *s.exec(select(PledgeRevision).where(PledgeRevision.pledge_id == pledge.id)),
        ]:
            row.target, row.unit = "8000", "hours"
            s.add(row)
    with app_client(engine, registry, tmp_path, FixedClock(T0)) as client:
        public = client.get(f"/organisations/{issued.org.id}").text
        verify = client.get(f"/awards/{issued.award_id}/verify").text
        credential = client.get(f"/api/v1/awards/{issued.award_id}/credential")
    assert "8000" not in public
    assert "8000" not in verify
    found = re.findall(r"Target</dt><dd[^>]*>([^<]*)<", public)
    assert any(f.startswith("8,000 hours by") for f in found), found
    chart = re.search(rf'<svg[^>]*id="pledge-{pledge.id}-chart".*?</svg>', public, re.S)
    assert chart is not None
    assert "8,000" in chart.group(0)
    assert "8,000 hours" in verify
    assert credential.status_code == 200
    body = credential.text.split(".")[1]
    claims = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    assert "8,000 hours" in claims
    assert "8000" not in claims
