"""The scheme's own rules through the API: re-applying at once, the self-service route, equivalents."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from svqm.config import Settings
from svqm.web.app import create_app
from tests.web.test_api import answer_eligibility, bronze_ready, signup, staff, token


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


REFUSED = "Not enough evidence for three of the pledges."


def _fire(client, app_id: int, trigger: str, headers, comment: str = ""):
    return client.post(
        f"/api/v1/applications/{app_id}/events/{trigger}",
        headers=headers,
        json={"comment": comment},
    )


def _refuse(client, engine, applicant, app_id: int) -> dict[str, str]:
    """Refused by an assessor and a panel member; the panel member's headers are returned."""
    assessor = token(client, *staff(engine, "assessor"))
    panel = token(client, *staff(engine, "panel"))
    submitted = _fire(client, app_id, "submit", applicant)
    assert submitted.status_code == 200, submitted.text
    assert _fire(client, app_id, "start_review", assessor).status_code == 200
    assert _fire(client, app_id, "recommend_refusal", assessor, REFUSED).status_code == 200
    refused = _fire(client, app_id, "confirm_refusal", panel)
    assert refused.json()["state"] == "not_awarded", refused.text
    return panel


def test_a_refused_organisation_reapplies_at_once_with_its_pledges_and_evidence(client, engine):
    applicant, _ = signup(client, "Refused Ltd")
    first = bronze_ready(client, applicant)
    _refuse(client, engine, applicant, first["id"])
    # The appeal window is still open on the refused application...
    assert (
        "appeal"
        in client.get(f"/api/v1/applications/{first['id']}", headers=applicant).json()["triggers"]
    )

    again = client.post(
        "/api/v1/applications", json={"scheme": "svqm", "level": "bronze"}, headers=applicant
    )

    # ...and it does not block the new application, which starts from the refused one.
    assert again.status_code == 201, again.text
    new_id = again.json()["id"]
    old_pledges = client.get(f"/api/v1/applications/{first['id']}/pledges", headers=applicant)
    new_pledges = client.get(f"/api/v1/applications/{new_id}/pledges", headers=applicant).json()
    assert [p["title"] for p in new_pledges] == [p["title"] for p in old_pledges.json()]
    assert {p["id"] for p in new_pledges}.isdisjoint({p["id"] for p in old_pledges.json()})
    checklist = client.get(f"/api/v1/applications/{new_id}/requirements", headers=applicant)
    assert checklist.json()
    assert all(slot["satisfied"] for slot in checklist.json())
    evidence = client.get(f"/api/v1/applications/{new_id}/evidence", headers=applicant).json()
    assert {e["status"] for e in evidence} == {"pending"}
    # A second open application for the level is still refused.
    third = client.post(
        "/api/v1/applications", json={"scheme": "svqm", "level": "bronze"}, headers=applicant
    )
    assert third.status_code == 422
    assert "already has an open Bronze application" in third.json()["detail"]
    # The old application may still be appealed while the new one goes on.
    appealed = _fire(client, first["id"], "appeal", applicant, "The evidence was there.")
    assert appealed.json()["state"] == "appealed", appealed.text


def _health_bronze_ready(client, headers) -> dict:
    app = client.post(
        "/api/v1/applications",
        json={"scheme": "svqm-health", "level": "Health Bronze"},
        headers=headers,
    )
    assert app.status_code == 201, app.text
    app_id = app.json()["id"]
    answer_eligibility(client, headers, app_id)
    themes = client.get("/api/v1/schemes/svqm-health").json()["themes"]
    mandatory = [t["id"] for t in themes if t["mandatory"]]
    for i in range(6):
        made = client.post(
            f"/api/v1/applications/{app_id}/pledges",
            headers=headers,
            json={
                "theme": mandatory[i % len(mandatory)],
                "title": f"Health pledge {i}",
                "indicator": "people reached",
                "unit": "people",
                "baseline": "0",
                "target": "100",
                "due_date": "2030-01-01",
            },
        )
        assert made.status_code == 201, made.text
    for slot in client.get(f"/api/v1/applications/{app_id}/requirements", headers=headers).json():
        up = client.post(
            f"/api/v1/applications/{app_id}/evidence",
            headers=headers,
            data={"requirement": slot["id"]},
            files={"file": ("evidence.txt", f"{slot['id']}\n".encode(), "text/plain")},
        )
        assert up.status_code == 201, up.text
    return client.get(f"/api/v1/applications/{app_id}", headers=headers).json()


