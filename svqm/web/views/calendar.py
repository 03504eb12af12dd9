"""An organisation's open deadlines as an iCalendar feed (RFC 5545), for any calendar app.

One VEVENT per deadline row, with a stable UID so that a calendar re-reading the feed updates the
event rather than adding a copy, and one VALARM per reminder offset of the policy's deadline, so
the calendar reminds people when the service's emails do.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from icalendar import Alarm, Calendar, Event, vText
from sqlmodel import Session

from svqm import __version__
from svqm.accounts import service as accounts
from svqm.accounts.models import Organisation, User
from svqm.policy import Policy
from svqm.web.format import reference
from svqm.web.views.deadlines import DeadlineView, describe
from svqm.workflow import audits, schedule
from svqm.workflow.models import Application
from svqm.workflow.schemes import SchemeRegistry

PRODID = f"-//svqm//Accreditation deadlines {__version__}//EN"


def _host(base_url: str) -> str:
    """The UID domain: the service's own host name, so UIDs are unique across services."""
    return urlsplit(base_url).hostname or "svqm.localhost"


def deadline_event(view: DeadlineView, *, base_url: str, now: datetime) -> Event:
    """The VEVENT of one deadline row, with its reminders as alarms."""
    link = base_url.rstrip("/") + view.applicant_path
    summary = f"{view.label}: {view.subject}"
    event = Event()
    event.add("uid", vText(f"deadline-{view.id}@{_host(base_url)}"))
    event.add("dtstamp", now.astimezone(UTC))
    # A deadline is a moment, not a stretch of time: no DTEND, and it never shows as busy.
    event.add("dtstart", view.due_at.astimezone(UTC))
    event.add("summary", vText(summary))
    event.add("description", vText(f"{summary}.\nDetails: {link}"))
    event.add("url", link)
    event.add("transp", "TRANSPARENT")
    for days in view.remind_before_days:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("trigger", timedelta(days=-days))
        alarm.add("description", vText(f"{summary} (in {days} days)"))
        event.add_component(alarm)
    return event


def _calendar(name: str, description: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    # vText escapes line breaks, commas and semicolons, so a name cannot add properties.
    cal.add("x-wr-calname", vText(name))
    cal.add("x-wr-caldesc", vText(description))
    return cal


def deadline_calendar(
    views: Iterable[DeadlineView], *, organisation: str, base_url: str, now: datetime
) -> bytes:
    """The whole feed: a VCALENDAR named after the organisation, one event per deadline."""
    cal = _calendar(
        f"{organisation}: accreditation deadlines",
        f"Deadlines of {organisation}'s applications and awards",
    )
    for view in views:
        cal.add_component(deadline_event(view, base_url=base_url, now=now))
    return cal.to_ical()


def audit_event(
    policy: Policy, app: Application, organisation: str, *, base_url: str, now: datetime
) -> Event:
    """The all-day VEVENT of an audit's start. Its UID is the application's, so a moved audit
    updates the event (its SEQUENCE counts the application's changes)."""
    day = audits.start_day(policy, app)
    assert day is not None
    link = f"{base_url.rstrip('/')}/assess/{app.id}"
    level = policy.level(app.level).name
    summary = f"Audit starts: {organisation}, {level} application {reference(app.id or 0)}"
    event = Event()
    event.add("uid", vText(f"audit-{app.id}@{_host(base_url)}"))
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", day)
    event.add("dtend", day + timedelta(days=1))
    event.add("sequence", app.version)
    event.add("summary", vText(summary))
    event.add("description", vText(f"{summary} ({policy.name}).\nDetails: {link}"))
    event.add("url", link)
    return event


def assessor_feed(
    session: Session, registry: SchemeRegistry, assessor: User, *, base_url: str, now: datetime
) -> bytes:
    """The assessor's feed: each confirmed audit of their applications as an all-day event, and
    the open deadlines of every application assigned to them."""
    assert assessor.id is not None
    apps, rows = audits.assigned_audits(session, assessor.id, limit=FEED_LIMIT)
    cal = _calendar(
        f"{assessor.name or assessor.email}: audits and deadlines",
        "Audits and deadlines of the applications assigned to you",
    )
    names = accounts.organisation_names(session, {a.organisation_id for a in apps})
    for app in apps:
        policy = registry.for_subject(session, app).policy
        cal.add_component(
            audit_event(policy, app, names.get(app.organisation_id, ""), base_url=base_url, now=now)
        )
    for view in describe(session, registry, rows):
        cal.add_component(deadline_event(view, base_url=base_url, now=now))
    return cal.to_ical()


# Far more than an organisation has open at once; a bound all the same.
FEED_LIMIT = 1000


def organisation_feed(
    session: Session,
    registry: SchemeRegistry,
    organisation: Organisation,
    *,
    base_url: str,
    now: datetime,
) -> bytes:
    """The feed of every open deadline of the organisation's applications and awards."""
    rows = schedule.upcoming(session, organisation_id=organisation.id, limit=FEED_LIMIT)
    return deadline_calendar(
        describe(session, registry, rows),
        organisation=organisation.name,
        base_url=base_url,
        now=now,
    )
