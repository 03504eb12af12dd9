"""JSON: download an evidence file, review an evidence item."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import FileResponse

from svqm.evidence import service as evidence_service
from svqm.evidence.models import ReviewCreate
from svqm.web.deps import ApiUser, Id, NowDep, RegistryDep, SessionDep, StoreDep, actor_of
from svqm.web.schemas import ReviewPublic
from svqm.workflow import actions, queries

router = APIRouter(prefix="/api/v1/evidence", tags=["evidence"])


def attachment(path: str, filename: str, media_type: str) -> FileResponse:
    """Always a download, never rendered inline, with an RFC 6266 encoded name."""
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "'") or "evidence"
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    return FileResponse(
        path,
        media_type=media_type,
        headers={
            "Content-Disposition": disposition,
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
        },
    )


@router.get("/{evidence_id}/file", response_class=FileResponse)
def download_evidence(
    evidence_id: Id, user: ApiUser, session: SessionDep, store: StoreDep
) -> FileResponse:
    """The stored file of one evidence version, for those who may see its application."""
    item = evidence_service.get_evidence(session, evidence_id)
    queries.get_application(session, item.application_id, actor_of(user))
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
    item = evidence_service.get_evidence(session, evidence_id)
    app = queries.get_application(session, item.application_id, actor_of(user))
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
