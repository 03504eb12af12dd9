"""Bulk actions of the admin on applications (the list page and the API share them): assign the
selected to one assessor, or remind their organisations. Each line goes through the workflow on
its own (audited; one refused leaves the others done) at the version its caller saw."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlmodel import Session

from svqm.errors import NotFound
from svqm.web.format import reference
from svqm.web.forms import attempt
from svqm.workflow import queries
from svqm.workflow import service as workflow
from svqm.workflow.models import Application
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor

Action = Literal["assign", "remind"]
# At most a page's worth of applications in one bulk action.
BULK_LIMIT = 50


@dataclass
class BulkResult:
    """Which lines were done, and each refused one with its reason in words."""

    done: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)

    def refusals(self) -> list[str]:
        """'APP-000042: the application changed since you read it', one per refused line."""
        return [f"{reference(i)}: {why}" for i, why in self.refused]


def run_bulk(
    session: Session,
    registry: SchemeRegistry,
    actor: Actor,
    now: datetime,
    action: Action,
    lines: list[tuple[int, int]],
    *,
    assessor_id: int | None = None,
    message: str = "",
) -> BulkResult:
    """Take `action` on each (application id, version seen) line, each in its own savepoint."""
    result = BulkResult()
    for application_id, expected in lines:
        try:
            app = queries.get_application(session, application_id, actor, registry=registry)
        except NotFound as exc:
            result.refused.append((application_id, str(exc)))
            continue

        def write(app: Application = app, expected: int = expected) -> None:
            if action == "assign":
                assert assessor_id is not None
                workflow.assign_assessor(
                    session,
                    app,
                    assessor_id,
                    actor=actor,
                    registry=registry,
                    now=now,
                    expected_version=expected,
                )
            else:
                workflow.send_reminder(
                    session,
                    app,
                    actor=actor,
                    registry=registry,
                    now=now,
                    comment=message,
                    expected_version=expected,
                )

        if failure := attempt(session, write):
            result.refused.append((application_id, str(failure)))
        else:
            result.done.append(application_id)
    return result
