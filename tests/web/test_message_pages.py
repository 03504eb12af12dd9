"""Messages on a case, as pages: the thread with its form (text and a file), newest last, for the
applicant and the assessor alike; unread counts on the applicant's dashboard and the assessor's
queue, the queue's counted inside its one query; another party's thread is not found."""

from __future__ import annotations

import re

from sqlalchemy import event
from sqlmodel import Session

from svqm.clock import utc_now
from svqm.db import writer
from svqm.workflow import messages, queries
from svqm.workflow.models import Application
from svqm.workflow.service import Actor
from tests.web.pages_helpers import csrf_of, error_summary
from tests.web.test_pages_staff import World, client, world  # noqa: F401  (fixtures)

CSV = b"site,volunteers\nnorth,14\n"


def _post(client, path: str, body: str, file=None):  # noqa: F811
    token = csrf_of(client.get(path).text)
    files = {"file": file} if file else {"file": ("", b"", "application/octet-stream")}
    return client.post(
        path, data={"body": body, "csrf_token": token}, files=files, follow_redirects=False
    )


def test_a_thread_on_the_pages_with_unread_counts(client, world: World):  # noqa: F811
    app_id = world.app_a.id
    thread = f"/applications/{app_id}/messages"
    world.sign_in(client, world.applicant)
    page = client.get(thread)
    assert page.status_code == 200
    assert "No messages yet." in page.text
    assert f'href="/applications/{app_id}"' in page.text
    assert f'href="{thread}"' in client.get(f"/applications/{app_id}").text

    empty = _post(client, thread, "   ")
    assert empty.status_code == 422
    assert "Write a message" in error_summary(empty.text)
    sent = _post(client, thread, "Our site counts are attached.", ("counts.csv", CSV, "text/csv"))
    assert sent.status_code == 303
    assert sent.headers["location"] == f"{thread}?done=sent#write"
    shown = client.get(f"{thread}?done=sent").text
    assert (
        "Message sent. The assessor (or an administrator, if the case has no assessor) has been told by email."
        in shown
    )
    assert "other side" not in shown
    assert "Our site counts are attached." in shown
    [file_link] = re.findall(rf'href="({thread}/files/\d+)"', shown)

    # Another assessor's case is not theirs: not found, and nothing is read or marked.
    world.sign_in(client, world.assessor2)
    assert client.get(thread).status_code == 404
    assert client.get(file_link).status_code == 404

    world.sign_in(client, world.assessor)
    queue = client.get("/assess").text
    assert f'href="{thread}">1 unread message' in queue
    assert f'href="{thread}"' in client.get(f"/assess/{app_id}").text
    read = client.get(thread).text
    assert read.index("Our site counts are attached.") < read.index("Write a message")
    download = client.get(file_link)
    assert (download.status_code, download.content) == (200, CSV)
    assert "unread message" not in client.get("/assess").text
    assert _post(client, thread, "Thank you: clear.").status_code == 303
    told = client.get(f"{thread}?done=sent").text
    assert "Message sent. The organisation&#39;s people have been told by email." in told

    world.sign_in(client, world.applicant)
    dashboard = client.get("/dashboard").text
    assert f'href="{thread}">1 unread' in dashboard
    both = client.get(thread).text
    assert both.index("Our site counts are attached.") < both.index("Thank you: clear.")
    assert f'href="{thread}">Messages' in client.get("/dashboard").text

    award_thread = f"/awards/{world.award.id}/messages"
    assert f'href="{award_thread}"' in client.get(f"/dashboard/awards/{world.award.id}").text
    assert _post(client, award_thread, "A question on our award.").status_code == 303
    assert "A question on our award." in client.get(award_thread).text


def test_the_queue_counts_unread_messages_inside_its_one_query(world: World, engine, registry):  # noqa: F811
    with Session(writer(engine)) as s:
        messages.post(
            s,
            "application",
            world.fresh(Application, world.app_a.id),
            body="Is anything missing?",
            actor=Actor.of(world.applicant),
            now=utc_now(),
        )
        s.commit()
    statements: list[str] = []

    def note(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        with Session(engine) as s:
            found = queries.queue_page(s, Actor.of(world.assessor), registry=registry)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    unread = {ln.id: ln.unread for ln in found.lines}
    assert unread.pop(world.app_a.id) == 1
    assert unread
    assert set(unread.values()) == {0}
    selects = [st for st in statements if st.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2  # the lines (with their unread counts) and how many there are
    assert "case_message" in selects[0]
