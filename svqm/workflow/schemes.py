"""Schemes: each policy compiled once, and the snapshot a subject started under kept in the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session

from svqm.errors import NotFound
from svqm.policy import Policy, load_policies, parse_policy
from svqm.workflow.machine import CompiledWorkflow
from svqm.workflow.models import PolicySnapshot, Subject


def known_guards() -> dict[str, str | None]:
    from svqm.workflow.guards import GUARDS

    return {name: g.argument for name, g in GUARDS.items()}


def known_effects() -> set[str]:
    from svqm.workflow.effects import EFFECTS

    return set(EFFECTS)


@dataclass
class Scheme:
    """A validated policy with its two workflows compiled into shared machines."""

    policy: Policy
    flows: dict[str, CompiledWorkflow] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind in self.policy.workflows.kinds():
            self.flows[kind] = CompiledWorkflow(self.policy.workflows.of(kind))

    @property
    def id(self) -> str:
        return self.policy.id


# Where a unit of work keeps the recorded policy digests it has read (workflow.queries).
DIGESTS_KEY = "svqm.policy_digests"


class SchemeRegistry:
    """The current schemes, plus older versions that running subjects still follow."""

    def __init__(self, policies: dict[str, Policy]) -> None:
        self.current: dict[str, Scheme] = {pid: Scheme(p) for pid, p in policies.items()}
        self._by_digest: dict[str, Scheme] = {s.policy.digest: s for s in self.current.values()}

    def ids(self) -> list[str]:
        """The current schemes' ids, sorted."""
        return sorted(self.current)

    def get(self, scheme_id: str) -> Scheme:
        """The current version of a scheme."""
        try:
            return self.current[scheme_id]
        except KeyError:
            known = ", ".join(sorted(self.current))
            raise NotFound(f"no scheme '{scheme_id}' (known: {known})") from None

    def record_snapshot(self, session: Session, scheme: Scheme) -> None:
        """Keep the policy text that new subjects start under."""
        if session.get(PolicySnapshot, scheme.policy.digest) is None:
            session.add(
                PolicySnapshot(
                    digest=scheme.policy.digest,
                    scheme=scheme.id,
                    version=scheme.policy.version,
                    source_text=scheme.policy.source_text,
                )
            )
            session.flush()
            # A list's filters read the recorded versions once per unit of work (queries).
            session.info.pop(DIGESTS_KEY, None)

    def for_subject(self, session: Session, subject: Subject) -> Scheme:
        """The scheme version the subject started under, even if the file has changed since."""
        return self.by_digest(session, subject.policy_digest)

    def by_digest(self, session: Session, digest: str) -> Scheme:
        """The scheme version with this policy digest: current, or parsed from its snapshot."""
        scheme = self._by_digest.get(digest)
        if scheme is not None:
            return scheme
        snap = session.get(PolicySnapshot, digest)
        if snap is None:
            raise NotFound(f"policy snapshot {digest[:12]} is missing")
        policy = parse_policy(
            snap.source_text,
            source=f"{snap.scheme}.yaml@{snap.version}",
            scheme_id=snap.scheme,
            known_guards=known_guards(),
            known_effects=known_effects(),
        )
        # The digest is the version's identity; a snapshot restated in a newer policy language
        # (a migration) keeps it.
        scheme = Scheme(policy.model_copy(update={"digest": digest}))
        self._by_digest[digest] = scheme
        return scheme


def load_registry(directory: Path) -> SchemeRegistry:
    """Load and check every policy in `directory` against the engine's guards and effects."""
    return SchemeRegistry(
        load_policies(directory, known_guards=known_guards(), known_effects=known_effects())
    )
