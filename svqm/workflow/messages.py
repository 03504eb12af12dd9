"""Messages on a case: the applicant and staff (assessor, panel, admin) write to each other on an
application or an award, with an optional file kept in the evidence store (never public), and
each person's read marker per thread, from which their unread counts come.

Who may read a thread is decided by the caller (the same rule as the case itself); this module
keeps the messages, their files and the markers. Telling the other side is svqm.notify's
(`notify.messages`), in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Literal, Protocol

from sqlalchemy import Column, Index, Text, and_, func, literal, or_
from sqlalchemy import select as sa_select
from sqlmodel import Field, Session, SQLModel, col, select

from svqm.accounts.models import User
from svqm.db import UtcDateTime
from svqm.errors import InvalidInput, NotFound
from svqm.evidence.storage import BlobStore, StoredBlob, sanitise_filename
from svqm.workflow.service import Actor

ThreadKind = Literal["application", "award"]
KINDS: tuple[ThreadKind, ...] = ("application", "award")
MAX_BODY = 5000


class CaseMessage(SQLModel, table=True):
    """One message on an application's or an award's thread."""

    __tablename__ = "case_message"
    __table_args__ = (Index("ix_case_message_thread", "subject_kind", "subject_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    subject_kind: str = Field(max_length=20)
    subject_id: int
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    author_id: int = Field(foreign_key="user_account.id")
    author_role: str = Field(max_length=20)
    body: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class MessageFile(SQLModel, table=True):
    """A file attached to a message, kept in the evidence store (never public)."""

    __tablename__ = "message_file"

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="case_message.id", index=True)
    filename: str = Field(max_length=255)
    sha256: str = Field(max_length=64)
    size: int
    content_type: str = Field(max_length=100)


class MessageRead(SQLModel, table=True):
    """How far one person has read one thread: the newest message id they have seen."""

    __tablename__ = "message_read"

    user_id: int = Field(foreign_key="user_account.id", primary_key=True)
    subject_kind: str = Field(max_length=20, primary_key=True)
    subject_id: int = Field(primary_key=True)
    last_read_id: int = 0


class Thread(Protocol):
    """What a thread needs of its subject: an Application or an Award row."""

    @property
    def id(self) -> int | None: ...
    @property
    def organisation_id(self) -> int: ...


@dataclass(frozen=True)
class Line:
    """A message as it is shown: its author's name and its files."""

    message: CaseMessage
    author_name: str
    files: list[MessageFile]


def checked_body(body: str) -> str:
    """The message's text, trimmed; refused when empty or too long."""
    text = (body or "").strip()
    if not text:
        raise InvalidInput("write a message", field="body")
    if len(text) > MAX_BODY:
        raise InvalidInput(f"a message is at most {MAX_BODY} characters", field="body")
    if "\x00" in text:
        raise InvalidInput("the message must not contain NUL characters", field="body")
    return text


def post(
    session: Session,
    kind: ThreadKind,
    subject: Thread,
    *,
    body: str,
    actor: Actor,
    now: datetime,
    store: BlobStore | None = None,
    file: tuple[IO[bytes], str] | None = None,
) -> CaseMessage:
    """Write a message (and keep its file, through the evidence store's checks: size and type;
    a refused file leaves no bytes behind). The author has read their own thread up to it."""
    text = checked_body(body)
    assert subject.id is not None
    assert actor.id is not None
    blob: StoredBlob | None = None
    name = ""
    if file is not None:
        if store is None:
            raise ValueError("a file needs the store to keep it in")
        name = sanitise_filename(file[1])
        blob = store.put(file[0])
    try:
        message = CaseMessage(
            subject_kind=kind,
            subject_id=subject.id,
            organisation_id=subject.organisation_id,
            author_id=actor.id,
            author_role=actor.role,
            body=text,
            at=now,
        )
        session.add(message)
        session.flush()
        assert message.id is not None
        if blob is not None:
            session.add(
                MessageFile(
                    message_id=message.id,
                    filename=name or "attachment",
                    sha256=blob.sha256,
                    size=blob.size,
                    content_type=blob.content_type,
                )
            )
        mark_read(session, actor.id, kind, subject.id, message.id)
        session.flush()
    except BaseException:
        if blob is not None and blob.created and store is not None:
            store.delete(blob.sha256)
        raise
    return message


