"""Audit booking through the API and the pages: a Silver applicant proposes three dates (422
naming any too soon), the assessor confirms one, moves it, and the assessor's calendar has it."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

import pytest
from icalendar import Calendar
from sqlmodel import select

from svqm.accounts.models import Organisation, User
from svqm.clock import FixedClock
from svqm.db import session_scope
from svqm.notify.models import OutboxMessage
from svqm.web.views import applicant as applicant_views
from svqm.web.views.tasks import task_groups
from svqm.workflow.models import Application, AuditEvent, application_reference
from svqm.workflow.service import Actor
from tests.web.award_world import app_client, bearer, page_sign_in
from tests.web.pages_helpers import csrf_of, error_summary, make_account
from tests.workflow.harness import application_in

# Monday 16 February 2026: the earliest start is Wednesday 15 April (Easter's two bank holidays).
NOW = datetime(2026, 2, 16, 9, 0, tzinfo=UTC)
DAYS = ["2026-04-20", "2026-04-27", "2026-05-05"]


@dataclass
class World:
    org: Organisation
    applicant: User
    assessor: User
    other_assessor: User
    admin: User
    app_id: int


@pytest.fixture
def world(engine, registry):
    with session_scope(engine) as s:
        org = s.merge(Organisation(name="Harbour Care Trust", sector="health"))
        s.flush()
        applicant = make_account(s, "applicant", org)
        assessor, other, admin = (
            make_account(s, "assessor"),
            make_account(s, "assessor"),
            make_account(s, "admin"),
        )

        class _Cast:
            pass

        cast = _Cast()
        cast.org, cast.assessor = org, assessor
        app = application_in(
            s, registry, cast, scheme="svqm", level="silver", state="draft", at=NOW
        )
        s.commit()
        return World(org, applicant, assessor, other, admin, app.id)


@pytest.fixture
def client(engine, registry, tmp_path):
    with app_client(engine, registry, tmp_path, FixedClock(NOW)) as c:
        yield c


def _outbox(engine):
    with session_scope(engine) as s:
        return [(m.template, m.to_addrs, m.context) for m in s.exec(select(OutboxMessage))]


def test_the_api_refuses_dates_too_soon_then_books_and_confirms(client, engine, world):
    me = bearer(client, world.applicant)
    url = f"/api/v1/applications/{world.app_id}/audit-dates"
    soon = client.post(url, json={"dates": ["2026-04-14", DAYS[1], "2026-04-01"]}, headers=me)
    assert soon.status_code == 422, soon.text
    body = soon.json()
    assert "Tuesday 14 April 2026 is too soon" in body["unmet"][0]
    assert "Wednesday 1 April 2026 is too soon" in body["unmet"][1]
    assert len(body["unmet"]) == 2
    two = client.post(url, json={"dates": DAYS[:2]}, headers=me)
    assert two.status_code == 422
    assert "propose 3" in two.json()["detail"]
    made = client.post(url, json={"dates": DAYS}, headers=me)
    assert made.status_code == 201, made.text
    assert made.json()["proposed"] == DAYS
    assert made.json()["status"] == "proposed"
    assert made.json()["earliest"] == "2026-04-15"
    assert made.json()["start_date"] is None

    confirm = f"{url}/confirm"
    assert client.post(confirm, json={"date": DAYS[0]}, headers=me).status_code == 403
    stranger = bearer(client, world.other_assessor)
    assert client.post(confirm, json={"date": DAYS[0]}, headers=stranger).status_code in (403, 404)
    staff = bearer(client, world.assessor)
    done = client.post(confirm, json={"date": DAYS[0]}, headers=staff)
    assert done.status_code == 200, done.text
    assert done.json()["start_date"] == DAYS[0]
    assert done.json()["status"] == "confirmed"

    app = client.get(f"/api/v1/applications/{world.app_id}", headers=me).json()
    due = {d["kind"]: d["due_at"] for d in app["deadlines"]}
    # Midnight UK time (BST) at the start of Monday 20 April.
    assert due["audit_evidence"].startswith("2026-04-19T23:00:00")
    mail = _outbox(engine)
    proposed = [c for t, to, c in mail if "audit start dates proposed" in c]
    confirmed = [(to, c) for t, to, c in mail if "audit start date confirmed" in c]
    assert len(proposed) == 2  # the assessor and the admins
    assert {to for to, _ in confirmed} == {world.applicant.email, world.assessor.email}
    assert all("Monday 20 April 2026" in c for _, c in confirmed)


def test_the_pages_book_confirm_and_move_the_audit_and_the_calendar_follows(client, engine, world):
    page_sign_in(client, world.applicant)
    tasks = client.get(f"/applications/{world.app_id}")
    assert 'id="task-audit-dates"' in tasks.text
    assert "Propose three start dates" in tasks.text
    form = client.get(f"/applications/{world.app_id}/audit-dates")
    assert form.status_code == 200
    assert "Wednesday 15 April 2026" in form.text
    token = csrf_of(form.text)

    def dates(values):
        out = {"csrf_token": token, "version": "1"}
        for n, iso in enumerate(values):
            d = date.fromisoformat(iso)
            out |= {f"date{n}-day": str(d.day), f"date{n}-month": str(d.month)}
            out |= {f"date{n}-year": str(d.year)}
        return out

    refused = client.post(
        f"/applications/{world.app_id}/audit-dates", data=dates(["2026-04-01", *DAYS[1:]])
    )
    assert refused.status_code == 422
    assert "Wednesday 1 April 2026 is too soon" in error_summary(refused.text)
    assert 'href="#date0-day"' in refused.text
    sent = client.post(
        f"/applications/{world.app_id}/audit-dates", data=dates(DAYS), follow_redirects=False
    )
    assert sent.status_code == 303, sent.text[:800]
    after = client.get(sent.headers["location"])
    assert "Monday 27 April 2026" in after.text
    assert "Waiting for the scheme" in after.text

    page_sign_in(client, world.assessor)
    staff = client.get(f"/applications/{world.app_id}/audit-dates")
    assert 'name="date" type="radio" value="2026-04-27"' in staff.text
    # Staff are not told to propose dates for 'your audit': they confirm the organisation's.
    assert "for your audit" not in staff.text
    assert "Confirm one of them below" in staff.text
    token = csrf_of(staff.text)
    version = _version(engine, world.app_id)
    ok = client.post(
        f"/applications/{world.app_id}/audit-dates/confirm",
        data={"csrf_token": token, "version": str(version), "date": DAYS[1]},
        follow_redirects=False,
    )
    assert ok.status_code == 303, ok.text[:800]
    feed = _audits(client.get("/assess/calendar.ics"))
    assert feed == {f"audit-{world.app_id}@svqm.example.org": date(2026, 4, 27)}
    summaries = Calendar.from_ical(client.get("/assess/calendar.ics").content).walk("VEVENT")
    assert any(str(e["SUMMARY"]).endswith(f"application APP-{world.app_id:06d}") for e in summaries)

    staff = client.get(f"/applications/{world.app_id}/audit-dates")
    assert "Move the audit" in staff.text
    moved = client.post(
        f"/applications/{world.app_id}/audit-dates/confirm",
        data={
            "csrf_token": csrf_of(staff.text),
            "version": str(_version(engine, world.app_id)),
            "date": DAYS[2],
            "comment": "The organisation's director is away that week.",
        },
        follow_redirects=False,
    )
    assert moved.status_code == 303
    feed = _audits(client.get("/assess/calendar.ics"))
    assert feed == {f"audit-{world.app_id}@svqm.example.org": date(2026, 5, 5)}
    with session_scope(engine) as s:
        events = s.exec(
            select(AuditEvent).where(AuditEvent.subject_id == world.app_id).order_by(AuditEvent.seq)
        ).all()
        assert [e.trigger for e in events][-1] == "reschedule_audit"
        assert "from Monday 27 April 2026 to Tuesday 5 May 2026" in events[-1].comment

    # A stale form (the version it was read at) is refused, not applied.
    stale = client.post(
        f"/applications/{world.app_id}/audit-dates/confirm",
        data={"csrf_token": csrf_of(staff.text), "version": "1", "date": DAYS[0]},
    )
    assert stale.status_code == 409

    page_sign_in(client, world.applicant)
    tasks = client.get(f"/applications/{world.app_id}")
    assert "Starts Tuesday 5 May 2026" in tasks.text
    history = client.get(f"/applications/{world.app_id}/history")
    assert history.status_code == 200
    assert "Tuesday 5 May 2026" in history.text


def test_another_assessors_calendar_has_none_of_these_audits(client, world):
    page_sign_in(client, world.other_assessor)
    response = client.get("/assess/calendar.ics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    assert _audits(response) == {}


def _audits(response) -> dict[str, date]:
    assert response.status_code == 200, response.text[:500]
    cal = Calendar.from_ical(response.content)
    return {
        str(e["UID"]): e["DTSTART"].dt
        for e in cal.walk("VEVENT")
        if str(e["UID"]).startswith("audit-")
    }


def _version(engine, app_id: int) -> int:
    from svqm.workflow.models import Application

    with session_scope(engine) as s:
        return s.get(Application, app_id).version


def _groups(html: str) -> list[tuple[str, list[str]]]:
    """Each task-list heading with the ids of its tasks, in page order."""
    found = re.findall(
        r'<h2 class="govuk-heading-m">(.*?)</h2>\s*<ul class="govuk-task-list">(.*?)</ul>',
        html,
        re.S,
    )
    return [(h, re.findall(r'<li [^>]*id="task-([\w-]+)"', body)) for h, body in found]


def _hint(html: str, task: str) -> str:
    found = re.search(rf'id="task-{task}-hint" class="govuk-task-list__hint">(.*?)</div>', html)
    return found.group(1) if found else ""


def test_the_draft_task_list_puts_the_audit_after_sending_and_names_what_holds_sending_up(
    client, world
):
    page_sign_in(client, world.applicant)
    page = client.get(f"/applications/{world.app_id}")
    groups = _groups(page.text)
    headings = [h for h, _ in groups]
    assert headings.index("Declaration and sending") < headings.index(
        "After you send your application"
    )
    assert dict(groups)["After you send your application"] == ["audit-dates"]
    assert "after you send your application" in _hint(page.text, "audit-dates")
    # Sending waits for the pledges and the evidence, and says so by name: not for the audit.
    hint = _hint(page.text, "check")
    assert hint.startswith("Finish "), hint
    assert "pledges" in hint
    assert "evidence item" in hint
    assert "above" not in hint
    assert "audit" not in hint.lower()


def test_staff_read_the_task_list_as_the_applicants_tasks_not_their_own(client, world):
    """The assessor reading the draft read-only is told what the applicant does or is waited
    on for; no "your", no order to propose dates or send what is not theirs."""
    page_sign_in(client, world.assessor)
    page = client.get(f"/applications/{world.app_id}")
    assert page.status_code == 200
    assert "These pages are read-only." in page.text
    headings = [h for h, _ in _groups(page.text)]
    assert "About the organisation" in headings
    assert "After the application is sent" in headings
    assert _hint(page.text, "audit-dates") == (
        "Waiting for the applicant to propose three start dates, before or after sending"
    )
    assert "Check the answers and send the application" in page.text
    assert "Messages on this application" in page.text
    for own in ("your application", "your organisation", "Propose three", "with the assessor"):
        assert own not in page.text, own

    page_sign_in(client, world.applicant)
    page = client.get(f"/applications/{world.app_id}")
    assert "About your organisation" in [h for h, _ in _groups(page.text)]
    assert _hint(page.text, "audit-dates").startswith("Propose three start dates")
    assert "Messages with the assessor" in page.text


def test_staff_reading_the_task_list_or_an_evidence_item_are_linked_to_their_own_page(
    client, world
):
    """The read-only task list and its evidence items tell a member of staff where their role
    acts on the application (the page their emails link to), and that page answers; the
    evidence item is read in the third person; the applicant sees no such link."""
    pages = [
        (world.assessor, f"/assess/{world.app_id}", "open the review screen"),
        (world.admin, f"/admin/applications/{world.app_id}", "open the admin page"),
    ]
    for person, href, text in pages:
        page_sign_in(client, person)
        page = client.get(f"/applications/{world.app_id}")
        assert page.status_code == 200
        assert f'To act on it, <a class="govuk-link" href="{href}">{text}' in page.text
        evidence = re.findall(rf'href="(/applications/{world.app_id}/evidence/[^"]+)"', page.text)
        assert evidence
        item = client.get(evidence[0])
        assert item.status_code == 200
        assert f'<a class="govuk-link" href="{href}">{text}' in item.text
        assert "Back to the application" in item.text
        assert "your" not in item.text.split('id="main-content"', 1)[1].lower()
        assert client.get(href).status_code == 200
    page_sign_in(client, world.assessor)
    assessed = client.get(evidence[0])
    assert "To review or score it, " in assessed.text

    page_sign_in(client, world.applicant)
    page = client.get(f"/applications/{world.app_id}")
    assert "To act on it" not in page.text
    item = client.get(evidence[0])
    assert "Back to your application" in item.text
    assert "open the review screen" not in item.text


def test_the_dashboard_names_an_application_by_the_reference_its_emails_quote(client, world):
    page_sign_in(client, world.applicant)
    page = client.get("/dashboard")
    ref = application_reference(world.app_id)
    assert f'href="/applications/{world.app_id}">{ref}</a>' in page.text
    assert f"on application {ref}</span>" in page.text
    assert f">Application {world.app_id}<" not in page.text


def test_an_audit_booked_only_after_sending_cannot_start_on_the_draft(world, engine, registry):
    with session_scope(engine) as s:
        app = s.get(Application, world.app_id)
        applicant = s.get(User, world.applicant.id)
        view = applicant_views.task_list(s, registry, app, Actor.of(applicant), NOW)
    closed = replace(view, audit={**view.audit, "open": ""})
    audit = next(t for g in task_groups(closed) for t in g.tasks if t.id == "audit-dates")
    assert (audit.status, audit.href, audit.hint) == (
        "Cannot start yet",
        None,
        "After you send your application",
    )
    check = next(t for g in task_groups(closed) for t in g.tasks if t.id == "check")
    assert "audit" not in check.hint.lower()


def test_the_audit_task_asks_for_the_policys_number_of_dates(world, engine, registry):
    """The hint follows the policy's `audit.proposals`, not a fixed three."""
    with session_scope(engine) as s:
        app = s.get(Application, world.app_id)
        applicant = s.get(User, world.applicant.id)
        view = applicant_views.task_list(s, registry, app, Actor.of(applicant), NOW)
    assert view.audit["proposals"] == "3"

    def hint(proposals: str) -> str:
        shown = replace(view, audit={**view.audit, "proposals": proposals})
        return next(t for g in task_groups(shown) for t in g.tasks if t.id == "audit-dates").hint

    assert hint("3") == "Propose three start dates, now or after you send your application"
    assert hint("2") == "Propose two start dates, now or after you send your application"
    assert hint("1") == "Propose one start date, now or after you send your application"
    assert hint("12").startswith("Propose 12 start dates")


