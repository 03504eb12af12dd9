"""The real SVQM policies with the opt-in settings of issue 18 turned on: appeals decided by two
independent panel members (`quorum: 2`) and Silver double-marked (`assessors: 2`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from svqm.workflow.schemes import SchemeRegistry, load_registry

POLICIES = Path(__file__).resolve().parents[1] / "policies"


def _switch_on(text: str, *, quorum: bool) -> str:
    for trigger in ("uphold_appeal", "dismiss_appeal") if quorum else ():
        before = f"{{trigger: {trigger}, source: appealed,"
        assert before in text
        text = text.replace(before, f"{{trigger: {trigger}, quorum: 2, source: appealed,")
    silver = "  - id: silver\n    name: Silver\n"
    assert silver in text
    return text.replace(silver, silver + "    assessors: 2\n")


def judgement_policies(directory: Path, *, quorum: bool = True) -> Path:
    """A copy of the real policies in `directory`, SVQM's with both settings on (only double
    marking with `quorum=False`: appeals as the policy has them)."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in POLICIES.glob("*.yaml"):
        shutil.copyfile(path, directory / path.name)
    shutil.copytree(POLICIES / "logos", directory / "logos", dirs_exist_ok=True)
    svqm = directory / "svqm.yaml"
    svqm.write_text(_switch_on(svqm.read_text(encoding="utf-8"), quorum=quorum), encoding="utf-8")
    return directory


def judgement_registry(directory: Path) -> SchemeRegistry:
    return load_registry(judgement_policies(directory))
