"""The staff's lists of applications: open work by default, search by organisation or reference,
filters limited to the schemes in play, the soonest deadline first, overdue work flagged."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import Session, col, select

from svqm.clock import utc_now
from svqm.db import writer
from svqm.web.format import reference
from svqm.workflow import queries
from svqm.workflow.models import Application
from svqm.workflow.schedule import OPEN, ScheduledDeadline
from svqm.workflow.service import Actor
from tests.web.test_list_paging import DUE_BY, _crowd
from tests.web.test_pages_staff import World, client, world  # noqa: F401  (fixtures)


def _listed(html: str, link: str) -> list[int]:
    return [int(i) for i in re.findall(rf'href="{re.escape(link)}/(\d+)"', html)]


def _options(html: str, name: str) -> list[str]:
    found = re.search(
        rf'<select class="govuk-select" id="{name}" name="{name}">(.*?)</select>', html, re.S
    )
    assert found, name
    return [v for v in re.findall(r'<option value="([^"]*)"', found.group(1)) if v]


def test_the_assessors_queue_shows_open_work_unless_finished_cases_are_asked_for(client, world):  # noqa: F811
    finished = world.award.application_id
    world.sign_in(client, world.assessor)
    queue = client.get("/assess").text
    open_work = _listed(queue, "/assess")
    assert open_work == [world.app_a.id]
    # A row names its application by the reference people quote, never the bare id.
    assert f": application {reference(world.app_a.id)}</span>" in queue
    assert f": application {world.app_a.id}<" not in queue
    everything = _listed(client.get("/assess", params={"finished": "yes"}).text, "/assess")
    assert sorted(everything) == sorted([world.app_a.id, finished])
    # Choosing a state shows it, finished or not.
    awarded = _listed(client.get("/assess", params={"state": "awarded"}).text, "/assess")
    assert awarded == [finished]


def test_the_admin_searches_by_part_of_a_name_or_by_reference(client, world):  # noqa: F811
    world.sign_in(client, world.admin)

    def found(q: str) -> list[int]:
        page = client.get("/admin/applications", params={"q": q})
        assert page.status_code == 200
        return sorted(_listed(page.text, "/admin/applications"))

    assert found("BETA") == [world.app_b.id]
    assert found("ha tr") == [world.app_a.id]
    assert found(reference(world.app_b.id)) == [world.app_b.id]
    assert found(str(world.app_a.id)) == [world.app_a.id]
    # The search's own wildcards are plain characters.
    assert found("%") == []
    assert found("a_p") == []
    assert found("") == sorted([world.app_a.id, world.app_b.id])
    page = client.get("/admin/applications", params={"q": "beta"})
    assert 'name="q" type="search" value="beta"' in page.text


def test_the_filters_offer_only_the_schemes_in_play(client, world, registry):  # noqa: F811
    assert len(registry.current) > 1
    with Session(world.engine) as s:
        in_play = sorted(set(s.exec(select(Application.scheme)).all()))
    assert in_play == ["svqm", "svqm-health"]  # the world's applications: two of the schemes
    world.sign_in(client, world.admin)
    page = client.get("/admin/applications").text
    assert sorted(_options(page, "scheme")) == in_play
    levels = {lv.id for sid in in_play for lv in registry.get(sid).policy.levels}
    assert set(_options(page, "level")) == levels
    others = {
        lv.id for sid, s in registry.current.items() if sid not in in_play for lv in s.policy.levels
    }
    assert others - levels, "a scheme not in play has levels of its own to leave out"


def test_overdue_work_is_flagged_and_comes_first(client, world):  # noqa: F811
    with Session(writer(world.engine)) as s:
        row = s.exec(
            select(ScheduledDeadline).where(
                ScheduledDeadline.subject_id == world.app_a.id,
                ScheduledDeadline.subject_kind == "application",
                ScheduledDeadline.status == OPEN,
            )
        ).first()
        assert row is not None
        row.due_at = utc_now() - timedelta(days=1)
        s.add(row)
        s.commit()
    world.sign_in(client, world.assessor)
    page = client.get("/assess").text
    assert 'govuk-tag--red">Overdue</strong>' in page
    world.sign_in(client, world.admin)
    page = client.get("/admin/applications", params={"sort": "due"}).text
    assert _listed(page, "/admin/applications") == [world.app_a.id, world.app_b.id]
    assert page.count(">Overdue</strong>") == 1
    # The deadlines page names the application by its reference too.
    deadlines = client.get("/admin/deadlines").text
    assert f"application {reference(world.app_a.id)}" in deadlines
    assert f"application {world.app_a.id}<" not in deadlines


def test_a_search_over_1200_applications_pages_in_sql(session, registry):
    """Every line of 1,200 that the search lets through is on exactly one page."""
    crowd = _crowd(session, registry)
    names = {ln.id: ln.organisation for ln in crowd.lines}
    filters = queries.ApplicationFilter(due_by=DUE_BY, search="org 1", open_only=True)
    seen, page = [], 1
    while True:
        found = queries.queue_page(
            session,
            Actor.of(crowd.admin),
            filters,
            registry=registry,
            sort="due",
            page=page,
            per_page=20,
        )
        assert len(found.lines) <= 20
        seen += [ln.id for ln in found.lines]
        if page >= found.pages:
            break
        page += 1
    wanted = [ln for ln in crowd.wanted() if ln.organisation.lower().startswith("org 1")]
    assert seen == [ln.id for ln in sorted(wanted, key=lambda ln: (ln.due, ln.id))]
    assert found.total == len(seen) > 3 * 20
    assert all("Org 1" in names[i] for i in seen)
    # A reference finds its one application among them.
    one = session.exec(select(Application.id).order_by(col(Application.id).desc())).first()
    by_ref = queries.queue_page(
        session,
        Actor.of(crowd.admin),
        queries.ApplicationFilter(search=reference(one)),
        registry=registry,
    )
    assert [ln.id for ln in by_ref.lines] == [one]
