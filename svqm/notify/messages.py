"""A message on a case, written and told to the other side in one transaction.

The applicant's message goes to the assessor of the case (of the application the award came
from), or to every admin when there is none; a staff member's goes to the organisation's people,
and an admin's on an application to its assessors too (the first and a double-marked level's
second, one row each). Each is an outbox row keyed by the message, addressed by name, linking to
the thread's page.
"""

from __future__ import annotations

from datetime import datetime
from typing import IO

from sqlmodel import Session, col, select

from svqm.accounts.models import User
from svqm.evidence.storage import BlobStore
from svqm.notify import digest, outbox
from svqm.notify.events import subject_title
from svqm.notify.recipients import Audience
from svqm.workflow import awards as award_queries
from svqm.workflow import messages
from svqm.workflow.models import Application, Award
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor


def page_path(kind: messages.ThreadKind, subject_id: int) -> str:
    """The thread's page (the same path for the applicant and staff)."""
    return f"/{'applications' if kind == 'application' else 'awards'}/{subject_id}/messages"


def _staff_told(
    session: Session, kind: messages.ThreadKind, subject: Application | Award
) -> list[User]:
    """Who hears of an applicant's message: the case's assessor, else every admin."""
    assessor_id = (
        subject.assessor_id
        if isinstance(subject, Application)
        else award_queries.assessor_of(session, subject)
    )
    if assessor_id is not None:
        found = session.get(User, assessor_id)
        if found is not None and found.active:
            return [found]
    return list(
        session.exec(
            select(User)
            .where(col(User.active).is_(True), User.role == "admin")
            .order_by(col(User.id))
        )
    )


def _assessors(session: Session, application: Application) -> list[User]:
    """The application's assigned assessors still active: the first, then the second."""
    out = []
    for uid in (application.assessor_id, application.second_assessor_id):
        found = session.get(User, uid) if uid is not None else None
        if found is not None and found.active:
            out.append(found)
    return out


def _to_person(
    session: Session,
    key: str,
    context: dict[str, object],
    person: User,
    *,
    now: datetime,
    organisation_id: int,
) -> None:
    """One staff member's row (held for their digest if they chose it)."""
    row = outbox.message(
        key=f"{key}:{person.id}",
        template="message",
        context=context | {"names": [person.name] if person.name else []},
        to_addrs=[person.email],
        now=now,
        organisation_id=organisation_id,
    )
    digest.hold_for(session, [row], person)
    outbox.enqueue_many(session, [row])


def post(
    session: Session,
    kind: messages.ThreadKind,
    subject: Application | Award,
    *,
    body: str,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
    store: BlobStore | None = None,
    file: tuple[IO[bytes], str] | None = None,
) -> messages.CaseMessage:
    """Write the message and its email to the other side, in the caller's transaction."""
    message = messages.post(
        session, kind, subject, body=body, actor=actor, now=now, store=store, file=file
    )
    assert subject.id is not None
    assert message.id is not None
    policy = registry.for_subject(session, subject).policy
    audience = Audience(session, "", [(kind, subject)])
    organisation = audience.organisations.get(subject.organisation_id, "")
    author = messages.author_names(session, [message.author_id]).get(message.author_id, "")
    context = {
        "subject_title": subject_title(policy, kind, subject),
        "organisation": organisation,
        "author": author,
        "from_applicant": actor.role == "applicant",
        "body": message.body,
        "attachment": file is not None,
        "assessing": False,
        "scheme": policy.name,
        "contact": policy.contact,
        "path": page_path(kind, subject.id),
    }
    key = f"message:{message.id}"
    if actor.role == "applicant":
        for person in _staff_told(session, kind, subject):
            _to_person(
                session, key, context, person, now=now, organisation_id=subject.organisation_id
            )
        return message
    if actor.role == "admin" and isinstance(subject, Application):
        # The case's assessors read what an admin tells the organisation.
        for person in _assessors(session, subject):
            _to_person(
                session,
                key,
                context | {"assessing": True},
                person,
                now=now,
                organisation_id=subject.organisation_id,
            )
    to = audience.addresses(kind, subject, "applicant")
    row = outbox.message(
        key=f"{key}:applicant",
        template="message",
        context=context
        | {"names": audience.names_of(to), "greeting_fallback": f"{organisation} team"},
        to_addrs=to,
        now=now,
        organisation_id=subject.organisation_id,
    )
    outbox.enqueue_many(session, [row])
    return message
