"""Long lists page in SQL: 1,200 applications filtered by due date are all reachable page by page,
none lost or shown twice, in the order asked, in the assessor's queue, the panel's decisions and
the admin's list."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from svqm.accounts import service as accounts
from svqm.accounts.models import User
from svqm.web.views.queues import panel_states
from svqm.workflow import queries
from svqm.workflow.models import Application
from svqm.workflow.schedule import OPEN, ScheduledDeadline
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor
from tests.web.pages_helpers import make_account, make_client, sign_in

N = 1200
PER_PAGE = 50
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DUE_BY = date(2026, 3, 31)
# Assessor's and panel's states: half of the applications wait for the panel.
STATES = ("under_review", "recommended_award", "submitted", "recommended_refusal")


@dataclass
class Line:
    id: int
    organisation: str
    state: str
    changed: datetime
    due: datetime | None  # the soonest open deadline


@dataclass
class Crowd:
    assessor: User
    panel: User
    admin: User
    lines: list[Line]

    def wanted(self, *, states: tuple[str, ...] = STATES) -> list[Line]:
        """Those the due-date filter lets through: an open deadline on or before DUE_BY."""
        end = datetime(2026, 4, 1, tzinfo=UTC)
        return [ln for ln in self.lines if ln.state in states and ln.due and ln.due < end]


def _crowd(session: Session, registry: SchemeRegistry) -> Crowd:
    """1,200 applications of 40 organisations, all assigned to one assessor; most have open
    deadlines spread over two months, some only a closed one, some none."""
    scheme = registry.get("svqm")
    registry.record_snapshot(session, scheme)
    orgs = [
        accounts.create_organisation(session, name=f"Org {k:02d} {'ABCD'[k % 4]}")
        for k in range(40)
    ]
    assessor = make_account(session, "assessor")
    panel = make_account(session, "panel")
    admin = make_account(session, "admin")
    rows = [
        {
            "organisation_id": orgs[i % len(orgs)].id,
            "scheme": scheme.id,
            "scheme_version": scheme.policy.version,
            "policy_digest": scheme.policy.digest,
            "level": "bronze",
            "state": STATES[i % len(STATES)],
            "version": 1,
            "assessor_id": assessor.id,
            "created_at": T0,
            # Many share a moment, so the id must break ties the same way on every page.
            "state_changed_at": T0 - timedelta(minutes=i % 97),
        }
        for i in range(N)
    ]
    session.execute(insert(Application), rows)
    apps = session.exec(select(Application).order_by(col(Application.id))).all()
    names = {o.id: o.name for o in orgs}
    deadlines, lines = [], []
    for i, app in enumerate(apps):
        assert app.id is not None
        due = None
        if i % 7 != 0:
            due = T0 + timedelta(days=i % 60, hours=i % 5)
            deadlines.append((app, "assessor_review", due, OPEN))
            # A later open one, which is not the soonest.
            deadlines.append((app, "panel_decision", due + timedelta(days=3), OPEN))
        if i % 5 == 0:
            # A closed row due sooner never counts.
            deadlines.append((app, "more_information", T0 - timedelta(days=2), "met"))
        lines.append(Line(app.id, names[app.organisation_id], app.state, app.state_changed_at, due))
    session.execute(
        insert(ScheduledDeadline),
        [
            {
                "subject_kind": "application",
                "subject_id": app.id,
                "organisation_id": app.organisation_id,
                "scheme": app.scheme,
                "kind": kind,
                "seq": seq,
                "due_at": due,
                "status": status,
                "created_at": T0,
            }
            for seq, (app, kind, due, status) in enumerate(deadlines)
        ],
    )
    session.commit()
    return Crowd(assessor, panel, admin, lines)


def _by_due(lines: list[Line]) -> list[int]:
    return [ln.id for ln in sorted(lines, key=lambda ln: (ln.due, ln.id))]


def _by_change(lines: list[Line]) -> list[int]:
    return [ln.id for ln in sorted(lines, key=lambda ln: (ln.changed, ln.id), reverse=True)]


def _by_name(lines: list[Line]) -> list[int]:
    return [ln.id for ln in sorted(lines, key=lambda ln: (ln.organisation, ln.id))]


def _every_page(session: Session, registry: SchemeRegistry, actor: Actor, sort, filters):  # type: ignore[no-untyped-def]
    seen, page = [], 1
    while True:
        found = queries.queue_page(
            session, actor, filters, registry=registry, sort=sort, page=page, per_page=PER_PAGE
        )
        assert len(found.lines) <= PER_PAGE
        seen += [ln.id for ln in found.lines]
        if page >= found.pages:
            return seen, found.total
        page += 1


@pytest.mark.parametrize(
    ("sort", "order"), [("due", _by_due), ("changed", _by_change), ("organisation", _by_name)]
)
def test_every_line_is_on_exactly_one_page_in_the_order_asked(
    session: Session, registry: SchemeRegistry, sort: str, order
) -> None:  # type: ignore[no-untyped-def]
    crowd = _crowd(session, registry)
    filters = queries.ApplicationFilter(due_by=DUE_BY)
    for who in (crowd.assessor, crowd.admin):
        seen, total = _every_page(session, registry, Actor.of(who), sort, filters)
        assert seen == order(crowd.wanted())
        assert total == len(seen) > 10 * PER_PAGE
    panel_filters = queries.ApplicationFilter(due_by=DUE_BY, offered_to="panel")
    seen, total = _every_page(session, registry, Actor.of(crowd.panel), sort, panel_filters)
    waiting = crowd.wanted(states=("recommended_award", "recommended_refusal"))
    assert seen == order(waiting)
    assert total == len(waiting) > 5 * PER_PAGE


def _ids_on(html: str, link: str) -> list[int]:
    return [int(i) for i in re.findall(rf'href="{re.escape(link)}/(\d+)"', html)]


def _walk(client, path: str, link: str, query: dict[str, str]) -> list[int]:  # type: ignore[no-untyped-def]
    """Follow the list's own "Next" links from its first page to its last."""
    seen: list[int] = []
    response = client.get(path, params=query)
    while True:
        assert response.status_code == 200, response.text[:500]
        seen += _ids_on(response.text, link)
        found = re.search(
            r'<a class="govuk-link govuk-pagination__link" href="([^"]+)" rel="next"', response.text
        )
        if found is None:
            return seen
        response = client.get(found.group(1).replace("&amp;", "&"))


def test_the_pages_reach_every_line_through_their_pagination(
    engine: Engine, session: Session, registry: SchemeRegistry, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    crowd = _crowd(session, registry)
    due = {"due_before": DUE_BY.isoformat()}
    waiting = crowd.wanted(states=("recommended_award", "recommended_refusal"))
    # The panel reads its decisions state by state, in the policy's order.
    in_turn = [
        i for st in panel_states(registry) for i in _by_due([w for w in waiting if w.state == st])
    ]
    lists = [
        (crowd.assessor, "/assess", "/assess", {**due, "sort": "due"}, _by_due(crowd.wanted())),
        (crowd.panel, "/panel", "/panel", due, in_turn),
        (
            crowd.admin,
            "/admin/applications",
            "/admin/applications",
            {**due, "sort": "organisation"},
            _by_name(crowd.wanted()),
        ),
    ]
    for who, path, link, query, expected in lists:
        with make_client(engine, registry, tmp_path) as client:
            sign_in(client, who.email, totp_secret=who.totp_secret)
            seen = _walk(client, path, link, query)
        assert seen == expected, path
        assert len(seen) == len(set(seen))
