"""The daily digest: staff who choose it (`User.email_digest`) get their event emails held and
sent as one email a day that lists them.

Only event emails and messages are held (templates `event` and `message`); reminders, deadline
emails and decisions (a panel's step, or a step into a final state) always go at once. A held
email is an outbox row of its own, one recipient, in status `held`; the sweep gathers each
person's held rows into one digest row keyed by the person and the day, and marks them
`digested` in the same transaction, only if that digest row was new: each held email is in
exactly one digest however many sweeps run, and nobody gets two digests a day.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from svqm.accounts.models import STAFF_ROLES, User
from svqm.db import PlainSelect
from svqm.notify import outbox
from svqm.notify.models import DIGESTED, HELD, OutboxMessage
from svqm.notify.recipients import SECOND_ASSESSOR
from svqm.notify.render import subject_line

_LOCAL = ZoneInfo("Europe/London")
# The digest goes with the first sweep at or after this hour (UK time) each day.
DIGEST_HOUR = 7
HOLDABLE = ("event", "message")

# Built once: every event email to staff asks who of them chose the digest.
_HOLDERS = PlainSelect(
    sa_select(col(User.id), col(User.email)).where(
        col(User.email).in_(bindparam("emails", expanding=True)),
        col(User.email_digest).is_(True),
        col(User.active).is_(True),
        col(User.role).in_(bindparam("roles", expanding=True)),
    )
)


def hold_for(session: Session, rows: list[dict[str, Any]], person: User) -> None:
    """Hold these one-recipient rows for `person` when they chose the digest."""
    if person.email_digest and person.role in STAFF_ROLES:
        for row in rows:
            if row["template"] in HOLDABLE and row["status"] != "dead":
                row["status"] = HELD


def split(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Event rows for staff, with each digest-choosing recipient taken out into a held row of
    their own (keyed by the row and the person); the others' row is unchanged otherwise."""
    # Rows are keyed by the role told (`event:…:assessor`): only staff's rows can be held.
    wanted = {a for r in rows if _staff_row(r) for a in _addresses(r)}
    if not wanted:
        return rows
    session.flush()  # pending changes first, as the ORM's autoflush would
    found = _HOLDERS.rows(
        session.connection(), {"emails": list(wanted), "roles": list(STAFF_ROLES)}
    )
    holders: dict[str, int | None] = {email: uid for uid, email in found}
    if not holders:
        return rows
    out = []
    for row in rows:
        to = _addresses(row)
        held = [a for a in to if a in holders] if _staff_row(row) else []
        if not held or row["template"] not in HOLDABLE:
            out.append(row)
            continue
        rest = [a for a in to if a not in holders]
        if rest:
            out.append(row | {"to_addrs": ", ".join(rest)})
        for address in held:
            out.append(
                row
                | {"key": f"{row['key']}:held:{holders[address]}", "to_addrs": address}
                | {"status": HELD, "last_error": ""}
            )
    return out


def _staff_row(row: dict[str, Any]) -> bool:
    told = str(row["key"]).rsplit(":", 1)[-1]
    return told in STAFF_ROLES or told == SECOND_ASSESSOR


def _addresses(row: dict[str, Any]) -> list[str]:
    return [a.strip() for a in str(row["to_addrs"]).split(",") if a.strip()]


def send_digests(session: Session, now: datetime) -> int:
    """Gather each person's held emails into today's digest (once a day, from DIGEST_HOUR UK
    time); how many digests were written."""
    local = now.astimezone(_LOCAL)
    if local.hour < DIGEST_HOUR:
        return 0
    held = list(
        session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.status == HELD, col(OutboxMessage.created_at) <= now)
            .order_by(col(OutboxMessage.id))
            .with_for_update(skip_locked=True)
        )
    )
    by_person: dict[str, list[OutboxMessage]] = {}
    for row in held:
        by_person.setdefault(row.to_addrs, []).append(row)
    if not by_person:
        return 0
    found = session.exec(select(User.email, User.name).where(col(User.email).in_(list(by_person))))
    names: dict[str, str] = {str(email): str(name) for email, name in found.all()}
    written = 0
    for address, rows in by_person.items():
        items = []
        for row in rows:
            context = json.loads(row.context)
            items.append({"subject": subject_line(row.template, context), "path": context["path"]})
        name = names.get(address, "")
        added = outbox.enqueue(
            session,
            key=f"digest:{address}:{local.date().isoformat()}",
            template="digest",
            context={
                "names": [name] if name else [],
                "items": items,
                "count": len(items),
                "plural": "" if len(items) == 1 else "s",
                "day": f"{local:%A} {local.day} {local:%B %Y}",
                "path": "/",
                "home_path": "",
            },
            to_addrs=[address],
            now=now,
        )
        if not added:
            # Today's digest went already: these wait for tomorrow's.
            continue
        session.execute(
            update(OutboxMessage)
            .where(
                col(OutboxMessage.id).in_([r.id for r in rows]),
                col(OutboxMessage.status) == HELD,
            )
            .values(status=DIGESTED, sent_at=now)
            .execution_options(synchronize_session=False)
        )
        written += 1
    return written
