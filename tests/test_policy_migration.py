"""Policy snapshots saved before the policy language named its scheme words are restated by
migration 0004, so running applications keep what the engine did for them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import yaml
from alembic import command
from sqlalchemy import insert, select
from sqlmodel import Session

from svqm.db import make_engine
from svqm.dbmigrate import alembic_config, upgrade
from svqm.workflow.models import PolicySnapshot
from svqm.workflow.schemes import load_registry
from tests.conftest import POLICIES

LEGACY = Path(__file__).resolve().parent / "data" / "policies" / "legacy"


def _saved(path: Path, scheme: str) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    return {
        "digest": hashlib.sha256(text.encode()).hexdigest(),
        "scheme": scheme,
        "version": "2026.1",
        "source_text": text,
        "created_at": datetime(2026, 1, 5, tzinfo=UTC),
    }


def test_snapshots_of_the_old_language_are_restated_with_what_the_engine_did(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0003")
    svqm = _saved(LEGACY / "svqm-2026.1.yaml", "svqm")
    bcorp = _saved(LEGACY / "bcorp-style-2026.1.yaml", "bcorp-style")
    with engine.begin() as conn:
        conn.execute(insert(PolicySnapshot.__table__), [svqm, bcorp])  # type: ignore[attr-defined]
    upgrade(engine)
    registry = load_registry(POLICIES)
    with Session(engine) as session:
        old = registry.by_digest(session, svqm["digest"]).policy
        other = registry.by_digest(session, bcorp["digest"]).policy
    # The version keeps its identity, and its running subjects what the old engine did for them.
    assert (old.digest, other.digest) == (svqm["digest"], bcorp["digest"])
    app, award = old.workflows.application, old.workflows.award
    assert (app.hand_back, award.supersede) == ("request_changes", "renew")
    report = old.deadline("annual_report")
    assert report is not None
    assert (report.filed_by, report.on_late_filing) == (["applicant", "admin"], "file_report")
    draft = app.state("draft")
    assert (draft.tag, draft.private) == ("grey", True)
    submit = app.transition("submit", "draft")
    assert submit is not None
    assert (submit.primary, submit.title, submit.done) == (
        True,
        "Submit application",
        "Application submitted. An assessor will now review it.",
    )
    withdraw = app.transition("withdraw", "draft")
    assert withdraw is not None
    assert withdraw.warning
    # A scheme the old engine handed nothing back in now hands back by its assessor's request.
    assert other.workflows.application.hand_back == "request_documentation"
    assert other.workflows.award.supersede == "renew"
    engine.dispose()


def test_going_back_removes_what_the_earlier_engine_does_not_know(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    upgrade(engine, "0003")
    saved = _saved(LEGACY / "svqm-2026.1.yaml", "svqm")
    with engine.begin() as conn:
        conn.execute(insert(PolicySnapshot.__table__), [saved])  # type: ignore[attr-defined]
    upgrade(engine)
    command.downgrade(alembic_config(url), "0003")
    with engine.connect() as conn:
        text = conn.execute(select(PolicySnapshot.__table__.c.source_text)).scalar_one()  # type: ignore[attr-defined]
    data = yaml.safe_load(text)
    flows = data["workflows"]
    assert "hand_back" not in flows["application"]
    assert "supersede" not in flows["award"]
    for flow in flows.values():
        assert not any("tag" in s or "private" in s for s in flow["states"])
        assert not any({"primary", "warning", "done"} & set(t) for t in flow["transitions"])
    engine.dispose()
