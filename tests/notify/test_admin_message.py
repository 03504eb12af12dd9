"""An admin's message on an application is told to its assessors too: the first and a
double-marked level's second, one outbox row each (issue 18)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from svqm.db import session_scope
from svqm.notify import messages as notify_messages
from svqm.notify.models import OutboxMessage
from tests.factories import make_user
from tests.workflow.harness import application_in, make_cast

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_an_admins_message_emails_each_assessor_and_the_organisation(engine, registry):
    with session_scope(engine) as s:
        cast = make_cast(s)
        second = make_user(s, "assessor")
        app = application_in(
            s, registry, cast, scheme="svqm", level="silver", state="under_review", at=T0
        )
        app.second_assessor_id = second.id
        s.add(app)
        message = notify_messages.post(
            s,
            "application",
            app,
            body="The audit moves to Tuesday.",
            actor=cast.actor("admin"),
            registry=registry,
            now=T0,
        )
        key, app_id = f"message:{message.id}", app.id
        want = {
            f"{key}:applicant": cast.applicant.email,
            f"{key}:{cast.assessor.id}": cast.assessor.email,
            f"{key}:{second.id}": second.email,
        }
    with Session(engine) as s:
        rows = s.exec(
            select(OutboxMessage).where(col(OutboxMessage.key).startswith(f"{key}:"))
        ).all()
    assert {r.key: r.to_addrs for r in rows} == want
    for row in rows:
        assert json.loads(row.context)["path"] == f"/applications/{app_id}/messages"
        assert json.loads(row.context)["assessing"] == (not row.key.endswith(":applicant"))
