from __future__ import annotations

import pyotp
import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter
from sqlmodel import Session, func, select

from svqm.accounts import auth
from svqm.accounts import service as accounts
from svqm.accounts.models import Organisation
from svqm.clock import FixedClock, utc_now
from svqm.config import Settings
from svqm.db import writer
from svqm.evidence.models import EvidenceItem
from svqm.web.app import create_app
from svqm.web.schemas import ApplicationPublic
from svqm.workflow.models import Application, Award
from tests.web.pages_helpers import forget_last_code

PASSWORD = "correct horse battery"


@pytest.fixture
def client(engine, registry, tmp_path):
    settings = Settings(
        ENV="test",
        DATABASE_URL=engine.url.render_as_string(hide_password=False),
        EVIDENCE_DIR=str(tmp_path / "evidence"),
        VAR_DIR=str(tmp_path),
        MAX_UPLOAD_BYTES=200_000,
    )
    with TestClient(create_app(settings=settings, engine=engine, registry=registry)) as c:
        yield c


def staff(engine, role: str, org_id: int | None = None) -> tuple[str, str]:
    with Session(writer(engine)) as s:
        user = accounts.add_user(
            s,
            email=f"{role}-{org_id}@staff.test",
            role=role,
            password=PASSWORD,
            organisation_id=org_id,
        )
        secret = auth.ensure_totp_secret(s, user)
        s.commit()
        return user.email, secret


def token(client, email: str, secret: str | None = None) -> dict[str, str]:
    body = {"email": email, "password": PASSWORD}
    if secret:
        forget_last_code(client.app.state.engine, email)
        body["otp"] = pyotp.TOTP(secret).now()
    response = client.post("/api/v1/auth/token", json=body)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def signup(client, name: str) -> tuple[dict[str, str], int]:
    email = f"{name.lower().replace(' ', '')}@org.test"
    created = client.post(
        "/api/v1/organisations",
        json={"name": name, "sector": "health", "email": email, "password": PASSWORD},
    )
    # The same answer whether or not the email was known: the organisation is looked up here.
    assert created.status_code == 202, created.text
    with Session(client.app.state.engine) as s:
        org_id = s.exec(select(Organisation.id).where(Organisation.name == name)).one()
    return token(client, email), org_id


def answer_eligibility(client, headers, app_id: int, industries: tuple[str, ...] = ()) -> dict:
    """Answer the scheme's eligibility questions with its first sector and band."""
    asked = client.get(f"/api/v1/applications/{app_id}/eligibility", headers=headers).json()
    questions = asked["questions"]
    answered = client.put(
        f"/api/v1/applications/{app_id}/eligibility",
        headers=headers,
        json={
            "sector": questions["sectors"][0]["id"],
            "turnover_band": questions["turnover_bands"][0]["id"],
            "industries": list(industries),
        },
    )
    assert answered.status_code == 200, answered.text
    return answered.json()


def bronze_ready(client, headers) -> dict:
    app = client.post(
        "/api/v1/applications", json={"scheme": "svqm", "level": "Level 1"}, headers=headers
    )
    assert app.status_code == 201, app.text
    app_id = app.json()["id"]
    answer_eligibility(client, headers, app_id)
    themes = [t["id"] for t in client.get("/api/v1/schemes/svqm").json()["themes"]]
    for theme in themes[:6]:
        pledge = client.post(
            f"/api/v1/applications/{app_id}/pledges",
            headers=headers,
            json={
                "theme": theme,
                "title": f"Pledge on {theme}",
                "description": "",
                "indicator": "n",
                "target": "10",
                "due_date": "2030-01-01",
            },
        )
        assert pledge.status_code == 201, pledge.text
    for slot in client.get(f"/api/v1/applications/{app_id}/requirements", headers=headers).json():
        up = client.post(
            f"/api/v1/applications/{app_id}/evidence",
            headers=headers,
            data={"requirement": slot["id"]},
            files={"file": ("evidence.txt", f"{slot['id']}\n".encode(), "text/plain")},
        )
        assert up.status_code == 201, up.text
    return client.get(f"/api/v1/applications/{app_id}", headers=headers).json()


