"""Writing an organisation's own charter: editing its pillars and priorities, and publishing it.

Only the organisation's own people edit it (acting for it, with a membership role that edits).
Every change bumps the charter's version (a stale one is refused) and is an audit event of the
charter (subject kind `org_charter`). An edit after publishing starts a new revision, so the
public reads the published one until the new one is published.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from svqm.accounts import members
from svqm.errors import (
    Conflict,
    GuardRefused,
    InvalidInput,
    PermissionDenied,
    Reason,
    StaleVersion,
)
from svqm.evidence.charter import (
    CharterPriority,
    CharterPriorityPledge,
    CharterRevision,
    OrgCharter,
    get_charter,
    latest_revision,
    organisation_pledges,
    priorities_of,
)
from svqm.policy.charter import CharterRules, Pillar
from svqm.workflow.audit import append_event
from svqm.workflow.models import AuditEvent
from svqm.workflow.service import Actor

KIND = "org_charter"
# The membership roles whose people edit and publish their organisation's charter.
EDITOR_ROLES = ("lead", "member")
MAX_ENTRIES, MAX_ITEMS, MAX_TEXT, MAX_NAME = 50, 30, 5000, 200


@dataclass
class EntryInput:
    """A collaborator (name and kind) or a lead (name and role)."""

    name: str
    kind: str = ""
    role: str = ""


@dataclass
class PillarInput:
    entries: list[EntryInput] = field(default_factory=list)
    text: str = ""
    statements: dict[str, str] = field(default_factory=dict)
    items: list[str] = field(default_factory=list)


@dataclass
class PriorityInput:
    title: str
    target: str
    outcome: str = ""
    target_date: date | None = None
    pledge_ids: list[int] = field(default_factory=list)


def require_editor(session: Session, actor: Actor, organisation_id: int) -> None:
    """PermissionDenied unless the actor acts for the organisation in a role that edits."""
    if actor.role != "applicant" or actor.organisation_id != organisation_id:
        raise PermissionDenied("only the organisation's own people may edit its charter")
    found = members.get_membership(session, actor.id, organisation_id)
    if found is None or found.role not in EDITOR_ROLES:
        raise PermissionDenied("your role in the organisation does not edit its charter")


def _text(value: str, where: str, *, limit: int = MAX_TEXT, required: bool = False) -> str:
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{where}: enter a value", field=where)
    if len(value) > limit:
        raise InvalidInput(f"{where}: at most {limit} characters", field=where)
    return value


def _entries(pillar: Pillar, given: PillarInput, where: str) -> list[dict[str, str]]:
    if len(given.entries) > MAX_ENTRIES:
        raise InvalidInput(f"{where}.entries: at most {MAX_ENTRIES}", field=f"{where}.entries")
    out = []
    for i, e in enumerate(given.entries):
        at = f"{where}.entries[{i}]"
        name = _text(e.name, f"{at}.name", limit=MAX_NAME, required=True)
        if pillar.content == "collaborators":
            if pillar.kind(e.kind) is None:
                known = ", ".join(k.id for k in pillar.kinds)
                raise InvalidInput(
                    f"{at}.kind: '{e.kind}' is not one of {known}", field=f"{at}.kind"
                )
            if e.role:
                raise InvalidInput(
                    f"{at}.role: a collaborator has a kind, not a role", field=f"{at}.role"
                )
            out.append({"name": name, "kind": e.kind})
        else:
            role = _text(e.role, f"{at}.role", limit=MAX_NAME, required=True)
            if e.kind:
                raise InvalidInput(f"{at}.kind: a lead has a role, not a kind", field=f"{at}.kind")
            out.append({"name": name, "role": role})
    return out


def clean_pillar(pillar: Pillar, given: PillarInput) -> dict[str, Any]:
    """The pillar's content as stored, checked against what its kind of content holds."""
    where = f"pillars.{pillar.id}"
    content: dict[str, Any] = {"entries": [], "text": "", "statements": {}, "items": []}
    takes = {
        "collaborators": {"entries", "text"},
        "leads": {"entries", "text"},
        "statements": {"statements"},
        "list": {"items"},
    }[pillar.content]
    for name, value in (
        ("entries", given.entries),
        ("text", given.text.strip()),
        ("statements", {k: v for k, v in given.statements.items() if v.strip()}),
        ("items", given.items),
    ):
        if value and name not in takes:
            raise InvalidInput(
                f"{where}.{name}: this pillar holds {' and '.join(sorted(takes))}",
                field=f"{where}.{name}",
            )
    if "entries" in takes:
        content["entries"] = _entries(pillar, given, where)
        content["text"] = _text(given.text, f"{where}.text")
    if "statements" in takes:
        known = {f.id for f in pillar.fields}
        for key, value in given.statements.items():
            if key not in known:
                raise InvalidInput(
                    f"{where}.statements: '{key}' is not one of {', '.join(sorted(known))}",
                    field=f"{where}.statements",
                )
            content["statements"][key] = _text(value, f"{where}.statements.{key}")
    if "items" in takes:
        if len(given.items) > MAX_ITEMS:
            raise InvalidInput(f"{where}.items: at most {MAX_ITEMS}", field=f"{where}.items")
        items = [_text(v, f"{where}.items[{i}]", limit=500) for i, v in enumerate(given.items)]
        content["items"] = [v for v in items if v]
    return content


