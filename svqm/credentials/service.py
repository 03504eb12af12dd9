"""Credentials from the database: an award's signed credential, the status lists, checks.

The status lists are worked out from the awards' current states on each request, so a suspension
or withdrawal (a workflow transition) is visible to verifiers as soon as it is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from svqm.accounts.models import Organisation
from svqm.credentials import status
from svqm.credentials.badge import AwardFacts, Issuer, award_credential, status_list_credential
from svqm.credentials.issuers import Issuers
from svqm.credentials.signing import sign
from svqm.credentials.verification import Verification, check_token
from svqm.errors import NotFound
from svqm.evidence import pledges as pledge_figures
from svqm.workflow import commitments
from svqm.workflow.models import Award
from svqm.workflow.schemes import SchemeRegistry

_MARK = {"revocation": "revoked", "suspension": "suspended"}


def facts_of(session: Session, award: Award, registry: SchemeRegistry | None = None) -> AwardFacts:
    org = session.get(Organisation, award.organisation_id)
    pledges: tuple[tuple[int, str, str, str, str], ...] = ()
    if registry is not None:
        themes = {t.id: t.name for t in registry.for_subject(session, award).policy.themes}
        pledges = tuple(
            (
                p.id,
                p.title,
                themes.get(p.theme, p.theme),
                pledge_figures.figure(p.target, p.unit),
                p.due_date.isoformat(),
            )
            for p in commitments.award_pledges(session, [award])
        )
    return AwardFacts(
        award_id=award.id or 0,
        organisation_id=award.organisation_id,
        organisation_name=org.name if org else "",
        scheme=award.scheme,
        scheme_version=award.scheme_version,
        level=award.level,
        certificate_number=award.certificate_number,
        issued_at=award.issued_at,
        expires_at=award.expires_at,
        pledges=pledges,
    )


def credential_of(
    session: Session, registry: SchemeRegistry, issuers: Issuers, award: Award
) -> str:
    """The award's OpenBadgeCredential as a compact VC-JWT, signed by its scheme's issuer with
    that issuer's current key (the same bytes every time, until the key is rotated)."""
    issuer = issuers.for_scheme(award.scheme)
    policy = registry.for_subject(session, award).policy
    return sign(award_credential(issuer, facts_of(session, award, registry), policy), issuer.key)


def flagged_ids(
    session: Session, registry: SchemeRegistry, purpose: str, schemes: set[str] | None = None
) -> list[int]:
    """Ids of the awards whose state sets their bit in this status list, by their own policy;
    only awards of `schemes` when given (a partnership issuer's list)."""
    if purpose not in _MARK:
        raise NotFound(f"no status list '{purpose}' (known: {', '.join(status.PURPOSES)})")
    pairs_query = select(Award.policy_digest, Award.state).distinct()
    if schemes is not None:
        pairs_query = pairs_query.where(col(Award.scheme).in_(schemes))
    pairs = session.exec(pairs_query).all()
    marked = [
        and_(col(Award.policy_digest) == digest, col(Award.state) == state)
        for digest, state in pairs
        if registry.by_digest(session, digest).policy.workflows.award.state(state).credential_status
        == _MARK[purpose]
    ]
    if not marked:
        return []
    query = select(Award.id).where(or_(*marked)).order_by(col(Award.id))
    if schemes is not None:
        query = query.where(col(Award.scheme).in_(schemes))
    return [award_id for award_id in session.exec(query) if award_id is not None]


def encoded_list(
    session: Session, registry: SchemeRegistry, purpose: str, schemes: set[str] | None = None
) -> str:
    """The `encodedList` of `purpose` as the awards stand now."""
    return status.encode(flagged_ids(session, registry, purpose, schemes))


def status_list_of(
    session: Session,
    registry: SchemeRegistry,
    issuers: Issuers,
    issuer: Issuer,
    purpose: str,
    now: datetime,
) -> str:
    """The issuer's signed BitstringStatusListCredential for `purpose` as of now."""
    encoded = encoded_list(session, registry, purpose, issuers.schemes_of(issuer))
    return sign(status_list_credential(issuer, purpose, encoded, now), issuer.key)


def _lookup(
    session: Session, registry: SchemeRegistry, issuers: Issuers
) -> Callable[[Issuer, str, int], bool]:
    """Reads bits the way a verifier does: from the issuer's encoded list, each built once."""
    lists: dict[tuple[str, str], bytes] = {}

    def bit(issuer: Issuer, purpose: str, index: int) -> bool:
        key = (issuer.slug, purpose)
        if key not in lists:
            encoded = encoded_list(session, registry, purpose, issuers.schemes_of(issuer))
            lists[key] = status.decode(encoded)
        return status.is_set(lists[key], index)

    return bit


def check(
    session: Session, registry: SchemeRegistry, issuers: Issuers, token: str, now: datetime
) -> tuple[Verification, Award | None]:
    """The checks of a pasted credential, and the award it names if it is one of ours."""
    lookup = _lookup(session, registry, issuers)
    result = check_token(token, issuers=issuers, lookup=lookup, now=now)
    award = None
    if result.credential is not None and result.verdict != "invalid":
        issuer = issuers.default
        cid = str(result.credential.get("id", ""))
        tail = cid.removeprefix(issuer.url("/api/v1/awards/")).removesuffix("/credential")
        if tail.isdigit() and issuer.credential_url(int(tail)) == cid:
            award = session.get(Award, int(tail))
    return result, award


def check_award(
    session: Session, registry: SchemeRegistry, issuers: Issuers, award: Award, now: datetime
) -> Verification:
    """The checks of the credential this service hands out for `award`, as a verifier runs them."""
    token = credential_of(session, registry, issuers, award)
    lookup = _lookup(session, registry, issuers)
    return check_token(token, issuers=issuers, lookup=lookup, now=now)
