"""JSON: download an evidence file, review an evidence item."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from svqm.evidence.models import ReviewCreate
from svqm.web.deps import ApiUser, Id, NowDep, RegistryDep, SessionDep, StoreDep, actor_of
from svqm.web.schemas import ReviewPublic
from svqm.web.security import attachment
from svqm.workflow import actions, queries

router = APIRouter(prefix="/api/v1/evidence", tags=["evidence"])


@router.get("/{evidence_id}/file", response_class=FileResponse)
def download_evidence(
    evidence_id: Id, user: ApiUser, session: SessionDep, registry: RegistryDep, store: StoreDep
) -> FileResponse:
    """The stored file of one evidence version, for those who may see its application."""
    item, _ = queries.get_visible_evidence(session, evidence_id, actor_of(user), registry=registry)
    return attachment(str(store.path_for(item.sha256)), item.filename, item.content_type)


@router.post("/{evidence_id}/review")
def review_evidence(
    evidence_id: Id,
    body: ReviewCreate,
    user: ApiUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
) -> ReviewPublic:
    """The assigned assessor accepts, asks for more information, or rejects, with a comment."""
    item, app = queries.get_visible_evidence(
        session, evidence_id, actor_of(user), registry=registry
    )
    review = actions.review_evidence(
        session, app, item, body, actor=actor_of(user), registry=registry, now=now
    )
    return ReviewPublic(
        id=review.id or 0,
        evidence_id=evidence_id,
        decision=review.decision,
        comment=review.comment,
        at=review.at,
        application_state=app.state,
    )
