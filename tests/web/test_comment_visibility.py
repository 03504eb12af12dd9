"""Internal comments are staff's: never in the applicant's API, pages or emails."""

from __future__ import annotations

import json

from sqlmodel import Session, col, select

from svqm.notify.models import OutboxMessage
from tests.web.pages_helpers import sign_in
from tests.web.test_api import PASSWORD, bronze_ready, client, signup, staff, token  # noqa: F401

SECRET = "pledges too vague, between us"
OPEN = "Please give a measurable target for each pledge"


def test_internal_comments_never_reach_the_applicant(client, engine):  # noqa: F811
    applicant, _ = signup(client, "Quiet Works")
    app = bronze_ready(client, applicant)
    assessor_email, assessor_secret = staff(engine, "assessor")
    client.post(f"/api/v1/applications/{app['id']}/events/submit", headers=applicant, json={})
    assessor = token(client, assessor_email, assessor_secret)
    started = client.post(
        f"/api/v1/applications/{app['id']}/events/start_review",
        headers=assessor,
        json={"comment": SECRET, "visibility": "internal"},
    )
    assert started.status_code == 200, started.text
    [first, second, *_] = client.get(
        f"/api/v1/applications/{app['id']}/evidence", headers=assessor
    ).json()
    accepted = client.post(
        f"/api/v1/evidence/{first['id']}/review",
        headers=assessor,
        json={"decision": "accepted", "comment": SECRET, "visibility": "internal"},
    )
    assert accepted.status_code == 200, accepted.text
    # What is missing must be said to the applicant: an internal "more information" is refused.
    hidden_ask = client.post(
        f"/api/v1/evidence/{second['id']}/review",
        headers=assessor,
        json={"decision": "more_information", "comment": SECRET, "visibility": "internal"},
    )
    assert hidden_ask.status_code == 422
    assert "applicant must be told" in hidden_ask.json()["detail"]
    bad = client.post(
        f"/api/v1/applications/{app['id']}/events/request_changes",
        headers=assessor,
        json={"comment": "x", "visibility": "everyone"},
    )
    assert bad.status_code == 422
    asked = client.post(
        f"/api/v1/applications/{app['id']}/events/request_changes",
        headers=assessor,
        json={"comment": SECRET, "visibility": "internal"},
    )
    assert asked.status_code == 200, asked.text
    open_words = client.post(
        f"/api/v1/evidence/{second['id']}/review",
        headers=assessor,
        json={"decision": "more_information", "comment": OPEN},
    )
    assert open_words.status_code == 200, open_words.text

    mine = client.get(f"/api/v1/applications/{app['id']}/history", headers=applicant).json()
    theirs = client.get(f"/api/v1/applications/{app['id']}/history", headers=assessor).json()
    assert SECRET not in json.dumps(mine)
    assert [h["trigger"] for h in mine] == [
        "answer_eligibility",
        "submit",
        "start_review",
        "request_changes",
    ]
    assert [h["comment"] for h in theirs if h["visibility"] == "internal"] == [SECRET, SECRET]

    sign_in(client, "quietworks@org.test", PASSWORD)
    pages = [
        f"/applications/{app['id']}",
        f"/applications/{app['id']}/history",
        f"/applications/{app['id']}/evidence/{first['slot']}",
        f"/applications/{app['id']}/evidence/{second['slot']}",
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        assert "Sign in" not in response.text.split("<title>")[1][:40], page
        assert SECRET not in response.text, page
    assert OPEN in client.get(pages[-1]).text

    with Session(engine) as s:
        rows = s.exec(select(OutboxMessage).where(col(OutboxMessage.template) == "event")).all()
    to_applicant = [r for r in rows if r.key.endswith(":applicant")]
    assert to_applicant, "the applicant was told of the request"
    for row in to_applicant:
        assert SECRET not in row.context
