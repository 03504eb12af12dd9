"""The real SVQM policies with appeals decided by two independent panel members (`quorum: 2`, an
opt-in setting of issue 18 the real policy leaves off). Double marking needs no copy: the real
policy has Silver, Gold and Platinum double-marked (`assessors: 2`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from svqm.workflow.schemes import SchemeRegistry, load_registry

POLICIES = Path(__file__).resolve().parents[1] / "policies"


def _quorum(text: str) -> str:
    for trigger in ("uphold_appeal", "dismiss_appeal"):
        before = f"{{trigger: {trigger}, source: appealed,"
        assert before in text
        text = text.replace(before, f"{{trigger: {trigger}, quorum: 2, source: appealed,")
    return text


def judgement_policies(directory: Path) -> Path:
    """A copy of the real policies in `directory`, SVQM's appeals needing two panel members."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in POLICIES.glob("*.yaml"):
        shutil.copyfile(path, directory / path.name)
    shutil.copytree(POLICIES / "logos", directory / "logos", dirs_exist_ok=True)
    svqm = directory / "svqm.yaml"
    svqm.write_text(_quorum(svqm.read_text(encoding="utf-8")), encoding="utf-8")
    return directory


def judgement_registry(directory: Path) -> SchemeRegistry:
    return load_registry(judgement_policies(directory))
