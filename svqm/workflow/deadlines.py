"""Deadline arithmetic: anchors, calendar and working-day offsets, repeats. Pure functions of their inputs."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from svqm.policy import Deadline, Policy

# Working-day deadlines end at midnight in the scheme's home time zone, not UTC, so a day's
# length across the BST changes is right.
_LOCAL = ZoneInfo("Europe/London")


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


def add_working_days(when: datetime, days: int, country: str, subdivision: str) -> datetime:
    """The end (local midnight) of the `days`-th working day after `when`'s local date."""
    day = when.astimezone(_LOCAL).date()
    step = 1 if days >= 0 else -1
    remaining = abs(days)
    while remaining:
        day += timedelta(days=step)
        if is_working_day(day, country, subdivision):
            remaining -= 1
    end = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=_LOCAL)
    return end.astimezone(UTC)


def anchor_time(deadline: Deadline, subject: object) -> datetime:
    """The moment a deadline counts from, read off the subject row."""
    attribute = {
        "state_entered": "state_changed_at",
        "issued": "issued_at",
        "expires": "expires_at",
    }[deadline.anchor]
    value = getattr(subject, attribute)
    assert isinstance(value, datetime)
    return value


def due_at(policy: Policy, deadline: Deadline, anchor: datetime, occurrence: int = 0) -> datetime:
    """When the deadline falls; `occurrence` counts repeats (annual reports) from 0."""
    off = deadline.offset
    due = anchor
    if off.months:
        due = add_months(due, off.months)
    if off.days:
        due = due + timedelta(days=off.days)
    if off.working_days:
        s = policy.settings
        due = add_working_days(due, off.working_days, s.holiday_country, s.holiday_subdivision)
    if occurrence and deadline.repeat_months:
        due = add_months(due, deadline.repeat_months * occurrence)
    return due


def deadline(policy: Policy, kind: str) -> Deadline:
    """The policy's deadline of a kind."""
    return next(d for d in policy.deadlines if d.kind == kind)


def applies(deadline: Deadline, kind: str, subject: object) -> bool:
    """Whether the deadline runs for this subject now (its kind, state and level match)."""
    if deadline.subject != kind or subject.state not in deadline.while_in:
        return False
    return not deadline.levels or subject.level in deadline.levels


def running(policy: Policy, kind: str, subject: object, now: datetime) -> list[tuple[str, datetime]]:
    """The deadlines running for a subject now, with their next due date, soonest first."""
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
            due = due_at(policy, d, anchor, occurrence)
        out.append((d.kind, due))
    return sorted(out, key=lambda item: item[1])
