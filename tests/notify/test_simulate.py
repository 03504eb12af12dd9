from __future__ import annotations

import gc
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from svqm.accounts.models import Organisation
from svqm.db import make_engine
from svqm.simulate import Simulation, SimulationResult, report_table
from svqm.simulate import run as simulate_run
from svqm.simulate import world as simulated_world
from svqm.workflow.audit import verify_chain
from svqm.workflow.models import Application, AuditEvent, Award
from svqm.workflow.reports import AnnualReport
from svqm.workflow.schemes import SchemeRegistry
from tests.conftest import POLICIES

SVQM = str(Path(sys.executable).with_name("svqm"))
# More organisations that never file their annual report than in life, so suspensions happen.
HABITS = (("on_time", 0.5), ("late", 0.15), ("never", 0.35))


@pytest.fixture(scope="module")
def run(
    registry: SchemeRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SimulationResult, Engine]]:
    workdir = tmp_path_factory.mktemp("simulation")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(simulated_world, "REPORTING", HABITS)
        result = Simulation(registry, organisations=20, seed=1, workdir=workdir).run(years=3)
    engine = make_engine(f"sqlite:///{workdir / 'simulation.db'}")
    yield result, engine
    engine.dispose()


def test_a_population_earns_awards_and_is_reminded(run):
    result, _ = run
    assert result.awards_issued >= 20
    assert result.awards_by_level["Bronze"] > 0
    assert result.awards_by_level["Silver"] > 0
    assert result.renewals + result.upgrades > 0
    assert sum(result.reminders.values()) > 0
    assert result.emails_delivered >= sum(result.reminders.values())
    assert result.actions > 1000
    assert result.refused == {}
    assert result.sweep_refusals == 0


def test_every_subject_ends_in_a_state_its_policy_declares(run, registry):
    _, engine = run
    policy = registry.get("svqm").policy
    with Session(engine) as s:
        award_states = set(s.exec(select(Award.state)))
        application_states = set(s.exec(select(Application.state)))
    assert award_states <= {st.name for st in policy.workflows.award.states}
    assert application_states <= {st.name for st in policy.workflows.application.states}


def test_suspensions_only_follow_a_missed_report(run):
    result, engine = run
    with Session(engine) as s:
        events = s.exec(
            select(AuditEvent)
            .where(AuditEvent.subject_kind == "award")
            .order_by(col(AuditEvent.subject_id), col(AuditEvent.seq))
        ).all()
    suspended = [e for e in events if e.trigger == "suspend"]
    assert suspended, "the run was meant to include suspensions"
    assert len(suspended) == result.award_events["suspend"]
    for e in suspended:
        before = [x.trigger for x in events if x.subject_id == e.subject_id and x.seq < e.seq]
        assert before[-1] == "mark_report_overdue", (e.subject_id, before)
        assert e.actor_role == "system"


def test_the_audit_chains_verify(run):
    result, engine = run
    assert result.audit_problems == []
    with Session(engine) as s:
        checked, problems = verify_chain(s)
    assert problems == []
    assert checked == result.audit_events > 0


def test_the_same_seed_gives_the_same_run(registry):
    first = Simulation(registry, organisations=4, seed=3).run(years=1)
    again = Simulation(registry, organisations=4, seed=3).run(years=1)
    assert first.figures() == again.figures()
    assert first.actions > 0


