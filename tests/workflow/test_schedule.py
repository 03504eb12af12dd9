from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import event
from sqlmodel import Session

from svqm.workflow import schedule
from svqm.workflow import service as workflow
from tests.workflow.harness import award_in, make_cast

AWARD_DEADLINES = ["annual_report", "expiry", "renewal"]  # an active Bronze award's


@contextmanager
def _statements(session: Session) -> Iterator[list[str]]:
    seen: list[str] = []
    engine = session.get_bind().engine

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _rows(session: Session, award_id: int) -> dict[str, list[tuple[int, str]]]:
    found: dict[str, list[tuple[int, str]]] = {}
    for r in schedule.for_subject(session, "award", award_id):
        found.setdefault(r.kind, []).append((r.seq, r.status))
    return {k: sorted(v) for k, v in sorted(found.items())}


def test_sync_cancels_and_reopens_with_a_few_statements_and_numbers_every_row(
    session, registry, now
):
    policy = registry.get("svqm").policy
    cast = make_cast(session)
    award = award_in(
        session,
        registry,
        cast,
        scheme="svqm",
        level="bronze",
        state="active",
        issued=now - timedelta(days=30),
        at=now,
    )
    assert award.id is not None
    with _statements(session) as opened:
        schedule.sync(session, policy, award, now)
    assert len(opened) == 2  # read the subject's rows, insert the three deadlines
    with _statements(session) as unchanged:
        schedule.sync(session, policy, award, now)
    assert len(unchanged) == 1
    loaded = schedule.open_rows(session, "award", award.id)
    assert sorted(r.kind for r in loaded) == AWARD_DEADLINES

    admin = cast.actor("admin")
    for trigger in ("suspend", "reinstate", "suspend", "reinstate"):
        now += timedelta(days=1)
        workflow.fire(
            session, award, trigger, actor=admin, registry=registry, now=now, comment="check"
        )
        if trigger == "suspend":
            # The copies already loaded are told, as `close` tells its row.
            assert {(r.status, r.closed_at, r.wake_at) for r in loaded} == {
                ("cancelled", now, None)
            }
            assert {r.outcome for r in loaded} == {"the award left the deadline's states"}
            loaded = []
        else:
            loaded = schedule.open_rows(session, "award", award.id)

    expected = [(0, "cancelled"), (1, "cancelled"), (2, "open")]
    assert _rows(session, award.id) == dict.fromkeys(AWARD_DEADLINES, expected)
    session.expire_all()
    assert _rows(session, award.id) == dict.fromkeys(AWARD_DEADLINES, expected)
    for r in loaded:
        session.expunge(r)  # none loaded: then cancelling them needs no read and no flush
    with _statements(session) as suspended:
        now += timedelta(days=1)
        workflow.fire(
            session, award, "suspend", actor=admin, registry=registry, now=now, comment="check"
        )
    cancels = [s for s in suspended if s.lstrip().upper().startswith("UPDATE DEADLINE")]
    assert len(cancels) == 1  # every open row in one statement, without reading them first
    assert schedule.open_rows(session, "award", award.id) == []
