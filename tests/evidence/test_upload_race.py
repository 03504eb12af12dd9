"""Uploads racing for one evidence slot (on PostgreSQL they really run side by side)."""

from __future__ import annotations

import io
import threading

from sqlmodel import select

from svqm.db import session_scope
from svqm.errors import Conflict
from svqm.evidence.models import EvidenceItem
from svqm.workflow import actions
from svqm.workflow.models import Application
from tests.factories import actor, add_pledges, open_app, store_at
from tests.workflow.harness import make_cast

ROUNDS, UPLOADERS = 10, 4


def test_four_uploads_to_one_slot_at_once_all_become_versions(engine, registry, now, tmp_path):
    """Before: 19 of 40 such uploads on PostgreSQL raised an unhandled IntegrityError (a 500)."""
    with session_scope(engine) as session:
        cast = make_cast(session)
        app = open_app(session, registry, cast.applicant, level="bronze", now=now)
        add_pledges(session, registry, app, cast.applicant, now=now)
        app_id, who = app.id, actor(cast.applicant)
    store = store_at(tmp_path)
    failures: list[BaseException] = []
    conflicts: list[Conflict] = []
    lock = threading.Lock()

    def upload(n: int, barrier: threading.Barrier) -> None:
        try:
            barrier.wait(timeout=10)
            with session_scope(engine) as session:
                row = session.get(Application, app_id)
                actions.upload_evidence(
                    session,
                    row,
                    store,
                    requirement="executive_commitment",
                    pledge_id=None,
                    stream=io.BytesIO(f"upload {n}\n".encode()),
                    filename=f"c{n}.txt",
                    title="Commitment",
                    actor=who,
                    registry=registry,
                    now=now,
                )
        except Conflict as exc:
            with lock:
                conflicts.append(exc)
        except BaseException as exc:  # what would be a 500
            with lock:
                failures.append(exc)

    for r in range(ROUNDS):
        barrier = threading.Barrier(UPLOADERS)
        threads = [
            threading.Thread(target=upload, args=(r * UPLOADERS + i, barrier))
            for i in range(UPLOADERS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert failures == []
    with session_scope(engine, write=False) as session:
        versions = list(
            session.exec(
                select(EvidenceItem.version)
                .where(EvidenceItem.application_id == app_id)
                .order_by(EvidenceItem.version)
            )
        )
    # Every upload that was not told "409, try again" is a version of its own, numbered 1, 2, ...
    assert versions == list(range(1, ROUNDS * UPLOADERS - len(conflicts) + 1))
    assert len(conflicts) <= ROUNDS
