"""Compact JWS (VC-JWT) with EdDSA over Ed25519, through PyJWT.

The header names the key (`kid`) and the media type of a secured credential (`typ: vc+jwt`,
`cty: vc`), as W3C VC-JOSE-COSE describes; the payload is the credential itself.
"""

from __future__ import annotations

import json
from typing import Any

import jwt

from svqm.credentials.keys import IssuerKey, PublicKey

MEDIA_TYPE = "application/vc+jwt"
ALGORITHM = "EdDSA"


class SignatureInvalid(ValueError):
    """The token is malformed, signed by another key, or altered since it was signed."""


def sign(claims: dict[str, Any], key: IssuerKey) -> str:
    """The compact serialisation of `claims` signed with the issuer key."""
    return jwt.encode(
        claims,
        key.private,
        algorithm=ALGORITHM,
        headers={"kid": key.kid, "typ": "vc+jwt", "cty": "vc"},
    )


def header_of(token: str) -> dict[str, Any]:
    """The unverified header (to say which key a token claims); malformed tokens are refused."""
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise SignatureInvalid(f"not a compact JWS: {exc}") from None


def verify(token: str, key: PublicKey) -> dict[str, Any]:
    """The payload, if the signature is this key's; dates are the caller's to check."""
    header = header_of(token)
    if header.get("alg") != ALGORITHM:
        raise SignatureInvalid(f"algorithm {header.get('alg')!r} is not {ALGORITHM}")
    if header.get("kid") != key.kid:
        raise SignatureInvalid("signed with a key this issuer does not publish")
    try:
        raw = jwt.PyJWS().decode_complete(token, key.public, algorithms=[ALGORITHM])["payload"]
        payload = json.loads(raw)
    except (jwt.PyJWTError, ValueError) as exc:
        raise SignatureInvalid(f"the signature does not verify: {exc}") from None
    if not isinstance(payload, dict):
        raise SignatureInvalid("the payload is not a JSON object")
    return payload