def thread(session: Session, kind: ThreadKind, subject_id: int) -> list[Line]:
    """The thread's messages, oldest first (newest last), with names and files."""
    rows = list(
        session.exec(
            select(CaseMessage)
            .where(CaseMessage.subject_kind == kind, CaseMessage.subject_id == subject_id)
            .order_by(col(CaseMessage.id))
        )
    )
    ids = [m.id for m in rows if m.id is not None]
    files: dict[int, list[MessageFile]] = {}
    if ids:
        for f in session.exec(
            select(MessageFile)
            .where(col(MessageFile.message_id).in_(ids))
            .order_by(col(MessageFile.id))
        ):
            files.setdefault(f.message_id, []).append(f)
    names = author_names(session, {m.author_id for m in rows})
    return [Line(m, names.get(m.author_id, "Someone"), files.get(m.id or 0, [])) for m in rows]


def author_names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    """Each author's name as a message shows it (their email when they gave no name)."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.exec(select(User.id, User.name, User.email).where(col(User.id).in_(wanted)))
    return {uid: name or email for uid, name, email in rows if uid is not None}


def get_file(session: Session, kind: ThreadKind, subject_id: int, file_id: int) -> MessageFile:
    """One file of the thread (another thread's file is not found)."""
    found = session.get(MessageFile, file_id)
    message = session.get(CaseMessage, found.message_id) if found is not None else None
    if (
        found is None
        or message is None
        or message.subject_kind != kind
        or message.subject_id != subject_id
    ):
        raise NotFound(f"this {kind} has no message file {file_id}")
    return found


def mark_read(
    session: Session, user_id: int, kind: ThreadKind, subject_id: int, upto: int | None = None
) -> None:
    """The person has read the thread up to message `upto` (default: its newest)."""
    if upto is None:
        upto = session.exec(
            select(func.max(CaseMessage.id)).where(
                CaseMessage.subject_kind == kind, CaseMessage.subject_id == subject_id
            )
        ).one()
        if upto is None:
            return
    marker = session.get(MessageRead, (user_id, kind, subject_id))
    if marker is None:
        session.add(
            MessageRead(
                user_id=user_id, subject_kind=kind, subject_id=subject_id, last_read_id=upto
            )
        )
    elif marker.last_read_id < upto:
        marker.last_read_id = upto
        session.add(marker)
    session.flush()


def unread_column(kind: ThreadKind, subject_id: Any, user_id: Any) -> Any:
    """A scalar subquery: how many messages of the thread, by others, `user_id` has not read.

    `subject_id` and `user_id` are SQL expressions (a column, a bound parameter), so a list's
    one query can carry each line's count."""
    read = (
        sa_select(func.coalesce(func.max(col(MessageRead.last_read_id)), 0))
        .where(
            col(MessageRead.user_id) == user_id,
            col(MessageRead.subject_kind) == kind,
            col(MessageRead.subject_id) == subject_id,
        )
        .scalar_subquery()
    )
    return (
        sa_select(func.count())
        .select_from(CaseMessage)
        .where(
            col(CaseMessage.subject_kind) == kind,
            col(CaseMessage.subject_id) == subject_id,
            col(CaseMessage.author_id) != user_id,
            col(CaseMessage.id) > read,
        )
        .scalar_subquery()
    )


def unread_counts(
    session: Session, user_id: int, kind: ThreadKind, subject_ids: Iterable[int]
) -> dict[int, int]:
    """Unread messages per subject for this person (one query; subjects with none left out)."""
    ids = sorted(set(subject_ids))
    if not ids:
        return {}
    marker = MessageRead
    rows = session.execute(
        sa_select(col(CaseMessage.subject_id), func.count())
        .outerjoin(
            marker,
            and_(
                col(marker.user_id) == user_id,
                col(marker.subject_kind) == kind,
                col(marker.subject_id) == CaseMessage.subject_id,
            ),
        )
        .where(
            col(CaseMessage.subject_kind) == kind,
            col(CaseMessage.subject_id).in_(ids),
            col(CaseMessage.author_id) != user_id,
            or_(
                col(marker.last_read_id).is_(None),
                col(CaseMessage.id) > func.coalesce(col(marker.last_read_id), literal(0)),
            ),
        )
        .group_by(col(CaseMessage.subject_id))
    )
    return {int(sid): int(n) for sid, n in rows}


def named_blobs(session: Session) -> set[str]:
    """Every SHA-256 a message file names (kept by `svqm evidence gc`)."""
    return set(session.exec(select(MessageFile.sha256)).all())
