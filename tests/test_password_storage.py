"""Passwords are stored with argon2id at or above the ASVS Appendix C minimums (SECURITY.md A1),
and a hash made with other parameters is made again at the next sign-in.

The rest of the suite hashes cheaply (tests/conftest.py); these tests put the service's own hasher
back and read the parameters off the stored hash."""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher

from svqm.accounts import auth
from svqm.accounts import service as accounts
from svqm.config import Settings
from svqm.errors import NotSignedIn
from tests.conftest import PRODUCTION_HASHER

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
