"""A step needing several panel members (an appeal decided by two, `quorum: 2`): once one member
has recorded a decision, the members still to decide are emailed that theirs is needed; the
member who decided is not, and the quorum met sends the usual decision email instead."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, col, select

from svqm.notify.models import OutboxMessage
from svqm.workflow.service import Actor, fire
from tests.factories import make_org, make_user
from tests.judgement_policies import judgement_registry
from tests.workflow.harness import application_in

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return judgement_registry(tmp_path_factory.mktemp("quorum"))


def _asked(session: Session, app_id: int) -> list[OutboxMessage]:
    rows = session.exec(
        select(OutboxMessage)
        .where(col(OutboxMessage.key).startswith(f"event:application-{app_id}:"))
        .order_by(col(OutboxMessage.id))
    ).all()
    return [r for r in rows if "your decision is needed" in json.loads(r.context)["subject"]]


def test_the_members_still_to_decide_are_asked_for_their_decision(session, registry):
    org = make_org(session)
    applicant = make_user(session, "applicant", org)
    refuser, first, second, third = (make_user(session, "panel") for _ in range(4))
    cast = type("Cast", (), {"org": org, "assessor": None})
    app = application_in(
        session, registry, cast, scheme="svqm", level="bronze", state="not_awarded", at=NOW
    )
    app.state = "appealed"
    session.add(app)
    session.flush()

    fire(
        session,
        app,
        "uphold_appeal",
        actor=Actor.of(first),
        registry=registry,
        now=NOW,
        comment="The evidence meets the bar.",
    )
    assert app.state == "appealed"
    (asked,) = _asked(session, app.id)
    to = asked.to_addrs.split(", ")
    assert first.email not in to
    assert {second.email, third.email, refuser.email} <= set(to)
    context = json.loads(asked.context)
    assert context["step"] == "Uphold appeal: 1 of 2 members agree"
    assert context["path"] == f"/panel/{app.id}"
    assert applicant.email not in to

    # The second agreeing member decides it: no further request, the decision is told instead.
    fire(
        session,
        app,
        "uphold_appeal",
        actor=Actor.of(second),
        registry=registry,
        now=NOW,
        comment="Agreed.",
    )
    assert app.state == "awarded"
    assert len(_asked(session, app.id)) == 1
