"""Passwords are stored with argon2id at or above the ASVS Appendix C minimums (SECURITY.md A1),
and a hash made with other parameters is made again at the next sign-in.

The rest of the suite hashes cheaply (tests/conftest.py); these tests put the service's own hasher
back and read the parameters off the stored hash."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher, Type
from sqlalchemy import text

from svqm.accounts import auth
from svqm.accounts import service as accounts
from svqm.config import Settings
from svqm.db import make_engine
from svqm.errors import NotSignedIn
from tests import svqm_for_tests
from tests.conftest import PRODUCTION_HASHER, REPO

PASSWORD = "a long enough password 2026"
_PARAMS = re.compile(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$")
# ASVS Appendix C: (t, minimum memory in KiB) with p=1; more time allows less memory.
_FLOORS = ((1, 46 * 1024), (2, 19 * 1024), (3, 12 * 1024))


def _parameters(password_hash: str) -> tuple[int, int, int]:
    found = _PARAMS.match(password_hash)
    assert found, f"not an argon2id hash: {password_hash[:30]}"
    m, t, p = (int(g) for g in found.groups())
    return m, t, p


@pytest.fixture
def service_hasher(monkeypatch: pytest.MonkeyPatch) -> PasswordHasher:
    monkeypatch.setattr(accounts, "_hasher", PRODUCTION_HASHER)
    return PRODUCTION_HASHER


def test_a_stored_password_is_argon2id_above_the_asvs_floor(session, service_hasher):
    user = accounts.add_user(session, email="staff@example.test", role="admin", password=PASSWORD)
    m, t, p = _parameters(user.password_hash)
    assert p >= 1
    assert any(t >= floor_t and m >= floor_m for floor_t, floor_m in _FLOORS), (m, t)
    assert (m, t) == (65536, 3)  # argon2-cffi's defaults, as service.py says


def test_a_weaker_hash_is_made_again_at_sign_in(session, now, service_hasher):
    user = accounts.add_user(session, email="old@example.test", role="admin", password=PASSWORD)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    user.password_hash = weak
    session.add(user)
    session.flush()

    signed_in = auth.authenticate(
        session, email="old@example.test", password=PASSWORD, now=now, settings=Settings()
    )

    assert signed_in.id == user.id
    assert signed_in.password_hash != weak
    assert _parameters(signed_in.password_hash)[:2] == (65536, 3)
    assert accounts.verify_password(signed_in, PASSWORD)


def test_a_wrong_password_leaves_the_hash_alone(session, now, service_hasher):
    user = accounts.add_user(session, email="kept@example.test", role="admin", password=PASSWORD)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    user.password_hash = weak
    session.add(user)
    session.flush()

    with pytest.raises(NotSignedIn):
        auth.authenticate(
            session,
            email="kept@example.test",
            password="not it at all 2026",
            now=now,
            settings=Settings(),
        )

    assert user.password_hash == weak


# --- the cost has no switch in svqm; the tests' cheap hashing is theirs -------------------------

SVQM_PACKAGE = REPO / "svqm"


def _modules() -> dict[Path, ast.Module]:
    return {p: ast.parse(p.read_text(), str(p)) for p in sorted(SVQM_PACKAGE.rglob("*.py"))}


def test_the_service_hashes_with_argon2_cffis_defaults_and_nothing_sets_them():
    """`PasswordHasher()`, made once in svqm/accounts/service.py: no setting, environment
    variable or other module of svqm chooses its cost, so no deployment can lower it by
    mistake (the tests lower it only in their own entry point, tests/svqm_for_tests.py)."""
    hasher = PRODUCTION_HASHER
    assert (hasher.type, hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (
        Type.ID,
        3,
        65536,
        4,
    )
    service = SVQM_PACKAGE / "accounts" / "service.py"
    made, importing, storing, naming_tests = [], [], [], []
    for path, tree in _modules().items():
        where = path.relative_to(REPO).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "argon2":
                importing.append((where, node.module, sorted(a.name for a in node.names)))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in ("argon2", "tests"):
                        importing.append((where, alias.name, []))
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "tests":
                naming_tests.append(where)
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "PasswordHasher":
                made.append((where, ast.unparse(node)))
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets = [node.target]
            for target in targets:
                name = getattr(target, "id", None) or getattr(target, "attr", None)
                if name == "_hasher":
                    storing.append((where, ast.unparse(node)))
        if "svqm_for_tests" in path.read_text():
            naming_tests.append(where)
    here = service.relative_to(REPO).as_posix()
    assert made == [(here, "PasswordHasher()")]
    assert storing == [(here, "_hasher = PasswordHasher()")]
    assert importing == [
        (here, "argon2", ["PasswordHasher"]),
        (here, "argon2.exceptions", ["InvalidHashError", "VerificationError"]),
    ]
    assert naming_tests == []


def test_a_fresh_svqm_in_a_test_servers_environment_hashes_at_the_service_cost(tmp_path):
    """The environment the browser tests' servers run with (SVQM_ENV=test and the rest) does
    not lower the cost: only their entry point does."""
    env = {
        **os.environ,
        "SVQM_ENV": "test",
        "SVQM_DATABASE_URL": f"sqlite:///{tmp_path / 'svqm.db'}",
        "PYTHONPATH": str(REPO),
    }
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "from svqm.accounts import service; h = service._hasher; "
            "print(h.type.name, h.time_cost, h.memory_cost, h.parallelism)",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["ID", "3", "65536", "4"]


def test_the_tests_entry_point_runs_the_cli_with_cheap_hashing(sqlite_template, tmp_path):
    database = tmp_path / "svqm.db"
    shutil.copy(sqlite_template, database)
    env = svqm_for_tests.environment(
        {
            **{k: v for k, v in os.environ.items() if not k.startswith("SVQM_")},
            "SVQM_DATABASE_URL": f"sqlite:///{database}",
            "SVQM_VAR_DIR": str(tmp_path / "var"),
        }
    )
    added = subprocess.run(
        [*svqm_for_tests.COMMAND, "user", "add", "cheap@example.test", "--role", "admin"]
        + ["--password-stdin"],
        env=env,
        cwd=tmp_path,
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                text("SELECT password_hash FROM user_account WHERE email = 'cheap@example.test'")
            ).scalar_one()
    finally:
        engine.dispose()
    cheap = svqm_for_tests.CHEAP_HASHER
    assert _parameters(stored) == (cheap.memory_cost, cheap.time_cost, cheap.parallelism)
    assert cheap.verify(stored, PASSWORD)

    # Several workers would be fresh interpreters, hashing at the service's cost: refused.
    refused = subprocess.run(
        [*svqm_for_tests.COMMAND, "serve", "--workers", "2", "--no-scheduler"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1
    assert "--workers" in refused.stderr
