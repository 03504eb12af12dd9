"""JSON: the schemes this engine runs, straight from their policy files."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from svqm.policy import Policy
from svqm.web.deps import RegistryDep

router = APIRouter(prefix="/api/v1/schemes", tags=["schemes"])


def scheme_public(policy: Policy) -> dict[str, Any]:
    """A scheme as the contract in SPEC.md shows it."""
    return {
        "id": policy.id,
        "name": policy.name,
        "version": policy.version,
        "levels": [
            {
                "id": lv.id,
                "name": lv.name,
                "aliases": lv.aliases,
                "rank": lv.rank,
                "validity_months": lv.validity_months,
                "standards": lv.standards,
            }
            for lv in sorted(policy.levels, key=lambda lv: lv.rank)
        ],
        "themes": [{"id": t.id, "name": t.name, "mandatory": t.mandatory} for t in policy.themes],
        "standards": [
            {
                "id": s.id,
                "name": s.name,
                "questions": [
                    {
                        "id": q.id,
                        "text": q.text,
                        "weight": q.weight,
                        "mandatory": q.mandatory,
                        "max_score": q.max_score,
                        "rubric": {str(n): t for n, t in sorted(policy.rubric_of(q).items())},
                    }
                    for q in s.questions
                ],
            }
            for s in policy.standards
        ],
    }


@router.get("")
def list_schemes(registry: RegistryDep) -> list[dict[str, Any]]:
    """Every scheme with its levels, themes and standards."""
    return [scheme_public(s.policy) for _, s in sorted(registry.current.items())]


@router.get("/{scheme_id}")
def read_scheme(scheme_id: str, registry: RegistryDep) -> dict[str, Any]:
    """One scheme."""
    return scheme_public(registry.get(scheme_id).policy)
