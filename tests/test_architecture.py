from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SVQM = REPO / "svqm"


def test_import_layers_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _state_writes(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        # `row.state = ...` is a state write; `app.state.engine = ...` (FastAPI's) is not.
        lines += [
            node.lineno for t in targets if isinstance(t, ast.Attribute) and t.attr == "state"
        ]
    return lines


def test_only_the_workflow_package_assigns_a_state():
    offenders = {
        str(path.relative_to(REPO)): lines
        for path in SVQM.rglob("*.py")
        if "workflow" not in path.relative_to(SVQM).parts and (lines := _state_writes(path))
    }
    assert offenders == {}


@pytest.mark.parametrize("path", sorted(SVQM.rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_modules_stay_small_and_say_what_they_are_for(path: Path):
    text = path.read_text()
    assert len(text.splitlines()) <= 420, "split modules near 400 lines"
    if path.parent.name != "versions":
        assert ast.get_docstring(ast.parse(text)), "each module opens with a one-line docstring"
