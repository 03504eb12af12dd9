"""The organisation's deadline calendar: one event per open deadline row, an alarm per reminder."""

from __future__ import annotations

from datetime import timedelta

import pytest
from icalendar import Calendar
from sqlmodel import Session

from svqm.accounts.models import Organisation
from svqm.clock import FixedClock
from svqm.db import writer
from svqm.web.views.calendar import deadline_calendar
from svqm.web.views.deadlines import DeadlineView
from tests.factories import make_org
from tests.web.award_world import (
    BASE_URL,
    T0,
    app_client,
    award_rows,
    bearer,
    issue_award,
    page_sign_in,
)
from tests.web.pages_helpers import make_account

# Silver (policies/svqm.yaml): what an award in force runs, with its reminder offsets.
SILVER_DEADLINES = {
    "Annual report": {30, 7},
    "Renewal submission": {60, 30, 7},
    "Award expiry": {90, 30, 7},
    "Eligible to apply for the next level": set(),
}


@pytest.fixture
def issued(engine, registry, tmp_path):
    return issue_award(engine, registry, tmp_path, name="Harbour Care Trust")


@pytest.fixture
def client(engine, registry, tmp_path):
    with app_client(engine, registry, tmp_path, FixedClock(T0 + timedelta(days=1))) as c:
        yield c


def _events(body: bytes) -> dict[str, object]:
    cal = Calendar.from_ical(body)
    return {str(e["UID"]): e for e in cal.walk("VEVENT")}


def test_the_feed_has_an_event_per_open_deadline_with_its_reminders(client, engine, issued):
    response = client.get(
        f"/api/v1/organisations/{issued.org.id}/calendar.ics",
        headers=bearer(client, issued.applicant),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    cal = Calendar.from_ical(response.content)
    assert str(cal["VERSION"]) == "2.0"
    assert "svqm" in str(cal["PRODID"])
    assert "Harbour Care Trust" in str(cal["X-WR-CALNAME"])

    rows = [r for r in award_rows(engine, issued.award_id) if r.status == "open"]
    events = _events(response.content)
    assert set(events) == {f"deadline-{r.id}@svqm.example.org" for r in rows}
    by_label = {}
    for row in rows:
        event = events[f"deadline-{row.id}@svqm.example.org"]
        assert event["DTSTART"].dt == row.due_at
        assert event["DTSTAMP"].dt == T0 + timedelta(days=1)
        label = str(event["SUMMARY"]).split(":")[0]
        assert "Silver" in str(event["SUMMARY"])
        assert f"{BASE_URL}/dashboard/awards/{issued.award_id}" in str(event["DESCRIPTION"])
        alarms = event.walk("VALARM")
        assert {str(a["ACTION"]) for a in alarms} <= {"DISPLAY"}
        by_label[label] = {-a["TRIGGER"].dt.days for a in alarms}
    assert by_label == SILVER_DEADLINES
    # The triggers are written as RFC 5545 durations before the start.
    assert b"TRIGGER:-P30D" in response.content


def test_uids_are_stable_so_a_calendar_updates_rather_than_duplicates(client, issued):
    headers = bearer(client, issued.applicant)
    path = f"/api/v1/organisations/{issued.org.id}/calendar.ics"
    assert set(_events(client.get(path, headers=headers).content)) == set(
        _events(client.get(path, headers=headers).content)
    )


def test_another_organisations_calendar_is_not_found(client, engine, issued):
    with Session(writer(engine), expire_on_commit=False) as s:
        other = make_account(s, "applicant", make_org(s, "Elsewhere Ltd"))
        assessor = make_account(s, "assessor")
    theirs = f"/api/v1/organisations/{issued.org.id}/calendar.ics"
    refused = client.get(theirs, headers=bearer(client, other))
    assert refused.status_code == 404
    assert refused.json()["error"] == "not_found"
    # The same answer as for an organisation that does not exist: nothing is revealed.
    missing = client.get("/api/v1/organisations/999999/calendar.ics", headers=bearer(client, other))
    assert missing.status_code == 404
    assert client.get(theirs, headers=bearer(client, assessor)).status_code == 403
    assert client.get(theirs).status_code == 401
    assert client.get(theirs, headers=bearer(client, issued.admin)).status_code == 200


def test_the_dashboard_links_the_same_feed_downloaded_with_the_session(client, issued):
    api = client.get(
        f"/api/v1/organisations/{issued.org.id}/calendar.ics",
        headers=bearer(client, issued.applicant),
    )
    page_sign_in(client, issued.applicant)
    dashboard = client.get("/dashboard")
    assert 'href="/dashboard/calendar.ics"' in dashboard.text
    assert "Add these deadlines to your calendar" in dashboard.text
    # The next deadlines are the schedule's rows: label, what it is for, and when.
    assert "Annual report" in dashboard.text
    assert f'href="/dashboard/awards/{issued.award_id}"' in dashboard.text
    feed = client.get("/dashboard/calendar.ics")
    assert feed.status_code == 200
    assert feed.headers["content-type"] == "text/calendar; charset=utf-8"
    assert "attachment" in feed.headers["content-disposition"]
    assert set(_events(feed.content)) == set(_events(api.content))


def test_the_page_feed_is_for_signed_in_applicants_only(client, issued):
    assert client.get("/dashboard/calendar.ics", follow_redirects=False).status_code == 303
    page_sign_in(client, issued.admin)
    assert client.get("/dashboard/calendar.ics").status_code == 403


def test_text_cannot_break_out_of_its_property():
    """A name with line breaks stays one escaped value: it cannot add events or properties."""
    view = DeadlineView(
        id=7,
        kind="annual_report",
        label="Annual report",
        subject_kind="award",
        subject_id=3,
        subject="X\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nSUMMARY:injected",
        organisation_id=1,
        organisation="Org",
        due_at=T0,
        remind_before_days=(7,),
        status="open",
        outcome="",
        closed_at=None,
    )
    body = deadline_calendar([view], organisation="Evil\nBEGIN:VEVENT", base_url=BASE_URL, now=T0)
    cal = Calendar.from_ical(body)
    assert len(cal.walk("VEVENT")) == 1
    assert b"X-WR-CALNAME:Evil\\nBEGIN:VEVENT" in body
    assert b"\nBEGIN:VEVENT\r\nSUMMARY:injected" not in body


def test_an_organisation_without_deadlines_gets_an_empty_calendar(client, engine):
    with Session(writer(engine), expire_on_commit=False) as s:
        org = make_org(s, "Quiet Org")
        user = make_account(s, "applicant", org)
        org_id = s.get(Organisation, org.id).id
    response = client.get(
        f"/api/v1/organisations/{org_id}/calendar.ics", headers=bearer(client, user)
    )
    assert response.status_code == 200
    assert Calendar.from_ical(response.content).walk("VEVENT") == []