def test_the_whole_journey_through_the_api(client, engine):
    applicant, _ = signup(client, "Northgate Facilities")
    app = bronze_ready(client, applicant)
    assert app["triggers"] == ["submit", "withdraw"]
    assessor_email, assessor_secret = staff(engine, "assessor")
    panel_email, panel_secret = staff(engine, "panel")

    submitted = client.post(
        f"/api/v1/applications/{app['id']}/events/submit",
        headers=applicant,
        json={"comment": "", "version": app["version"]},
    )
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["state"] == "submitted"
    assert submitted.json()["assessor_id"] is not None
    assert {d["kind"] for d in submitted.json()["deadlines"]} == {"assessor_review"}

    assessor = token(client, assessor_email, assessor_secret)
    queue = client.get("/api/v1/applications", headers=assessor).json()
    assert [a["id"] for a in queue] == [app["id"]]
    client.post(f"/api/v1/applications/{app['id']}/events/start_review", headers=assessor, json={})
    items = client.get(f"/api/v1/applications/{app['id']}/evidence", headers=assessor).json()
    first = items[0]
    asked = client.post(
        f"/api/v1/evidence/{first['id']}/review",
        headers=assessor,
        json={"decision": "more_information", "comment": "Signed copy please"},
    )
    # Collected, not sent: the assessor hands the case back as its own step.
    assert asked.json()["application_state"] == "under_review"
    handed = client.post(
        f"/api/v1/applications/{app['id']}/events/request_changes",
        headers=assessor,
        json={"comment": "One thing to add"},
    )
    assert handed.json()["state"] == "changes_requested", handed.text

    checklist = client.get(
        f"/api/v1/applications/{app['id']}/requirements", headers=applicant
    ).json()
    flagged = next(r for r in checklist if r["id"] == first["slot"])
    assert (flagged["satisfied"], flagged["status"]) == (False, "more_information")
    client.post(
        f"/api/v1/applications/{app['id']}/evidence",
        headers=applicant,
        data={"requirement": first["slot"]},
        files={"file": ("signed.txt", b"signed\n", "text/plain")},
    )
    back = client.post(
        f"/api/v1/applications/{app['id']}/events/resubmit", headers=applicant, json={}
    )
    assert back.json()["state"] == "under_review"

    for item in client.get(f"/api/v1/applications/{app['id']}/evidence", headers=assessor).json():
        if item["status"] == "pending":
            client.post(
                f"/api/v1/evidence/{item['id']}/review",
                headers=assessor,
                json={"decision": "accepted", "comment": ""},
            )
    recommended = client.post(
        f"/api/v1/applications/{app['id']}/events/recommend_award", headers=assessor, json={}
    )
    assert recommended.json()["state"] == "recommended_award", recommended.text
    panel = token(client, panel_email, panel_secret)
    decided = client.post(
        f"/api/v1/applications/{app['id']}/events/confirm_award",
        headers=panel,
        json={"comment": "agreed"},
    )
    assert decided.json()["state"] == "awarded"

    directory = client.get("/api/v1/awards").json()
    assert [(a["organisation_name"], a["level_name"]) for a in directory] == [
        ("Northgate Facilities", "Bronze")
    ]
    history = client.get(f"/api/v1/applications/{app['id']}/history", headers=applicant).json()
    assert [h["trigger"] for h in history] == [
        "answer_eligibility",
        "submit",
        "start_review",
        "request_changes",
        "resubmit",
        "recommend_award",
        "confirm_award",
    ]
    assert set(history[0]) == {
        "at",
        "actor_id",
        "actor_role",
        "trigger",
        "source",
        "dest",
        "comment",
        "visibility",
    }


