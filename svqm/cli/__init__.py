"""The `svqm` command and its subcommands. User errors exit 1 with one clear line, never a traceback."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table as RichTable
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError

from svqm import clock
from svqm.accounts import auth
from svqm.accounts import service as accounts
from svqm.config import get_settings
from svqm.db import first_line, make_engine, session_scope, unreachable
from svqm.errors import PolicyError, SvqmError
from svqm.policy import Policy, load_policy
from svqm.policy.checks import check_equivalents, check_issuers
from svqm.workflow import audit, diagram
from svqm.workflow.schemes import known_effects, known_guards, load_registry

app = typer.Typer(
    help="svqm: accreditation workflow engine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
policy_app = typer.Typer(help="Scheme policy files.", no_args_is_help=True)
user_app = typer.Typer(help="Users.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
evidence_app = typer.Typer(help="Evidence files.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(policy_app, name="policy")
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")
app.add_typer(evidence_app, name="evidence")

out = Console(soft_wrap=True)


def Table(*columns: str, title: str) -> RichTable:
    """A rich table whose cells fold instead of being cut off with an ellipsis."""
    table = RichTable(title=title)
    for name in columns:
        table.add_column(name, overflow="fold")
    return table


err = Console(stderr=True, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str) -> typer.Exit:
    for line in message.splitlines() or [message]:
        err.print(f"error: {line}", markup=False, highlight=False)
    return typer.Exit(1)


@contextmanager
def _database() -> Iterator[Any]:
    """The configured database's engine, disposed when the command ends."""
    settings = get_settings()
    engine = make_engine(settings.DATABASE_URL, busy_timeout_ms=settings.SQLITE_BUSY_TIMEOUT_MS)
    try:
        yield engine
    finally:
        engine.dispose()


def _registry() -> Any:
    return load_registry(get_settings().POLICIES_DIR)


def _quiet_libraries() -> None:
    """The `transitions` library logs every callback of every state change at INFO: noise beside
    the scheduler's one line per run. Its warnings still show."""
    logging.getLogger("transitions").setLevel(logging.WARNING)


def served_url(host: str, port: int) -> str:
    """The address people reach a server on `host`:`port` at (any-address binds: this machine)."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Web worker processes.", min=1)] = 1,
    no_scheduler: Annotated[
        bool, typer.Option("--no-scheduler", help="Do not run the scheduler in-process.")
    ] = False,
    access_log: Annotated[
        bool, typer.Option(help="Log every request (off behind a proxy that logs them).")
    ] = True,
) -> None:
    """Serve the site and the API."""
    import uvicorn

    _registry()  # refuse to start on a broken policy, with its message rather than a traceback
    if "BASE_URL" not in get_settings().model_fields_set:
        # Links in emails, calendars and credentials point where the site is actually served.
        os.environ["SVQM_BASE_URL"] = served_url(host, port)
        get_settings.cache_clear()
    if workers > 1 and not no_scheduler:
        # APScheduler 3 runs in every process that starts it: N workers would sweep N times.
        raise _fail(
            "several workers each would run the scheduler: add --no-scheduler and run "
            "`svqm scheduler` as one process of its own"
        )
    if no_scheduler:
        # The workers are separate processes that read their settings from the environment;
        # this one read them already (checking the policies above), so it reads them again.
        os.environ["SVQM_RUN_SCHEDULER"] = "false"
        get_settings.cache_clear()
    _logging()
    options: dict[str, Any] = {
        "app": "svqm.web.app:create_app",
        "factory": True,
        "log_level": "info",
        "access_log": access_log,
    }
    if workers > 1:
        from svqm.cli.serving import serve_workers

        # Each worker on a listening socket of its own, so that connections spread across them.
        raise typer.Exit(serve_workers(host, port, workers, options, _logging))
    uvicorn.run(host=host, port=port, **options)


def _logging() -> None:
    """The scheduler's lines (what each sweep and dispatch did) beside uvicorn's own."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    _quiet_libraries()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    from svqm.dbmigrate import upgrade

    with _database() as engine:
        upgrade(engine)
        out.print(f"database at {engine.url.render_as_string(hide_password=True)} is up to date")


