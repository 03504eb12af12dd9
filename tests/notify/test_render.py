"""What an email says is true when it is sent: relative phrases, past dates, greetings."""

from __future__ import annotations

import email.generator
import email.policy
import json
from datetime import UTC, datetime, timedelta

import pytest

from svqm.notify import recipients, render
from svqm.notify.models import OutboxMessage
from svqm.notify.render import TEMPLATES, TITLES, build_message, title_of

DUE = datetime(2026, 6, 30, 9, 0, tzinfo=UTC)


def _row(template: str = "reminder", **context: object) -> OutboxMessage:
    base = {
        "organisation": "Kind & Co",
        "names": ["Ann Smith"],
        "scheme": "Social Value Quality Mark",
        "contact": "Write to svqm@example.test",
        "label": "Award expiry",
        "kind": "renewal",
        "subject_title": "Silver award (SVQM-1)",
        "due_at": DUE.isoformat(),
        "due_text": "Tuesday 30 June 2026",
        "days_before": 90,  # the reminder rule that wrote the row: not what the email says
        "on_due_text": "",
        "outcome": "",
        "link": "http://127.0.0.1:8115/dashboard/awards/1",
        "home_link": "http://127.0.0.1:8115/dashboard",
        "audience": "applicant",
    }
    return OutboxMessage(
        id=1,
        key="k",
        template=template,
        context=json.dumps(base | context),
        to_addrs="ann@example.test",
        created_at=DUE - timedelta(days=90),
    )


def _text(message) -> str:
    return message.get_body(("plain",)).get_content()


@pytest.mark.parametrize("days", [40, 69, 90])
def test_the_relative_phrase_is_counted_from_the_send_time(days):
    sent = DUE - timedelta(days=days)
    message = build_message(_row(), mail_from="svqm@example.test", now=sent)
    text = _text(message)
    assert f"is due on Tuesday 30 June 2026 (in {days} days)." in text
    assert text.startswith("Hello Ann Smith,\n")
    assert "Write to svqm@example.test" in text
    assert "http://127.0.0.1:8115/dashboard/awards/1" in text
    html = message.get_body(("html",)).get_content()
    assert f"(in {days} days)" in html
    assert message["Subject"] == "Reminder: Award expiry due Tuesday 30 June 2026"
    for other in {40, 69, 90} - {days}:
        assert f"in {other} days" not in text


def test_a_reminder_sent_after_its_date_does_not_call_it_due():
    message = build_message(_row(), mail_from="svqm@example.test", now=DUE + timedelta(days=3))
    assert message["Subject"] == "Award expiry was due Tuesday 30 June 2026"
    assert "was due on Tuesday 30 June 2026 (3 days ago)." in _text(message)
    assert "is due" not in _text(message)


def test_a_passed_deadline_is_not_named_as_due_in_its_subject():
    message = build_message(_row("due"), mail_from="svqm@example.test", now=DUE)
    assert message["Subject"] == "Award expiry: the due date has passed (Tuesday 30 June 2026)"
    assert "due Tuesday" not in message["Subject"]


@pytest.mark.parametrize(
    ("names", "greeting"),
    [
        (["Ann Smith"], "Hello Ann Smith,"),
        (["Ann Smith", "Bo Li"], "Hello Ann Smith and Bo Li,"),
        ([], "Hello Kind & Co team,"),
    ],
)
def test_people_are_greeted_by_name(names, greeting):
    row = _row(names=names, greeting_fallback="Kind & Co team")
    assert _text(build_message(row, mail_from="svqm@example.test")).startswith(greeting + "\n")


def test_a_due_date_is_a_day_without_the_time_it_was_computed_at():
    assert (
        recipients.due_text(datetime(2027, 2, 10, 8, 58, tzinfo=UTC))
        == "Wednesday 10 February 2027"
    )
    # Late in the evening UTC in summer is already the next day in the UK.
    assert recipients.due_text(datetime(2026, 6, 30, 23, 30, tzinfo=UTC)) == "Wednesday 1 July 2026"


@pytest.mark.parametrize(
    ("role", "path"),
    [
        ("applicant", "/dashboard/awards/3"),
        ("admin", "/admin/awards"),
        ("assessor", "/awards/3/verify"),
        ("panel", "/awards/3/verify"),
    ],
)
def test_an_award_email_links_each_role_to_a_page_it_may_open(role, path):
    assert recipients.page_of("award", 3, role) == path


def test_every_email_has_a_plain_title_for_the_outbox():
    """The admin's outbox names each kind of email in words: one title per template, in one
    place, and what it is about where its context says."""
    assert set(TITLES) == set(TEMPLATES)
    assert all(t and not set(t) & set("_:") for t in TITLES.values())

    def row(template: str, context: dict) -> OutboxMessage:
        return OutboxMessage(
            key="k",
            template=template,
            context=json.dumps(context),
            to_addrs="",
            next_attempt_at=DUE,
            created_at=DUE,
        )

    assert (
        title_of(row("reminder", {"label": "Annual report"})) == "Deadline reminder: Annual report"
    )
    assert (
        title_of(row("event", {"subject": "Award confirmed"}))
        == "Notice of a step: Award confirmed"
    )
    assert title_of(row("signup_exists", {})) == "Registration with an email address already in use"
    assert title_of(row("a_new_kind", {})) == "A new kind"  # a template without a title yet


def _bytes(message, monkeypatch) -> bytes:
    # The boundary is random; fixed here, so two builds of one message compare byte for byte.
    monkeypatch.setattr(
        email.generator.Generator, "_make_boundary", classmethod(lambda cls, text=None: "=b=")
    )
    return message.as_bytes()


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"organisation": "Café Ünïtéd & Søns", "names": ["Zoë Ærøskøbing", "Bo Li"]},
        {"label": "A very long deadline label that pushes the subject line past one line " * 2},
    ],
)
def test_a_message_is_the_bytes_the_standard_policy_builds(fields, monkeypatch):
    """Headers parsed once and handed out again (most are the same in every message) give the
    bytes and headers email.policy.default gives, however often the message is built."""
    row = _row(**fields)
    row.to_addrs = "ann@example.test, Bo Li <bo@example.test>"
    sender = "SVQM <noreply@example.test>"
    ours = [build_message(row, mail_from=sender, now=DUE) for _ in range(3)]
    monkeypatch.setattr(render, "_POLICY", email.policy.default)
    standard = build_message(row, mail_from=sender, now=DUE)
    expected = _bytes(standard, monkeypatch)
    assert [_bytes(m, monkeypatch) for m in ours] == [expected] * 3
    for m in ours:
        assert m.items() == standard.items()
        assert m["To"].addresses == standard["To"].addresses
        assert _text(m) == _text(standard)
    # The second and later builds had every header parsed already: the same objects again.
    assert ours[1]["From"] is ours[2]["From"]
    assert ours[1]["To"] is ours[2]["To"]
