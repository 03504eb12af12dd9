"""Messages on a case: the applicant and staff write on an application or an award, with a file
through the evidence store's checks, each message told to the other side by email (addressed by
name, linking to the thread), read markers giving unread counts; not-yours is 404."""

from __future__ import annotations

import json

from sqlmodel import Session, col, func, select

from svqm.accounts.models import User
from svqm.notify.models import OutboxMessage
from svqm.notify.render import build_message
from svqm.workflow import messages
from svqm.workflow.messages import CaseMessage, MessageFile
from tests.web.test_api import PASSWORD, bronze_ready, client, staff, token  # noqa: F401

CSV = b"month,volunteers\n2026-01,12\n"


def _signup(client, name: str, person: str) -> dict[str, str]:  # noqa: F811
    email = f"{name.lower().replace(' ', '')}@org.test"
    created = client.post(
        "/api/v1/organisations",
        json={
            "name": name,
            "sector": "health",
            "email": email,
            "password": PASSWORD,
            "person_name": person,
        },
    )
    assert created.status_code == 202, created.text
    return token(client, email)


def _opened(client, headers: dict[str, str]) -> dict:  # noqa: F811
    app = client.post(
        "/api/v1/applications", headers=headers, json={"scheme": "svqm", "level": "bronze"}
    )
    assert app.status_code == 201, app.text
    return app.json()


def _mail(engine, prefix: str) -> list[OutboxMessage]:
    with Session(engine) as s:
        return list(
            s.exec(
                select(OutboxMessage)
                .where(col(OutboxMessage.key).startswith(prefix))
                .order_by(col(OutboxMessage.id))
            )
        )


def _user_id(engine, email: str) -> int:
    with Session(engine) as s:
        found = s.exec(select(User.id).where(User.email == email)).one()
        assert found is not None
        return found


def _unread(engine, email: str, app_id: int) -> int:
    with Session(engine) as s:
        return messages.unread_counts(s, _user_id(engine, email), "application", [app_id]).get(
            app_id, 0
        )


def _blobs(tmp_path) -> int:
    root = tmp_path / "evidence" / "blobs"
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def test_a_message_round_trip_with_a_file(client, engine):  # noqa: F811
    applicant = _signup(client, "Riverside Care", "Ann Applicant")
    app = bronze_ready(client, applicant)
    base = f"/api/v1/applications/{app['id']}/messages"
    admin_email, admin_secret = staff(engine, "admin")
    client.post(f"/api/v1/applications/{app['id']}/events/submit", headers=applicant, json={})

    # No assessor yet: the admins hear of the applicant's message.
    first = client.post(base, headers=applicant, json={"body": "Who will assess us?"})
    assert first.status_code == 201, first.text
    assert set(first.json()) >= {"id", "author_id", "author_name", "body", "at", "attachments"}
    assert first.json()["author_name"] == "Ann Applicant"
    [to_admin] = _mail(engine, f"message:{first.json()['id']}:")
    assert to_admin.to_addrs == admin_email

    assessor_email, assessor_secret = staff(engine, "assessor")
    assigned = client.post(
        f"/api/v1/applications/{app['id']}/assessor",
        headers=token(client, admin_email, admin_secret),
        json={"assessor_id": _user_id(engine, assessor_email)},
    )
    assert assigned.status_code == 200, assigned.text
    assert _unread(engine, assessor_email, app["id"]) == 1

    sent = client.post(
        base,
        headers=applicant,
        data={"body": "Our volunteer figures are attached."},
        files={"file": ("figures.csv", CSV, "text/csv")},
    )
    assert sent.status_code == 201, sent.text
    [attached] = sent.json()["attachments"]
    assert (attached["filename"], attached["size"]) == ("figures.csv", len(CSV))
    [told] = _mail(engine, f"message:{sent.json()['id']}:")
    assert told.to_addrs == assessor_email
    assert json.loads(told.context)["path"] == f"/applications/{app['id']}/messages"
    assert _unread(engine, assessor_email, app["id"]) == 2

    assessor = token(client, assessor_email, assessor_secret)
    # The assessor reads the thread (newest last), downloads the file, and replies.
    read = client.get(base, headers=assessor)
    assert read.status_code == 200
    assert [m["body"] for m in read.json()] == [
        "Who will assess us?",
        "Our volunteer figures are attached.",
    ]
    assert _unread(engine, assessor_email, app["id"]) == 0
    download = client.get(f"{base}/files/{attached['id']}", headers=assessor)
    assert download.status_code == 200
    assert download.content == CSV
    assert download.headers["content-disposition"].startswith("attachment")
    assert _unread(engine, "riversidecare@org.test", app["id"]) == 0
    reply = client.post(base, headers=assessor, json={"body": "Thank you, these are clear."})
    assert reply.status_code == 201, reply.text
    assert _unread(engine, "riversidecare@org.test", app["id"]) == 1

    [to_applicant] = _mail(engine, f"message:{reply.json()['id']}:")
    assert to_applicant.to_addrs == "riversidecare@org.test"
    email = build_message(to_applicant, mail_from="svqm@example.test", base_url="http://x:8123")
    text = email.get_body(("plain",)).get_content()
    assert text.startswith("Hello Ann Applicant,")
    assert "Thank you, these are clear." in text
    assert f"http://x:8123/applications/{app['id']}/messages" in text
    assert "a message from" in email["Subject"]
    assert len(client.get(base, headers=applicant).json()) == 3
    assert _unread(engine, "riversidecare@org.test", app["id"]) == 0


def test_another_organisations_thread_is_not_found(client, engine):  # noqa: F811
    owner = _signup(client, "Owner Works", "Olu Owner")
    stranger = _signup(client, "Stranger Works", "Sam Stranger")
    app = _opened(client, owner)
    base = f"/api/v1/applications/{app['id']}/messages"
    posted = client.post(
        base, headers=owner, data={"body": "ours"}, files={"file": ("a.csv", CSV, "text/csv")}
    )
    assert posted.status_code == 201, posted.text
    file_id = posted.json()["attachments"][0]["id"]
    for response in (
        client.get(base, headers=stranger),
        client.post(base, headers=stranger, json={"body": "theirs"}),
        client.get(f"{base}/files/{file_id}", headers=stranger),
        client.get("/api/v1/awards/999999/messages", headers=owner),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "not_found"
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(CaseMessage)).one() == 1


def test_an_empty_message_or_a_bad_file_is_refused_and_keeps_nothing(
    client,  # noqa: F811
    engine,
    tmp_path,
):
    owner = _signup(client, "Careful Works", "Cat Careful")
    app = _opened(client, owner)
    base = f"/api/v1/applications/{app['id']}/messages"
    before = _blobs(tmp_path)
    for response in (
        client.post(base, headers=owner, json={"body": "   "}),
        client.post(base, headers=owner, json={}),
        client.post(base, headers=owner, data={"body": ""}, files={"file": ("a.csv", CSV)}),
    ):
        assert response.status_code == 422, response.text
    too_big = client.post(
        base,
        headers=owner,
        data={"body": "a big one"},
        files={"file": ("big.csv", b"a,b,c\n" * 50_000, "text/csv")},
    )
    assert too_big.status_code == 413, too_big.text
    exe = client.post(
        base,
        headers=owner,
        data={"body": "a program"},
        files={"file": ("report.pdf", b"MZ\x90\x00" + b"\0" * 300, "application/pdf")},
    )
    assert exe.status_code == 415, exe.text
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(CaseMessage)).one() == 0
        assert s.exec(select(func.count()).select_from(MessageFile)).one() == 0
    assert _blobs(tmp_path) == before
    assert not _mail(engine, "message:")
