"""Signed credentials: an award's Open Badges 3.0 VC-JWT, the issuers' keys, profiles, status lists.

All public, as a certificate is: a verifier needs no account. Suspended and withdrawn awards still
have their credential served; the status lists are what say it no longer holds. The service signs
as /issuer; a partnership running its own scheme signs as /issuers/{issuer_id}, with its own key,
logo and status lists. The JWKS lists every issuer's keys, current and retired.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import Response

from svqm.credentials import service as credentials
from svqm.credentials.signing import MEDIA_TYPE
from svqm.errors import NotFound
from svqm.web.deps import Id, IssuersDep, NowDep, RegistryDep, SessionDep
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
    award_id: Id, session: SessionDep, registry: RegistryDep, issuers: IssuersDep
) -> VcJwtResponse:
    """The award's OpenBadgeCredential, signed as a VC-JWT by its scheme's issuer."""
    award = award_queries.get_award(session, award_id)
    return VcJwtResponse(credentials.credential_of(session, registry, issuers, award))


@router.get("/.well-known/jwks.json")
def jwks(issuers: IssuersDep) -> dict[str, list[dict[str, str]]]:
    """Every issuer's public signing keys, current and retired (JWK Set, RFC 7517)."""
    return issuers.jwks()


@router.get("/issuer")
def issuer_profile(issuers: IssuersDep) -> dict[str, Any]:
    """The service's Open Badges Profile, the issuer of every scheme that names no other."""
    return issuers.default.profile()


Purpose = Literal["revocation", "suspension"]


@router.get("/credentials/status/{purpose}", response_class=VcJwtResponse, responses=_VC_JWT)
def status_list(
    purpose: Purpose,
    session: SessionDep,
    registry: RegistryDep,
    issuers: IssuersDep,
    now: NowDep,
) -> VcJwtResponse:
    """The service's signed Bitstring Status List of `revocation` or `suspension`, as of now."""
    issuer = issuers.default
    return VcJwtResponse(
        credentials.status_list_of(session, registry, issuers, issuer, purpose, now)
    )


@router.get("/issuers/{issuer_id}")
def partnership_profile(issuer_id: str, issuers: IssuersDep) -> dict[str, Any]:
    """A partnership issuer's Open Badges Profile (its name, website and logo)."""
    return issuers.get(issuer_id).profile()


@router.get("/issuers/{issuer_id}/logo", responses={200: {"content": {"image/svg+xml": {}}}})
def partnership_logo(issuer_id: str, issuers: IssuersDep) -> Response:
    """A partnership issuer's logo (PNG or SVG, from its policy), as its profile names it."""
    issuer = issuers.get(issuer_id)
    if not issuer.logo:
        raise NotFound(f"issuer '{issuer_id}' has no logo")
    headers = {
        "Cache-Control": "public, max-age=3600",
        # Opened at its own address, an SVG may load nothing and run nothing.
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    }
    return Response(issuer.logo, media_type=issuer.logo_type, headers=headers)


@router.get(
    "/issuers/{issuer_id}/status/{purpose}", response_class=VcJwtResponse, responses=_VC_JWT
)
def partnership_status_list(
    issuer_id: str,
    purpose: Purpose,
    session: SessionDep,
    registry: RegistryDep,
    issuers: IssuersDep,
    now: NowDep,
) -> VcJwtResponse:
    """A partnership issuer's signed status list, over the awards of its own schemes."""
    issuer = issuers.get(issuer_id)
    return VcJwtResponse(
        credentials.status_list_of(session, registry, issuers, issuer, purpose, now)
    )
