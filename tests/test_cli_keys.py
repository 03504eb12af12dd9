"""`svqm keys list|rotate [--scheme S]`: rotating a partnership's key keeps the old one listed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from svqm.credentials.keys import KeyRing
from tests.test_cli import run


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "SVQM_VAR_DIR": str(tmp_path / "var"), "COLUMNS": "220"}


def test_rotate_a_schemes_issuer_key_and_list_every_key(env, tmp_path):
    listed = run("keys", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    ring = KeyRing(tmp_path / "var" / "keys" / "issuers" / "northshore-partnership.pem")
    before = ring.current.kid
    assert before in listed.stdout
    assert "northshore-anchor-charter" in listed.stdout
    rotated = run("keys", "rotate", "--scheme", "northshore-anchor-charter", env=env)
    assert rotated.returncode == 0, rotated.stderr
    after = ring.current.kid
    assert after != before
    assert f"new credentials are signed with {after}" in rotated.stdout
    assert [k.kid for k in ring.public_keys()] == [after, before]
    listed = run("keys", "list", env=env)
    assert before in listed.stdout
    assert after in listed.stdout
    # The service's own key is another file, untouched by the partnership's rotation.
    service = KeyRing(tmp_path / "var" / "keys" / "issuer.pem").current.kid
    assert run("keys", "rotate", env=env).returncode == 0
    assert KeyRing(tmp_path / "var" / "keys" / "issuer.pem").current.kid != service
    assert ring.current.kid == after


def test_rotating_an_unknown_scheme_is_one_clear_line(env):
    done = run("keys", "rotate", "--scheme", "nope", env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("error: no scheme 'nope' (schemes: ")
    assert "Traceback" not in done.stderr