def test_health_bronze_self_service_is_awarded_without_assessor_or_panel(client, engine):
    applicant, org_id = signup(client, "Riverside Trust")
    app = _health_bronze_ready(client, applicant)
    # Only the self-service submission is offered; the assessed one is refused.
    assert app["triggers"] == ["submit_self_service", "withdraw"]
    assert _fire(client, app["id"], "submit", applicant).status_code == 409

    done = _fire(client, app["id"], "submit_self_service", applicant)

    assert done.status_code == 200, done.text
    assert (done.json()["state"], done.json()["assessor_id"]) == ("awarded", None)
    history = client.get(f"/api/v1/applications/{app['id']}/history", headers=applicant).json()
    assert [h["trigger"] for h in history] == ["answer_eligibility", "submit_self_service"]
    awards = client.get("/api/v1/awards").json()
    assert [(a["organisation_id"], a["scheme"], a["level"]) for a in awards] == [
        (org_id, "svqm-health", "health_bronze")
    ]

    # A Health Bronze holder may go on to the standard Silver (svqm.yaml's equivalents).
    silver = client.post(
        "/api/v1/applications", json={"scheme": "svqm", "level": "Silver"}, headers=applicant
    )
    assert silver.status_code == 201, silver.text


def test_standard_silver_still_needs_a_bronze_of_some_kind(client):
    applicant, _ = signup(client, "No Award Ltd")
    refused = client.post(
        "/api/v1/applications", json={"scheme": "svqm", "level": "Silver"}, headers=applicant
    )
    assert refused.status_code == 422
    assert "Silver needs a Bronze award in force" in refused.text


def test_an_equivalent_must_name_a_loaded_scheme_and_level(tmp_path):
    import shutil

    from svqm.errors import PolicyError
    from svqm.policy import load_policies
    from tests.conftest import POLICIES

    shutil.copy(POLICIES / "svqm.yaml", tmp_path / "svqm.yaml")
    with pytest.raises(PolicyError, match="equivalents\\[0\\].scheme: no scheme 'svqm-health'"):
        load_policies(tmp_path)
    shutil.copy(POLICIES / "svqm-health.yaml", tmp_path / "svqm-health.yaml")
    text = (tmp_path / "svqm.yaml").read_text().replace("level: health_bronze}", "level: gilt}")
    (tmp_path / "svqm.yaml").write_text(text)
    with pytest.raises(PolicyError, match="'gilt' is not a level of 'svqm-health'"):
        load_policies(tmp_path)


