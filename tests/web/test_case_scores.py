"""The review screen and the score read work out the scores, their notes and the result from one
read of the score rows (they read them three and two times), and still agree with the reads
that give one of them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlmodel import Session

from svqm.clock import utc_now
from svqm.db import writer
from svqm.evidence import service as evidence_service
from svqm.web.views.case import case_file
from svqm.web.views.scores import score_result_public
from svqm.workflow import service as workflow
from svqm.workflow.models import Application
from tests.factories import review_all, score_all
from tests.web.test_pages_staff import world  # noqa: F401  (the fixture)


@contextmanager
def _score_reads(engine: Any) -> Iterator[list[str]]:
    sent: list[str] = []

    def listen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("SELECT") and " FROM score " in f"{statement} ".replace("\n", " "):
            sent.append(statement)

    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", listen)


def _scored(world: Any) -> None:  # noqa: F811
    now = utc_now() - timedelta(days=1)
    with Session(writer(world.engine), expire_on_commit=False) as s:
        app = s.get(Application, world.app_a.id)
        actor = workflow.Actor.of(world.assessor)
        workflow.fire(s, app, "start_review", actor=actor, registry=world.registry, now=now)
        review_all(s, world.registry, app, world.assessor, now=now)
        score_all(s, world.registry, app, world.assessor, now=now)
        s.commit()


def test_the_case_file_reads_the_scores_once(world: Any) -> None:  # noqa: F811
    _scored(world)
    with Session(world.engine) as s:
        app = s.get(Application, world.app_a.id)
        assert app is not None
        assert app.id is not None
        actor = workflow.Actor.of(world.assessor)
        with _score_reads(world.engine) as sent:
            case = case_file(s, world.registry, app, actor, utc_now())
        # One for the page's scores, notes and result; one the workflow's own, its score_passes
        # guard deciding whether the assessor may recommend the award now (4 before: the page
        # read them for each of its three figures).
        assert len(sent) == 2
        assert case.scores  # the fixture scored every question
        assert case.scores == evidence_service.scores_of(s, app.id)
        assert case.lines == evidence_service.score_lines(s, app.id, staff=True)
        policy = world.registry.for_subject(s, app).policy
        assert case.result == evidence_service.score_result(
            s, application_id=app.id, policy=policy, level=policy.level(app.level)
        )


def test_the_score_read_reads_the_scores_once(world: Any) -> None:  # noqa: F811
    _scored(world)
    with Session(world.engine) as s:
        app = s.get(Application, world.app_a.id)
        assert app is not None
        assert app.id is not None
        actor = workflow.Actor.of(world.assessor)
        with _score_reads(world.engine) as sent:
            out = score_result_public(s, world.registry, app, actor, staff=False)
        assert len(sent) == 1
        policy = world.registry.for_subject(s, app).policy
        expected = evidence_service.score_result(
            s, application_id=app.id, policy=policy, level=policy.level(app.level)
        )
        assert (out.passed, out.overall_percent) == (expected.passed, expected.overall_percent)
        lines = evidence_service.score_lines(s, app.id, staff=False)
        assert [(n.standard, n.question, n.note) for n in out.notes] == [
            (*key.split("/"), line.note) for key, line in sorted(lines.items()) if line.note
        ]
