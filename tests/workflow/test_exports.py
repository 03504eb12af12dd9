"""Exports round-trip: every row and every field of the CSV and JSON equals the database.

The CSV guard against formula injection (OWASP "CSV Injection") is part of the round trip: a cell
that starts with = + - @, a tab or a carriage return is written with an apostrophe in front, and so
is a cell that starts with an apostrophe, so a reader gets every value back by stripping one
leading apostrophe from any cell that has one (`unguard` below).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from svqm.accounts.models import Organisation, User
from svqm.db import session_scope
from svqm.reporting import exports
from svqm.workflow import invoices as invoice_service
from svqm.workflow.models import Application, AuditEvent, Award
from svqm.workflow.service import fire
from tests.factories import make_org, make_user, store_at
from tests.workflow.harness import Cast, application_in, award_in, satisfy

REPO = Path(__file__).resolve().parent.parent.parent
SVQM = str(Path(sys.executable).with_name("svqm"))
T = datetime(2026, 1, 5, 9, 0, 0, 123457, tzinfo=UTC)
# Commas, quotes, a newline, non-ASCII and a leading "=": everything a CSV writer can get wrong.
TRICKY = '=HYPERLINK("https://evil.example/?q=1","Click"), "Quotes" & Co\nLtd – Café Ünïcødé 日本'
NAMES = [
    TRICKY,
    "+44 Community Trust",
    "-1 Minus Group",
    "@handle Care CIC",
    "\tTabbed Housing",
    "\rReturned Ltd",
    "'Already quoted' Partnership",
    "Plain Organisation, Ltd",
]
TIMES = {"issued_at", "expires_at", "created_at", "submitted_at", "state_changed_at"}
INTS = {
    "id",
    "organisation_id",
    "supersedes_id",
    "application_id",
    "version",
    "assessor_id",
    "created_by_id",
}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def build_world(engine, registry, tmp_path: Path) -> None:
    """Organisations with awkward names, applications in several states, a renewal chain."""
    with session_scope(engine) as s:
        for i, name in enumerate(NAMES):
            org = make_org(s)
            org.name = name  # set directly: the service strips the leading tab and CR
            assessor = make_user(s, "assessor")
            assessor.name = f'Assessor {i}, the "{i}th"' if i % 2 else ""
            cast = Cast(
                org,
                make_user(s, "applicant", org),
                assessor,
                make_user(s, "panel"),
                make_user(s, "admin"),
            )
            at = T + timedelta(days=i, microseconds=i)
            draft = application_in(
                s, registry, cast, scheme="svqm", level="bronze", state="draft", at=at
            )
            draft.created_by_id = cast.applicant.id
            application_in(
                s, registry, cast, scheme="svqm", level="silver", state="under_review", at=at
            )
            first = award_in(
                s,
                registry,
                cast,
                scheme="svqm" if i % 3 else "svqm-health",
                level="bronze" if i % 3 else "health_bronze",
                state="expired",
                issued=at - timedelta(days=800),
                at=at,
            )
            renewal = award_in(
                s,
                registry,
                cast,
                scheme=first.scheme,
                level=first.level,
                state="active",
                issued=at - timedelta(days=30),
                at=at,
            )
            renewal.supersedes_id = first.id
            if i == 0:
                _submit(s, registry, cast, tmp_path, at)


def _submit(session, registry, cast: Cast, tmp_path: Path, at: datetime) -> None:
    """An application really submitted, so that it has a `submit` event in the audit trail."""
    policy = registry.get("svqm").policy
    app = application_in(
        session, registry, cast, scheme="svqm", level="bronze", state="draft", at=at
    )
    t = policy.workflows.application.transition("submit", "draft")
    assert t is not None
    when, comment = satisfy(session, policy, registry, store_at(tmp_path), cast, app, t, at)
    fire(
        session,
        app,
        "submit",
        actor=cast.actor("applicant"),
        registry=registry,
        now=when + timedelta(hours=1),
        comment=comment,
    )


def expected(engine, registry, kind: str) -> list[dict]:
    """The rows an export should hold, read from the database with plain queries."""
    with Session(engine) as s:
        orgs = {o.id: o.name for o in s.exec(select(Organisation))}
        people = {u.id: u.name or u.email for u in s.exec(select(User))}
        rows = []
        if kind == "awards":
            for a in s.exec(select(Award).order_by(col(Award.id))):
                level = registry.get(a.scheme).policy.level(a.level)
                rows.append(
                    a.model_dump(include=set(exports.AWARD_FIELDS))
                    | {"organisation_name": orgs[a.organisation_id], "level_name": level.name}
                )
            return rows
        events = list(s.exec(select(AuditEvent).where(AuditEvent.trigger == "submit")))
        for a in s.exec(select(Application).order_by(col(Application.id))):
            submits = [e.at for e in events if e.subject_id == a.id]
            level = registry.get(a.scheme).policy.level(a.level)
            rows.append(
                a.model_dump(include=set(exports.APPLICATION_FIELDS))
                | {
                    "organisation_name": orgs[a.organisation_id],
                    "level_name": level.name,
                    "assessor_name": people.get(a.assessor_id),
                    "submitted_at": min(submits) if submits else None,
                }
            )
        return rows


def unguard(cell: str) -> str:
    return cell[1:] if cell.startswith("'") else cell


def from_csv(text: str) -> list[dict]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    rows = []
    for cells in reader:
        assert not any(c.startswith(FORMULA_START) for c in cells), cells
        rows.append({f: typed(f, unguard(c)) for f, c in zip(header, cells, strict=True)})
    return rows


def typed(field: str, value):
    if value in ("", None):
        return None
    if field in TIMES:
        return datetime.fromisoformat(value)
    return int(value) if field in INTS and isinstance(value, str) else value


def from_json(text: str) -> list[dict]:
    return [{f: typed(f, v) for f, v in row.items()} for row in json.loads(text)]


def export_text(engine, registry, kind: str, fmt: str) -> str:
    out = io.StringIO(newline="")
    with Session(engine) as s:
        exports.export(s, registry, kind, fmt, out)
    return out.getvalue()


@pytest.mark.parametrize("kind", ["awards", "applications"])
def test_csv_and_json_round_trip_every_row_and_field(engine, registry, tmp_path, kind):
    build_world(engine, registry, tmp_path)
    want = expected(engine, registry, kind)
    fields = exports.AWARD_FIELDS if kind == "awards" else exports.APPLICATION_FIELDS
    assert len(want) == len(NAMES) * (4 if kind == "applications" else 2) + (kind != "awards")
    assert all(set(row) == set(fields) for row in want)
    # The world has what the optional columns hold: a renewal chain, a submission, named assessors.
    filled = {f for row in want for f, v in row.items() if v is not None}
    assert filled == set(fields)

    text = export_text(engine, registry, kind, "csv")
    assert text.splitlines()[0] == ",".join(f'"{f}"' for f in fields)
    assert from_csv(text) == want
    assert from_json(export_text(engine, registry, kind, "json")) == want


def test_csv_cells_that_a_spreadsheet_would_run_start_with_an_apostrophe(
    engine, registry, tmp_path
):
    build_world(engine, registry, tmp_path)
    text = export_text(engine, registry, "awards", "csv")
    assert '"\'=HYPERLINK(""https://evil.example/?q=1"",""Click""), ""Quotes"" & Co\nLtd' in text
    for name in NAMES[1:7]:
        assert f'"\'{name}"' in text, name
    assert '"Plain Organisation, Ltd"' in text
    # JSON is not for spreadsheets: it keeps every value as it is.
    assert {
        r["organisation_name"] for r in json.loads(export_text(engine, registry, "awards", "json"))
    } == set(NAMES)
    assert exports.csv_cell("-") == "'-"
    assert exports.csv_cell(None) == ""
    assert exports.csv_cell(-1) == "'-1"


def test_an_empty_database_exports_a_header_and_an_empty_array(engine, registry):
    assert export_text(engine, registry, "awards", "csv").count("\r\n") == 1
    assert export_text(engine, registry, "applications", "json") == "[]\n"


class Writes(io.StringIO):
    """A stream that notes the size of every write."""

    def __init__(self) -> None:
        super().__init__(newline="")
        self.sizes: list[int] = []

    def write(self, text: str) -> int:
        self.sizes.append(len(text))
        return super().write(text)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_thousands_of_rows_are_written_as_they_are_read(engine, registry, fmt):
    many = 2 * exports.BATCH + 345
    with session_scope(engine) as s:
        org = make_org(s)
        scheme = registry.get("svqm")
        registry.record_snapshot(s, scheme)
        s.add_all(
            Application(
                organisation_id=org.id,
                scheme="svqm",
                scheme_version=scheme.policy.version,
                policy_digest=scheme.policy.digest,
                level="bronze",
                state="draft",
                created_at=T + timedelta(seconds=i),
                state_changed_at=T + timedelta(seconds=i),
            )
            for i in range(many)
        )
    out = Writes()
    with Session(engine) as s:
        assert exports.export(s, registry, "applications", fmt, out) == many
    # One write a row: the file is never held as one string.
    assert len(out.sizes) >= many
    assert max(out.sizes) < 1000
    rows = from_csv(out.getvalue()) if fmt == "csv" else from_json(out.getvalue())
    assert [r["created_at"] for r in rows] == [T + timedelta(seconds=i) for i in range(many)]


def _cli(*args: str, url: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "SVQM_DATABASE_URL": url, "COLUMNS": "200"}
    return subprocess.run(
        [SVQM, "export", *args], env=env, cwd=REPO, capture_output=True, timeout=120, check=False
    )


def test_cli_writes_the_same_rows_to_stdout_and_to_a_file(engine, registry, tmp_path):
    build_world(engine, registry, tmp_path)
    url = engine.url.render_as_string(hide_password=False)
    shown = _cli("awards", "--format", "csv", url=url)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.decode() == export_text(engine, registry, "awards", "csv")
    assert from_csv(shown.stdout.decode()) == expected(engine, registry, "awards")

    target = tmp_path / "applications.json"
    written = _cli("applications", "--format", "json", "--output", str(target), url=url)
    assert written.returncode == 0, written.stderr
    assert written.stdout.decode().strip() == f"wrote {len(NAMES) * 4 + 1} applications to {target}"
    assert from_json(target.read_text(encoding="utf-8")) == expected(
        engine, registry, "applications"
    )


def test_cli_refuses_a_bad_format_or_output_with_one_line(tmp_path):
    url = f"sqlite:///{tmp_path}/svqm.db"
    cases = [
        (["awards", "--format", "xlsx"], "error: --format is csv or json (got 'xlsx')"),
        (["applications"], "error: --format is required: csv or json"),
        (
            ["awards", "--format", "json", "--output", str(tmp_path / "missing" / "a.json")],
            f"error: --output: cannot write in {tmp_path / 'missing'}: No such file or directory",
        ),
    ]
    for args, message in cases:
        result = _cli(*args, url=url)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.decode().strip() == message
        assert result.stdout == b""


def test_cli_exports_every_invoice_for_finance(engine, registry, tmp_path):
    build_world(engine, registry, tmp_path)
    with Session(engine) as s:
        numbers = [i.number for i in invoice_service.listing(s)][::-1]
    assert numbers, "the world's submissions were invoiced"
    shown = _cli(
        "invoices", "--format", "csv", url=engine.url.render_as_string(hide_password=False)
    )
    assert shown.returncode == 0, shown.stderr
    rows = from_csv(shown.stdout.decode())
    assert [r["number"] for r in rows] == numbers
    assert set(rows[0]) == set(exports.INVOICE_FIELDS)
    assert all(int(r["total_pence"]) == int(r["amount_pence"]) + int(r["vat_pence"]) for r in rows)
