"""Deadline arithmetic: anchors, calendar and working-day offsets, repeats. Pure functions of their inputs."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from svqm.policy import Deadline, Policy
from svqm.workflow.models import Subject

# Working-day and end-of-year deadlines end at midnight in the scheme's home time zone, not UTC,
# so a day's length across the clock changes is right. This is the default zone.
_LOCAL = ZoneInfo("Europe/London")


@lru_cache(maxsize=32)
def zone(name: str) -> ZoneInfo:
    """A time zone by IANA name (the policy check has vouched for it)."""
    return ZoneInfo(name)


def add_months(when: datetime, months: int) -> datetime:
    """`when` moved by whole months, clamped to the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    month_index = when.month - 1 + months
    year, month = when.year + month_index // 12, month_index % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


@lru_cache(maxsize=32)
def _holiday_calendar(country: str, subdivision: str) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdivision or None)


def is_working_day(day: date, country: str, subdivision: str) -> bool:
    """Monday to Friday and not a public holiday in the calendar."""
    return day.weekday() < 5 and day not in _holiday_calendar(country, subdivision)


def add_working_days(
    when: datetime, days: int, country: str, subdivision: str, tz: ZoneInfo = _LOCAL
) -> datetime:
    """The end (local midnight) of the `days`-th working day after `when`'s local date."""
    day = when.astimezone(tz).date()
    step = 1 if days >= 0 else -1
    remaining = abs(days)
    while remaining:
        day += timedelta(days=step)
        if is_working_day(day, country, subdivision):
            remaining -= 1
    end = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=tz)
    return end.astimezone(UTC)


def end_of(when: datetime, period: str, tz: ZoneInfo = _LOCAL) -> datetime:
    """The end (local midnight) of the calendar month or year `when` falls in.

    A moment exactly at a period's start belongs to that period (1 January 00:00 ends on the
    next 1 January), so a repeat due at midnight is never pulled back a whole period.
    """
    local = when.astimezone(tz)
    if period == "year":
        start = date(local.year + 1, 1, 1)
    else:
        start = date(local.year + local.month // 12, local.month % 12 + 1, 1)
    return datetime.combine(start, time(0, 0), tzinfo=tz).astimezone(UTC)


def anchor_time(deadline: Deadline, subject: Subject) -> datetime:
    """The moment a deadline counts from, read off the subject row."""
    attribute = {
        "state_entered": "state_changed_at",
        "issued": "issued_at",
        "expires": "expires_at",
        "audit_start": "audit_starts_at",
    }[deadline.anchor]
    value = getattr(subject, attribute)
    assert isinstance(value, datetime)
    return value


def due_at(
    policy: Policy,
    deadline: Deadline,
    anchor: datetime,
    occurrence: int = 0,
    previous: datetime | None = None,
) -> datetime:
    """When the deadline falls; `occurrence` counts repeats (annual reports) from 0.

    A repeat counts `repeat_months` from the anchor's first due time (`repeat_from: due`), or
    from `previous`, the moment the occurrence before it was met (`repeat_from: met`); then
    `repeat_to_end_of` moves it to the end of its calendar month or year.
    """
    off = deadline.offset
    due = anchor
    if off.months:
        due = add_months(due, off.months)
    if off.days:
        due = due + timedelta(days=off.days)
    s = policy.settings
    if off.working_days:
        due = add_working_days(
            due, off.working_days, s.holiday_country, s.holiday_subdivision, zone(s.time_zone)
        )
    if not (occurrence and deadline.repeat_months):
        return due
    if deadline.repeat_from == "met" and previous is not None:
        due = add_months(previous, deadline.repeat_months)
    else:
        due = add_months(due, deadline.repeat_months * occurrence)
    if deadline.repeat_to_end_of:
        due = end_of(due, deadline.repeat_to_end_of, zone(s.time_zone))
    return due


def beyond_expiry(deadline: Deadline, subject: Subject, due: datetime) -> bool:
    """Whether an `until_expiry` deadline would fall due at or after the award expires."""
    expires = getattr(subject, "expires_at", None)
    return deadline.until_expiry and isinstance(expires, datetime) and due >= expires


def deadline(policy: Policy, kind: str) -> Deadline:
    """The policy's deadline of a kind, which the policy's cross-checks guarantee exists."""
    found = policy.deadline(kind)
    if found is None:
        raise KeyError(f"{policy.id} has no deadline '{kind}'")
    return found


def applies(deadline: Deadline, kind: str, subject: Subject) -> bool:
    """Whether the deadline runs for this subject now (its kind, state and level match)."""
    if deadline.subject != kind or subject.state not in deadline.while_in:
        return False
    # Counted from the audit's start: nothing runs until a start date is confirmed.
    if deadline.anchor == "audit_start" and getattr(subject, "audit_starts_at", None) is None:
        return False
    return not deadline.levels or subject.level in deadline.levels


def running(
    policy: Policy, kind: str, subject: Subject, now: datetime
) -> list[tuple[str, datetime]]:
    """The deadlines running for a subject now, with their next due date, soonest first.

    Worked out from the policy alone: a repeat counted from when the previous occurrence was
    met (`repeat_from: met`) is shown as if each was met on its due date. The schedule's rows
    (svqm.workflow.schedule) are the authority.
    """
    out = []
    for d in policy.deadlines:
        if not applies(d, kind, subject):
            continue
        anchor = anchor_time(d, subject)
        due = due_at(policy, d, anchor)
        occurrence = 0
        # A repeating deadline (annual reports) shows its next occurrence from now on.
        while d.repeat_months and due < now and occurrence < 1000:
            occurrence += 1
            due = due_at(policy, d, anchor, occurrence, previous=due)
        if not beyond_expiry(d, subject, due):
            out.append((d.kind, due))
    return sorted(out, key=lambda item: item[1])