@pytest.mark.parametrize("scheme", ["svqm", "svqm-health"])
def test_an_appeal_is_decided_by_a_panel_member_who_took_no_part(client, engine, scheme):
    applicant, org_id = signup(client, f"Appellant {scheme}")
    if scheme == "svqm":
        app = bronze_ready(client, applicant)
    else:
        # Health Bronze takes the self-service route: appeal a Silver refusal instead.
        _fire(
            client, _health_bronze_ready(client, applicant)["id"], "submit_self_service", applicant
        )
        app = client.post(
            "/api/v1/applications", json={"scheme": scheme, "level": "Silver"}, headers=applicant
        ).json()
        answer_eligibility(client, applicant, app["id"])
        for slot in client.get(
            f"/api/v1/applications/{app['id']}/requirements", headers=applicant
        ).json():
            client.post(
                f"/api/v1/applications/{app['id']}/evidence",
                headers=applicant,
                data={"requirement": slot["id"]},
                files={"file": ("e.txt", b"evidence\n", "text/plain")},
            )
    decided_by = _refuse(client, engine, applicant, app["id"])
    assert _fire(client, app["id"], "appeal", applicant, "We disagree.").status_code == 200

    seen = client.get(f"/api/v1/applications/{app['id']}", headers=decided_by).json()
    refused = _fire(client, app["id"], "dismiss_appeal", decided_by, "Still not enough.")

    assert "dismiss_appeal" not in seen["triggers"]
    assert "took part in the decision" in " ".join(seen["unmet"]["dismiss_appeal"])
    assert refused.status_code == 422
    assert "took part in the decision under appeal" in refused.text
    fresh = token(client, *_second_panel(engine))
    upheld = _fire(client, app["id"], "uphold_appeal", fresh, "The evidence was sufficient.")
    assert upheld.json()["state"] == "awarded", upheld.text


def _second_panel(engine) -> tuple[str, str]:
    from sqlmodel import Session

    from svqm.accounts import auth
    from svqm.accounts import service as accounts
    from svqm.db import writer
    from tests.web.test_api import PASSWORD

    with Session(writer(engine)) as s:
        user = accounts.add_user(s, email="fresh-eyes@staff.test", role="panel", password=PASSWORD)
        secret = auth.ensure_totp_secret(s, user)
        s.commit()
        return user.email, secret


def test_a_member_barred_from_an_appeal_is_told_why_and_offered_no_decision(client, engine):
    from tests.web.pages_helpers import csrf_of, sign_in

    applicant, _ = signup(client, "Appellant Pages Ltd")
    app_id = bronze_ready(client, applicant)["id"]
    assessor = token(client, *staff(engine, "assessor"))
    email, secret = staff(engine, "panel")
    decider = token(client, email, secret)
    assert _fire(client, app_id, "submit", applicant).status_code == 200
    assert _fire(client, app_id, "start_review", assessor).status_code == 200
    assert _fire(client, app_id, "recommend_refusal", assessor, REFUSED).status_code == 200
    assert _fire(client, app_id, "confirm_refusal", decider).json()["state"] == "not_awarded"
    assert _fire(client, app_id, "appeal", applicant, "We disagree.").status_code == 200

    sign_in(client, email, totp_secret=secret)
    page = client.get(f"/panel/{app_id}")
    assert page.status_code == 200
    assert 'id="barred"' in page.text
    assert "you took part in the decision under appeal" in page.text
    assert f'action="/panel/{app_id}/events/uphold_appeal"' not in page.text
    assert f'action="/panel/{app_id}/events/dismiss_appeal"' not in page.text
    assert "Not ready yet" not in page.text
    # The server refuses the step all the same, however the form is sent.
    version = client.get(f"/api/v1/applications/{app_id}", headers=decider).json()["version"]
    sent = client.post(
        f"/panel/{app_id}/events/dismiss_appeal",
        data={"csrf_token": csrf_of(page.text), "version": str(version), "comment": "No."},
    )
    assert sent.status_code == 422
    assert "took part in the decision under appeal" in sent.text
    after = client.get(f"/api/v1/applications/{app_id}", headers=decider).json()
    assert after["state"] == "appealed"

    # A member who took no part is offered both decisions.
    client.cookies.clear()
    fresh_email, fresh_secret = _second_panel(engine)
    sign_in(client, fresh_email, totp_secret=fresh_secret)
    theirs = client.get(f"/panel/{app_id}")
    assert 'id="barred"' not in theirs.text
    assert f'action="/panel/{app_id}/events/uphold_appeal"' in theirs.text
    assert f'action="/panel/{app_id}/events/dismiss_appeal"' in theirs.text
