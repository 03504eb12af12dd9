"""The documents: the issuer's profile, an award's OpenBadgeCredential, a status list credential.

Open Badges 3.0 on the W3C VC data model 2.0: the achievement is a `Certification` naming the
scheme and level, with a `RubricCriterionLevel` result description listing the scheme's levels
and a `result` saying which was achieved. JWT registered claims (iss, sub, jti, nbf, exp) repeat
the credential's own fields so that a generic JWT library checks the dates too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from svqm.credentials.keys import IssuerKey, KeyRing
from svqm.credentials.status import PURPOSES
from svqm.policy import Policy

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"


def iso(at: datetime) -> str:
    """A UTC instant as the data model writes it: seconds, with a Z."""
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Issuer:
    """Who signs: the keys, the public address the documents point into, and the body's name.

    The service's own issuer has no `slug` (its profile is /issuer); a partnership running its
    own scheme (the policy's `issuer`) has one, and its profile, logo and status lists are under
    /issuers/<slug>."""

    keys: KeyRing
    base_url: str
    name: str
    slug: str = ""
    homepage: str = ""
    description: str = ""
    logo: bytes = b""
    logo_type: str = ""

    @property
    def key(self) -> IssuerKey:
        """The key new credentials are signed with."""
        return self.keys.current

    @property
    def path(self) -> str:
        return f"/issuers/{self.slug}" if self.slug else "/issuer"

    @property
    def id(self) -> str:
        return self.url(self.path)

    @property
    def logo_url(self) -> str:
        return self.url(f"{self.path}/logo") if self.logo else ""

    def url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}{path}"

    def profile(self, *, embedded: bool = False) -> dict[str, Any]:
        """The OB 3.0 issuer Profile; inside a credential it takes the credential's context."""
        context = {} if embedded else {"@context": [VC_CONTEXT, OB_CONTEXT]}
        extra: dict[str, Any] = {}
        if self.description:
            extra["description"] = self.description
        if self.logo:
            extra["image"] = {"id": self.logo_url, "type": "Image", "caption": f"{self.name} logo"}
        return (
            context
            | {
                "id": self.id,
                "type": ["Profile"],
                "name": self.name,
                "url": self.homepage or self.url("/"),
            }
            | extra
        )

    def status_list_url(self, purpose: str) -> str:
        if self.slug:
            return self.url(f"{self.path}/status/{purpose}")
        return self.url(f"/credentials/status/{purpose}")

    def credential_url(self, award_id: int) -> str:
        return self.url(f"/api/v1/awards/{award_id}/credential")


@dataclass(frozen=True)
class AwardFacts:
    """What the credential states about one award (read from its record by the service)."""

    award_id: int
    organisation_id: int
    organisation_name: str
    scheme: str
    scheme_version: str
    level: str
    certificate_number: str
    issued_at: datetime
    expires_at: datetime
    # The award's public pledges: (id, title, theme's name, target with its unit, due date).
    pledges: tuple[tuple[int, str, str, str, str], ...] = ()


def _evidence(issuer: Issuer, facts: AwardFacts) -> list[dict[str, Any]]:
    """Each public pledge as an Open Badges Evidence entry, linked to the organisation's page."""
    page = issuer.url(f"/organisations/{facts.organisation_id}")
    return [
        {
            "id": f"{page}#pledge-{pid}",
            "type": ["Evidence"],
            "name": title,
            "description": f"Pledge under the theme {theme}: target {target} by {due}.",
            "genre": theme,
            "narrative": f"Target: {target} by {due}.",
        }
        for pid, title, theme, target, due in facts.pledges
    ]


def _achievement(issuer: Issuer, facts: AwardFacts, policy: Policy) -> dict[str, Any]:
    level = policy.level(facts.level)
    scheme_url = issuer.url(f"/schemes/{facts.scheme}")
    aliases = f" (also called {', '.join(level.aliases)})" if level.aliases else ""
    ranked = sorted(policy.levels, key=lambda lv: lv.rank)
    return {
        "id": f"{scheme_url}#level-{level.id}",
        "type": ["Achievement"],
        "achievementType": "Certification",
        "name": f"{policy.name}: {level.name}",
        "description": f"The {level.name} level{aliases} of the {policy.name}, "
        f"version {facts.scheme_version}.",
        "criteria": {
            "id": scheme_url,
            "narrative": f"Assessed against the {policy.name} at the {level.name} level and "
            "confirmed by an award panel; the scheme's levels, standards and pass marks are "
            f"published at {scheme_url}.",
        },
        "version": facts.scheme_version,
        "creator": {"id": issuer.id, "type": ["Profile"], "name": issuer.name},
        "resultDescription": [
            {
                "id": f"{scheme_url}#levels",
                "type": ["ResultDescription"],
                "name": "Level",
                "resultType": "RubricCriterionLevel",
                "allowedValue": [lv.name for lv in ranked],
                "rubricCriterionLevel": [
                    {
                        "id": f"{scheme_url}#level-{lv.id}",
                        "type": ["RubricCriterionLevel"],
                        "name": lv.name,
                    }
                    for lv in ranked
                ],
            }
        ],
    }


def award_credential(issuer: Issuer, facts: AwardFacts, policy: Policy) -> dict[str, Any]:
    """The unsigned OpenBadgeCredential of one award, with JWT claims alongside."""
    level = policy.level(facts.level)
    scheme_url = issuer.url(f"/schemes/{facts.scheme}")
    subject_id = issuer.url(f"/organisations/{facts.organisation_id}")
    credential_id = issuer.credential_url(facts.award_id)
    return {
        "@context": [VC_CONTEXT, OB_CONTEXT],
        "id": credential_id,
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": f"{policy.name}: {level.name}",
        "description": f"{facts.organisation_name} holds the {level.name} level of the "
        f"{policy.name}, certificate {facts.certificate_number}.",
        "issuer": issuer.profile(embedded=True),
        "validFrom": iso(facts.issued_at),
        "validUntil": iso(facts.expires_at),
        "awardedDate": iso(facts.issued_at),
        "credentialSubject": {
            "id": subject_id,
            "type": ["AchievementSubject"],
            "identifier": [
                {
                    "type": "IdentityObject",
                    "identityType": "name",
                    "hashed": False,
                    "identityHash": facts.organisation_name,
                }
            ],
            "achievement": _achievement(issuer, facts, policy),
            "result": [
                {
                    "type": ["Result"],
                    "resultDescription": f"{scheme_url}#levels",
                    "achievedLevel": f"{scheme_url}#level-{level.id}",
                    "value": level.name,
                }
            ],
        },
        **({"evidence": _evidence(issuer, facts)} if facts.pledges else {}),
        "credentialStatus": [
            {
                "id": f"{issuer.status_list_url(purpose)}#{facts.award_id}",
                "type": "BitstringStatusListEntry",
                "statusPurpose": purpose,
                "statusListIndex": str(facts.award_id),
                "statusListCredential": issuer.status_list_url(purpose),
            }
            for purpose in PURPOSES
        ],
        "iss": issuer.id,
        "sub": subject_id,
        "jti": credential_id,
        "nbf": int(facts.issued_at.timestamp()),
        "exp": int(facts.expires_at.timestamp()),
    }


def status_list_credential(
    issuer: Issuer, purpose: str, encoded: str, now: datetime
) -> dict[str, Any]:
    """The BitstringStatusListCredential of one purpose, as of `now`."""
    url = issuer.status_list_url(purpose)
    return {
        "@context": [VC_CONTEXT],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer.id,
        "validFrom": iso(now),
        "credentialSubject": {
            "id": f"{url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": purpose,
            "encodedList": encoded,
        },
        "iss": issuer.id,
        "jti": url,
        "iat": int(now.timestamp()),
    }
