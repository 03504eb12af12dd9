"""The admin's deadline list and email outbox: dead letters shown first and sent again."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import Session, select, update

from svqm.clock import FixedClock
from svqm.db import session_scope, writer
from svqm.notify import outbox
from svqm.notify.models import OutboxMessage
from svqm.workflow.deadlines import add_months
from svqm.workflow.schedule import ScheduledDeadline
from tests.web.award_world import T0, app_client, award_rows, issue_award, page_sign_in
from tests.web.pages_helpers import csrf_of, error_summary, make_account

NOW = T0 + timedelta(days=1)


@pytest.fixture
def client(engine, registry, tmp_path):
    with app_client(engine, registry, tmp_path, FixedClock(NOW)) as c:
        yield c


@pytest.fixture
def admin(engine):
    with Session(writer(engine), expire_on_commit=False) as s:
        return make_account(s, "admin")


def _enqueue(
    engine,
    key: str,
    to_addrs: list[str],
    *,
    dead: bool,
    template: str = "reminder",
    context: dict | None = None,
) -> int:
    with session_scope(engine) as s:
        outbox.enqueue(
            s, key=key, template=template, context=context or {}, to_addrs=to_addrs, now=T0
        )
        row = s.exec(select(OutboxMessage).where(OutboxMessage.key == key)).one()
        if dead:
            row.status, row.attempts, row.last_error = "dead", 8, "550 mailbox unavailable"
        return row.id


def _message(engine, message_id: int) -> OutboxMessage:
    with Session(engine) as s:
        row = s.get(OutboxMessage, message_id)
        assert row is not None
        return row


def test_dead_letters_are_flagged_listed_first_and_sent_again(client, engine, admin):
    waiting = _enqueue(engine, "reminder:waiting", ["a@org.test"], dead=False)
    dead = _enqueue(engine, "reminder:bounced", ["b@org.test"], dead=True)
    nobody = _enqueue(engine, "reminder:nobody", [], dead=False)  # dead from the start
    page_sign_in(client, admin)

    home = client.get("/admin")
    assert "2 emails could not be delivered" in home.text
    assert 'href="/admin/outbox#dead"' in home.text
    assert 'href="/admin/deadlines"' in home.text

    page = client.get("/admin/outbox")
    assert page.status_code == 200
    dead_part = page.text.split('id="dead"', 1)[1].split('id="newest"', 1)[0]
    assert f'id="message-{dead}"' in dead_part
    assert f'id="message-{nobody}"' in dead_part
    assert "reminder:waiting" not in dead_part
    assert "550 mailbox unavailable" in dead_part
    # Only a message with somebody to send it to can be sent again.
    assert f'action="/admin/outbox/{dead}/retry"' in dead_part
    assert f'action="/admin/outbox/{nobody}/retry"' not in dead_part
    assert "Deadline reminder" in page.text.split('id="newest"', 1)[1]  # among the newest

    sent = client.post(
        f"/admin/outbox/{dead}/retry",
        data={"csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert (sent.status_code, sent.headers["location"]) == (303, "/admin/outbox?done=retried")
    row = _message(engine, dead)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 0, NOW)
    assert "will be sent again" in client.get(sent.headers["location"]).text
    assert _message(engine, waiting).status == "pending"
    assert "1 email could not be delivered" in client.get("/admin").text


def test_the_outbox_names_each_email_in_plain_words(client, engine, admin):
    """Each message by what it is (and what about), not by its template's key; the bulk retry
    finds them by those words too."""
    _enqueue(
        engine,
        "deadline:7:30:applicant",
        ["a@org.test"],
        dead=False,
        context={"label": "Annual report"},
    )
    notice = _enqueue(
        engine,
        "event:application-3:4:applicant",
        ["b@org.test"],
        dead=True,
        template="event",
        context={"subject": "Bronze application: more information needed"},
    )
    welcome = _enqueue(
        engine, "signup:c@org.test", ["c@org.test"], dead=True, template="signup_welcome"
    )
    page_sign_in(client, admin)
    page = client.get("/admin/outbox").text
    dead_part, newest = page.split('id="newest"', 1)
    assert f"Message {notice}: Notice of a step: Bronze application: more information needed" in (
        dead_part
    )
    assert f"Message {welcome}: Welcome after registering" in dead_part
    cells = re.findall(r'<td class="govuk-table__cell">([^<]*)</td>', newest)
    assert "Deadline reminder: Annual report" in cells
    assert "Welcome after registering" in cells
    # No template's key names a message there.
    assert not {"reminder", "event", "signup_welcome"} & set(cells)
    retried = client.post(
        "/admin/outbox/retry",
        data={"csrf_token": csrf_of(page), "containing": "welcome after"},
        follow_redirects=False,
    )
    assert retried.status_code == 303
    assert (_message(engine, welcome).status, _message(engine, notice).status) == (
        "pending",
        "dead",
    )


def test_a_retry_without_the_form_token_is_refused(client, engine, admin):
    dead = _enqueue(engine, "reminder:bounced", ["b@org.test"], dead=True)
    page_sign_in(client, admin)
    for data in ({}, {"csrf_token": "forged"}):
        refused = client.post(f"/admin/outbox/{dead}/retry", data=data, follow_redirects=False)
        assert refused.status_code == 403
    cross_site = client.post(
        f"/admin/outbox/{dead}/retry",
        data={"csrf_token": csrf_of(client.get("/admin/outbox").text)},
        headers={"Sec-Fetch-Site": "cross-site"},
        follow_redirects=False,
    )
    assert cross_site.status_code == 403
    assert _message(engine, dead).status == "dead"


def test_a_message_that_cannot_be_retried_gets_the_error_summary(client, engine, admin):
    nobody = _enqueue(engine, "reminder:nobody", [], dead=False)
    waiting = _enqueue(engine, "reminder:waiting", ["a@org.test"], dead=False)
    page_sign_in(client, admin)
    token = csrf_of(client.get("/admin/outbox").text)
    for message_id, words in ((nobody, "nobody to send it to"), (waiting, "only dead messages")):
        refused = client.post(f"/admin/outbox/{message_id}/retry", data={"csrf_token": token})
        assert refused.status_code == 422
        assert words in error_summary(refused.text)
    missing = client.post("/admin/outbox/999999/retry", data={"csrf_token": token})
    assert missing.status_code == 404
    assert _message(engine, nobody).status == "dead"


def test_the_admin_sees_every_open_deadline_and_the_failed_due_actions(
    engine, registry, tmp_path, admin
):
    issued = issue_award(engine, registry, tmp_path, name="Harbour Care Trust")
    renewal = next(r for r in award_rows(engine, issued.award_id) if r.kind == "renewal")
    with session_scope(engine) as s:
        s.execute(
            update(ScheduledDeadline)
            .where(ScheduledDeadline.id == renewal.id)
            .values(status="failed", outcome="open_renewal refused: award is suspended")
        )
    # Two days past the report's due date, before any sweep has acted on it.
    late = add_months(T0, 12) + timedelta(days=2)
    with app_client(engine, registry, tmp_path, FixedClock(late)) as client:
        page_sign_in(client, admin)
        page = client.get("/admin/deadlines")
    assert page.status_code == 200
    open_part, failed_part = page.text.split('id="failed"', 1)
    assert "Harbour Care Trust" in open_part
    assert "Annual report" in open_part
    assert "Overdue" in open_part
    assert f'href="/admin/awards#award-{issued.award_id}"' in open_part
    assert "Renewal submission" in failed_part
    assert "open_renewal refused: award is suspended" in failed_part
    # Soonest first: the overdue report comes before the expiry, two years on.
    assert open_part.index("Annual report") < open_part.index("Award expiry")


@pytest.mark.parametrize("path", ["/admin/deadlines", "/admin/outbox"])
def test_the_operations_pages_are_for_admins(client, engine, path):
    with Session(writer(engine), expire_on_commit=False) as s:
        applicant = make_account(s, "applicant")
    page_sign_in(client, applicant)
    assert client.get(path).status_code == 403
