"""The issuer key file and the Bitstring Status List encoding, without a database."""

from __future__ import annotations

import base64
import gzip
import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from svqm.credentials import status
from svqm.credentials.keys import KeyFileError, load_or_create


def test_the_key_is_made_once_private_and_kept(tmp_path):
    path = tmp_path / "keys" / "issuer.pem"
    first = load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = load_or_create(path)
    assert again.kid == first.kid
    assert again.jwk() == first.jwk()
    assert first.jwk()["kty"] == "OKP"
    assert first.jwk()["crv"] == "Ed25519"
    assert "d" not in first.jwk(), "the published JWK must not carry the private part"
    assert [p.name for p in path.parent.iterdir()] == ["issuer.pem"], "no temporary file is left"


def _kid(path: str) -> str:
    return load_or_create(Path(path)).kid


def test_processes_starting_together_agree_on_one_key(tmp_path):
    path = str(tmp_path / "issuer.pem")
    with ProcessPoolExecutor(4) as pool:
        kids = list(pool.map(_kid, [path] * 8))
    assert len(set(kids)) == 1
    assert load_or_create(Path(path)).kid == kids[0]


def test_a_broken_key_file_names_the_file_and_the_reason(tmp_path):
    path = tmp_path / "issuer.pem"
    path.write_text("not a key")
    with pytest.raises(KeyFileError, match=r"issuer\.pem: not a PEM private key"):
        load_or_create(path)
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(other)
    with pytest.raises(KeyFileError, match="must be Ed25519; this file holds another kind"):
        load_or_create(path)
    assert path.read_bytes() == other, "a bad key file is reported, never replaced"


@given(st.sets(st.integers(min_value=0, max_value=300_000), max_size=50))
def test_a_status_list_sets_exactly_the_given_bits(flagged):
    bits = status.decode(status.encode(flagged))
    assert len(bits) * 8 >= max(status.MIN_BITS, max(flagged, default=0) + 1)
    assert len(bits) * 8 % 8 == 0
    for i in flagged:
        assert status.is_set(bits, i)
    # Every other set bit would show up in the count.
    assert sum(bin(b).count("1") for b in bits) == len(flagged)


def test_the_first_index_is_the_left_most_bit():
    bits = status.decode(status.encode([0, 9]))
    assert bits[0] == 0b1000_0000
    assert bits[1] == 0b0100_0000
    assert len(bits) == status.MIN_BITS // 8


def test_an_index_outside_the_list_is_an_error_not_unset():
    bits = status.decode(status.encode([]))
    with pytest.raises(status.StatusListError, match="outside the list"):
        status.is_set(bits, status.MIN_BITS)


def test_a_compressed_bomb_is_refused_not_inflated():
    bomb = gzip.compress(b"\0" * (status.MAX_LIST_BYTES + 1), mtime=0)
    encoded = "u" + base64.urlsafe_b64encode(bomb).rstrip(b"=").decode()
    with pytest.raises(status.StatusListError, match="larger than"):
        status.decode(encoded)
    with pytest.raises(status.StatusListError, match="not gzipped"):
        status.decode("u" + base64.urlsafe_b64encode(b"plain").decode())