def _priorities(
    session: Session, organisation_id: int, rules: CharterRules, given: list[PriorityInput]
) -> list[PriorityInput]:
    if len(given) > rules.priorities.max_count:
        raise InvalidInput(f"priorities: at most {rules.priorities.max_count}", field="priorities")
    register = {p.id for p in organisation_pledges(session, organisation_id)}
    out = []
    for i, p in enumerate(given):
        at = f"priorities[{i}]"
        for pid in p.pledge_ids:
            if pid not in register:
                raise InvalidInput(
                    f"{at}.pledge_ids: pledge {pid} is not one of the organisation's pledges",
                    field=f"{at}.pledge_ids",
                )
        out.append(
            PriorityInput(
                title=_text(p.title, f"{at}.title", limit=200, required=True),
                target=_text(p.target, f"{at}.target", limit=500, required=True),
                outcome=_text(p.outcome, f"{at}.outcome"),
                target_date=p.target_date,
                pledge_ids=list(dict.fromkeys(p.pledge_ids)),
            )
        )
    return out


def _locked(session: Session, organisation_id: int) -> OrgCharter | None:
    return session.exec(
        select(OrgCharter).where(OrgCharter.organisation_id == organisation_id).with_for_update()
    ).first()


def _charter(session: Session, organisation_id: int, expected_version: int) -> OrgCharter:
    """The charter's row, locked and at the version the caller read (0: none yet), made if new."""
    charter = _locked(session, organisation_id)
    have = charter.version if charter is not None else 0
    if have != expected_version:
        raise StaleVersion(
            f"the charter changed since you read it (version {have}, not {expected_version})",
            field="version",
        )
    if charter is not None:
        return charter
    charter = OrgCharter(organisation_id=organisation_id)
    try:
        with session.begin_nested():
            session.add(charter)
            session.flush()
    except IntegrityError:
        raise StaleVersion("the charter was started by someone else just now; reload it") from None
    return charter


def _write_priorities(session: Session, revision_id: int, given: list[PriorityInput]) -> None:
    old = [
        r.id
        for r in session.exec(
            select(CharterPriority).where(CharterPriority.revision_id == revision_id)
        )
    ]
    if old:
        session.exec(
            delete(CharterPriorityPledge).where(col(CharterPriorityPledge.priority_id).in_(old))
        )
        session.exec(delete(CharterPriority).where(col(CharterPriority.id).in_(old)))
    for position, p in enumerate(given, start=1):
        row = CharterPriority(
            revision_id=revision_id,
            position=position,
            title=p.title,
            target=p.target,
            outcome=p.outcome,
            target_date=p.target_date,
        )
        session.add(row)
        session.flush()
        session.add_all(
            CharterPriorityPledge(priority_id=row.id or 0, pledge_id=pid) for pid in p.pledge_ids
        )
    session.flush()


def _copy_priorities(session: Session, source_id: int) -> list[PriorityInput]:
    return [
        PriorityInput(p.title, p.target, p.outcome, p.target_date, p.pledge_ids)
        for p in priorities_of(session, source_id)
    ]


def _record(
    session: Session,
    charter: OrgCharter,
    actor: Actor,
    now: datetime,
    trigger: str,
    source: str,
    dest: str,
    comment: str,
) -> AuditEvent:
    assert charter.id is not None
    charter.version += 1
    session.add(charter)
    session.flush()
    return append_event(
        session,
        subject_kind=KIND,
        subject_id=charter.id,
        seq=charter.version - 1,
        at=now,
        actor_id=actor.id,
        actor_role=actor.role,
        trigger=trigger,
        source=source,
        dest=dest,
        comment=comment,
    )


