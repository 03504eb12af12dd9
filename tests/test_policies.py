"""The policy files: the real schemes load, the CLI checks and draws them, broken files are refused
with `<file>: <field>: <reason>`, and a running application keeps the policy it started under."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from svqm.cli import app as cli
from svqm.errors import PolicyError, TransitionRefused
from svqm.policy import Policy, Workflow, load_policy
from svqm.workflow import service as workflow
from svqm.workflow.models import Application, PolicySnapshot
from svqm.workflow.schemes import SchemeRegistry, known_effects, known_guards, load_registry
from tests.conftest import POLICIES
from tests.factories import actor, make_org, make_user, open_app

DATA = Path(__file__).resolve().parent / "data" / "policies"
MINIMAL = DATA / "minimal.yaml"
BROKEN = sorted((DATA / "broken").glob("*.yaml"))
REAL = sorted(POLICIES.glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (?P<field>.+?) \| (?P<reason>.+)$")

runner = CliRunner()


def _reachable(wf: Workflow) -> set[str]:
    seen, frontier = {wf.initial}, [wf.initial]
    while frontier:
        state = frontier.pop()
        for t in wf.transitions:
            if state in t.source and t.dest not in seen:
                seen.add(t.dest)
                frontier.append(t.dest)
    return seen


def _expectation(path: Path) -> tuple[str, str]:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = EXPECT.match(first)
    assert match, f"{path.name}: first line must be '# expect: <field> | <reason>', got {first!r}"
    return match["field"], match["reason"]


def _load(path: Path) -> Policy:
    return load_policy(path, known_guards=known_guards(), known_effects=known_effects())


# The real policies -------------------------------------------------------------------------------


def test_real_policies_exist() -> None:
    assert [p.name for p in REAL] == [
        "bcorp-style.yaml",
        "iip-style.yaml",
        "iso17021-style.yaml",
        "northshore-anchor-charter.yaml",
        "svqm-health.yaml",
        "svqm.yaml",
    ]


def test_real_policies_load_into_the_registry() -> None:
    registry = load_registry(POLICIES)
    assert sorted(registry.current) == [
        "bcorp-style",
        "iip-style",
        "iso17021-style",
        "northshore-anchor-charter",
        "svqm",
        "svqm-health",
    ]
    for scheme_id, scheme in registry.current.items():
        policy = scheme.policy
        assert policy.id == scheme_id
        assert len(policy.digest) == 64
        assert policy.source_text == (POLICIES / f"{scheme_id}.yaml").read_text(encoding="utf-8")
        ranks = sorted(lv.rank for lv in policy.levels)
        assert ranks == list(range(1, len(policy.levels) + 1))
        for kind in ("application", "award"):
            wf = policy.workflows.of(kind)
            assert _reachable(wf) == {s.name for s in wf.states}, kind
            # The compiled machine knows every state and every trigger of the policy.
            flow = scheme.flows[kind]
            assert set(flow.machine.states) == {s.name for s in wf.states}
            assert set(flow.machine.events) == {t.trigger for t in wf.transitions}


def test_svqm_policy_shape(registry: SchemeRegistry) -> None:
    policy = registry.get("svqm").policy
    assert [lv.id for lv in sorted(policy.levels, key=lambda lv: lv.rank)] == [
        "bronze",
        "silver",
        "gold",
        "platinum",
    ]
    assert len(policy.workflows.application.states) == 11
    assert len(policy.workflows.award.states) == 9
    assert len(policy.themes) == 9
    assert len(policy.standards) == 9
    bronze = policy.find_level("Level 1")
    assert bronze is not None
    assert bronze.id == "bronze"
    assert policy.find_level("  level 1 ") is bronze
    assert policy.find_level("Bronze") is bronze
    assert policy.find_level("Level 9") is None
    gold = policy.level("gold")
    assert gold.requires is not None
    assert (gold.requires.level, gold.requires.held_months) == ("silver", 12)


def test_health_policy_shape(registry: SchemeRegistry) -> None:
    policy = registry.get("svqm-health").policy
    bronze = policy.find_level("Level 1")
    assert bronze is not None
    assert bronze.id == "health_bronze"
    assert bronze.self_service
    assert policy.find_level("Bronze") is bronze
    assert bronze.pledge_rule is not None
    assert bronze.pledge_rule.themes == "mandatory"
    assert len([t for t in policy.themes if t.mandatory]) == 3


def test_minimal_policy_is_valid() -> None:
    policy = _load(MINIMAL)
    assert policy.id == "minimal"
    assert [lv.rank for lv in policy.levels] == [1, 2]
    assert len(policy.themes) == 2
    assert len(policy.standards) == 1
    for kind in ("application", "award"):
        wf = policy.workflows.of(kind)
        assert _reachable(wf) == {s.name for s in wf.states}


# svqm policy check -------------------------------------------------------------------------------


def test_cli_check_passes_real_and_minimal_policies() -> None:
    files = [*REAL, MINIMAL]
    result = runner.invoke(cli, ["policy", "check", *map(str, files)])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == len(files)
    for path, line in zip(files, lines, strict=True):
        assert line.startswith(f"ok: {path} ("), line


def test_broken_corpus_is_not_emptied() -> None:
    assert len(BROKEN) >= 15
    assert len({_expectation(p) for p in BROKEN}) == len(BROKEN), "two files expect the same error"


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_cli_check_refuses_broken_policy(path: Path) -> None:
    field, reason = _expectation(path)
    result = runner.invoke(cli, ["policy", "check", str(path)])
    assert result.exit_code == 1, result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines, result.stdout
    assert all(line.startswith(f"error: {path}: ") for line in lines), result.stderr
    assert any(field in line and reason in line for line in lines), result.stderr


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_load_policy_refuses_broken_policy(path: Path) -> None:
    field, reason = _expectation(path)
    with pytest.raises(PolicyError) as caught:
        _load(path)
    message = caught.value.detail
    assert all(line.startswith(f"{path}: ") for line in message.splitlines()), message
    assert any(field in line and reason in line for line in message.splitlines()), message


def test_cli_check_reports_every_file_and_fails_if_any_fails() -> None:
    broken = DATA / "broken" / "unknown-guard.yaml"
    result = runner.invoke(cli, ["policy", "check", str(MINIMAL), str(broken)])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"ok: {MINIMAL} (")
    assert f"error: {broken}: " in result.stderr


# svqm policy show / diagram ----------------------------------------------------------------------


# Rich sizes tables to the terminal: fix the width so the tests do not depend on where they run.
WIDE = {"COLUMNS": "250"}
NARROW = {"COLUMNS": "80"}


def test_cli_show() -> None:
    result = runner.invoke(cli, ["policy", "show", "svqm"], env=WIDE)
    assert result.exit_code == 0, result.stderr
    for text in (
        "Social Value Quality Mark (svqm, version 2026.1)",
        "Level 1",
        "Platinum",
        "Employment and employability",
        "eco_system",
        "appeal_window",
        "close_appeal_window",
        "before_deadline:appeal_window",
        "10 working_days",
    ):
        assert text in result.stdout, text


def test_cli_show_unknown_scheme() -> None:
    result = runner.invoke(cli, ["policy", "show", "nope"])
    assert result.exit_code == 1
    assert "no scheme 'nope'" in str(result.exception)


def test_cli_show_lists_standards_by_name() -> None:
    result = runner.invoke(cli, ["policy", "show", "svqm"], env=WIDE)
    assert result.exit_code == 0, result.stderr
    assert "Eco System" in result.stdout


def test_cli_show_is_complete_when_narrow() -> None:
    result = runner.invoke(cli, ["policy", "show", "svqm"], env=NARROW)
    assert result.exit_code == 0, result.stderr
    # At 80 columns long words fold onto the next line rather than being cut off.
    assert "…" not in result.stdout
    assert "appeal_" in result.stdout


def test_cli_diagram_mermaid() -> None:
    result = runner.invoke(cli, ["policy", "diagram", "svqm", "--format", "mermaid"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    # Mermaid front matter: the title between two `---` lines, then the diagram type.
    assert lines[:3] == ["---", "Social Value Quality Mark: application workflow", "---"]
    assert "stateDiagram-v2" in result.stdout
    assert "submit" in result.stdout
    assert "before_deadline:appeal_window" in result.stdout


def test_cli_diagram_award_kind() -> None:
    result = runner.invoke(cli, ["policy", "diagram", "svqm", "--kind", "award"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1] == "Social Value Quality Mark: award workflow"
    assert "stateDiagram-v2" in result.stdout
    assert "mark_report_overdue" in result.stdout
    assert "submit" not in result.stdout


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_cli_diagram_svg() -> None:
    result = runner.invoke(cli, ["policy", "diagram", "svqm", "--format", "svg"])
    assert result.exit_code == 0, result.stderr
    root = ET.fromstring(result.stdout)
    assert root.tag in ("svg", "{http://www.w3.org/2000/svg}svg")
    assert "<svg" in result.stdout
    assert "submit" in result.stdout


def test_cli_diagram_to_file(tmp_path: Path) -> None:
    target = tmp_path / "award.mmd"
    result = runner.invoke(
        cli, ["policy", "diagram", "svqm-health", "--kind", "award", "--output", str(target)]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"wrote {target}"
    assert "stateDiagram-v2" in target.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "args", [["--format", "png"], ["--kind", "pledge"]], ids=["format", "kind"]
)
def test_cli_diagram_refuses_bad_option(args: list[str]) -> None:
    result = runner.invoke(cli, ["policy", "diagram", "svqm", *args])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert args[1] in lines[0]


# A policy edit never rewrites a running application ----------------------------------------------


def _edit_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def test_policy_edit_never_rewrites_running_application(
    session: Session, registry: SchemeRegistry, now: datetime, tmp_path: Path
) -> None:
    org = make_org(session)
    applicant = make_user(session, "applicant", org)
    running = open_app(session, registry, applicant, level="Level 1", now=now)
    session.commit()
    original = registry.get("svqm").policy
    assert running.policy_digest == original.digest
    assert running.scheme_version == original.version == "2026.1"

    # The scheme author edits the file: `submit` becomes `send`, `withdraw` becomes `abandon`.
    edited_dir = tmp_path / "policies"
    shutil.copytree(POLICIES, edited_dir)
    path = edited_dir / "svqm.yaml"
    text = path.read_text(encoding="utf-8")
    text = _edit_once(text, 'version: "2026.1"', 'version: "2026.2"')
    text = _edit_once(text, "{trigger: submit, source: draft,", "{trigger: send, source: draft,")
    text = _edit_once(
        text,
        "{trigger: withdraw, source: [draft, submitted,",
        "{trigger: abandon, source: [draft, submitted,",
    )
    path.write_text(text, encoding="utf-8")
    registry2 = load_registry(edited_dir)

    edited = registry2.get("svqm")
    assert edited.policy.digest != original.digest
    assert edited.policy.version == "2026.2"
    assert edited.flows["application"].triggers_from("draft") == ("send", "abandon")
    assert running.policy_digest not in {s.policy.digest for s in registry2.current.values()}

    # Read the application back from the database, and the scheme it runs under with it.
    session.expunge_all()
    stored = session.get(Application, running.id)
    assert stored is not None
    assert stored.policy_digest == original.digest
    snapshot = session.get(PolicySnapshot, stored.policy_digest)
    assert snapshot is not None
    assert (snapshot.scheme, snapshot.version) == ("svqm", "2026.1")
    assert snapshot.source_text == original.source_text

    kept = registry2.for_subject(session, stored)
    assert kept is not edited
    assert kept.policy.digest == stored.policy_digest == original.digest
    assert kept.policy.id == "svqm"
    assert kept.policy.version == "2026.1"
    assert kept.flows["application"].triggers_from("draft") == ("submit", "withdraw")
    assert kept.policy.workflows.application.transition("withdraw", "draft") is not None
    assert registry2.for_subject(session, stored) is kept  # parsed once, then cached

    # The running application still follows its own version; a new one starts under the edit.
    workflow.fire(session, stored, "withdraw", actor=actor(applicant), registry=registry2, now=now)
    assert stored.state == "withdrawn"
    fresh = open_app(session, registry2, applicant, now=now)
    assert fresh.policy_digest == edited.policy.digest
    assert fresh.scheme_version == "2026.2"
    assert session.get(PolicySnapshot, edited.policy.digest) is not None
    with pytest.raises(TransitionRefused, match="no trigger .withdraw."):
        workflow.fire(
            session, fresh, "withdraw", actor=actor(applicant), registry=registry2, now=now
        )


def test_policy_check_refuses_who_a_step_cannot_tell(tmp_path):
    text = (POLICIES / "svqm.yaml").read_text()
    text = text.replace(
        "dest: active, roles: [admin], guards: [has_comment], notify: [applicant]}",
        "dest: active, roles: [admin], guards: [has_comment], notify: [assessor]}",
    ).replace(
        "{trigger: start_review, source: submitted, dest: under_review, roles: [assessor]",
        '{trigger: start_review, source: submitted, dest: under_review, roles: [assessor], notice: "x"',
    )
    path = tmp_path / "svqm.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path, known_guards=known_guards(), known_effects=known_effects())
    assert "an award has no assigned assessor to tell of 'reinstate'" in caught.value.detail
    assert "'start_review' tells nobody (no notify)" in caught.value.detail
