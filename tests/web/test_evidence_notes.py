"""The applicant's note on an evidence item: added when uploading (page and API), kept with its
version, shown to the assessor with the version history; too long a note is refused with nothing
stored."""

from __future__ import annotations

from sqlmodel import Session, func, select

from svqm.evidence.models import EvidenceItem
from svqm.workflow.models import Application
from tests.web.pages_helpers import csrf_of
from tests.web.test_pages_staff import PASSWORD, _post, _version, client, world

__all__ = ["client", "world"]
NOTE = "Page 3 shows the signature of the chief executive and the date."


def _count(engine) -> int:
    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(EvidenceItem)).one()


def test_a_note_sent_with_an_upload_through_the_api_is_kept_with_its_version(client, world):
    signed_in = client.post(
        "/api/v1/auth/token", json={"email": world.applicant.email, "password": PASSWORD}
    )
    assert signed_in.status_code == 200, signed_in.text
    applicant = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    opened = client.post(
        "/api/v1/applications", json={"scheme": "svqm", "level": "Level 1"}, headers=applicant
    )
    assert opened.status_code == 201, opened.text
    app_id = opened.json()["id"]
    slot = client.get(f"/api/v1/applications/{app_id}/requirements", headers=applicant).json()[0]
    for note in ("", f"  {NOTE}  "):
        up = client.post(
            f"/api/v1/applications/{app_id}/evidence",
            headers=applicant,
            data={"requirement": slot["id"], "note": note},
            files={"file": ("signed.txt", f"signed {note}\n".encode(), "text/plain")},
        )
        assert up.status_code == 201, up.text
    items = client.get(f"/api/v1/applications/{app_id}/evidence", headers=applicant).json()
    mine = [(i["version"], i["note"]) for i in items if i["slot"] == slot["id"]]
    assert mine == [(1, ""), (2, NOTE)]

    before = _count(world.engine)
    too_long = client.post(
        f"/api/v1/applications/{app_id}/evidence",
        headers=applicant,
        data={"requirement": slot["id"], "note": "x" * 1001},
        files={"file": ("again.txt", b"again\n", "text/plain")},
    )
    assert too_long.status_code == 422
    assert "1,000 characters or fewer" in too_long.text
    assert _count(world.engine) == before


def test_the_assessor_reads_the_note_with_the_version_history(client, world):
    world.sign_in(client, world.assessor)
    url = f"/assess/{world.app_a.id}"
    page = client.get(url).text
    _post(client, f"{url}/events/start_review", page, version=_version(page))
    page = client.get(url).text
    with Session(world.engine) as s:
        item = s.exec(
            select(EvidenceItem).where(EvidenceItem.application_id == world.app_a.id)
        ).first()
    assert item is not None
    _post(
        client,
        f"{url}/evidence/{item.id}/review",
        page,
        version=_version(page),
        decision="more_information",
        comment="Please send the signed copy",
    )
    page = client.get(url).text
    assert _post(client, f"{url}/hand-back", page, version=_version(page)).status_code == 303
    assert world.fresh(Application, world.app_a.id).state == "changes_requested"

    # The applicant uploads a new version with a note, on the item's own page.
    world.sign_in(client, world.applicant)
    task = f"/applications/{world.app_a.id}/evidence/{item.slot}"
    form = client.get(task)
    assert "Note for the assessor (optional)" in form.text
    too_long = client.post(
        f"/applications/{world.app_a.id}/evidence",
        data={"requirement": item.slot, "note": "y" * 1001, "csrf_token": csrf_of(form.text)},
        files={"file": ("signed.txt", b"signed\n", "text/plain")},
    )
    assert too_long.status_code == 422
    assert "govuk-error-summary" in too_long.text
    assert "-note-error" in too_long.text  # the error is at the note, which keeps what was typed
    assert "y" * 1001 in too_long.text
    sent = client.post(
        f"/applications/{world.app_a.id}/evidence",
        data={"requirement": item.slot, "note": NOTE, "csrf_token": csrf_of(form.text)},
        files={"file": ("signed.txt", b"signed\n", "text/plain")},
        follow_redirects=True,
    )
    assert sent.status_code == 200
    assert f"Your note for the assessor: {NOTE}" in sent.text
    # The new version waits for the application to go back; the one reviewed says so.
    assert ">Ready to send</strong>" in sent.text
    assert "More information needed." in sent.text
    with Session(world.engine) as s:
        other = s.exec(
            select(EvidenceItem.slot).where(
                EvidenceItem.application_id == world.app_a.id, EvidenceItem.slot != item.slot
            )
        ).first()
    # An item sent before the application came back, and not reviewed yet, still awaits review.
    waiting = client.get(f"/applications/{world.app_a.id}/evidence/{other}").text
    assert ">Awaiting review</strong>" in waiting
    with Session(world.engine) as s:
        versions = s.exec(
            select(EvidenceItem.version, EvidenceItem.note)
            .where(EvidenceItem.application_id == world.app_a.id, EvidenceItem.slot == item.slot)
            .order_by(EvidenceItem.version)
        ).all()
    assert [tuple(v) for v in versions] == [(1, ""), (2, NOTE)]

    world.sign_in(client, world.assessor)
    case = client.get(url).text
    assert f"<strong>The applicant's note on version 2:</strong> {NOTE}" in case
    assert "The applicant's note on version 1" not in case
