"""Checking a credential as a third party would: signature, issuer, dates, status lists.

Pure: the caller supplies the issuers and a way to read a bit of an issuer's status list, so the
same code checks a credential pasted into the verify page and the one this service hands out for
an award. The key is found by the token's `kid` among every issuer's keys, current and retired (a
credential signed before a key rotation still verifies), and must be the key of the issuer the
credential names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from svqm.credentials.badge import Issuer
from svqm.credentials.issuers import Issuers
from svqm.credentials.signing import SignatureInvalid, header_of, verify
from svqm.credentials.status import PURPOSES, StatusListError

# (issuer, purpose, index) -> whether the bit is set; raises StatusListError if unreadable.
StatusLookup = Callable[[Issuer, str, int], bool]

VERDICTS = ("valid", "expired", "not_yet_valid", "suspended", "withdrawn", "invalid")
_CHECK_NAMES = {"revocation": "Not withdrawn", "suspension": "Not suspended"}
# What each status list says, in plain words: (the step it records, the thing it is about).
_STATUS_WORDS = {"revocation": "withdrawn", "suspension": "suspended"}


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    # What the check found, in plain words for anyone; `technical` says how, for a verifier.
    detail: str
    technical: str = ""


@dataclass
class Verification:
    verdict: str
    checks: list[Check] = field(default_factory=list)
    credential: dict[str, Any] | None = None

    @property
    def valid(self) -> bool:
        return self.verdict == "valid"


def _when(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("missing")
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return at.astimezone(UTC)


def _entries(credential: dict[str, Any]) -> list[dict[str, Any]]:
    status = credential.get("credentialStatus", [])
    entries = status if isinstance(status, list) else [status]
    return [e for e in entries if isinstance(e, dict)]


def _status_checks(
    credential: dict[str, Any], issuer: Issuer, lookup: StatusLookup
) -> tuple[list[Check], set[str]]:
    """One check per purpose; returns the checks and the purposes whose bit is set."""
    checks: list[Check] = []
    flagged: set[str] = set()
    entries = {e.get("statusPurpose"): e for e in _entries(credential)}
    for purpose in PURPOSES:
        name, done = _CHECK_NAMES[purpose], _STATUS_WORDS[purpose]
        unknown = f"Whether the issuer has {done} it could not be checked."
        entry = entries.get(purpose)
        if entry is None:
            technical = f"The credential has no {purpose} status entry."
            checks.append(Check(name, False, unknown, technical))
            continue
        if entry.get("statusListCredential") != issuer.status_list_url(purpose):
            technical = f"Its {purpose} status list is not this issuer's."
            checks.append(Check(name, False, unknown, technical))
            continue
        try:
            index = int(str(entry.get("statusListIndex")))
            is_set = lookup(issuer, purpose, index)
        except (ValueError, StatusListError) as exc:
            technical = f"The {purpose} status list could not be read: {exc}."
            checks.append(Check(name, False, unknown, technical))
            continue
        if is_set:
            flagged.add(purpose)
            technical = f"Bit {index} of the {purpose} status list is set."
            checks.append(Check(name, False, f"The issuer has {done} it.", technical))
        else:
            technical = f"Bit {index} of the {purpose} status list is clear."
            checks.append(Check(name, True, f"The issuer has not {done} it.", technical))
    return checks, flagged


def check_token(
    token: str, *, issuers: Issuers, lookup: StatusLookup, now: datetime
) -> Verification:
    """Every check of a compact VC-JWT, and the verdict they add up to."""
    token = token.strip()
    try:
        owner = issuers.key_owner(str(header_of(token).get("kid", "")))
        if owner is None:
            raise SignatureInvalid("signed with a key no issuer of this service publishes")
        issuer, key = owner
        credential = verify(token, key)
    except SignatureInvalid as exc:
        plain = "It is not signed by any issuer of this service, or it has been changed."
        return Verification("invalid", [Check("Signature", False, plain, f"{exc}.")])
    checks = [
        Check(
            "Signature",
            True,
            f"Signed by {issuer.name} and not changed since.",
            f"Ed25519 signature by key {key.kid}.",
        )
    ]
    types = credential.get("type", [])
    issuer_id = credential.get("issuer", {})
    issuer_id = issuer_id.get("id") if isinstance(issuer_id, dict) else issuer_id
    if "OpenBadgeCredential" not in types or issuer_id != issuer.id:
        checks.append(
            Check(
                "Issuer",
                False,
                "It is not an award credential of the issuer that signed it.",
                "Not an Open Badges credential of the issuer whose key signed it.",
            )
        )
        return Verification("invalid", checks, credential)
    checks.append(Check("Issuer", True, issuer.name))
    try:
        valid_from = _when(credential.get("validFrom"))
        valid_until = _when(credential.get("validUntil"))
    except ValueError as exc:
        checks.append(
            Check(
                "Validity dates",
                False,
                "Its validity dates could not be read.",
                f"Unreadable validity dates: {exc}.",
            )
        )
        return Verification("invalid", checks, credential)
    in_dates = valid_from <= now < valid_until
    span = f"Valid from {valid_from.day} {valid_from:%B %Y} until {valid_until.day} {valid_until:%B %Y}."
    checks.append(Check("Validity dates", in_dates, span))
    status_checks, flagged = _status_checks(credential, issuer, lookup)
    checks += status_checks
    if any(not c.passed for c in status_checks) and not flagged:
        verdict = "invalid"
    elif "revocation" in flagged:
        verdict = "withdrawn"
    elif "suspension" in flagged:
        verdict = "suspended"
    elif now >= valid_until:
        verdict = "expired"
    elif now < valid_from:
        verdict = "not_yet_valid"
    else:
        verdict = "valid"
    return Verification(verdict, checks, credential)
