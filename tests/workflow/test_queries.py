"""The queue's light rows match the full listing, and every role sees only what it may."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert
from sqlmodel import Session

from svqm.errors import NotFound
from svqm.workflow import queries, schedule
from svqm.workflow.models import Application, PolicySnapshot
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor
from tests.factories import actor, make_org, make_user


def _world(session: Session, registry: SchemeRegistry, now: datetime) -> dict[str, Any]:
    """Two organisations with three applications each, spread over states, levels, assessors and
    times (some equal, so the id must break the tie the same way in every query)."""
    scheme = registry.get("svqm")
    registry.record_snapshot(session, scheme)
    orgs = [make_org(session), make_org(session)]
    applicants = [make_user(session, "applicant", org) for org in orgs]
    assessors = [make_user(session, "assessor"), make_user(session, "assessor")]
    apps = []
    for k in range(6):
        app = Application(
            organisation_id=orgs[k // 3].id or 0,
            scheme=scheme.id,
            scheme_version=scheme.policy.version,
            policy_digest=scheme.policy.digest,
            level=("bronze", "silver", "gold")[k % 3],
            state=("draft", "submitted", "under_review")[k % 3],
            assessor_id=assessors[k % 2].id,
            created_at=now,
            state_changed_at=now - timedelta(days=k // 2),
        )
        session.add(app)
        apps.append(app)
    session.flush()
    return {"orgs": orgs, "applicants": applicants, "assessors": assessors, "apps": apps}


def _actors(session: Session, world: dict[str, Any]) -> list[Actor]:
    panel_own = make_user(session, "panel", world["orgs"][0])
    return [
        actor(world["applicants"][0]),
        actor(world["assessors"][0]),
        actor(world["assessors"][1]),
        actor(make_user(session, "panel")),
        actor(panel_own),
        actor(make_user(session, "admin")),
    ]


FILTERS = [
    queries.ApplicationFilter(),
    queries.ApplicationFilter(state="submitted"),
    queries.ApplicationFilter(level="silver", scheme="svqm"),
    queries.ApplicationFilter(state="nope"),
]


@pytest.mark.parametrize("filters", FILTERS)
def test_queue_lines_list_what_list_applications_lists(
    session: Session, registry: SchemeRegistry, now: datetime, filters: queries.ApplicationFilter
) -> None:
    world = _world(session, registry, now)
    for who in _actors(session, world):
        for limit, offset in ((200, 0), (2, 0), (2, 2), (3, 5)):
            full = queries.list_applications(
                session, who, filters, registry=registry, limit=limit, offset=offset
            )
            lines = queries.list_queue_lines(
                session, who, filters, registry=registry, limit=limit, offset=offset
            )
            assert [line.id for line in lines] == [a.id for a in full], (who, limit, offset)
            for line, app in zip(lines, full, strict=True):
                assert (line.state, line.level, line.policy_digest) == (
                    app.state,
                    app.level,
                    app.policy_digest,
                )
                assert line.state_changed_at == app.state_changed_at
                assert line.organisation.startswith("Organisation ")


def test_visibility_by_role(session: Session, registry: SchemeRegistry, now: datetime) -> None:
    world = _world(session, registry, now)
    apps: list[Application] = world["apps"]
    applicant, first, second, panel, panel_own, admin = _actors(session, world)
    org0 = world["orgs"][0].id
    expected = {
        applicant: {a.id for a in apps if a.organisation_id == org0},
        first: {a.id for a in apps if a.assessor_id == first.id},
        second: {a.id for a in apps if a.assessor_id == second.id},
        panel: {a.id for a in apps if a.state != "draft"},
        panel_own: {a.id for a in apps if a.state != "draft" and a.organisation_id != org0},
        admin: {a.id for a in apps},
    }
    for who, ids in expected.items():
        assert {a.id for a in queries.list_applications(session, who, registry=registry)} == ids
        assert queries.count_applications(session, who, registry=registry) == len(ids)
        for app in apps:
            if app.id in ids:
                assert (
                    queries.get_application(session, app.id or 0, who, registry=registry).id
                    == app.id
                )
            else:
                with pytest.raises(NotFound):
                    queries.get_application(session, app.id or 0, who, registry=registry)
    nobody = Actor(99, "stranger")
    assert queries.list_applications(session, nobody, registry=registry) == []
    with pytest.raises(NotFound):
        queries.get_application(session, apps[0].id or 0, nobody, registry=registry)


def test_queue_lines_and_open_deadlines_agree_with_the_schedule(
    session: Session, registry: SchemeRegistry, now: datetime
) -> None:
    world = _world(session, registry, now)
    apps: list[Application] = world["apps"]
    first, second = apps[1], apps[2]
    rows = [
        # (subject_kind, subject, kind, due in days, status): closed rows and an award with the
        # same id must not count; equal due times fall back to the row id.
        ("application", first, "assessor_review", 5, schedule.OPEN),
        ("application", first, "panel_decision", 2, "met"),
        ("application", first, "more_information", 5, schedule.OPEN),
        ("award", first, "expiry", 1, schedule.OPEN),
        ("application", second, "appeal_window", 9, schedule.OPEN),
        ("application", second, "assessor_review", 3, schedule.OPEN),
    ]
    for seq, (subject_kind, app, kind, days, status) in enumerate(rows):
        session.add(
            schedule.ScheduledDeadline(
                subject_kind=subject_kind,
                subject_id=app.id or 0,
                organisation_id=app.organisation_id,
                scheme=app.scheme,
                kind=kind,
                seq=seq,
                due_at=now + timedelta(days=days),
                status=status,
                created_at=now,
            )
        )
    session.flush()
    ids = [a.id or 0 for a in apps]
    expected = schedule.open_due(session, "application", ids)
    assert expected[first.id or 0][0] == ("assessor_review", now + timedelta(days=5))
    for who in _actors(session, world):
        for line in queries.list_queue_lines(session, who, registry=registry):
            soonest = expected[line.id][0] if expected[line.id] else (None, None)
            assert (line.deadline_kind, line.deadline_due) == soonest
    for app_id in ids:
        assert queries.open_deadlines(session, app_id) == expected[app_id]


def test_recorded_digests_are_read_once_a_transaction_and_never_go_stale(
    engine: Any, registry: SchemeRegistry, now: datetime
) -> None:
    """A list reads the recorded policy versions once per transaction (its lines, count and
    schemes share them), yet sees a version recorded in that transaction or before the next."""
    scheme = registry.get("svqm")
    sent: list[str] = []

    def listen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.split() == ["SELECT", "policysnapshot.digest", "FROM", "policysnapshot"]:
            sent.append(statement)

    event.listen(engine, "before_cursor_execute", listen)
    try:
        with Session(engine) as session:
            assert queries.recorded_digests(session) == ()
            assert queries.finished_states(session, registry) == []
            assert len(sent) == 1  # the second call kept the first answer
            registry.record_snapshot(session, scheme)  # in this transaction: forgotten
            digests = queries.recorded_digests(session)
            assert digests == (scheme.policy.digest,)
            session.commit()
            assert queries.recorded_digests(session) == digests  # a new transaction asks again
            assert len(sent) == 3
            with Session(engine) as other:  # another unit of work records a version meanwhile
                other.execute(
                    insert(PolicySnapshot).values(
                        digest="f" * 64,
                        scheme=scheme.id,
                        version="old",
                        source_text="x",
                        created_at=now,
                    )
                )
                other.commit()
            assert queries.recorded_digests(session) == digests  # kept no further than...
            assert len(sent) == 3
            session.commit()
            # ...the transaction's end: the next one asks again and sees both.
            assert sorted(queries.recorded_digests(session)) == sorted(
                [scheme.policy.digest, "f" * 64]
            )
    finally:
        event.remove(engine, "before_cursor_execute", listen)
