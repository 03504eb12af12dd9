"""Eligibility (policies/svqm.yaml `eligibility`): a sector and a turnover band from the policy,
and the two-tier risk-industry screen. A refused-tier industry refuses the submission (422 naming
it); a case-by-case one waits for an admin, who approves it with conditions or refuses it."""

from __future__ import annotations

from sqlmodel import Session

from svqm.accounts.models import Organisation
from tests.web.test_api import (  # noqa: F401
    answer_eligibility,
    bronze_ready,
    client,
    signup,
    staff,
    token,
)


def _submit(client, headers, app_id: int):  # noqa: F811
    return client.post(f"/api/v1/applications/{app_id}/events/submit", headers=headers, json={})


def test_questions_come_from_the_policy_and_unknown_choices_are_named(client):  # noqa: F811
    applicant, _ = signup(client, "Screened Trust")
    app = client.post(
        "/api/v1/applications", json={"scheme": "svqm", "level": "bronze"}, headers=applicant
    ).json()
    asked = client.get(f"/api/v1/applications/{app['id']}/eligibility", headers=applicant).json()
    assert (asked["asked"], asked["status"]) == (True, "not_answered")
    assert asked["unmet"] == ["answer the eligibility questions"]
    cases = {c["id"] for c in asked["questions"]["case_by_case"]}
    assert {"fossil_fuels", "gambling", "fast_food"} <= cases
    bad = client.put(
        f"/api/v1/applications/{app['id']}/eligibility",
        headers=applicant,
        json={"sector": "Health", "turnover_band": "huge", "industries": ["knitting"]},
    )
    assert bad.status_code == 422, bad.text
    detail = bad.json()["detail"]
    for named in ("'Health' is not a sector", "'huge' is not a turnover band", "'knitting'"):
        assert named in detail


def test_an_industry_the_scheme_does_not_accredit_refuses_the_submission(client):  # noqa: F811
    applicant, _ = signup(client, "Cluster Works")
    app = bronze_ready(client, applicant)
    answer_eligibility(client, applicant, app["id"], ("controversial_weapons",))
    refused = _submit(client, applicant, app["id"])
    assert refused.status_code == 422, refused.text
    assert refused.json()["unmet"] == [
        "Social Value Quality Mark does not accredit organisations in Controversial weapons "
        "(cluster munitions, anti-personnel mines)"
    ]
    # An admin has nothing to decide on it: the refused tier is not case by case.
    admin = token(client, *staff(client.app.state.engine, "admin"))
    decided = client.post(
        f"/api/v1/applications/{app['id']}/eligibility/decision",
        headers=admin,
        json={"decision": "approve", "conditions": "fine"},
    )
    assert decided.status_code == 409, decided.text


def test_a_case_by_case_industry_goes_to_an_admin_who_agrees_conditions(client, engine):  # noqa: F811
    applicant, org_id = signup(client, "Northern Gas Supplies")
    app = bronze_ready(client, applicant)
    answered = answer_eligibility(client, applicant, app["id"], ("fossil_fuels",))
    assert answered["status"] == "awaiting_decision"
    waiting = _submit(client, applicant, app["id"])
    assert waiting.status_code == 422
    assert waiting.json()["unmet"] == [
        "an admin has not yet decided on working in Fossil fuels (gas, oil, coal) (case by case)"
    ]
    # The applicant cannot decide its own case; an admin must give the conditions.
    own = client.post(
        f"/api/v1/applications/{app['id']}/eligibility/decision",
        headers=applicant,
        json={"decision": "approve", "conditions": "we say so"},
    )
    assert own.status_code == 403
    admin = token(client, *staff(engine, "admin"))
    blank = client.post(
        f"/api/v1/applications/{app['id']}/eligibility/decision",
        headers=admin,
        json={"decision": "approve", "conditions": "   "},
    )
    assert blank.status_code == 422
    conditions = "Pledges cover the transition plan; no fossil fuel sponsorship is claimed."
    approved = client.post(
        f"/api/v1/applications/{app['id']}/eligibility/decision",
        headers=admin,
        json={"decision": "approve", "conditions": conditions},
    )
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["conditions"]) == ("approved", conditions)
    assert approved.json()["unmet"] == []
    sent = _submit(client, applicant, app["id"])
    assert sent.status_code == 200, sent.text
    history = client.get(f"/api/v1/applications/{app['id']}/history", headers=admin).json()
    steps = [(h["trigger"], h["actor_role"]) for h in history]
    assert ("answer_eligibility", "applicant") in steps
    assert ("approve_eligibility", "admin") in steps
    approval = next(h for h in history if h["trigger"] == "approve_eligibility")
    assert conditions in approval["comment"]
    # Once sent the answers stand: changing them is a conflict.
    late = client.put(
        f"/api/v1/applications/{app['id']}/eligibility",
        headers=applicant,
        json={"sector": "health", "turnover_band": "under_1m", "industries": []},
    )
    assert late.status_code == 409
    # The organisation's sector is the scheme's word for it.
    with Session(engine) as s:
        assert s.get(Organisation, org_id).sector == "Central government"


def test_an_admin_refusal_stops_the_submission_with_its_reason(client, engine):  # noqa: F811
    applicant, _ = signup(client, "Bet Right Ltd")
    app = bronze_ready(client, applicant)
    answer_eligibility(client, applicant, app["id"], ("gambling",))
    admin = token(client, *staff(engine, "admin"))
    refused = client.post(
        f"/api/v1/applications/{app['id']}/eligibility/decision",
        headers=admin,
        json={"decision": "decline", "conditions": "Most turnover is online betting."},
    )
    assert refused.json()["status"] == "refused"
    blocked = _submit(client, applicant, app["id"])
    assert blocked.status_code == 422
    assert blocked.json()["unmet"] == [
        "eligibility refused by the scheme: Most turnover is online betting."
    ]


def test_another_organisation_sees_nothing_and_a_peer_scheme_asks_nothing(client):  # noqa: F811
    owner, _ = signup(client, "Owner Org")
    other, _ = signup(client, "Nosy Org")
    app = client.post(
        "/api/v1/applications", json={"scheme": "svqm", "level": "bronze"}, headers=owner
    ).json()
    assert (
        client.get(f"/api/v1/applications/{app['id']}/eligibility", headers=other).status_code
        == 404
    )
    peer = client.post(
        "/api/v1/applications", json={"scheme": "iip-style", "level": "accredited"}, headers=owner
    )
    assert peer.status_code == 201, peer.text
    asked = client.get(f"/api/v1/applications/{peer.json()['id']}/eligibility", headers=owner)
    assert (asked.json()["asked"], asked.json()["unmet"]) == (False, [])
    put = client.put(
        f"/api/v1/applications/{peer.json()['id']}/eligibility",
        headers=owner,
        json={"sector": "x", "turnover_band": "y", "industries": []},
    )
    assert put.status_code == 422
