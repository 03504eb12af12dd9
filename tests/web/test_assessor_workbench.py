"""The assessor's workbench: reviews are collected, the rest accepted at once, and the case is
sent back once with every request for more information."""

from __future__ import annotations

import json
import re

from sqlalchemy import event
from sqlmodel import Session, col, select

from svqm.db import writer
from svqm.evidence import pledges
from svqm.evidence import service as evidence_service
from svqm.evidence.models import EvidenceItem
from svqm.notify.models import OutboxMessage
from svqm.workflow import service as workflow
from svqm.workflow.models import Application
from tests.web.test_pages_staff import _post, _version, client, world

__all__ = ["client", "world"]


def _started(client, world) -> tuple[str, str]:
    world.sign_in(client, world.assessor)
    url = f"/assess/{world.app_a.id}"
    page = client.get(url)
    _post(client, f"{url}/events/start_review", page.text, version=_version(page.text))
    return url, client.get(url).text


def _items(world) -> list[EvidenceItem]:
    with Session(world.engine) as s:
        return evidence_service.current_items(s, world.app_a.id)


def _ask(client, url: str, page: str, item: int, comment: str):
    return _post(
        client,
        f"{url}/evidence/{item}/review",
        page,
        version=_version(page),
        decision="more_information",
        comment=comment,
    )


def test_the_review_screen_reads_the_current_items_once_for_both_lists(client, world):
    """The items left to review and those asked more on come from one read (were two); the
    others are the checklist's read of every version, the page's and the workflow's own (its
    required_evidence_present guard, deciding which steps the assessor may take)."""
    url, page = _started(client, world)
    first, *rest = _items(world)
    assert _ask(client, url, page, first.id, "Add last year's figures").status_code == 303
    sent: list[str] = []

    def listen(conn, cursor, statement: str, *_) -> None:
        if statement.startswith("SELECT") and "FROM evidenceitem" in statement:
            sent.append(statement)

    event.listen(world.engine, "before_cursor_execute", listen)
    try:
        page = client.get(url).text
    finally:
        event.remove(world.engine, "before_cursor_execute", listen)
    assert len(sent) == 3
    collected = re.search(r'<ul [^>]*id="collected">(.*?)</ul>', page, re.S).group(1)
    assert first.title in collected
    assert f'action="/assess/{world.app_a.id}/evidence/{rest[0].id}/review"' in page


def test_two_requests_are_collected_then_sent_back_once(client, world):
    url, page = _started(client, world)
    first, second, *rest = _items(world)
    assert rest, "the fixture has more than two items, so the others stay to review"
    assert _ask(client, url, page, first.id, "Add last year's figures").status_code == 303
    page = client.get(url).text
    assert _ask(client, url, page, second.id, "Sign the policy").status_code == 303
    assert world.fresh(Application, world.app_a.id).state == "under_review"
    page = client.get(url).text
    collected = re.search(r'<ul [^>]*id="collected">(.*?)</ul>', page, re.S).group(1)
    assert collected.count("<li>") == 2
    assert (first.title in collected, second.title in collected) == (True, True)
    # The other items can still be reviewed while the two requests wait.
    assert f'action="/assess/{world.app_a.id}/evidence/{rest[0].id}/review"' in page

    sent = _post(client, f"{url}/hand-back", page, version=_version(page))
    assert sent.status_code == 303
    with Session(world.engine) as s:
        app = s.get(Application, world.app_a.id)
        assert app.state == "changes_requested"
        backs = [e for e in workflow.history(s, app) if e.trigger == "request_changes"]
        assert len(backs) == 1
        rows = s.exec(
            select(OutboxMessage).where(
                col(OutboxMessage.key).like(f"event:application-{app.id}:%")
            )
        ).all()
    asked = [json.loads(r.context) for r in rows if r.key.endswith(f":{backs[0].seq}:applicant")]
    assert len(asked) == 1
    assert asked[0]["items"] == [
        {"title": first.title, "comment": "Add last year's figures"},
        {"title": second.title, "comment": "Sign the policy"},
    ]
    assert "Add last year's figures" not in asked[0]["comment"]


def test_sending_back_with_nothing_collected_needs_a_note(client, world):
    url, page = _started(client, world)
    refused = _post(client, f"{url}/hand-back", page, version=_version(page))
    assert refused.status_code == 422
    assert 'href="#hand-back-comment"' in refused.text
    assert world.fresh(Application, world.app_a.id).state == "under_review"


