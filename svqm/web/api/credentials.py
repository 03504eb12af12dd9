"""Signed credentials: an award's Open Badges 3.0 VC-JWT, the issuer's keys, profile, status lists.

All public, as a certificate is: a verifier needs no account. Suspended and withdrawn awards still
have their credential served; the status lists are what say it no longer holds.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import Response

from svqm.credentials import service as credentials
from svqm.credentials.signing import MEDIA_TYPE
from svqm.web.deps import Id, IssuerDep, NowDep, RegistryDep, SessionDep
from svqm.workflow import awards as award_queries

router = APIRouter(tags=["credentials"])


class VcJwtResponse(Response):
    media_type = MEDIA_TYPE


_VC_JWT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A compact JWS (VC-JWT) signed with EdDSA; check it against "
        "/.well-known/jwks.json",
        "content": {MEDIA_TYPE: {"schema": {"type": "string"}}},
    }
}


@router.get("/api/v1/awards/{award_id}/credential", response_class=VcJwtResponse, responses=_VC_JWT)
def award_credential(
    award_id: Id, session: SessionDep, registry: RegistryDep, issuer: IssuerDep
) -> VcJwtResponse:
    """The award's OpenBadgeCredential, signed as a VC-JWT."""
    award = award_queries.get_award(session, award_id)
    return VcJwtResponse(credentials.credential_of(session, registry, issuer, award))


@router.get("/.well-known/jwks.json")
def jwks(issuer: IssuerDep) -> dict[str, list[dict[str, str]]]:
    """The issuer's public signing keys (JWK Set, RFC 7517)."""
    return {"keys": [issuer.key.jwk()]}


@router.get("/issuer")
def issuer_profile(issuer: IssuerDep) -> dict[str, Any]:
    """The issuer's Open Badges Profile, which every credential names as its issuer."""
    return issuer.profile()


@router.get("/credentials/status/{purpose}", response_class=VcJwtResponse, responses=_VC_JWT)
def status_list(
    purpose: Literal["revocation", "suspension"],
    session: SessionDep,
    registry: RegistryDep,
    issuer: IssuerDep,
    now: NowDep,
) -> VcJwtResponse:
    """The signed Bitstring Status List of `revocation` or `suspension`, as of now."""
    return VcJwtResponse(credentials.status_list_of(session, registry, issuer, purpose, now))