def test_the_admins_application_page_says_where_the_booking_stands_and_links_to_it(
    client, engine, world
):
    """An admin reaches the booking from the application's page: nothing proposed, then dates
    to confirm, then the confirmed start; a level that books no audit has no such section."""
    link = f'href="/applications/{world.app_id}/audit-dates" id="audit-link"'
    page_sign_in(client, world.admin)
    page = client.get(f"/admin/applications/{world.app_id}")
    assert page.status_code == 200
    assert "The organisation has not proposed audit start dates yet." in page.text
    assert link in page.text

    page_sign_in(client, world.applicant)
    form = client.get(f"/applications/{world.app_id}/audit-dates")
    values = {"csrf_token": csrf_of(form.text), "version": str(_version(engine, world.app_id))}
    for n, iso in enumerate(DAYS):
        d = date.fromisoformat(iso)
        values |= {f"date{n}-day": str(d.day), f"date{n}-month": str(d.month)}
        values |= {f"date{n}-year": str(d.year)}
    sent = client.post(f"/applications/{world.app_id}/audit-dates", data=values)
    assert sent.status_code == 200

    page_sign_in(client, world.admin)
    page = client.get(f"/admin/applications/{world.app_id}")
    assert "The organisation has proposed 3 start dates." in page.text
    assert "Confirm one of the proposed audit start dates" in page.text
    staff = client.get(f"/applications/{world.app_id}/audit-dates")
    ok = client.post(
        f"/applications/{world.app_id}/audit-dates/confirm",
        data={
            "csrf_token": csrf_of(staff.text),
            "version": str(_version(engine, world.app_id)),
            "date": DAYS[1],
        },
    )
    assert ok.status_code == 200
    page = client.get(f"/admin/applications/{world.app_id}")
    assert "The audit starts on Monday 27 April 2026." in page.text
    assert link in page.text
    assert "Confirm one of the proposed" not in page.text