def test_accept_all_remaining_accepts_the_ticked_ones_only(client, world):
    url, page = _started(client, world)
    first, second, *rest = _items(world)
    assert _ask(client, url, page, first.id, "Add last year's figures").status_code == 303
    page = client.get(url).text
    ticked = re.findall(r'name="accept" type="checkbox" value="(\d+)" checked', page)
    assert [int(t) for t in ticked] == [i.id for i in [second, *rest]]  # not the asked one
    data = {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)}
    data["version"] = _version(page)
    chosen = [str(i.id) for i in rest]  # the assessor unticks the second
    done = client.post(
        f"{url}/accept-remaining",
        data=data | {"accept": chosen},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    status = {i.id: i.status for i in _items(world)}
    assert status == {first.id: "more_information", second.id: "pending"} | {
        i.id: "accepted" for i in rest
    }
    page = client.get(done.headers["location"]).text
    assert "The items you chose have been accepted." in page
    # A stale page offering an item already accepted is refused, nothing changed.
    again = client.post(
        f"{url}/accept-remaining",
        data=data | {"accept": [str(rest[0].id), str(second.id)]},
        follow_redirects=False,
    )
    assert again.status_code == 409
    assert {i.id: i.status for i in _items(world)}[second.id] == "pending"


def test_another_assessor_cannot_accept_or_send_back(client, world):
    url, page = _started(client, world)
    world.sign_in(client, world.assessor2)
    other = client.get("/assess")
    for path in ("accept-remaining", "hand-back"):
        refused = _post(client, f"{url}/{path}", other.text, version=_version(page), accept="1")
        assert refused.status_code == 404
    assert world.fresh(Application, world.app_a.id).state == "under_review"


SECRET = "Board minutes are thin; ask the panel to probe"
OPEN = "Stakeholders are well mapped"


def test_scoring_shows_the_rubric_and_gates_and_notes_are_internal_unless_shared(
    client, world, registry
):
    url, page = _started(client, world)
    policy = registry.get("svqm").policy
    # Each score's words come from the policy, beside the question.
    for words in policy.settings.rubric[4].values():
        assert words in page
    assert policy.settings.rubric[1][1] in page
    gates = re.search(r'<ul class="govuk-list" id="gates">(.*?)</ul>', page, re.S).group(1)
    mandatory = [
        q
        for sid in policy.level("silver").standards
        for q in policy.standard(sid).questions
        if q.mandatory
    ]
    assert gates.count("Not scored") == len(mandatory)
    # Internal by default: the page offers staff only first, checked.
    assert (
        'id="visibility-plan-strategy-internal" name="visibility-plan-strategy" '
        'type="radio" value="internal" checked' in page
    )

    needs_score = _post(
        client, f"{url}/scores", page, version=_version(page), **{"note-plan-strategy": "x"}
    )
    assert needs_score.status_code == 422
    assert 'href="#score-plan-strategy"' in needs_score.text
    saved = _post(
        client,
        f"{url}/scores",
        page,
        version=_version(page),
        **{
            "score-plan-strategy": "1",
            "note-plan-strategy": SECRET,
            "score-plan-stakeholder_map": "3",
            "note-plan-stakeholder_map": OPEN,
            "visibility-plan-stakeholder_map": "applicant",
        },
    )
    assert saved.status_code == 303
    page = client.get(url).text
    assert SECRET in page  # staff read both
    assert OPEN in page
    gates = re.search(r'<ul class="govuk-list" id="gates">(.*?)</ul>', page, re.S).group(1)
    assert gates.count(">Met<") == 1

    # The applicant: page, API and email never carry the internal note.
    world.sign_in(client, world.applicant)
    mine = client.get(f"/applications/{world.app_a.id}").text
    assert OPEN in mine
    assert SECRET not in mine
    assert SECRET not in client.get(f"/applications/{world.app_a.id}/history").text
    client.cookies.clear()
    body = {"email": world.applicant.email, "password": "correct horse battery staple"}
    bearer = client.post("/api/v1/auth/token", json=body).json()["access_token"]
    api = client.get(
        f"/api/v1/applications/{world.app_a.id}/scores",
        headers={"Authorization": f"Bearer {bearer}"},
    )
    assert api.status_code == 200
    assert api.json()["notes"] == [
        {"standard": "plan", "question": "stakeholder_map", "note": OPEN, "visibility": "applicant"}
    ]
    assert SECRET not in api.text
    with Session(world.engine) as s:
        contexts = [r.context for r in s.exec(select(OutboxMessage)).all()]
    assert not any(SECRET in c for c in contexts)


def test_the_schemes_api_gives_each_question_its_rubric(client, registry):
    schemes = {s["id"]: s for s in client.get("/api/v1/schemes").json()}
    question = schemes["svqm"]["standards"][0]["questions"][0]
    assert question["rubric"] == {
        str(n): t for n, t in registry.get("svqm").policy.settings.rubric[1].items()
    }


def _as_kind(world, item_id: int, content_type: str) -> None:
    with Session(world.engine) as s:
        item = s.get(EvidenceItem, item_id)
        item.content_type = content_type
        s.add(item)
        s.commit()


def test_pdfs_and_images_are_previewed_sandboxed_for_the_staff_of_the_case_only(client, world):
    first, second, third, *_ = _items(world)
    _as_kind(world, first.id, "application/pdf")
    _as_kind(world, second.id, "image/png")
    url, page = _started(client, world)
    assert f'<iframe class="app-preview__frame" src="/evidence/{first.id}/preview"' in page
    assert f'<img class="app-preview__image" src="/evidence/{second.id}/preview"' in page
    assert f'src="/evidence/{third.id}/preview"' not in page  # a text file is only downloaded

    for item, kind in ((first, "application/pdf"), (second, "image/png")):
        shown = client.get(f"/evidence/{item.id}/preview")
        assert shown.status_code == 200
        assert shown.headers["content-type"].startswith(kind)
        assert shown.headers["content-disposition"].startswith("inline;")
        csp = shown.headers["content-security-policy"]
        assert csp.startswith("sandbox;")
        assert "default-src 'none'" in csp
        assert "frame-ancestors 'self'" in csp
        assert shown.headers["x-frame-options"] == "SAMEORIGIN"
        assert shown.headers["x-content-type-options"] == "nosniff"
        assert shown.headers["cache-control"] == "no-store"
    text = client.get(f"/evidence/{third.id}/preview")
    assert text.status_code == 415  # only downloaded
    assert "download it instead" in text.text

    # Another assessor, the organisation itself, another organisation: no evidence to preview.
    world.sign_in(client, world.assessor2)
    assert client.get(f"/evidence/{first.id}/preview").status_code == 404
    world.sign_in(client, world.applicant)
    assert client.get(f"/evidence/{first.id}/preview").status_code == 404
    assert client.get(f"/evidence/{first.id}/download").status_code == 200  # still theirs
    with Session(world.engine) as s:
        theirs = evidence_service.current_items(s, world.app_b.id)[0]
    world.sign_in(client, world.assessor)
    assert client.get(f"/evidence/{theirs.id}/preview").status_code == 404
    world.sign_in(client, world.admin)
    assert client.get(f"/evidence/{first.id}/preview").status_code == 200
    client.cookies.clear()
    assert client.get(f"/evidence/{first.id}/preview", follow_redirects=False).status_code != 200


def test_the_case_page_shows_the_pledges_with_indicator_and_target(client, world):
    _, page = _started(client, world)
    with Session(world.engine) as s:
        held = pledges.list_pledges(s, world.app_a.id)
    assert held
    section = page.split('id="pledges"', 1)[1].split('id="evidence"', 1)[0]
    for p in held:
        assert p.title in section
        assert p.indicator in section
        assert p.target in section


def test_the_review_screen_shows_each_files_own_title_else_its_name(client, world):
    first, second, *_ = _items(world)
    with Session(writer(world.engine)) as s:
        titled = s.get(EvidenceItem, first.id)
        titled.title = "Board minutes, March 2026"  # as the applicant gave it on upload
        s.commit()
    world.sign_in(client, world.assessor)
    page = client.get(f"/assess/{world.app_a.id}").text

    def link(item: EvidenceItem) -> str:
        return re.search(rf'href="/evidence/{item.id}/download">([^<]+)<', page).group(1)

    assert link(first) == "Board minutes, March 2026"
    assert f"{first.filename}, version 1," in page
    # The fixture's other files were given no title (theirs is the item's): shown by name.
    assert link(second) == second.filename
