"""`svqm simulate` with SVQM's review waiting for payment (`invoice_paid` on the start of the
review): invoices are paid after a random delay, some after their due date, and reviews wait for
them; audits are moved and refused organisations apply again. The report counts each."""

from __future__ import annotations

import re
import shutil

import pytest
from rich.console import Console
from sqlmodel import Session, select

from svqm.db import make_engine
from svqm.simulate.report import report_table
from svqm.simulate.run import Simulation
from svqm.workflow import invoices
from svqm.workflow.consultation import ConsultationInvite
from svqm.workflow.models import AuditEvent
from svqm.workflow.schemes import load_registry
from tests.conftest import POLICIES


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("paying-policies")
    shutil.copytree(POLICIES, directory, dirs_exist_ok=True)
    path = directory / "svqm.yaml"
    text = path.read_text(encoding="utf-8")
    before = "roles: [assessor],\n         guards: [audit_date_confirmed]"
    assert before in text
    path.write_text(text.replace(before, before[:-1] + ", invoice_paid]"), encoding="utf-8")
    workdir = tmp_path_factory.mktemp("paying-run")
    # As the judgement run: twelve organisations over three years re-apply and book Silver audits.
    result = Simulation(load_registry(directory), organisations=12, seed=1, workdir=workdir).run(
        years=3
    )
    return result, workdir


def test_invoices_are_paid_late_or_on_time_and_reviews_wait_for_them(run):
    result, workdir = run
    paid = result.invoices
    assert paid["paid"] > 0
    assert 0 < paid["paid after the due date"] < paid["paid"]
    assert paid["steps that waited for payment"] > 0
    assert paid["for re-applications"] > 0
    assert result.audits["rescheduled"] > 0
    assert result.judgement["re-applications after a refusal"] > 0
    # No review started before its application's invoices were paid.
    engine = make_engine(f"sqlite:///{workdir / 'simulation.db'}")
    with Session(engine) as s:
        starts = s.exec(select(AuditEvent).where(AuditEvent.trigger == "start_review")).all()
        assert starts
        for event in starts:
            for invoice in invoices.of_application(s, int(event.subject_id)):
                if invoice.kind == invoices.INVOICE and invoice.status == invoices.PAID:
                    assert invoice.paid_at <= event.at
    engine.dispose()
    # Waiting is not refusing: no step was turned down for want of payment.
    assert not any("could not move on from submitted" in k for k in result.refused)


def test_the_table_shows_payments_rescheduling_and_reapplications(run):
    result, _ = run
    console = Console(width=200, record=True)
    console.print(report_table(result))
    text = console.export_text()
    for label, n in (
        ("paid after the due date", result.invoices["paid after the due date"]),
        ("steps that waited for payment", result.invoices["steps that waited for payment"]),
        ("rescheduled", result.audits["rescheduled"]),
        ("re-applications after a refusal", result.judgement["re-applications after a refusal"]),
        (
            "closed before the review (nobody invited)",
            result.consultation["closed before the review"],
        ),
    ):
        assert re.search(rf"{re.escape(label)}\W+{n:,}\b", text), f"no '{label}: {n}' in\n{text}"


def test_the_assessor_invites_nobody_to_a_closed_consultation_and_the_report_counts_it(run):
    result, workdir = run
    # Reviews that waited for a late payment began after their consultation had closed: the
    # assessor invited nobody to them, and the report says how many, apart from any refusal.
    assert result.consultation["closed before the review"] > 0
    assert not any(k.startswith("consultation") for k in result.refused), result.refused
    engine = make_engine(f"sqlite:///{workdir / 'simulation.db'}")
    with Session(engine) as s:
        made = s.exec(select(ConsultationInvite)).all()
        assert made
        assert all(row.created_at < row.closes_at for row in made)
    engine.dispose()
