from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests import svqm_for_tests

REPO = Path(__file__).resolve().parent.parent
SVQM = str(Path(sys.executable).with_name("svqm"))


def run(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SVQM, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_cheaply(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`svqm ARGS` hashing passwords cheaply (tests/svqm_for_tests.py), where a test proves
    nothing of a hash's cost: the demo seed hashes every demo account's password."""
    return subprocess.run(
        [*svqm_for_tests.COMMAND, *args],
        env=svqm_for_tests.environment(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SVQM_DATABASE_URL": f"sqlite:///{tmp_path}/svqm.db",
        "SVQM_EVIDENCE_DIR": str(tmp_path / "evidence"),
        "COLUMNS": "200",
    }


def test_db_upgrade_then_demo_once_then_audit_verify(env):
    assert run("db", "upgrade", env=env).returncode == 0
    first = run("demo", env=env)
    assert first.returncode == 0, first.stderr
    assert "demo data created" in first.stdout
    _the_care_homes_pledges(env)
    again = run("demo", env=env)
    assert (again.returncode, again.stdout.strip()) == (0, "demo data already present")
    verified = run("audit", "verify", env=env)
    assert verified.returncode == 0, verified.stderr
    assert "audit trail intact" in verified.stdout
    _riverside_has_published_its_charter(env["SVQM_DATABASE_URL"])


def _riverside_has_published_its_charter(url: str) -> None:
    from sqlmodel import Session, select

    from svqm.accounts.models import Organisation
    from svqm.db import make_engine
    from svqm.demo import MARKER
    from svqm.evidence.charter import read_charter

    engine = make_engine(url)
    with Session(engine) as s:
        trust = s.exec(select(Organisation).where(Organisation.name == MARKER)).one()
        charter = read_charter(s, trust.id or 0, published=True)
        assert charter is not None
        assert charter.revision == 1
        assert len(charter.priorities) == 3
        assert all(p.pledge_ids for p in charter.priorities)
    engine.dispose()


def _the_care_homes_pledges(env):
    """The demo's group application: Anchor View's award carries its own pledge beside the
    shared ones; Lighthouse Court's, on the same application, the shared ones alone."""
    from datetime import timedelta

    from sqlalchemy import create_engine
    from sqlmodel import Session, select

    from svqm.accounts.models import Organisation
    from svqm.clock import utc_now
    from svqm.demo import ANCHOR_VIEW_PLEDGE
    from svqm.workflow import commitments
    from svqm.workflow.schemes import load_registry

    engine = create_engine(env["SVQM_DATABASE_URL"])
    registry = load_registry(REPO / "policies")
    later = utc_now() + timedelta(days=1)
    try:
        with Session(engine) as s:
            ids = {
                o.name: o.id
                for o in s.exec(select(Organisation)).all()
                if o.name in ("Anchor View", "Lighthouse Court")
            }
            titles = {
                name: {p.title for p in commitments.commitments(s, registry, oid, later).pledges}
                for name, oid in ids.items()
            }
    finally:
        engine.dispose()
    own = ANCHOR_VIEW_PLEDGE[1]
    assert own in titles["Anchor View"]
    assert own not in titles["Lighthouse Court"]
    assert titles["Anchor View"] - {own} == titles["Lighthouse Court"] != set()


def test_user_add_reads_the_password_from_stdin_and_refuses_bad_input(env):
    run("db", "upgrade", env=env)
    ok = run(
        "user",
        "add",
        "Admin@Example.test",
        "--role",
        "admin",
        "--password-stdin",
        env=env,
        stdin="a long enough passphrase\n",
    )
    assert ok.returncode == 0, ok.stderr
    assert "admin@example.test (admin)" in ok.stdout
    # The key is shown once here, to whoever made the account; a link replaces it later.
    assert "otpauth://totp/" in ok.stdout
    link = run("user", "enrol", "admin@example.test", env=env)
    assert link.returncode == 0, link.stderr
    assert "/enrol/" in link.stdout
    assert "works once" in link.stdout
    for args, stdin, message in [
        (["admin@example.test", "--role", "admin"], "", "already exists"),
        (["x@example.test", "--role", "wizard"], "", "role must be one of"),
        (["y@example.test", "--role", "applicant"], "", "must belong to an organisation"),
        (["z@example.test", "--role", "panel", "--password-stdin"], "short\n", "at least 12"),
        (
            ["z@example.test", "--role", "panel", "--password-stdin"],
            "password1234\n",
            "too easy to guess",
        ),
    ]:
        bad = run("user", "add", *args, env=env, stdin=stdin)
        assert bad.returncode == 1
        assert message in bad.stderr
        assert "Traceback" not in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1


def test_commands_before_db_upgrade_fail_with_one_line(env):
    result = run("audit", "verify", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("error: database:")
    assert "Traceback" not in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_really_serves(env):
    run("db", "upgrade", env=env)
    port = _free_port()
    # Only the flag may turn the scheduler off here (the test session's environment does too).
    env = {k: v for k, v in env.items() if k not in ("SVQM_RUN_SCHEDULER", "SVQM_BASE_URL")}
    server = subprocess.Popen(
        [SVQM, "serve", "--port", str(port), "--no-scheduler"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Importing the app costs about 2 s of CPU, which a loaded machine can stretch past 30 s.
        deadline = time.monotonic() + 120
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)  # waiting for a real process to bind its port
        assert response.json() == {"status": "ok"}
        schemes = httpx.get(f"http://127.0.0.1:{port}/api/v1/schemes", timeout=5).json()
        assert {s["id"] for s in schemes} == {
            "svqm",
            "svqm-health",
            "bcorp-style",
            "iip-style",
            "iso17021-style",
            "northshore-anchor-charter",
        }
        # Unset, the base URL is where the site is served: the credential's issuer names this port.
        issuer = httpx.get(f"http://127.0.0.1:{port}/issuer", timeout=5).json()
        assert issuer["id"] == f"http://127.0.0.1:{port}/issuer"
    finally:
        server.terminate()
        _, log = server.communicate(timeout=10)
    # --no-scheduler means no scheduler in this process (the log shows APScheduler's start).
    assert "Uvicorn running" in log
    assert "apscheduler" not in log


def test_evidence_add_uploads_with_the_web_checks(env, tmp_path):
    run("db", "upgrade", env=env)
    assert run_cheaply("demo", env=env).returncode == 0
    good = tmp_path / "commitment.txt"
    good.write_text("We commit to our pledges.\n")
    applicant = "applicant@northgate.demo.svqm.test"
    # The demo's Northgate draft is its third application (after Riverside's and Harbour's).
    listed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from sqlmodel import Session, select; from svqm.db import make_engine; "
            "from svqm.workflow.models import Application; import os; "
            "e = make_engine(os.environ['SVQM_DATABASE_URL']); "
            "print(Session(e).exec(select(Application.id).where(Application.state == 'draft'))"
            ".first())",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    app_id = listed.stdout.strip()
    ok = run(
        "evidence",
        "add",
        app_id,
        str(good),
        "--requirement",
        "executive_commitment",
        "--as",
        applicant,
        env=env,
    )
    assert ok.returncode == 0, ok.stderr
    assert "stored for executive_commitment (version 1, text/plain" in ok.stdout
    again = run(
        "evidence",
        "add",
        app_id,
        str(good),
        "--requirement",
        "executive_commitment",
        "--as",
        applicant,
        env=env,
    )
    assert "(version 2," in again.stdout
    exe = tmp_path / "report.pdf"
    exe.write_bytes(b"MZ\x90\x00" + b"\0" * 200)
    for args, message in [
        (
            [str(exe), "--requirement", "executive_commitment", "--as", applicant],
            "not an allowed type",
        ),
        ([str(good), "--requirement", "nope", "--as", applicant], "not an evidence requirement"),
        (
            [str(good), "--requirement", "executive_commitment", "--as", "nobody@x.test"],
            "no active user",
        ),
        (
            [
                str(tmp_path / "missing.txt"),
                "--requirement",
                "executive_commitment",
                "--as",
                applicant,
            ],
            "no such file",
        ),
    ]:
        bad = run("evidence", "add", app_id, *args, env=env)
        assert bad.returncode == 1, bad.stdout
        assert message in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
        assert "Traceback" not in bad.stderr


def test_a_smtp_timeout_as_long_as_the_lease_is_refused_by_name(env):
    # With such settings a dispatcher would never find room for a send and mail would stay unsent.
    bad = {**env, "SVQM_SMTP_HOST": "127.0.0.1", "SVQM_SMTP_TIMEOUT_SECONDS": "10"}
    bad["SVQM_OUTBOX_LEASE_SECONDS"] = "5"
    result = run("sweep", env=bad)
    assert result.returncode == 1
    assert "SVQM_SMTP_TIMEOUT_SECONDS (10) must be shorter than SVQM_OUTBOX_LEASE_SECONDS (5)" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_demo_audit_starts_today_refuses_what_it_cannot_move_and_moves_a_confirmed_audit(env):
    """`svqm demo --audit-starts-today ID`: one line and exit 1 on a database the demo did not
    seed, an unknown application and one with no confirmed audit; else the audit starts today."""
    from sqlmodel import Session, select

    from svqm.accounts import service as accounts
    from svqm.db import make_engine
    from svqm.demo import DEMO_ADMIN
    from svqm.workflow import audits
    from svqm.workflow.models import Application
    from svqm.workflow.schemes import load_registry
    from svqm.workflow.service import Actor

    assert run("db", "upgrade", env=env).returncode == 0
    plain = run("demo", "--audit-starts-today", "1", env=env)
    assert plain.returncode == 1
    assert plain.stderr.strip().splitlines() == [
        "error: this is not a demo database (`svqm demo` did not seed it): audits are brought "
        "forward only in a demo"
    ]
    assert run_cheaply("demo", env=env).returncode == 0
    unknown = run("demo", "--audit-starts-today", "99999", env=env)
    assert (unknown.returncode, unknown.stderr.strip()) == (1, "error: no application 99999")

    engine = make_engine(env["SVQM_DATABASE_URL"])
    with Session(engine) as s:
        # Harbour House's Silver: dates proposed, none confirmed.
        proposal = next(
            p for p in s.exec(select(audits.AuditProposal)) if p.status == audits.PROPOSED
        )
        app_id = proposal.application_id
    unconfirmed = run("demo", "--audit-starts-today", str(app_id), env=env)
    assert unconfirmed.returncode == 1
    assert unconfirmed.stderr.strip() == (
        f"error: application {app_id} has no confirmed audit start date"
    )
    with Session(engine) as s:
        app = s.get(Application, app_id)
        admin = accounts.get_user_by_email(s, DEMO_ADMIN)
        assert app is not None
        assert admin is not None
        audits.confirm(
            s,
            app,
            proposal.days[0],
            actor=Actor.of(admin),
            registry=load_registry(REPO / "policies"),
            now=datetime.now(UTC),
        )
        s.commit()
    moved = run("demo", "--audit-starts-today", str(app_id), env=env)
    assert moved.returncode == 0, moved.stderr
    assert f"application {app_id}: the audit now starts today" in moved.stdout
    again = run("demo", "--audit-starts-today", str(app_id), env=env)
    assert again.returncode == 1
    assert "started on" in again.stderr
    assert run("audit", "verify", env=env).returncode == 0
    engine.dispose()


def test_a_bad_or_missing_option_is_clicks_usage_message_not_a_traceback(env):
    """Typer's own copy of click raises usage errors that are not click's classes: each is shown
    as the usage and one error line, exit 2, never a traceback."""
    for args, message in [
        (("demo", "--audit-starts-today", "N"), "Invalid value for '--audit-starts-today'"),
        (("simulate", "--organisations", "x", "--years", "1"), "Invalid value"),
        (("user", "add", "--role", "panel"), "Missing argument"),
        (("no-such-command",), "No such command"),
    ]:
        bad = run(*args, env=env)
        assert (bad.returncode, "Traceback" in bad.stderr) == (2, False), bad.stderr[-800:]
        assert message in bad.stderr
        assert bad.stderr.startswith("Usage: svqm")
