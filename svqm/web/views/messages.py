"""Messages on a case as its pages and the API show them: whose thread a person may read (the
case's own rule: an application as `queries.get_application` gives it; an award to its holder's
people, its assessor, the panel and admins), and the thread's lines."""

from __future__ import annotations

from sqlmodel import Session

from svqm.errors import NotFound
from svqm.web.schemas import MessageFilePublic, MessagePublic
from svqm.workflow import awards as award_queries
from svqm.workflow import messages, queries
from svqm.workflow.models import Application, Award
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor


def case_of(
    session: Session,
    kind: messages.ThreadKind,
    subject_id: int,
    actor: Actor,
    registry: SchemeRegistry,
) -> Application | Award:
    """The thread's subject if this person may read it; anything else is not found."""
    if kind == "application":
        return queries.get_application(session, subject_id, actor, registry=registry)
    award = award_queries.get_award(session, subject_id)
    if actor.role == "applicant" and award.organisation_id == actor.organisation_id:
        return award
    if actor.role in ("admin", "panel"):
        return award
    if actor.role == "assessor" and award_queries.assessor_of(session, award) == actor.id:
        return award
    raise NotFound(f"no award {subject_id}")


def public(line: messages.Line) -> MessagePublic:
    m = line.message
    return MessagePublic(
        id=m.id or 0,
        author_id=m.author_id,
        author_name=line.author_name,
        author_role=m.author_role,
        body=m.body,
        at=m.at,
        attachments=[
            MessageFilePublic(
                id=f.id or 0, filename=f.filename, size=f.size, content_type=f.content_type
            )
            for f in line.files
        ],
    )


def read_thread(
    session: Session, kind: messages.ThreadKind, subject: Application | Award, reader_id: int
) -> list[messages.Line]:
    """The thread, newest last; the reader has now read it all."""
    assert subject.id is not None
    lines = messages.thread(session, kind, subject.id)
    if lines:
        messages.mark_read(session, reader_id, kind, subject.id, lines[-1].message.id)
    return lines


def case_page(kind: messages.ThreadKind, subject_id: int, role: str) -> str:
    """The case page a thread's page leads back to, for this reader."""
    if kind == "application":
        return {
            "applicant": f"/applications/{subject_id}",
            "assessor": f"/assess/{subject_id}",
            "panel": f"/panel/{subject_id}",
        }.get(role, f"/admin/applications/{subject_id}")
    if role == "applicant":
        return f"/dashboard/awards/{subject_id}"
    return "/admin/awards" if role == "admin" else f"/awards/{subject_id}/verify"


def thread_page(kind: messages.ThreadKind, subject_id: int) -> str:
    """The thread's own page (the same path for everyone who may read it)."""
    return f"/{'applications' if kind == 'application' else 'awards'}/{subject_id}/messages"
