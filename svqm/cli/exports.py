"""`svqm export awards|applications --format csv|json [--output FILE]`: every row, to stdout or a file."""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TextIO

import typer

from svqm.cli import _database, _fail, _registry, app, out
from svqm.db import session_scope
from svqm.errors import InvalidInput
from svqm.reporting import exports

COMMANDS = ("export awards", "export applications", "export invoices")

export_app = typer.Typer(
    help="Export awards, applications and invoices as CSV or JSON.", no_args_is_help=True
)
app.add_typer(export_app, name="export")

FormatOption = Annotated[str | None, typer.Option("--format", help="csv or json (required)")]
OutputOption = Annotated[
    Path | None, typer.Option("--output", help="Write to this file instead of stdout.")
]


@contextmanager
def _stdout() -> Iterator[TextIO]:
    """Standard output as UTF-8 text with no newline translation (CSV lines end in CRLF)."""
    stream = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
    try:
        yield stream
        stream.flush()
    finally:
        stream.detach()  # sys.stdout keeps its buffer


@contextmanager
def _file(path: Path) -> Iterator[TextIO]:
    """A file written beside `path` and moved over it at the end, so a failed export leaves no half."""
    try:
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        raise _fail(f"--output: cannot write in {path.parent}: {exc.strerror}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            yield stream
        # mkstemp makes the file private (0600); give it the mode any new file of the user gets.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, path)
    except OSError as exc:
        raise _fail(f"--output: cannot write {path}: {exc.strerror}") from None
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def _export(kind: str, fmt: str | None, output: Path | None) -> None:
    if fmt is None:
        raise _fail("--format is required: csv or json")
    try:
        exports.check_format(fmt)
    except InvalidInput as exc:
        raise _fail(exc.detail) from None
    registry = _registry()
    with _database() as engine, session_scope(engine, write=False) as session:
        if output is None:
            try:
                with _stdout() as stream:
                    exports.export(session, registry, kind, fmt, stream)
            except BrokenPipeError:
                # The reader stopped early (`| head`): no traceback, and nothing more to write.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                raise typer.Exit(1) from None
            return
        with _file(output) as stream:
            n = exports.export(session, registry, kind, fmt, stream)
    out.print(f"wrote {n} {kind if n != 1 else kind[:-1]} to {output}", markup=False)


@export_app.command("awards")
def export_awards(format: FormatOption = None, output: OutputOption = None) -> None:
    """Every award: certificate, organisation, scheme and version, level, state, dates, chain."""
    _export("awards", format, output)


@export_app.command("applications")
def export_applications(format: FormatOption = None, output: OutputOption = None) -> None:
    """Every application: organisation, scheme, level, state, assessor, times, version."""
    _export("applications", format, output)


@export_app.command("invoices")
def export_invoices(format: FormatOption = None, output: OutputOption = None) -> None:
    """Every invoice and credit note, for finance: number, organisation, amounts in pence (net,
    VAT, total), status, dates and the payment recorded."""
    _export("invoices", format, output)
