"""An issuer's Ed25519 signing keys: made on first run and kept in files, never in the database.

The current key signs; `rotate` replaces it with a new one and keeps the old one's public half
beside it (`<name>.retired/<kid>.pub.pem`), so the JWKS still lists it and every credential it
signed still verifies. Losing the files breaks those credentials (verifiers find no key with their
`kid`), so each key is created once, atomically, and readable by its owner only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from svqm.errors import SvqmError


class KeyFileError(SvqmError):
    """The key file exists but is not an Ed25519 private key."""

    code = "key_file"


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class PublicKey:
    """A verifying key: the current key's public half, or a retired key's."""

    public: Ed25519PublicKey

    @property
    def x(self) -> str:
        raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return b64url(raw)

    @property
    def kid(self) -> str:
        """The RFC 7638 thumbprint of the public key: stable, and names the key in JWT headers."""
        canonical = json.dumps(
            {"crv": "Ed25519", "kty": "OKP", "x": self.x}, separators=(",", ":"), sort_keys=True
        )
        return b64url(hashlib.sha256(canonical.encode()).digest())

    def jwk(self) -> dict[str, str]:
        """The public key as a JWK, as published in /.well-known/jwks.json."""
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": self.x,
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        }


@dataclass(frozen=True)
class IssuerKey(PublicKey):
    """The signing key, with its public half."""

    private: Ed25519PrivateKey

    @classmethod
    def of(cls, private: Ed25519PrivateKey) -> IssuerKey:
        return cls(public=private.public_key(), private=private)


def _new_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _staged(path: Path, data: bytes) -> Path:
    """`data` written whole to a private temporary file beside `path`."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def load_or_create(path: Path) -> IssuerKey:
    """The key in `path`; made (mode 0600) if the file does not exist yet."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written whole to a private temporary file, then linked into place: link() fails if
        # the name exists, so of two processes starting together one key wins and no reader
        # ever sees half a file.
        tmp = _staged(path, _new_pem())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            tmp.unlink()
    return _read(path)


def _read(path: Path) -> IssuerKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not a PEM private key without a password ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: the issuer key must be Ed25519; this file holds another kind")
    return IssuerKey.of(key)


def _read_public(path: Path) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path}: a retired issuer key must be Ed25519")
    return PublicKey(key)


def retired_dir(path: Path) -> Path:
    """Where the public halves of the keys `path` held before are kept."""
    return path.with_name(f"{path.stem}.retired")


def rotate(path: Path) -> tuple[str, str]:
    """Replace the key in `path` with a new one; the old one's public half is kept first (so no
    moment passes without it published). Returns the old and the new kid."""
    path = Path(path)
    old = load_or_create(path)
    kept = retired_dir(path)
    kept.mkdir(parents=True, exist_ok=True, mode=0o700)
    public = old.public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    target = kept / f"{old.kid}.pub.pem"
    os.replace(_staged(target, public), target)
    # The new private key replaces the old in one rename: a reader sees one or the other whole.
    os.replace(_staged(path, _new_pem()), path)
    return old.kid, _read(path).kid


class KeyRing:
    """One issuer's keys as the files hold them: read again whenever the files change, so a
    rotation by the command line is seen by a running server at its next request."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, ...] | None = None
        self._current: IssuerKey | None = None
        self._retired: tuple[PublicKey, ...] = ()

    def _stamp_now(self) -> tuple[int, ...]:
        def mark(p: Path) -> tuple[int, int]:
            try:
                st = p.stat()
            except FileNotFoundError:
                return 0, 0
            return st.st_ino, st.st_mtime_ns

        return *mark(self.path), *mark(retired_dir(self.path))

    def _fresh(self) -> tuple[IssuerKey, tuple[PublicKey, ...]]:
        with self._lock:
            stamp = self._stamp_now()
            if self._current is None or stamp != self._stamp:
                self._current = load_or_create(self.path)
                kept = retired_dir(self.path)
                files = sorted(kept.glob("*.pub.pem")) if kept.is_dir() else []
                self._retired = tuple(
                    k for k in (_read_public(f) for f in files) if k.kid != self._current.kid
                )
                # Stamped as before reading: a change while reading is read at the next call.
                self._stamp = stamp
            return self._current, self._retired

    @property
    def current(self) -> IssuerKey:
        """The key new credentials are signed with."""
        return self._fresh()[0]

    def public_keys(self) -> list[PublicKey]:
        """Every key a credential of this issuer may carry: the current one first."""
        current, retired = self._fresh()
        return [current, *retired]

    def find(self, kid: str) -> PublicKey | None:
        """The key with this kid, current or retired."""
        return next((k for k in self.public_keys() if k.kid == kid), None)