@policy_app.command("check")
def policy_check(
    files: Annotated[list[Path] | None, typer.Argument(help="Policy files (default: all).")] = None,
) -> None:
    """Validate policy files; exit 1 naming the file, field and reason of each problem."""
    paths = files or sorted(get_settings().POLICIES_DIR.glob("*.yaml"))
    if not paths:
        raise _fail(f"no policy files in {get_settings().POLICIES_DIR}")
    failed = False
    checked: dict[str, Policy] = {}
    for path in paths:
        try:
            policy = load_policy(path, known_guards=known_guards(), known_effects=known_effects())
        except PolicyError as exc:
            failed = True
            for line in exc.detail.splitlines():
                err.print(f"error: {line}", markup=False, highlight=False)
            continue
        checked[policy.id] = policy
        out.print(
            f"ok: {path} ({policy.name} {policy.version}: {len(policy.levels)} levels, "
            f"{len(policy.workflows.application.states)} application states, "
            f"{len(policy.workflows.award.states)} award states)",
            markup=False,
        )
    # Prerequisites met by another scheme's award name schemes beside the files checked.
    others: dict[str, Policy] = {}
    for path in sorted(get_settings().POLICIES_DIR.glob("*.yaml")):
        try:
            others[path.name[: -len(".yaml")]] = load_policy(path)
        except PolicyError:
            continue
    together = {**others, **checked}
    for line in check_equivalents(together) + check_issuers(together):
        if line.partition(":")[0] in checked:
            failed = True
            err.print(f"error: {line}", markup=False, highlight=False)
    if failed:
        raise typer.Exit(1)


@policy_app.command("show")
def policy_show(scheme: str) -> None:
    """Show a scheme's levels, themes, standards, workflows and deadlines."""
    policy = _registry().get(scheme).policy
    out.print(f"[bold]{policy.name}[/bold] ({policy.id}, version {policy.version})")
    levels = Table(
        "rank", "level", "aliases", "valid (months)", "standards", "requires", title="Levels"
    )
    for lv in sorted(policy.levels, key=lambda lv: lv.rank):
        req = f"{lv.requires.level} ({lv.requires.held_months} months)" if lv.requires else ""
        levels.add_row(
            str(lv.rank),
            lv.name,
            ", ".join(lv.aliases),
            str(lv.validity_months),
            ", ".join(lv.standards),
            req,
        )
    out.print(levels)
    themes = Table("theme", "name", "mandatory", title="Themes")
    for t in policy.themes:
        themes.add_row(t.id, t.name, "yes" if t.mandatory else "")
    out.print(themes)
    standards = Table(
        "standard",
        "question",
        "weight",
        "mandatory",
        "max score",
        title=f"Standards (pass mark {policy.pass_mark_text()})",
    )
    for std in policy.standards:
        for i, q in enumerate(std.questions):
            standards.add_row(
                std.name if i == 0 else "",
                q.text,
                f"{q.weight:g}",
                "yes" if q.mandatory else "",
                str(q.max_score),
            )
    out.print(standards)
    for kind in policy.workflows.kinds():
        wf = policy.workflows.of(kind)
        table = Table("trigger", "from", "to", "roles", "guards", title=f"{kind.title()} workflow")
        for t in wf.transitions:
            table.add_row(
                t.trigger, ", ".join(t.source), t.dest, ", ".join(t.roles), ", ".join(t.guards)
            )
        out.print(table)
    deadlines = Table(
        "deadline",
        "subject",
        "while in",
        "anchor",
        "offset",
        "reminders (days)",
        "when due",
        title="Deadlines",
    )
    for d in policy.deadlines:
        off = ", ".join(f"{v} {k}" for k, v in d.offset.model_dump().items() if v) or "0"
        deadlines.add_row(
            d.kind,
            d.subject,
            ", ".join(d.while_in),
            d.anchor,
            off,
            ", ".join(map(str, d.remind_before_days)),
            d.on_due or "",
        )
    out.print(deadlines)


@policy_app.command("diagram")
def policy_diagram(
    scheme: str,
    format: Annotated[str, typer.Option("--format", help="mermaid or svg")] = "mermaid",
    kind: Annotated[str, typer.Option(help="application, award or report")] = "application",
    output: Annotated[Path | None, typer.Option(help="Write to this file.")] = None,
) -> None:
    """Draw a scheme's workflow as Mermaid text or an SVG picture."""
    if format not in ("mermaid", "svg"):
        raise _fail(f"--format is mermaid or svg (got '{format}')")
    policy = _registry().get(scheme).policy
    if kind not in policy.workflows.kinds():
        raise _fail(f"--kind is {' or '.join(policy.workflows.kinds())} (got '{kind}')")
    title = f"{policy.name}: {kind} workflow"
    wf = policy.workflows.of(kind)
    text = diagram.mermaid(wf, title) if format == "mermaid" else diagram.svg(wf, title)
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.write_text(text, encoding="utf-8")
        out.print(f"wrote {output}")