def test_an_application_reads_as_its_response_model_writes_it(client):
    """Its body is the bytes FastAPI's response model would write for it (the route answers
    them itself), as JSON, and the OpenAPI schema still names the model."""
    headers, _ = signup(client, "Model Trust")
    created = client.post(
        "/api/v1/applications", json={"scheme": "svqm", "level": "bronze"}, headers=headers
    )
    assert created.status_code == 201, created.text
    read = client.get(f"/api/v1/applications/{created.json()['id']}", headers=headers)
    assert read.status_code == 200
    assert read.headers["content-type"] == "application/json"
    model = TypeAdapter(ApplicationPublic)
    assert read.content == model.dump_json(model.validate_json(read.content), by_alias=True)
    assert read.json() == {**created.json(), "triggers": read.json()["triggers"]}
    schema = client.get("/openapi.json").json()["paths"]["/api/v1/applications/{application_id}"]
    answer = schema["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/ApplicationPublic"}


def test_staff_need_their_second_factor_for_a_token(client, engine):
    email, secret = staff(engine, "admin")
    no_code = client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    wrong = client.post(
        "/api/v1/auth/token", json={"email": email, "password": PASSWORD, "otp": "000000"}
    )
    assert (no_code.status_code, wrong.status_code) == (401, 401)
    assert no_code.json()["error"] == "not_signed_in"
    token(client, email, secret)


def test_sign_in_is_throttled_in_the_database(client, engine, registry, tmp_path):
    signup(client, "Throttled Org")
    target = "throttledorg@org.test"
    clock = FixedClock(utc_now())
    settings = Settings(
        ENV="test",
        DATABASE_URL=engine.url.render_as_string(hide_password=False),
        VAR_DIR=str(tmp_path),
    )

    def worker():
        return TestClient(
            create_app(settings=settings, engine=engine, registry=registry, clock=clock)
        )

    with worker() as one, worker() as other:
        for _ in range(3):
            bad = one.post("/api/v1/auth/token", json={"email": target, "password": "wrong one!"})
            assert bad.status_code == 401
        # A second app instance (another worker) on the same database sees the same count.
        refused = other.post("/api/v1/auth/token", json={"email": target, "password": PASSWORD})
        assert refused.status_code == 429
        assert refused.json()["error"] == "too_many_attempts"
        assert refused.headers["Retry-After"] == "1"
        clock.advance(seconds=1)
        assert (
            other.post(
                "/api/v1/auth/token", json={"email": target, "password": PASSWORD}
            ).status_code
            == 200
        )


def test_unknown_email_and_wrong_password_look_the_same(client):
    signup(client, "Known Org")
    unknown = client.post(
        "/api/v1/auth/token", json={"email": "nobody@org.test", "password": PASSWORD}
    )
    wrong = client.post(
        "/api/v1/auth/token", json={"email": "knownorg@org.test", "password": "not the password"}
    )
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


def test_mass_assignment_is_refused_and_changes_nothing(client, engine):
    applicant, org_id = signup(client, "Careful Org")
    sneaky = client.post(
        "/api/v1/applications",
        headers=applicant,
        json={
            "scheme": "svqm",
            "level": "bronze",
            "state": "awarded",
            "organisation_id": 999,
            "version": 9,
            "assessor_id": 1,
        },
    )
    assert sneaky.status_code == 422
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(Application)).one() == 0
    app = client.post(
        "/api/v1/applications", headers=applicant, json={"scheme": "svqm", "level": "bronze"}
    ).json()
    event = client.post(
        f"/api/v1/applications/{app['id']}/events/withdraw",
        headers=applicant,
        json={"comment": "", "state": "awarded"},
    )
    assert event.status_code == 422
    assert client.get(f"/api/v1/applications/{app['id']}", headers=applicant).json()["state"] == (
        "draft"
    )


def test_another_organisations_objects_are_not_found(client, engine):
    owner, _ = signup(client, "Owner Org")
    stranger, _ = signup(client, "Stranger Org")
    app = bronze_ready(client, owner)
    item = client.get(f"/api/v1/applications/{app['id']}/evidence", headers=owner).json()[0]
    for path in (
        f"/api/v1/applications/{app['id']}",
        f"/api/v1/applications/{app['id']}/history",
        f"/api/v1/applications/{app['id']}/requirements",
        f"/api/v1/applications/{app['id']}/evidence",
        f"/api/v1/evidence/{item['id']}/file",
    ):
        assert client.get(path, headers=stranger).status_code == 404, path
    fired = client.post(
        f"/api/v1/applications/{app['id']}/events/withdraw", headers=stranger, json={}
    )
    assert fired.status_code == 404
    assert client.get(f"/api/v1/applications/{app['id']}", headers=owner).json()["state"] == "draft"


