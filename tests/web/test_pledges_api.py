"""PATCH and DELETE /api/v1/pledges/{id}: while the application is editable, 409 after submit."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from svqm.config import Settings
from svqm.web.app import create_app
from tests.web.test_api import bronze_ready, signup


@pytest.fixture
def client(engine, registry, tmp_path):
    settings = Settings(
        ENV="test",
        DATABASE_URL=engine.url.render_as_string(hide_password=False),
        EVIDENCE_DIR=str(tmp_path / "evidence"),
        VAR_DIR=str(tmp_path),
    )
    with TestClient(create_app(settings=settings, engine=engine, registry=registry)) as c:
        yield c


def test_pledges_change_in_draft_and_are_fixed_after_submit(client):
    applicant, _ = signup(client, "Northgate Facilities")
    app = bronze_ready(client, applicant)
    pledges = client.get(f"/api/v1/applications/{app['id']}/pledges", headers=applicant).json()
    first = pledges[0]

    revised = client.patch(
        f"/api/v1/pledges/{first['id']}",
        headers=applicant,
        json={"target": "40", "unit": "local people hired", "baseline": 12},
    )
    assert revised.status_code == 200, revised.text
    body = revised.json()
    assert (body["target"], body["unit"], body["baseline"], body["revision"]) == (
        "40",
        "local people hired",
        12,
        2,
    )
    refused = client.patch(
        f"/api/v1/pledges/{first['id']}", headers=applicant, json={"theme": "no_such_theme"}
    )
    assert refused.status_code == 422
    assert "not a theme" in refused.json()["detail"]
    assert (
        client.patch(
            f"/api/v1/pledges/{first['id']}", headers=applicant, json={"colour": "red"}
        ).status_code
        == 422
    )

    # Withdrawing a seventh pledge leaves the six the rule needs.
    extra = client.post(
        f"/api/v1/applications/{app['id']}/pledges",
        headers=applicant,
        json={
            "theme": "community",
            "title": "Volunteering days",
            "indicator": "days given",
            "target": "100",
            "due_date": "2030-01-01",
        },
    ).json()
    assert client.delete(f"/api/v1/pledges/{extra['id']}", headers=applicant).status_code == 204
    listed = client.get(f"/api/v1/applications/{app['id']}/pledges", headers=applicant).json()
    assert extra["id"] not in [p["id"] for p in listed]
    history = client.get(f"/api/v1/applications/{app['id']}/history", headers=applicant).json()
    assert [e["trigger"] for e in history] == [
        "answer_eligibility",
        "revise_pledge",
        "withdraw_pledge",
    ]

    # Another organisation's applicant learns nothing.
    stranger, _ = signup(client, "Other Trust")
    assert (
        client.patch(
            f"/api/v1/pledges/{first['id']}", headers=stranger, json={"title": "x"}
        ).status_code
        == 404
    )
    assert client.delete(f"/api/v1/pledges/{first['id']}", headers=stranger).status_code == 404

    current = client.get(f"/api/v1/applications/{app['id']}", headers=applicant).json()
    submitted = client.post(
        f"/api/v1/applications/{app['id']}/events/submit",
        headers=applicant,
        json={"comment": "", "version": current["version"]},
    )
    assert submitted.status_code == 200, submitted.text
    late = client.patch(f"/api/v1/pledges/{first['id']}", headers=applicant, json={"target": "1"})
    assert late.status_code == 409
    assert "still being prepared" in late.json()["detail"]
    assert client.delete(f"/api/v1/pledges/{first['id']}", headers=applicant).status_code == 409
    again = client.get(f"/api/v1/applications/{app['id']}/pledges", headers=applicant).json()
    assert next(p for p in again if p["id"] == first["id"])["target"] == "40"