@user_app.command("add")
def user_add(
    email: str,
    role: Annotated[str, typer.Option(help="applicant, assessor, panel or admin")],
    organisation: Annotated[int | None, typer.Option(help="Organisation id (applicants).")] = None,
    name: Annotated[str, typer.Option(help="The person's name.")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Add a user (the way to create the first admin: there are no default accounts)."""
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    with _database() as engine, session_scope(engine) as session:
        user = accounts.add_user(
            session,
            email=email,
            role=role,
            organisation_id=organisation,
            password=password,
            name=name,
        )
        out.print(f"user {user.id} added: {user.email} ({user.role})")
        if auth.needs_second_factor(user):
            auth.ensure_totp_secret(session, user)
            # Shown once, to whoever runs this (the owner, or the admin who hands it over
            # securely): signing in never shows it. A first code confirms it.
            out.print("sign-in needs a second factor; add this to an authenticator app:")
            out.print(auth.totp_uri(user, get_settings().TOTP_ISSUER), markup=False)


@user_app.command("enrol")
def user_enrol(email: str) -> None:
    """Print a single-use, expiring link for a staff member to set up their authenticator app
    (again, after a lost phone): opening it shows a new key once; the old one stops working."""
    settings = get_settings()
    now = clock.utc_now()
    with _database() as engine, session_scope(engine) as session:
        user = accounts.get_user_by_email(session, email)
        if user is None:
            raise _fail(f"no user {email}")
        token = auth.issue_enrolment_link(session, user, by=None, now=now, settings=settings)
    out.print(
        f"send this link to {user.email}; it works once, for {settings.ENROLMENT_LINK_HOURS} hours:"
    )
    out.print(settings.BASE_URL.rstrip("/") + f"/enrol/{token}", markup=False)


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit trail's hash chains; exit 1 on any edited or deleted event."""
    with _database() as engine, session_scope(engine, write=False) as session:
        checked, problems = audit.verify_chain(session)
    if problems:
        for p in problems:
            err.print(f"error: {p}", markup=False, highlight=False)
        raise typer.Exit(1)
    out.print(f"audit trail intact: {checked} events verified")


@evidence_app.command("add")
def evidence_add(
    application: int,
    file: Annotated[Path, typer.Argument(help="The file to upload.")],
    requirement: Annotated[str, typer.Option(help="Evidence requirement (or checklist) id.")],
    as_user: Annotated[str, typer.Option("--as", help="Email of the applicant uploading it.")],
    pledge: Annotated[int | None, typer.Option(help="Pledge id, for per-pledge evidence.")] = None,
    title: Annotated[str, typer.Option(help="A title for the item.")] = "",
) -> None:
    """Upload evidence for an application, with the same checks as the web upload."""
    from svqm.evidence.storage import BlobStore
    from svqm.workflow import actions
    from svqm.workflow.models import Application
    from svqm.workflow.service import Actor

    settings = get_settings()
    if not file.is_file():
        raise _fail(f"{file}: no such file")
    store = BlobStore(
        settings.EVIDENCE_DIR,
        max_bytes=settings.MAX_UPLOAD_BYTES,
        max_unpacked_bytes=settings.MAX_UNPACKED_BYTES,
        max_entries=settings.MAX_ARCHIVE_ENTRIES,
    )
    registry = _registry()
    with _database() as engine, session_scope(engine) as session:
        user = accounts.get_user_by_email(session, as_user)
        app_row = session.get(Application, application)
        if user is None or not user.active:
            raise _fail(f"no active user {as_user}")
        if app_row is None:
            raise _fail(f"no application {application}")
        with file.open("rb") as stream:
            item = actions.upload_evidence(
                session,
                app_row,
                store,
                requirement=requirement,
                pledge_id=pledge,
                stream=stream,
                filename=file.name,
                title=title,
                actor=Actor.of(user),
                registry=registry,
                now=clock.utc_now(),
            )
        out.print(
            f"evidence {item.id} stored for {item.slot} (version {item.version}, "
            f"{item.content_type}, {item.size} bytes, sha256 {item.sha256})",
            markup=False,
        )


@evidence_app.command("gc")
def evidence_gc(
    apply: Annotated[
        bool, typer.Option("--apply", help="Remove what is found (default: only list it).")
    ] = False,
    min_age_minutes: Annotated[
        float, typer.Option(help="Leave files younger than this: uploads may be in flight.", min=0)
    ] = 60,
) -> None:
    """Find (and with --apply remove) what killed uploads left: staged .part files and blobs no
    row names. Dry run by default; anything a row names is always kept."""
    from svqm.evidence.storage import BlobStore
    from svqm.workflow.evidence_gc import collect

    settings = get_settings()
    store = BlobStore(
        settings.EVIDENCE_DIR,
        max_bytes=settings.MAX_UPLOAD_BYTES,
        max_unpacked_bytes=settings.MAX_UNPACKED_BYTES,
        max_entries=settings.MAX_ARCHIVE_ENTRIES,
    )
    with _database() as engine, session_scope(engine, write=False) as session:
        found = collect(session, store, apply=apply, min_age_seconds=min_age_minutes * 60)
    verb = "removed" if apply else "would remove"
    for path in found.temp_files + found.orphan_blobs:
        out.print(f"  {verb} {path}", markup=False)
    out.print(
        f"{verb} {len(found.temp_files)} staged file(s) and {len(found.orphan_blobs)} blob(s) no "
        f"row names ({found.size} bytes); kept {found.kept} blob(s)"
        + ("" if apply else "; run again with --apply to remove them"),
        markup=False,
    )


@app.command()
def demo(
    audit_starts_today: Annotated[
        int | None,
        typer.Option(
            "--audit-starts-today",
            metavar="APPLICATION_ID",
            help="Instead of seeding: bring the confirmed audit of this demo application "
            "forward to today, so its stakeholder consultation opens now.",
        ),
    ] = None,
) -> None:
    """Seed demonstration data once (nothing happens if it is already there)."""
    from svqm import demo as demo_data

    with _database() as engine, session_scope(engine) as session:
        if audit_starts_today is not None:
            report = demo_data.audit_starts_today(
                session, audit_starts_today, registry=_registry(), now=clock.utc_now()
            )
        else:
            report = demo_data.seed_demo(session, registry=_registry(), now=clock.utc_now())
    out.print(report, markup=False)


# The scheduling and export commands live in modules of their own; importing them registers them
# on `app`.
from svqm.cli import exports as _exports  # noqa: E402
from svqm.cli import keys as _keys  # noqa: E402
from svqm.cli import scheduling as _scheduling  # noqa: E402

COMMAND_MODULES = (_scheduling, _exports, _keys)


def main() -> None:
    """Entry point: run a command, turning user errors into one line and exit code 1."""
    try:
        result = app(standalone_mode=False)
    except SvqmError as exc:
        raise SystemExit(_fail(exc.detail).exit_code) from None
    except (OperationalError, InterfaceError, ProgrammingError) as exc:
        if unreachable(exc):
            url = make_url(get_settings().DATABASE_URL).render_as_string(hide_password=True)
            err.print(
                f"error: the database at {url} is unreachable: {first_line(exc)}", markup=False
            )
        else:
            err.print(
                f"error: database: {first_line(exc)} (is `svqm db upgrade` done?)", markup=False
            )
        raise SystemExit(1) from None
    except ValidationError as exc:  # a setting from the environment that cannot be used
        for problem in exc.errors():
            where = ".".join(str(p) for p in problem["loc"])
            err.print(f"error: setting {where or 'SVQM_*'}: {problem['msg']}", markup=False)
        raise SystemExit(1) from None
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except (typer.Abort, KeyboardInterrupt):
        raise SystemExit(130) from None
    except Exception as exc:  # a click usage error and the like
        import click

        # Typer 0.24 and later carry their own copy of click, whose usage errors (a bad or missing
        # option) are not click's classes but derive from typer.TyperException.
        usage: tuple[type[Exception], ...] = (click.ClickException,)
        usage += tuple(c for c in (getattr(typer, "TyperException", None),) if c is not None)
        show = getattr(exc, "show", None)
        if isinstance(exc, usage) and callable(show):
            show()
            raise SystemExit(getattr(exc, "exit_code", 2)) from None
        raise
    if isinstance(result, int) and result:
        raise SystemExit(result)
