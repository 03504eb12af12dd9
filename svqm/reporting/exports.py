"""Awards and applications as CSV or JSON, read in batches and written row by row to a stream.

Shared by `svqm export` and the admin's CSV downloads. Every field is the database's value: ids and
counts as integers, times as ISO 8601 UTC, a missing value as null in JSON and an empty CSV cell.

CSV cells are guarded against formula injection as OWASP advises ("CSV Injection"): every cell is
quoted, and a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is written with
an apostrophe in front, so a spreadsheet shows it as text instead of running it. A cell that starts
with an apostrophe gets one too, which keeps the rule reversible: a reader strips one leading
apostrophe from any cell that has one and gets the value back exactly.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import func, tuple_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from svqm.accounts.models import Organisation, User
from svqm.errors import InvalidInput
from svqm.workflow.invoices import Invoice
from svqm.workflow.models import Application, AuditEvent, Award
from svqm.workflow.schemes import SchemeRegistry

FORMATS = ("csv", "json")
KINDS = ("awards", "applications", "invoices")
AWARD_FIELDS = (
    "id",
    "certificate_number",
    "organisation_id",
    "organisation_name",
    "scheme",
    "scheme_version",
    "level",
    "level_name",
    "state",
    "issued_at",
    "expires_at",
    "supersedes_id",
    "application_id",
)
APPLICATION_FIELDS = (
    "id",
    "organisation_id",
    "organisation_name",
    "scheme",
    "scheme_version",
    "level",
    "level_name",
    "state",
    "version",
    "assessor_id",
    "assessor_name",
    "created_by_id",
    "created_at",
    "submitted_at",
    "state_changed_at",
)
INVOICE_FIELDS = (
    "number",
    "kind",
    "credits",
    "organisation_id",
    "organisation_name",
    "application_id",
    "scheme",
    "level",
    "turnover_band",
    "description",
    "amount_pence",
    "vat_percent",
    "vat_pence",
    "total_pence",
    "status",
    "issued_at",
    "due_at",
    "reference",
    "paid_at",
    "payment_method",
    "payment_reference",
)
# Rows fetched from the database at a time: memory stays flat however many there are (on
# PostgreSQL a server-side cursor, on SQLite fetchmany).
BATCH = 500
# What a spreadsheet may read as the start of a formula (OWASP), plus the apostrophe itself.
_GUARDED = ("=", "+", "-", "@", "\t", "\r", "'")

Row = dict[str, Any]


def _level_names(session: Session, registry: SchemeRegistry, model: Any) -> dict[Any, str]:
    """(policy digest, level id) -> the level's name, for every pair the table holds."""
    names: dict[Any, str] = {}
    pairs = session.exec(select(model.policy_digest, model.level).distinct()).all()
    for digest, level in pairs:
        # Each subject names its level in the policy version it started under.
        policy = registry.by_digest(session, digest).policy
        found = next((lv.name for lv in policy.levels if lv.id == level), level)
        names[(digest, level)] = found
    return names


def award_rows(session: Session, registry: SchemeRegistry) -> Iterator[Row]:
    """Every award, oldest id first, with its organisation's and level's names."""
    levels = _level_names(session, registry, Award)
    query: Select[Award, str] = (
        select(Award, col(Organisation.name).label("organisation_name"))
        .outerjoin(Organisation, col(Organisation.id) == Award.organisation_id)
        .order_by(col(Award.id))
        .execution_options(yield_per=BATCH)
    )
    for award, org_name in session.exec(query):
        yield {
            "id": award.id,
            "certificate_number": award.certificate_number,
            "organisation_id": award.organisation_id,
            "organisation_name": org_name,
            "scheme": award.scheme,
            "scheme_version": award.scheme_version,
            "level": award.level,
            "level_name": levels.get((award.policy_digest, award.level), award.level),
            "state": award.state,
            "issued_at": award.issued_at,
            "expires_at": award.expires_at,
            "supersedes_id": award.supersedes_id,
            "application_id": award.application_id,
        }


def submitting_steps(registry: SchemeRegistry) -> list[tuple[str, str]]:
    """(scheme, trigger) of each primary step that leaves a workflow's initial state."""
    return [
        (sid, t.trigger)
        for sid, scheme in registry.current.items()
        for t in scheme.policy.workflows.application.transitions
        if t.primary and scheme.policy.workflows.application.initial in t.source
    ]


