"""One time zone for everyone: pages show dates and times in Europe/London, a time labelled
"UK time" (summer time included), and a day where a day is meant."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from svqm.accounts import service as accounts
from svqm.db import writer
from svqm.web.format import day, moment
from svqm.web.ui import templates
from tests.web.test_pages_staff import client, world  # noqa: F401

SUMMER_NIGHT = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)  # 00:30 BST on 2 July
WINTER = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # 09:00 GMT


def _macro(name: str, value: datetime) -> str:
    source = '{% from "public/_macros.html" import ' + name + " %}{{ " + name + "(v) }}"
    return templates.env.from_string(source).render(v=value).strip()


def test_times_are_uk_time_and_say_so():
    assert moment(SUMMER_NIGHT) == "2 July 2026 at 00:30 UK time"
    assert moment(WINTER) == "5 January 2026 at 09:00 UK time"
    assert _macro("datetime", SUMMER_NIGHT) == "2 July 2026 at 00:30 UK time"
    assert "UTC" not in _macro("datetime", WINTER)


def test_a_day_is_the_uk_day():
    assert day(SUMMER_NIGHT) == "2 July 2026"
    assert _macro("date", SUMMER_NIGHT) == "2 July 2026"
    assert _macro("date", WINTER) == "5 January 2026"


def test_the_conflicts_page_dates_a_conflict_by_the_uk_day(client, world):  # noqa: F811
    with Session(writer(world.engine)) as s:
        row = accounts.declare_conflict(
            s,
            user_id=world.assessor2.id,
            organisation_id=world.org_a.id,
            reason="Late-night record",
            recorded_by_id=world.admin.id,
        )
        row.created_at = SUMMER_NIGHT
        s.add(row)
        s.commit()
    world.sign_in(client, world.admin)
    page = client.get("/admin/conflicts").text
    row_html = page.split("Late-night record")[1].split("</tr>")[0]
    assert "2 July 2026" in row_html
