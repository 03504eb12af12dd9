"""JSON: messages on an application or an award between its applicant and staff, each with an
optional file (through the evidence store's checks) and told to the other side by email."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import FileResponse
from pydantic import ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from svqm.accounts.models import User
from svqm.errors import InvalidInput
from svqm.evidence.storage import BlobStore
from svqm.notify import messages as notify_messages
from svqm.web.deps import (
    ApiUser,
    Id,
    NowDep,
    RegistryDep,
    SessionDep,
    StoreDep,
    UploaderUser,
    actor_of,
    glance,
)
from svqm.web.forms import MessageForm, read_message_form
from svqm.web.schemas import MessageCreate, MessagePublic
from svqm.web.security import attachment
from svqm.web.views import messages as views
from svqm.workflow import messages
from svqm.workflow.messages import ThreadKind
from svqm.workflow.schemes import SchemeRegistry

router = APIRouter(prefix="/api/v1", tags=["messages"])

_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["body"],
                    "additionalProperties": False,
                    "properties": {"body": {"type": "string", "maxLength": messages.MAX_BODY}},
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["body"],
                    "properties": {
                        "body": {"type": "string", "maxLength": messages.MAX_BODY},
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "an optional file, checked as evidence is (size, type)",
                        },
                    },
                }
            },
        },
    }
}


def _list(
    kind: ThreadKind, subject_id: int, user: User, session: Session, registry: SchemeRegistry
) -> list[MessagePublic]:
    actor = actor_of(user)
    subject = views.case_of(session, kind, subject_id, actor, registry)
    assert user.id is not None
    return [views.public(line) for line in views.read_thread(session, kind, subject, user.id)]


async def _post(
    kind: ThreadKind,
    subject_id: int,
    request: Request,
    user: User,
    session: Session,
    registry: SchemeRegistry,
    now: datetime,
    store: BlobStore,
) -> MessagePublic:
    actor = actor_of(user)
    # Checked before the body is read: nobody else's file is received at all.
    with glance(request) as look:
        views.case_of(look, kind, subject_id, actor, registry)
    form: MessageForm | None = None
    if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
        try:
            text = MessageCreate.model_validate_json(await request.body()).body
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise InvalidInput(f"{where}: {first['msg']}", field="body") from None
    else:
        form = await read_message_form(request)
        text = form.body

    def save() -> MessagePublic:
        subject = views.case_of(session, kind, subject_id, actor, registry)
        message = notify_messages.post(
            session,
            kind,
            subject,
            body=text,
            actor=actor,
            registry=registry,
            now=now,
            store=store,
            file=form.file if form is not None else None,
        )
        line = next(
            ln for ln in messages.thread(session, kind, subject_id) if ln.message.id == message.id
        )
        return views.public(line)

    try:
        return await run_in_threadpool(save)
    finally:
        if form is not None:
            form.close()


def _file(
    kind: ThreadKind,
    subject_id: int,
    file_id: int,
    user: User,
    session: Session,
    registry: SchemeRegistry,
    store: BlobStore,
) -> FileResponse:
    views.case_of(session, kind, subject_id, actor_of(user), registry)
    found = messages.get_file(session, kind, subject_id, file_id)
    return attachment(str(store.path_for(found.sha256)), found.filename, found.content_type)


@router.get("/applications/{application_id}/messages")
def list_application_messages(
    application_id: Id, user: ApiUser, session: SessionDep, registry: RegistryDep
) -> list[MessagePublic]:
    """The application's messages, oldest first (newest last); the caller has now read them."""
    return _list("application", application_id, user, session, registry)


@router.post(
    "/applications/{application_id}/messages",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_BODY,
)
async def post_application_message(
    application_id: Id,
    request: Request,
    user: UploaderUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    store: StoreDep,
) -> MessagePublic:
    """Write to the other side of the application: JSON `{"body"}`, or multipart with `body` and
    an optional `file`. The applicant's message tells the assessor (admins when none is
    assigned); staff's tell the organisation's people."""
    return await _post("application", application_id, request, user, session, registry, now, store)


@router.get("/applications/{application_id}/messages/files/{file_id}", response_class=FileResponse)
def download_application_message_file(
    application_id: Id,
    file_id: Id,
    user: ApiUser,
    session: SessionDep,
    registry: RegistryDep,
    store: StoreDep,
) -> FileResponse:
    """A file attached to one of the application's messages."""
    return _file("application", application_id, file_id, user, session, registry, store)


@router.get("/awards/{award_id}/messages")
def list_award_messages(
    award_id: Id, user: ApiUser, session: SessionDep, registry: RegistryDep
) -> list[MessagePublic]:
    """The award's messages, oldest first (newest last); the caller has now read them."""
    return _list("award", award_id, user, session, registry)


@router.post(
    "/awards/{award_id}/messages", status_code=status.HTTP_201_CREATED, openapi_extra=_BODY
)
async def post_award_message(
    award_id: Id,
    request: Request,
    user: UploaderUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
    store: StoreDep,
) -> MessagePublic:
    """Write to the other side of the award, as for an application's messages."""
    return await _post("award", award_id, request, user, session, registry, now, store)


@router.get("/awards/{award_id}/messages/files/{file_id}", response_class=FileResponse)
def download_award_message_file(
    award_id: Id,
    file_id: Id,
    user: ApiUser,
    session: SessionDep,
    registry: RegistryDep,
    store: StoreDep,
) -> FileResponse:
    """A file attached to one of the award's messages."""
    return _file("award", award_id, file_id, user, session, registry, store)