def application_rows(session: Session, registry: SchemeRegistry) -> Iterator[Row]:
    """Every application, oldest id first, with names, its assessor and when it was submitted."""
    levels = _level_names(session, registry, Application)
    # First submission: the earliest event of each application that took the scheme's primary
    # step out of its initial state (SVQM's `submit`), one grouped query.
    submitting = tuple_(col(Application.scheme), col(AuditEvent.trigger))
    submitted = (
        select(
            col(AuditEvent.subject_id).label("application_id"),
            func.min(AuditEvent.at).label("at"),
        )
        .join(Application, col(Application.id) == AuditEvent.subject_id)
        .where(
            AuditEvent.subject_kind == "application",
            submitting.in_(submitting_steps(registry)),
        )
        .group_by(col(AuditEvent.subject_id))
        .subquery()
    )
    assessor = aliased(User)
    query: Select[Application, str, str, datetime] = (
        select(
            Application,
            col(Organisation.name).label("organisation_name"),
            func.coalesce(func.nullif(assessor.name, ""), assessor.email).label("assessor_name"),
            submitted.c.at,
        )
        .outerjoin(Organisation, col(Organisation.id) == Application.organisation_id)
        .outerjoin(assessor, col(assessor.id) == Application.assessor_id)
        .outerjoin(submitted, submitted.c.application_id == Application.id)
        .order_by(col(Application.id))
        .execution_options(yield_per=BATCH)
    )
    for app, org_name, assessor_name, submitted_at in session.exec(query):
        yield {
            "id": app.id,
            "organisation_id": app.organisation_id,
            "organisation_name": org_name,
            "scheme": app.scheme,
            "scheme_version": app.scheme_version,
            "level": app.level,
            "level_name": levels.get((app.policy_digest, app.level), app.level),
            "state": app.state,
            "version": app.version,
            "assessor_id": app.assessor_id,
            "assessor_name": assessor_name,
            "created_by_id": app.created_by_id,
            "created_at": app.created_at,
            "submitted_at": submitted_at,
            "state_changed_at": app.state_changed_at,
        }


_SOURCES: dict[str, tuple[tuple[str, ...], Callable[[Session, SchemeRegistry], Iterator[Row]]]] = {
    "awards": (AWARD_FIELDS, award_rows),
    "applications": (APPLICATION_FIELDS, application_rows),
}


def iso(value: datetime) -> str:
    """A time as ISO 8601 UTC with a Z ("2026-01-05T09:00:00Z"), as the API writes them."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def csv_cell(value: Any) -> str:
    """One CSV cell: empty for a missing value, and guarded against formula injection."""
    if value is None:
        return ""
    text = iso(value) if isinstance(value, datetime) else str(value)
    return "'" + text if text.startswith(_GUARDED) else text


def write_csv(rows: Iterable[Row], fields: tuple[str, ...], out: TextIO) -> int:
    """A header line, then one line a row (RFC 4180); returns how many rows."""
    # Every cell quoted, as OWASP advises beside the apostrophe: a spreadsheet that splits on
    # another separator (Excel uses ";" in some locales) still cannot start a cell mid-value.
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(fields)
    n = 0
    for row in rows:
        writer.writerow([csv_cell(row[f]) for f in fields])
        n += 1
    return n


def _json_value(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def write_json(rows: Iterable[Row], fields: tuple[str, ...], out: TextIO) -> int:
    """A JSON array of objects, one a line, written as it goes; returns how many rows."""
    n = 0
    for n, row in enumerate(rows, 1):
        item = {f: _json_value(row[f]) for f in fields}
        out.write(("[\n" if n == 1 else ",\n") + json.dumps(item, ensure_ascii=False))
    out.write("\n]\n" if n else "[]\n")
    return n


def check_format(fmt: str) -> None:
    """Refuse a format other than csv or json, naming what was given."""
    if fmt not in FORMATS:
        raise InvalidInput(f"--format is csv or json (got '{fmt}')")


def export(session: Session, registry: SchemeRegistry, kind: str, fmt: str, out: TextIO) -> int:
    """Write every award or application to `out` as CSV or JSON; returns how many rows."""
    check_format(fmt)
    if kind not in _SOURCES:
        raise InvalidInput(f"nothing to export called '{kind}' (known: {', '.join(KINDS)})")
    fields, rows = _SOURCES[kind]
    write = write_csv if fmt == "csv" else write_json
    return write(rows(session, registry), fields, out)


def invoice_rows(session: Session, registry: SchemeRegistry) -> Iterator[Row]:
    """Every invoice and credit note, by number, for the finance team."""
    names = dict(session.exec(select(Organisation.id, Organisation.name)).all())
    numbers = dict(session.exec(select(Invoice.id, Invoice.number)).all())
    for inv in session.exec(select(Invoice).order_by(col(Invoice.id))):
        yield {
            "number": inv.number,
            "kind": inv.kind,
            "credits": numbers.get(inv.credits_id) if inv.credits_id else None,
            "organisation_id": inv.organisation_id,
            "organisation_name": names.get(inv.organisation_id, ""),
            "application_id": inv.application_id,
            "scheme": inv.scheme,
            "level": inv.level,
            "turnover_band": inv.turnover_band,
            "description": inv.description,
            "amount_pence": inv.amount_pence,
            "vat_percent": f"{inv.vat_percent:g}",
            "vat_pence": inv.vat_pence,
            "total_pence": inv.total_pence,
            "status": inv.status,
            "issued_at": inv.issued_at,
            "due_at": inv.due_at,
            "reference": inv.reference,
            "paid_at": inv.paid_at,
            "payment_method": inv.payment_method,
            "payment_reference": inv.payment_reference,
        }


_SOURCES["invoices"] = (INVOICE_FIELDS, invoice_rows)
