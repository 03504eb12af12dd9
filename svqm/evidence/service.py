"""Evidence: store an upload against a checklist slot as a new version, review it, score the standards.

These functions trust their caller (the workflow service) to have checked who may act and when.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from sqlalchemy import bindparam, func
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from svqm.db import PlainSelect, insert_now, new_row, table_of
from svqm.errors import Conflict, InvalidInput, NotFound
from svqm.evidence import marking, requirements, scoring
from svqm.evidence.models import (
    EvidenceItem,
    Review,
    ReviewCreate,
    Score,
    ScoreChange,
    ScoreCreate,
)
from svqm.evidence.pledges import list_pledges
from svqm.evidence.storage import BlobStore, sanitise_filename
from svqm.policy import Level, Policy


def resolve_slot(
    session: Session,
    *,
    application_id: int,
    policy: Policy,
    level: Level,
    requirement: str,
    pledge_id: int | None,
    member_id: int | None = None,
    members: Sequence[int] = (),
) -> requirements.Slot:
    """The checklist slot an upload is for, or InvalidInput naming the valid ones.

    The slots alone, from the level, the pledges and (a group's application) the members it
    covers: the versions already uploaded are not read (the next version number is taken when
    the upload is recorded). `member_id` must be one of `members`.
    """
    names = requirements.member_names(session, members)
    if member_id is not None and member_id not in names:
        which = (
            f"the members it covers are {', '.join(f'{n} ({m})' for m, n in names.items())}"
            if names
            else "it is not a group's application covering members"
        )
        raise InvalidInput(
            f"organisation_id: organisation {member_id} is not a member this application "
            f"covers ({which})",
            field="organisation_id",
        )
    # The pledges only for an item asked for per pledge (or to name every valid slot).
    req = policy.requirement(requirement.partition(":")[0]) if requirement else None
    by_pledge = pledge_id is not None or req is None or req.per == "pledge"
    pledges = list_pledges(session, application_id) if by_pledge else []
    slots = requirements.slots_for(policy, level, pledges, names)
    slot = requirements.find_slot(slots, requirement, pledge_id, member_id)
    if slot is None and not by_pledge:
        slots = requirements.slots_for(policy, level, list_pledges(session, application_id), names)
    if slot is None:
        valid = ", ".join(s.id for s in slots) or "none: add pledges first"
        what = f"'{requirement}'" + (f" for pledge {pledge_id}" if pledge_id is not None else "")
        what += f" for member {member_id}" if member_id is not None else ""
        raise InvalidInput(
            f"{what} is not an evidence requirement of this application (valid: {valid})"
        )
    return slot


def add_evidence(
    session: Session,
    store: BlobStore,
    *,
    slot: requirements.Slot,
    application_id: int,
    stream: BinaryIO | Iterable[bytes],
    filename: str,
    title: str,
    uploaded_by_id: int | None,
    now: datetime,
    note: str = "",
) -> EvidenceItem:
    """Stream the file into the store and record it as the slot's next version, with the
    applicant's note for the assessor (at most NOTE_LIMIT characters).

    The name is checked before a byte is read; a refused file leaves nothing behind.
    """
    clean_name = sanitise_filename(filename)
    note = check_note(note)
    blob = store.put(stream)
    try:
        item = _record_version(
            session,
            {
                "application_id": application_id,
                "slot": slot.id,
                "requirement_id": slot.requirement_id,
                "pledge_id": slot.pledge_id,
                "standard_id": slot.standard_id,
                "member_organisation_id": slot.member_id,
                "title": title.strip()[:200] or slot.title[:200],
                "filename": clean_name,
                "sha256": blob.sha256,
                "size": blob.size,
                "content_type": blob.content_type,
                "note": note,
                "uploaded_by_id": uploaded_by_id,
                "uploaded_at": now,
            },
        )
    except BaseException:
        # Only a blob this call created is ours to remove; shared bytes belong to other rows too.
        if blob.created:
            store.delete(blob.sha256)
        raise
    return item


# How long the applicant's note on an evidence item may be: a short note, not a document.
NOTE_LIMIT = 1000


def check_note(note: str) -> str:
    """The note as stored (trimmed), or InvalidInput naming the field: too long, or with NULs."""
    note = note.strip()
    if "\x00" in note:
        raise InvalidInput("the note must not contain NUL characters", field="note")
    if len(note) > NOTE_LIMIT:
        raise InvalidInput(
            f"the note for the assessor must be {NOTE_LIMIT:,} characters or fewer "
            f"(it has {len(note):,})",
            field="note",
        )
    return note


# Uploads racing for one slot: each lost race re-reads the latest version and takes the next.
_VERSION_TRIES = 5


# Built once, on the Core table: every upload reads its slot's latest version.
_ITEMS = table_of(EvidenceItem)
_LATEST_VERSION = PlainSelect(
    sa_select(func.max(_ITEMS.c.version)).where(
        _ITEMS.c.application_id == bindparam("application_id"),
        _ITEMS.c.slot == bindparam("slot"),
    )
)


def _record_version(session: Session, fields: dict[str, Any]) -> EvidenceItem:
    """Insert the item as its slot's next version; a concurrent upload that took the same number
    makes this one the version after it (both are kept), never an unhandled IntegrityError.

    On PostgreSQL each try is a savepoint: the losing INSERT waits for the winner's commit, then
    fails on the unique (application, slot, version); the retry's read sees the winner's row.
    SQLite runs one writer at a time (a write unit of work begins IMMEDIATE, holding the write
    lock from its first statement), so no other upload can take the number between the read and
    the insert, and the savepoint would guard against nothing.
    """
    conn = session.connection()
    serialised = conn.dialect.name == "sqlite"
    for _ in range(_VERSION_TRIES):
        which = {"application_id": fields["application_id"], "slot": fields["slot"]}
        session.flush()  # pending changes first, as the ORM's autoflush would
        ((latest,),) = _LATEST_VERSION.rows(conn, which)
        item = new_row(EvidenceItem, **fields, version=(latest or 0) + 1)
        if serialised:
            insert_now(session, item)
            return item
        try:
            with conn.begin_nested():
                insert_now(session, item)
        except IntegrityError:
            continue
        return item
    raise Conflict("another file was being added to this item at the same moment; try again")


def get_evidence(session: Session, evidence_id: int) -> EvidenceItem:
    """An evidence item by id."""
    item = session.get(EvidenceItem, evidence_id)
    if item is None:
        raise NotFound(f"no evidence {evidence_id}")
    return item


# Built once: the review, the checklist and the pages read an application's evidence.
_EVIDENCE_OF = (
    select(EvidenceItem)
    .where(col(EvidenceItem.application_id) == bindparam("application_id"))
    .order_by(col(EvidenceItem.id))
)


def list_evidence(session: Session, application_id: int) -> list[EvidenceItem]:
    """Every version of every item of an application, oldest first."""
    return list(session.exec(_EVIDENCE_OF, params={"application_id": application_id}))


def current_items(session: Session, application_id: int) -> list[EvidenceItem]:
    """The newest version of each slot's evidence, in the order the slots were first filled."""
    newest: dict[str, EvidenceItem] = {}
    for item in list_evidence(session, application_id):
        if item.slot not in newest or item.version > newest[item.slot].version:
            newest[item.slot] = item
    return sorted(newest.values(), key=lambda i: i.id or 0)


def remaining(session: Session, application_id: int) -> list[EvidenceItem]:
    """The current items no one has reviewed yet."""
    return [i for i in current_items(session, application_id) if i.status == "pending"]


def asked_about(session: Session, application_id: int) -> list[EvidenceItem]:
    """The current items the assessor wants more information on (older versions are answered)."""
    return [i for i in current_items(session, application_id) if i.status == "more_information"]


def unreviewed_and_asked(
    session: Session, application_id: int
) -> tuple[list[EvidenceItem], list[EvidenceItem]]:
    """`remaining` and `asked_about` from one read of the current items (the review screen shows
    both)."""
    current = current_items(session, application_id)
    return (
        [i for i in current if i.status == "pending"],
        [i for i in current if i.status == "more_information"],
    )


def review_evidence(
    session: Session,
    item: EvidenceItem,
    data: ReviewCreate,
    *,
    reviewer_id: int | None,
    now: datetime,
) -> Review:
    """Record a decision on an item; anything but acceptance needs a comment for the applicant."""
    if data.decision != "accepted" and not data.comment.strip():
        raise InvalidInput("say what is wrong or missing: a comment is required unless accepting")
    if data.decision != "accepted" and data.visibility == "internal":
        raise InvalidInput(
            "the applicant must be told what is wrong or missing: make this comment for the "
            "applicant, or accept the item",
            field="visibility",
        )
    review = new_row(
        Review,
        evidence_id=item.id or 0,
        reviewer_id=reviewer_id,
        decision=data.decision,
        comment=data.comment.strip(),
        visibility=data.visibility,
        at=now,
    )
    item.status = data.decision
    session.add(item)
    insert_now(session, review)
    return review


def reviews_of(session: Session, evidence_ids: list[int]) -> list[Review]:
    """The review history of these items, oldest first."""
    if not evidence_ids:
        return []
    return list(
        session.exec(
            select(Review).where(col(Review.evidence_id).in_(evidence_ids)).order_by(col(Review.id))
        )
    )


def set_score(
    session: Session,
    *,
    application_id: int,
    policy: Policy,
    level: Level,
    data: ScoreCreate,
    assessor_id: int | None,
    now: datetime,
) -> tuple[Score, ScoreChange | None]:
    """Score one question of a standard the level assesses (replacing an earlier score); the
    change recorded, if the score or its note changed."""
    marking.question_of(policy, level, data.standard, data.question, data.score)
    row = score_row(session, application_id, data.standard, data.question)
    note = data.note.strip()
    change = None
    if row is None or row.score != data.score or row.note != note:
        change = new_row(
            ScoreChange,
            application_id=application_id,
            standard=data.standard,
            question=data.question,
            kind="assessor",
            assessor_id=assessor_id,
            actor_id=assessor_id,
            old=None if row is None else row.score,
            new=data.score,
            note=note,
            at=now,
        )
    changes = [change] if change else []
    if row is None:
        row = new_row(
            Score,
            application_id=application_id,
            standard=data.standard,
            question=data.question,
            score=data.score,
            assessor_id=assessor_id,
            at=now,
            note=note,
            visibility=data.visibility,
        )
        insert_now(session, row, *changes)
        return row, change
    row.score, row.assessor_id, row.at = data.score, assessor_id, now
    row.note, row.visibility = note, data.visibility
    session.add(row)
    insert_now(session, *changes)
    return row, change


# Built once: every score given, and every guard and page that works out a result, reads these.
_SCORE_ROW = select(Score).where(
    col(Score.application_id) == bindparam("application_id"),
    col(Score.standard) == bindparam("standard"),
    col(Score.question) == bindparam("question"),
)
_CURRENT_SCORES = select(Score).where(col(Score.application_id) == bindparam("application_id"))


def score_row(session: Session, application_id: int, standard: str, question: str) -> Score | None:
    """The current score of one question of an application, if it has one."""
    which = {"application_id": application_id, "standard": standard, "question": question}
    return session.exec(_SCORE_ROW, params=which).first()


def current_scores(session: Session, application_id: int) -> list[Score]:
    """Every current score of an application, in one read: a page that shows its scores, their
    notes and the result works all three out of these rows (`result_of`, `lines_of`)."""
    return list(session.exec(_CURRENT_SCORES, params={"application_id": application_id}).all())


def result_of(policy: Policy, level: Level, rows: Iterable[Score]) -> scoring.ScoreResult:
    """The result of these scores against the level's standards."""
    return scoring.evaluate(policy, level, {(r.standard, r.question): r.score for r in rows})


def score_result(
    session: Session, *, application_id: int, policy: Policy, level: Level
) -> scoring.ScoreResult:
    """The application's result against its level's standards."""
    return result_of(policy, level, current_scores(session, application_id))


@dataclass(frozen=True)
class ScoreLine:
    """One question's current score with the assessor's note as this reader may see it."""

    score: int
    note: str
    visibility: str


def lines_of(rows: Iterable[Score], *, staff: bool) -> dict[str, ScoreLine]:
    """These scores keyed 'standard/question'; for the applicant (`staff` false) an internal note
    reads as no note."""
    return {
        f"{r.standard}/{r.question}": ScoreLine(
            r.score, r.note if staff or r.visibility != "internal" else "", r.visibility
        )
        for r in rows
    }


def score_lines(session: Session, application_id: int, *, staff: bool) -> dict[str, ScoreLine]:
    """Every current score of an application keyed 'standard/question'; for the applicant
    (`staff` false) an internal note reads as no note."""
    return lines_of(current_scores(session, application_id), staff=staff)


def scores_of(session: Session, application_id: int) -> dict[str, int]:
    """The current score of every question of an application, keyed 'standard/question'."""
    return {f"{r.standard}/{r.question}": r.score for r in current_scores(session, application_id)}
