"""Who signs each scheme's credentials: the service's own issuer, or a partnership's own (the
policy's `issuer`), each with its key ring; and which issuer owns a key a token names.

Key files: the service's key is SVQM_ISSUER_KEY_FILE (default VAR_DIR/keys/issuer.pem); an issuer
named `<slug>` by a policy keeps its key in `issuers/<slug>.pem` in the same directory. Retired
keys' public halves sit beside each (`<name>.retired/`), so old credentials keep verifying.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svqm.credentials.badge import Issuer
from svqm.credentials.keys import KeyRing, PublicKey
from svqm.errors import NotFound
from svqm.policy import Policy


def key_file(service_key: Path, slug: str = "") -> Path:
    """The signing key file of an issuer (the service's own when `slug` is empty)."""
    return service_key if not slug else service_key.parent / "issuers" / f"{slug}.pem"


@dataclass
class Issuers:
    """The service's issuer and every partnership issuer the current policies name."""

    default: Issuer
    named: dict[str, Issuer] = field(default_factory=dict)
    # scheme id -> issuer slug, for schemes with their own issuer.
    by_scheme: dict[str, str] = field(default_factory=dict)

    def for_scheme(self, scheme_id: str) -> Issuer:
        """Who signs the credentials of this scheme's awards."""
        slug = self.by_scheme.get(scheme_id)
        return self.named[slug] if slug else self.default

    def get(self, slug: str) -> Issuer:
        """A partnership issuer by its slug."""
        try:
            return self.named[slug]
        except KeyError:
            raise NotFound(f"no issuer '{slug}'") from None

    def all(self) -> list[Issuer]:
        return [self.default, *(self.named[s] for s in sorted(self.named))]

    def schemes_of(self, issuer: Issuer) -> set[str] | None:
        """The schemes a partnership issuer signs for; None for the service's own (it signs the
        rest, and its status lists cover every award, as they did before issuers per scheme)."""
        if not issuer.slug:
            return None
        return {sid for sid, slug in self.by_scheme.items() if slug == issuer.slug}

    def by_id(self, profile_id: str) -> Issuer | None:
        """The issuer whose profile id this is."""
        return next((i for i in self.all() if i.id == profile_id), None)

    def key_owner(self, kid: str) -> tuple[Issuer, PublicKey] | None:
        """The issuer holding a key (current or retired) with this kid, and the key."""
        for issuer in self.all():
            key = issuer.keys.find(kid)
            if key is not None:
                return issuer, key
        return None

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Every issuer's keys, current and retired, as one JWK Set."""
        seen: set[str] = set()
        keys = []
        for issuer in self.all():
            for key in issuer.keys.public_keys():
                if key.kid not in seen:
                    seen.add(key.kid)
                    keys.append(key.jwk())
        return {"keys": keys}

    def describe(self) -> list[dict[str, Any]]:
        """Each issuer with its key file and keys, for the command line."""
        rows = []
        for issuer in self.all():
            keys = issuer.keys.public_keys()
            rows.append(
                {
                    "issuer": issuer.slug or "(service)",
                    "name": issuer.name,
                    "schemes": sorted(self.schemes_of(issuer) or []),
                    "file": str(issuer.keys.path),
                    "current": keys[0].kid,
                    "retired": [k.kid for k in keys[1:]],
                }
            )
        return rows


def build_issuers(
    *, service_key: Path, base_url: str, name: str, policies: Iterable[Policy]
) -> Issuers:
    """The issuers of these policies; the service's own signs every scheme that names none."""
    default = Issuer(KeyRing(service_key), base_url, name)
    named: dict[str, Issuer] = {}
    by_scheme: dict[str, str] = {}
    for policy in policies:
        spec = policy.issuer
        if spec is None:
            continue
        by_scheme[policy.id] = spec.id
        if spec.id not in named:
            named[spec.id] = Issuer(
                KeyRing(key_file(service_key, spec.id)),
                base_url,
                spec.name,
                slug=spec.id,
                homepage=spec.url,
                description=spec.description,
                logo=spec.logo_bytes,
                logo_type=spec.logo_type,
            )
    return Issuers(default, named, by_scheme)
