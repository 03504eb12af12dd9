"""Rotating an issuer's key: the new key signs, the old one's public half stays published, and a
key ring sees the change without a restart."""

from __future__ import annotations

import stat

from svqm.credentials import keys
from svqm.credentials.issuers import build_issuers, key_file
from svqm.credentials.signing import sign, verify
from svqm.policy import load_policies
from svqm.workflow.schemes import known_effects, known_guards
from tests.conftest import POLICIES


def test_rotation_keeps_the_old_public_key_and_makes_a_new_private_one(tmp_path):
    path = tmp_path / "keys" / "issuer.pem"
    ring = keys.KeyRing(path)
    first = ring.current
    token = sign({"hello": "world"}, first)
    old, new = keys.rotate(path)
    assert old == first.kid
    assert new != old
    assert ring.current.kid == new, "the ring reads the rotated file"
    assert [k.kid for k in ring.public_keys()] == [new, old]
    assert verify(token, ring.find(old)) == {"hello": "world"}
    kept = keys.retired_dir(path) / f"{old}.pub.pem"
    assert b"PUBLIC KEY" in kept.read_bytes()
    assert b"PRIVATE" not in kept.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Twice more: every earlier key is still there, none twice.
    _, third = keys.rotate(path)
    assert [k.kid for k in ring.public_keys()][0] == third
    assert len({k.kid for k in ring.public_keys()}) == 3
    assert ring.find("no-such-kid") is None
    assert not list(path.parent.glob(".*.tmp")), "no temporary file is left"


def test_each_partnership_issuer_has_its_own_key_file_and_the_jwks_lists_all(tmp_path):
    policies = load_policies(POLICIES, known_guards=known_guards(), known_effects=known_effects())
    service_key = tmp_path / "keys" / "issuer.pem"
    issuers = build_issuers(
        service_key=service_key,
        base_url="https://x.test",
        name="Service",
        policies=policies.values(),
    )
    partnership = issuers.for_scheme("northshore-anchor-charter")
    assert partnership.slug == "northshore-partnership"
    assert partnership.keys.path == key_file(service_key, "northshore-partnership")
    assert issuers.for_scheme("svqm") is issuers.default
    assert issuers.schemes_of(partnership) == {"northshore-anchor-charter"}
    assert issuers.schemes_of(issuers.default) is None
    assert partnership.key.kid != issuers.default.key.kid
    old, _ = keys.rotate(partnership.keys.path)
    kids = [k["kid"] for k in issuers.jwks()["keys"]]
    assert kids == [issuers.default.key.kid, partnership.key.kid, old]
    owner = issuers.key_owner(old)
    assert owner is not None
    assert owner[0] is partnership
    assert issuers.by_id("https://x.test/issuers/northshore-partnership") is partnership
