"""Public commitments: the organisation page and API show its awards in force and their pledges with
the figures an assessor accepted; a report with figures is filed as JSON and reviewed; the
credential lists the pledges as evidence and still verifies; drafts and narratives stay private."""

from __future__ import annotations

import re

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import event
from sqlmodel import Session

from svqm.clock import FixedClock
from svqm.db import writer
from svqm.evidence import pledges as pledge_service
from svqm.workflow.deadlines import add_months
from svqm.workflow.models import Award
from tests.factories import add_pledges, make_org, open_app
from tests.web.award_world import T0, app_client, bearer, issue_award
from tests.web.pages_helpers import make_account

pytestmark = pytest.mark.filterwarnings(
    "ignore:EdDSA is deprecated via RFC 9864:joserfc.errors.SecurityWarning"
)
FILED_AT = add_months(T0, 11)
PERIOD = str(FILED_AT.year)


@pytest.fixture
def issued(engine, registry, tmp_path):
    return issue_award(engine, registry, tmp_path, name="Harbour Care Trust")


@pytest.fixture
def client(engine, registry, tmp_path):
    with app_client(engine, registry, tmp_path, FixedClock(FILED_AT)) as c:
        yield c


def test_commitments_are_public_and_progress_shows_once_accepted(client, issued, engine, registry):
    with Session(writer(engine), expire_on_commit=False) as s:
        award = s.get(Award, issued.award_id)
        pledges = pledge_service.held_by(s, [award.application_id])
        # Another organisation's draft, with pledges, and no award: nothing of it is public.
        other = make_org(s, "Quiet Draft Ltd")
        drafter = make_account(s, "applicant", other)
        draft = open_app(s, registry, drafter, now=FILED_AT)
        add_pledges(s, registry, draft, drafter, now=FILED_AT, count=2)
        s.commit()
    org_id = issued.org.id
    body = client.get(f"/api/v1/organisations/{org_id}").json()
    assert set(body) == {"id", "name", "sector", "region", "awards", "pledges"}
    assert [a["id"] for a in body["awards"]] == [issued.award_id]
    assert [p["title"] for p in body["pledges"]] == [p.title for p in pledges]
    assert set(body["pledges"][0]) == {
        "id",
        "theme",
        "title",
        "indicator",
        "unit",
        "target",
        "due_date",
        "progress",
    }
    assert all(p["progress"] == [] for p in body["pledges"])
    assert client.get(f"/api/v1/organisations/{other.id}").status_code == 404
    assert client.get(f"/organisations/{other.id}").status_code == 404

    holder = bearer(client, issued.applicant)
    first, second = pledges[0], pledges[1]
    filed = client.post(
        f"/api/v1/awards/{issued.award_id}/reports",
        headers=holder,
        json={
            "period": PERIOD,
            "progress": [
                {"pledge_id": first.id, "actual": 7, "narrative": "Seven hired so far."},
                {"pledge_id": second.id, "actual": 2.5, "narrative": "Board only", "private": True},
            ],
        },
    )
    assert filed.status_code == 201, filed.text
    report = filed.json()
    assert report["review"] == "awaiting_review"
    assert [f["actual"] for f in report["progress"]] == [7, 2.5]
    # Not yet accepted: nothing public.
    assert all(
        p["progress"] == [] for p in client.get(f"/api/v1/organisations/{org_id}").json()["pledges"]
    )
    bad = client.post(
        f"/api/v1/awards/{issued.award_id}/reports",
        headers=holder,
        json={"period": PERIOD, "progress": [{"pledge_id": 999999, "actual": 1}]},
    )
    assert bad.status_code == 422
    assert "not one this award holds" in bad.json()["detail"]

    admin = bearer(client, issued.admin)
    url = f"/api/v1/awards/{issued.award_id}/reports/{report['id']}/review"
    assert client.post(url, headers=holder, json={"decision": "accepted"}).status_code == 403
    asked = client.post(url, headers=admin, json={"decision": "more_information"})
    assert asked.status_code == 422
    accepted = client.post(url, headers=admin, json={"decision": "accepted"})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["review"] == "accepted"
    assert client.post(url, headers=admin, json={"decision": "accepted"}).status_code == 409

    public = client.get(f"/api/v1/organisations/{org_id}")
    shown = {p["id"]: p["progress"] for p in public.json()["pledges"]}
    assert shown[first.id] == [{"period": PERIOD, "actual": 7.0}]
    assert shown[second.id] == [{"period": PERIOD, "actual": 2.5}]
    assert "Board only" not in public.text
    page = client.get(f"/organisations/{org_id}")
    assert page.status_code == 200
    assert first.title in page.text
    assert re.search(f'<svg class="app-chart" id="pledge-{first.id}-chart" role="img"', page.text)
    assert "Board only" not in page.text
    assert "Quiet Draft" not in page.text


def test_the_credential_carries_the_pledges_as_evidence_and_verifies(client, issued, engine):
    with Session(engine) as s:
        award = s.get(Award, issued.award_id)
        titles = [p.title for p in pledge_service.held_by(s, [award.application_id])]
    token = client.get(f"/api/v1/awards/{issued.award_id}/credential").text
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").json())
    vc = jwt.decode(token, keys, algorithms=["EdDSA"]).claims
    evidence = vc["evidence"]
    assert [e["name"] for e in evidence] == titles
    assert all(e["type"] == ["Evidence"] and "target" in e["description"] for e in evidence)
    assert all(
        e["id"].endswith(f"/organisations/{issued.org.id}#pledge-{e['id'].split('-')[-1]}")
        for e in evidence
    )
    verify = client.get(f"/awards/{issued.award_id}/verify")
    assert 'data-verdict="valid"' in verify.text


def test_the_public_page_reads_each_thing_once(client, issued, engine):
    """The organisation page's reads do not grow with its pledges: each statement once (its
    organisation, awards, the pledges held, the awarded applications with their groups, the
    revisions as awarded, the accepted figures, the charter), none a pledge."""
    with Session(engine) as s:
        award = s.get(Award, issued.award_id)
        held = pledge_service.held_by(s, [award.application_id])
    assert len(held) >= 2, "the award holds several pledges, so a read a pledge would show"
    sent: list[str] = []

    def listen(conn, cursor, statement: str, *_) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append(statement)

    event.listen(engine, "before_cursor_execute", listen)
    try:
        page = client.get(f"/organisations/{issued.org.id}")
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert page.status_code == 200
    assert page.text.count('<svg class="app-chart"') == len(held)
    assert len(sent) == len(set(sent)) == 7, sent
