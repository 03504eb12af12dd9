"""The evidence checklist of an application: which slots the level asks for, and what is missing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from svqm.accounts.service import organisation_names
from svqm.evidence.charter import published_revision_for_application
from svqm.evidence.models import EvidenceItem, Pledge
from svqm.evidence.pledges import list_pledges
from svqm.policy import Level, Policy


@dataclass
class Slot:
    """One line of the checklist: a requirement, for a pledge or a standard when it is per one
    (or, on a group's application, for a member organisation when it is per member)."""

    id: str
    requirement_id: str
    title: str
    pledge_id: int | None = None
    standard_id: str | None = None
    # A `per_member` item of a group's application: the member it is for, and its name.
    member_id: int | None = None
    member_name: str = ""
    # The requirement's own title (the slot's title adds the pledge, standard or member).
    requirement_title: str = ""
    items: list[EvidenceItem] = field(default_factory=list)
    # What else meets the slot ("charter"), and the charter revision that does (None: none yet).
    met_by: str | None = None
    met_by_revision: int | None = None

    @property
    def met_by_charter(self) -> bool:
        """The organisation's published charter meets it, with no upload of its own."""
        return self.met_by_revision is not None and self.current is None

    @property
    def current(self) -> EvidenceItem | None:
        return max(self.items, key=lambda e: e.version) if self.items else None

    @property
    def status(self) -> str:
        if self.met_by_charter:
            return "met_by_charter"
        return "missing" if self.current is None else self.current.status

    @property
    def satisfied(self) -> bool:
        """Evidence is there and its latest version has not been turned down (or, with none
        uploaded, the published charter meets it)."""
        if self.met_by_charter:
            return True
        return self.current is not None and self.current.status not in (
            "rejected",
            "more_information",
        )


def slot_id(
    requirement_id: str,
    *,
    pledge_id: int | None = None,
    standard_id: str | None = None,
    member_id: int | None = None,
) -> str:
    if member_id is not None:
        return f"{requirement_id}:member-{member_id}"
    if pledge_id is not None:
        return f"{requirement_id}:pledge-{pledge_id}"
    if standard_id is not None:
        return f"{requirement_id}:{standard_id}"
    return requirement_id


def member_names(session: Session, members: Sequence[int]) -> dict[int, str]:
    """The members' names, in the order given."""
    names = organisation_names(session, members)
    return {m: names.get(m, f"Organisation {m}") for m in members}


def slots_for(
    policy: Policy, level: Level, pledges: list[Pledge], members: Mapping[int, str] | None = None
) -> list[Slot]:
    """The slots a level asks for, given the application's pledges and (a group's application)
    the member organisations it covers, by id with their names."""
    slots: list[Slot] = []
    for rid in level.evidence:
        req = policy.requirement(rid)
        assert req is not None  # the policy cross-check guarantees it
        if req.per == "application" and req.per_member and members:
            slots.extend(
                Slot(
                    slot_id(rid, member_id=mid),
                    rid,
                    f"{req.title}: {name}",
                    member_id=mid,
                    member_name=name,
                    requirement_title=req.title,
                )
                for mid, name in members.items()
            )
        elif req.per == "application":
            slots.append(Slot(rid, rid, req.title, met_by=req.met_by))
        elif req.per == "pledge":
            for p in pledges:
                assert p.id is not None
                slots.append(
                    Slot(
                        slot_id(rid, pledge_id=p.id), rid, f"{req.title}: {p.title}", pledge_id=p.id
                    )
                )
        else:
            for sid in level.standards:
                slots.append(
                    Slot(
                        slot_id(rid, standard_id=sid),
                        rid,
                        f"{req.title}: {policy.standard(sid).name}",
                        standard_id=sid,
                    )
                )
    return slots


# Built once: every upload's checklist and every step's evidence guards read the items.
_EVIDENCE_OF = (
    select(EvidenceItem)
    .where(col(EvidenceItem.application_id) == bindparam("application_id"))
    .order_by(col(EvidenceItem.id))
)


def checklist(
    session: Session,
    *,
    application_id: int,
    policy: Policy,
    level: Level,
    members: Sequence[int] = (),
    pledges: list[Pledge] | None = None,
) -> list[Slot]:
    """Every slot with all uploaded versions attached, in policy order; `members`, the
    organisations a group's application covers (each gives a `per_member` item its own slot);
    `pledges`, the application's pledges when the caller has just read them (`list_pledges`)."""
    if pledges is None:
        pledges = list_pledges(session, application_id)
    slots = slots_for(policy, level, pledges, member_names(session, members))
    by_id = {s.id: s for s in slots}
    items = session.exec(_EVIDENCE_OF, params={"application_id": application_id})
    for item in items:
        if item.slot in by_id:
            by_id[item.slot].items.append(item)
    if any(s.met_by == "charter" for s in slots):
        revision = published_revision_for_application(session, application_id)
        for s in slots:
            if s.met_by == "charter":
                s.met_by_revision = revision
    return slots


def find_slot(
    slots: list[Slot], requirement: str, pledge_id: int | None, member_id: int | None = None
) -> Slot | None:
    """The slot an upload names: a slot id, a requirement plus its pledge or its member, or
    just the pledge."""
    if not requirement and pledge_id is not None:
        return next((s for s in slots if s.pledge_id == pledge_id), None)
    wanted = requirement
    if member_id is not None and not requirement.endswith(f":member-{member_id}"):
        wanted = slot_id(requirement, member_id=member_id)
    elif pledge_id is not None:
        wanted = slot_id(requirement, pledge_id=pledge_id)
    return next((s for s in slots if s.id == wanted), None)


def missing(slots: list[Slot]) -> list[str]:
    """Unmet reasons for slots with no usable evidence: none uploaded, or the latest turned down.

    A `per_member` item missing for some members is one reason naming those members."""
    out = []
    # requirement -> (where its reason goes in `out`, the members missing it, how many asked)
    by_member: dict[str, tuple[int, list[str], int]] = {}
    asked: dict[str, int] = {}
    for s in slots:
        if s.member_id is not None:
            asked[s.requirement_id] = asked.get(s.requirement_id, 0) + 1
    for s in slots:
        if s.met_by_charter:
            continue
        if s.current is None and s.member_id is not None:
            if s.requirement_id not in by_member:
                out.append("")
                by_member[s.requirement_id] = (len(out) - 1, [], asked[s.requirement_id])
            by_member[s.requirement_id][1].append(s.member_name)
            continue
        if s.current is None:
            extra = " (or publish your organisation's charter)" if s.met_by == "charter" else ""
            out.append(f"evidence missing: {s.title}{extra}")
        elif not s.satisfied:
            why = "rejected" if s.status == "rejected" else "more information requested"
            out.append(f"evidence needs a new version: {s.title} ({why})")
    titles = {s.requirement_id: s.requirement_title for s in slots if s.member_id is not None}
    for rid, (at, names, total) in by_member.items():
        out[at] = (
            f"evidence missing for {len(names)} of {total} members: {titles[rid]} "
            f"(each member uploads its own; missing for {', '.join(names)})"
        )
    return out


def not_accepted(slots: list[Slot]) -> list[str]:
    """Unmet reasons for slots whose latest evidence is not accepted."""
    words = {
        "pending": "not reviewed yet",
        "rejected": "rejected",
        "more_information": "more information requested",
    }
    return [
        f"evidence not accepted: {s.title} ({words[s.status]})"
        for s in slots
        if s.current is not None and s.status != "accepted"
    ]
