from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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
def test_modules_say_what_they_are_for(path: Path):
    text = path.read_text()
    if path.parent.name != "versions":
        assert ast.get_docstring(ast.parse(text)), "each module opens with a one-line docstring"


def _policy_names() -> set[str]:
    """Every state, trigger, deadline kind and level the real schemes name."""
    names: set[str] = set()
    for path in (REPO / "policies").glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for flow in data["workflows"].values():
            names |= {s["name"] for s in flow["states"]} | {
                t["trigger"] for t in flow["transitions"]
            }
        names |= {d["kind"] for d in data.get("deadlines", [])} | {
            lv["id"] for lv in data["levels"]
        }
    return names


# The engine's own words, which a scheme may happen to reuse as names: a user being active, a
# review's decisions, a credential check's verdicts and status-list purposes, a table's name.
ENGINE_WORDS = {"active", "accepted", "more_information", "rejected", "expired", "suspended"}
ENGINE_WORDS |= {"withdrawn", "revoked", "annual_report"}


def test_the_engine_speaks_no_schemes_words():
    """A state or trigger named in Python is a second scheme's bug waiting to happen."""
    names = _policy_names() - ENGINE_WORDS
    found = {
        f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}"
        for path in SVQM.rglob("*.py")
        # Migrations restate old policies, and the demo makes SVQM data on purpose.
        if "versions" not in path.parts and path.name not in ("demo.py", "demo_charter.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in names
    }
    assert found == set()


def test_the_web_layer_runs_no_queries_of_its_own():
    """Queries live in their domain: no select/update/insert/delete, no session.exec/get/execute."""
    found = []
    for path in (SVQM / "web").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in ("sqlmodel", "sqlalchemy"):
                found += [
                    f"{path.name}: imports {a.name}"
                    for a in node.names
                    if a.name in ("select", "update", "insert", "delete", "text")
                ]
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                target = node.func.value
                named = (
                    target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                )
                if named == "session" and node.func.attr in ("exec", "execute", "get", "scalars"):
                    found.append(f"{path.name}:{node.lineno}: session.{node.func.attr}")
    assert found == []


def test_only_the_pdf_module_renders_pdfs():
    """Certificates and invoices share svqm.web.pdf's one render at a time (SECURITY K4)."""
    found = [
        f"{path.relative_to(SVQM)}:{node.lineno}"
        for path in SVQM.rglob("*.py")
        if path != SVQM / "web" / "pdf.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        and any(
            (getattr(node, "module", None) or a.name).split(".")[0] == "weasyprint"
            for a in node.names
        )
    ]
    assert found == []