def test_evidence_download_is_an_attachment(client):
    owner, _ = signup(client, "Download Org")
    app = bronze_ready(client, owner)
    item = client.get(f"/api/v1/applications/{app['id']}/evidence", headers=owner).json()[0]
    got = client.get(f"/api/v1/evidence/{item['id']}/file", headers=owner)
    assert got.status_code == 200
    assert got.headers["content-disposition"].startswith("attachment;")
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.content == f"{item['slot']}\n".encode()


def test_guard_refusal_lists_every_unmet_requirement(client):
    owner, _ = signup(client, "Hasty Org")
    app = client.post(
        "/api/v1/applications", headers=owner, json={"scheme": "svqm", "level": "bronze"}
    ).json()
    assert set(app["unmet"]) == {"submit"}
    refused = client.post(f"/api/v1/applications/{app['id']}/events/submit", headers=owner, json={})
    assert refused.status_code == 422
    body = refused.json()
    assert body["error"] == "guard_refused"
    assert body["unmet"] == app["unmet"]["submit"]
    # Eligibility unanswered, no pledges, no evidence.
    assert len(body["unmet"]) == 3
    stale = client.post(
        f"/api/v1/applications/{app['id']}/events/withdraw", headers=owner, json={"version": 5}
    )
    assert (stale.status_code, stale.json()["error"]) == (409, "stale_version")
    wrong_state = client.post(
        f"/api/v1/applications/{app['id']}/events/resubmit", headers=owner, json={}
    )
    assert (wrong_state.status_code, wrong_state.json()["error"]) == (409, "transition_refused")
    wrong_role = client.post(
        f"/api/v1/applications/{app['id']}/events/confirm_award", headers=owner, json={}
    )
    assert (wrong_role.status_code, wrong_role.json()["error"]) == (403, "permission_denied")


def test_not_signed_in_is_401(client):
    assert client.get("/api/v1/applications").status_code == 401
    bad = client.get("/api/v1/applications", headers={"Authorization": "Bearer nope"})
    assert (bad.status_code, bad.json()["error"]) == (401, "not_signed_in")


def test_oversized_upload_is_refused_while_streaming(client, engine, tmp_path):
    owner, _ = signup(client, "Big Org")
    app = client.post(
        "/api/v1/applications", headers=owner, json={"scheme": "svqm", "level": "bronze"}
    ).json()

    def body():
        yield (
            b'--b\r\nContent-Disposition: form-data; name="requirement"\r\n\r\n'
            b'executive_commitment\r\n--b\r\nContent-Disposition: form-data; name="file"; '
            b'filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n'
        )
        for _ in range(100):
            yield b"a,b,c\n" * 1000
        yield b"\r\n--b--\r\n"

    # The body is streamed (chunked, no Content-Length): only counting the bytes catches it.
    refused = client.post(
        f"/api/v1/applications/{app['id']}/evidence",
        content=body(),
        headers={**owner, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert refused.status_code == 413
    assert refused.json()["error"] == "file_too_large"
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(EvidenceItem)).one() == 0
    blobs = tmp_path / "evidence" / "blobs"
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))


def test_executable_upload_is_415_and_stores_nothing(client, engine):
    owner, _ = signup(client, "Exe Org")
    app = client.post(
        "/api/v1/applications", headers=owner, json={"scheme": "svqm", "level": "bronze"}
    ).json()
    refused = client.post(
        f"/api/v1/applications/{app['id']}/evidence",
        headers=owner,
        data={"requirement": "executive_commitment"},
        files={"file": ("report.pdf", b"MZ\x90\x00" + b"\0" * 300, "application/pdf")},
    )
    assert refused.status_code == 415
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(EvidenceItem)).one() == 0
        assert s.exec(select(func.count()).select_from(Award)).one() == 0
