"""Who may see which application or award, and the lists each role works from."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from svqm.errors import NotFound
from svqm.workflow.models import Application, Award
from svqm.workflow.service import Actor


@dataclass(frozen=True)
class ApplicationFilter:
    state: str | None = None
    level: str | None = None
    scheme: str | None = None
    organisation_id: int | None = None


def _visible(actor: Actor):  # type: ignore[no-untyped-def]
    """The SQL condition for applications this actor may see (deny by default)."""
    if actor.role == "applicant":
        return Application.organisation_id == actor.organisation_id
    if actor.role == "assessor":
        return Application.assessor_id == actor.id
    if actor.role == "panel":
        # Everything past the applicant's draft, except their own organisation's.
        own = Application.organisation_id == actor.organisation_id
        return (Application.state != "draft") & ~own if actor.organisation_id else (
            Application.state != "draft"
        )
    if actor.role == "admin":
        return True
    return False


def get_application(session: Session, application_id: int, actor: Actor) -> Application:
    """An application the actor may see; anything else is 'not found', never 'forbidden'."""
    app = session.exec(
        select(Application).where(Application.id == application_id, _visible(actor))
    ).first()
    if app is None:
        raise NotFound(f"no application {application_id}")
    return app


def list_applications(
    session: Session, actor: Actor, filters: ApplicationFilter = ApplicationFilter(),
    *, limit: int = 200, offset: int = 0,
) -> list[Application]:
    """The actor's applications: their own, their queue, or all (admin); newest change first."""
    query = select(Application).where(_visible(actor))
    for field in ("state", "level", "scheme", "organisation_id"):
        value = getattr(filters, field)
        if value is not None:
            query = query.where(getattr(Application, field) == value)
    query = query.order_by(col(Application.state_changed_at).desc(), col(Application.id).desc())
    return list(session.exec(query.offset(offset).limit(limit)))


def count_applications(session: Session, actor: Actor) -> int:
    return session.exec(select(func.count()).select_from(Application).where(_visible(actor))).one()


def get_award(session: Session, award_id: int) -> Award:
    """Any award by id: its status is public, as a certificate's is (the verify page must be able
    to say 'withdrawn'); the directory lists only awards in force."""
    award = session.get(Award, award_id)
    if award is None:
        raise NotFound(f"no award {award_id}")
    return award


def organisation_awards(session: Session, organisation_id: int) -> list[Award]:
    return list(session.exec(select(Award).where(Award.organisation_id == organisation_id)
                             .order_by(col(Award.issued_at).desc())))


def list_awards(session: Session, *, states: set[str] | None = None, level: str | None = None,
                scheme: str | None = None, limit: int = 500) -> list[Award]:
    query = select(Award)
    if states is not None:
        query = query.where(col(Award.state).in_(states))
    if level:
        query = query.where(Award.level == level)
    if scheme:
        query = query.where(Award.scheme == scheme)
    return list(session.exec(query.order_by(col(Award.issued_at).desc()).limit(limit)))
