"""A re-application starts from the refused one: its pledges and the latest evidence in each slot."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from svqm.evidence import pledges
from svqm.evidence.models import HELD, ApplicationPledge, EvidenceItem, PledgeCreate
from svqm.evidence.requirements import slot_id


def carry_forward(
    session: Session, *, from_id: int, to_id: int, by_id: int | None, now: datetime
) -> tuple[int, int]:
    """Copy pledges and each slot's latest evidence to a new application; (pledges, items) copied.

    The copies are new rows awaiting a fresh review: the stored files are shared (they are
    content-addressed), the decisions on the old application are not carried.
    """
    new_ids: dict[int, int] = {}
    linked = {p.id for p, _ in pledges.application_pledges(session, to_id)}
    for old, hold in pledges.application_pledges(session, from_id):
        assert old.id is not None
        if hold.disposition not in HELD or old.status != "active":
            continue
        if hold.disposition != "made":
            # Carried in from an award: the same pledge, held again (unless already carried in).
            new_ids[old.id] = old.id
            if old.id not in linked:
                session.add(
                    ApplicationPledge(
                        application_id=to_id, pledge_id=old.id, disposition=hold.disposition
                    )
                )
            continue
        data = PledgeCreate.model_validate(old, from_attributes=True)
        copy = pledges.create_pledge(
            session,
            application_id=to_id,
            organisation_id=old.organisation_id,
            data=data,
            policy=None,
            created_by_id=by_id,
            today=now.date(),
            now=now,
        )
        assert copy.id is not None
        new_ids[old.id] = copy.id
    latest: dict[str, EvidenceItem] = {}
    for item in session.exec(
        select(EvidenceItem)
        .where(EvidenceItem.application_id == from_id)
        .order_by(col(EvidenceItem.version))
    ):
        latest[item.slot] = item
    copied = 0
    for item in latest.values():
        if item.status == "rejected":
            continue
        pledge_id = new_ids.get(item.pledge_id) if item.pledge_id is not None else None
        if item.pledge_id is not None and pledge_id is None:
            continue
        session.add(
            EvidenceItem(
                application_id=to_id,
                slot=slot_id(
                    item.requirement_id, pledge_id=pledge_id, standard_id=item.standard_id
                ),
                requirement_id=item.requirement_id,
                pledge_id=pledge_id,
                standard_id=item.standard_id,
                version=1,
                title=item.title,
                filename=item.filename,
                sha256=item.sha256,
                size=item.size,
                content_type=item.content_type,
                status="pending",
                uploaded_by_id=item.uploaded_by_id,
                uploaded_at=now,
            )
        )
        copied += 1
    session.flush()
    return len(new_ids), copied