def save_charter(
    session: Session,
    organisation_id: int,
    *,
    rules: CharterRules,
    actor: Actor,
    now: datetime,
    expected_version: int,
    pillars: dict[str, PillarInput] | None = None,
    priorities: list[PriorityInput] | None = None,
) -> OrgCharter:
    """Change some pillars (others are kept) and/or replace the priorities of the working copy."""
    require_editor(session, actor, organisation_id)
    cleaned: dict[str, dict[str, Any]] = {}
    for pid, given in (pillars or {}).items():
        pillar = rules.pillar(pid)
        if pillar is None:
            known = ", ".join(p.id for p in rules.pillars)
            raise InvalidInput(f"pillars: '{pid}' is not one of {known}", field=f"pillars.{pid}")
        cleaned[pid] = clean_pillar(pillar, given)
    new_priorities = (
        _priorities(session, organisation_id, rules, priorities) if priorities is not None else None
    )
    charter = _charter(session, organisation_id, expected_version)
    assert charter.id is not None
    work = latest_revision(session, charter.id, published=False)
    if work is None or work.published_at is not None:
        fresh = CharterRevision(
            charter_id=charter.id,
            revision=(work.revision + 1) if work else 1,
            pillars=dict(work.pillars) if work else {},
            updated_at=now,
            updated_by_id=actor.id,
        )
        session.add(fresh)
        session.flush()
        if work is not None and work.id is not None and new_priorities is None:
            new_priorities = _copy_priorities(session, work.id)
        before = f"revision {work.revision} published" if work else "none"
        work = fresh
    else:
        before = f"revision {work.revision} unpublished"
    work.pillars = {**work.pillars, **cleaned}
    work.updated_at = now
    work.updated_by_id = actor.id
    session.add(work)
    session.flush()
    if new_priorities is not None:
        _write_priorities(session, work.id or 0, new_priorities)
    changed = sorted(cleaned) + (["priorities"] if priorities is not None else [])
    _record(
        session,
        charter,
        actor,
        now,
        "edit_charter",
        before,
        f"revision {work.revision} unpublished",
        f"changed: {', '.join(changed) or 'nothing'}",
    )
    return charter


def unready(rules: CharterRules, pillars: dict[str, Any], priority_count: int) -> list[str]:
    """What the working copy lacks before it can be published: every pillar, one priority."""
    out: list[str] = []
    for pillar in rules.pillars:
        content = pillars.get(pillar.id) or {}
        where = f"pillars.{pillar.id}"
        if pillar.content in ("collaborators", "leads") and not content.get("entries"):
            out.append(Reason(f"{pillar.name}: add at least one", field=where))
        elif pillar.content == "statements":
            for f in pillar.fields:
                if not (content.get("statements") or {}).get(f.id):
                    out.append(Reason(f"{pillar.name}: enter the {f.name.lower()}", field=where))
        elif pillar.content == "list" and not content.get("items"):
            out.append(Reason(f"{pillar.name}: add at least one", field=where))
    if priority_count == 0:
        out.append(Reason(f"{rules.priorities.name}: add at least one", field="priorities"))
    return out


def publish_charter(
    session: Session,
    organisation_id: int,
    *,
    rules: CharterRules,
    actor: Actor,
    now: datetime,
    expected_version: int,
) -> CharterRevision:
    """Publish the working copy: from now on the public reads this revision."""
    require_editor(session, actor, organisation_id)
    if get_charter(session, organisation_id) is None:
        raise Conflict("there is no charter to publish yet; write it first")
    charter = _charter(session, organisation_id, expected_version)
    assert charter.id is not None
    work = latest_revision(session, charter.id, published=False)
    assert work is not None
    assert work.id is not None
    if work.published_at is not None:
        raise Conflict(
            f"revision {work.revision} is already published; change something to publish again"
        )
    count = len(
        list(session.exec(select(CharterPriority.id).where(CharterPriority.revision_id == work.id)))
    )
    lacking = unready(rules, work.pillars, count)
    if lacking:
        raise GuardRefused("the charter is not ready to publish", lacking)
    work.published_at = now
    work.published_by_id = actor.id
    session.add(work)
    session.flush()
    _record(
        session,
        charter,
        actor,
        now,
        "publish_charter",
        f"revision {work.revision} unpublished",
        f"revision {work.revision} published",
        "",
    )
    return work


def history(session: Session, charter_id: int) -> list[AuditEvent]:
    """The charter's events, oldest first."""
    return list(
        session.exec(
            select(AuditEvent)
            .where(AuditEvent.subject_kind == KIND, AuditEvent.subject_id == charter_id)
            .order_by(col(AuditEvent.seq))
        )
    )