def test_a_run_collects_cycles_seldom_and_puts_the_collectors_thresholds_back(registry):
    """Python's own thresholds spent about 5% of a run's CPU in the collector (500 collections
    in a year of 100 organisations); a run uses RUN_GC_THRESHOLDS and restores the caller's."""
    before = gc.get_threshold()
    during: set[tuple[int, int, int]] = set()
    collections: list[int] = []

    def counted(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(1)

    gc.callbacks.append(counted)
    try:
        Simulation(registry, organisations=4, seed=3).run(
            years=0.5, on_day=lambda _day: during.add(gc.get_threshold())
        )
    finally:
        gc.callbacks.remove(counted)
    assert during == {simulate_run.RUN_GC_THRESHOLDS}
    assert gc.get_threshold() == before
    assert len(collections) < 10  # Python's own thresholds: dozens in this run


# svqm itself is the module's run above; every other policy gets a short one.
@pytest.mark.parametrize(
    "scheme", sorted(p.stem for p in POLICIES.glob("*.yaml") if p.stem != "svqm")
)
def test_every_policy_can_be_simulated(registry, scheme):
    result = Simulation(registry, scheme=scheme, organisations=3, seed=1).run(years=1)
    assert result.awards_issued > 0
    assert result.audit_problems == []
    assert result.refused == {}
    console = Console(record=True, width=160, file=io.StringIO())
    console.print(report_table(result))
    assert "awards issued" in console.export_text()


def _svqm(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SVQM_DATABASE_URL": f"sqlite:///{tmp_path}/rehearsal.db",
        "SVQM_VAR_DIR": str(tmp_path / "var"),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [SVQM, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_simulate_prints_the_table(tmp_path):
    done = _svqm("simulate", "--organisations", "5", "--years", "1", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    for words in (
        "awards issued",
        "reminders by kind",
        "pledges made",
        "on track",
        "missed",
        "emails delivered",
        "wall time",
    ):
        assert words in done.stdout
    assert "Traceback" not in done.stderr
    # Before: SVQM_DATABASE_URL was ignored (always a temporary SQLite). Now that database is
    # filled and kept (a PostgreSQL one too, for a rehearsal), with its evidence.
    engine = make_engine(f"sqlite:///{tmp_path}/rehearsal.db")
    with Session(engine) as s:
        assert len(s.exec(select(Organisation.id)).all()) == 5
    engine.dispose()
    assert (tmp_path / "var" / "simulation").is_dir()
    again = _svqm("simulate", "--organisations", "5", "--years", "1", tmp_path=tmp_path)
    assert again.returncode == 1
    assert "already holds organisations" in again.stderr


def test_cli_simulate_refuses_an_unknown_scheme_in_one_line(tmp_path):
    done = _svqm(
        "simulate", "--organisations", "5", "--years", "1", "--scheme", "nope", tmp_path=tmp_path
    )
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1
    assert "nope" in done.stderr
    assert "Traceback" not in done.stderr


def test_holders_report_figures_some_late_some_short_and_assessors_review_them(run):
    result, engine = run
    pledges = result.pledges
    assert pledges["made"] > 0
    assert 0 < pledges["reported"] <= pledges["made"]
    assert pledges["on track"] > 0
    assert pledges["missed"] > 0
    assert pledges["on track"] + pledges["missed"] <= pledges["reported"]
    assert result.figure_reports.get("accepted", 0) > 0
    with Session(engine) as s:
        reviews = s.exec(select(AuditEvent).where(AuditEvent.trigger == "review_report")).all()
        late = s.exec(select(AuditEvent).where(AuditEvent.trigger == "file_report")).all()
        figures = set(
            s.exec(select(AnnualReport.id).where(col(AnnualReport.state) != "filed")).all()
        )
        # The review's steps through the policy's report workflow, on the reports' own trails.
        steps = s.exec(
            select(AuditEvent).where(
                AuditEvent.subject_kind == "report",
                col(AuditEvent.trigger).in_(("accept_report", "ask_about_report")),
            )
        ).all()
        refiled = s.exec(
            select(AuditEvent).where(
                AuditEvent.subject_kind == "report", AuditEvent.trigger == "refile_report"
            )
        ).all()
    # Every review is an assessor's step of the report workflow, noted on the award's trail too.
    assert len(reviews) == len(steps) > 0
    assert {e.actor_role for e in reviews} == {"assessor"}
    accepted = sum(1 for e in steps if e.trigger == "accept_report")
    assert accepted == result.figure_reports.get("accepted", 0)
    # A report sent back is filed again on the same report (never a second report of the period).
    asked = sum(1 for e in steps if e.trigger == "ask_about_report")
    assert len(refiled) <= asked
    assert len(figures) == sum(result.figure_reports.values())
    # Some reports with figures were filed late (the late filing brought the award back).
    late_ids = {int(m) for e in late for m in re.findall(r"\((\d+)\)", e.comment or "")}
    assert late_ids & figures


def test_the_report_counts_the_invoices_of_submissions(run):
    result, engine = run
    # SVQM invoices on submission: every application that was sent has one, none paid here
    # (the simulated admins record no payments; the scheme does not make review wait for one).
    with Session(engine) as s:
        sent = s.exec(
            select(func.count()).select_from(Application).where(Application.state != "draft")
        ).one()
    assert result.invoices["issued"] > 0
    assert result.invoices["issued"] <= sent
    assert result.invoices["unpaid"] + result.invoices["paid"] <= result.invoices["issued"]