def _waiting(html: str) -> str:
    found = re.search(r'id="audit-waiting">(.*?)</p>', html, re.S)
    return found.group(1).strip() if found else ""


def test_each_role_is_told_who_confirms_and_only_those_who_may_are_offered_the_button(
    client, engine, world
):
    """Before: the assessor was offered "Confirm this date" under "Waiting for the scheme to
    confirm one". The policy lets the assigned assessor and an admin confirm: they are offered
    the form and told it waits for them; the applicant (who may not) is told it waits for the
    scheme and offered no form; an assessor not on the application cannot open it."""
    url = f"/applications/{world.app_id}/audit-dates"
    proposed = client.post(
        f"/api/v1{url}", json={"dates": DAYS}, headers=bearer(client, world.applicant)
    )
    assert proposed.status_code == 201, proposed.text
    confirm_form = f'action="{url}/confirm"'

    page_sign_in(client, world.applicant)
    page = client.get(url)
    assert page.status_code == 200
    assert _waiting(page.text) == "Waiting for the scheme to confirm one."
    assert confirm_form not in page.text
    assert "Confirm this date" not in page.text
    assert _hint(client.get(f"/applications/{world.app_id}").text, "audit-dates") == (
        "Dates proposed: waiting for the scheme to confirm one"
    )
    for person in (world.assessor, world.admin):
        page_sign_in(client, person)
        page = client.get(url)
        assert page.status_code == 200
        assert _waiting(page.text) == "Waiting for you to confirm one below.", person.role
        assert "Waiting for the scheme" not in page.text
        assert confirm_form in page.text
        assert "Confirm this date" in page.text
    page_sign_in(client, world.other_assessor)
    assert client.get(url).status_code == 404
    # The applicant's staff task list (read by the assessor) does not say it waits for the scheme.
    page_sign_in(client, world.assessor)
    assert _hint(client.get(f"/applications/{world.app_id}").text, "audit-dates") == (
        "Dates proposed: waiting for one to be confirmed"
    )

    # Confirmed, then new dates proposed: the audit moves only when one of those is confirmed.
    done = client.post(
        f"/api/v1{url}/confirm", json={"date": DAYS[0]}, headers=bearer(client, world.assessor)
    )
    assert done.status_code == 200, done.text
    later = ["2026-05-11", "2026-05-18", "2026-05-26"]
    again = client.post(
        f"/api/v1{url}", json={"dates": later}, headers=bearer(client, world.applicant)
    )
    assert again.status_code == 201, again.text
    for person in (world.assessor, world.admin):
        page_sign_in(client, person)
        page = client.get(url)
        assert _waiting(page.text) == (
            "New dates: the audit moves only when you confirm one of these below."
        )
        assert ">Move the audit</button>" in page.text
    page_sign_in(client, world.applicant)
    page = client.get(url)
    assert _waiting(page.text) == (
        "Waiting for the scheme: the audit moves only when it confirms one of these."
    )
    assert confirm_form not in page.text
