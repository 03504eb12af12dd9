"""Fees and invoices (policies/svqm.yaml `fees`): submitting invoices the level's fee for the
turnover band with VAT, a re-application 25% of it; numbers run in order; an admin marks one paid;
the policy can make payment a guard before review; a withdrawal credits what was invoiced; a
renewal is invoiced as one, once (the award's renewal invoice, where the policy issues one when
the renewal opens, is the renewal application's)."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest

from svqm.accounts.models import User
from svqm.errors import Conflict, GuardRefused, PermissionDenied
from svqm.workflow import invoices
from svqm.workflow import service as workflow
from svqm.workflow.models import Application, Award
from svqm.workflow.schemes import load_registry
from tests.conftest import POLICIES
from tests.factories import actor, add_pledges, make_org, make_user, open_app, store_at, upload_all


def _submitted(session, registry, tmp_path, now, *, band="under_1m", level="bronze"):
    org = make_org(session)
    applicant = make_user(session, "applicant", org)
    make_user(session, "assessor")
    app = open_app(session, registry, applicant, level=level, now=now, eligible=False)
    from svqm.workflow import screening

    policy = registry.get("svqm").policy
    screening.answer(
        session,
        app,
        sector=policy.eligibility.sectors[0].id,
        turnover_band=band,
        industries=(),
        actor=actor(applicant),
        registry=registry,
        now=now,
    )
    add_pledges(session, registry, app, applicant, now=now)
    upload_all(session, registry, store_at(tmp_path), app, applicant, now=now)
    workflow.fire(session, app, "submit", actor=actor(applicant), registry=registry, now=now)
    return app, applicant


def test_submitting_invoices_the_fee_for_the_band_with_vat(session, registry, tmp_path, now):
    app, _ = _submitted(session, registry, tmp_path, now, band="to_10m")
    (inv,) = invoices.of_application(session, app.id)
    # Bronze at £1m to £10m: £695.00, and 20% VAT on it.
    assert (inv.amount_pence, inv.vat_pence, inv.total_pence) == (69500, 13900, 83400)
    assert (inv.status, inv.kind, inv.turnover_band) == ("unpaid", "invoice", "to_10m")
    assert inv.number.startswith("INV-")
    assert inv.reference == inv.number
    assert (inv.due_at - inv.issued_at).days == 30
    trail = workflow.history(session, app)
    assert f"invoice {inv.number} issued" in trail[-1].comment


def test_vat_rounds_to_the_nearest_penny():
    assert invoices.vat_of(99500, 20) == 19900
    assert invoices.vat_of(12345, 20) == 2469  # 2469.0
    assert invoices.vat_of(12347, 17.5) == 2161  # 2160.7 rounds up
    assert invoices.vat_of(-12347, 17.5) == -2161


def test_numbers_run_in_order_and_are_never_shared(session, registry, tmp_path, now):
    numbers = [
        invoices.of_application(session, _submitted(session, registry, tmp_path, now)[0].id)[
            0
        ].number
        for _ in range(3)
    ]
    first = int(numbers[0].split("-")[1])
    assert numbers == [f"INV-{n:06d}" for n in range(first, first + 3)]


def test_a_re_application_is_charged_a_quarter(session, registry, tmp_path, now):
    app, applicant = _submitted(session, registry, tmp_path, now)
    app.state = "not_awarded"
    session.add(app)
    session.flush()
    again = open_app(session, registry, applicant, now=now)
    assert again.reapplies_id == app.id
    upload_all(session, registry, store_at(tmp_path), again, applicant, now=now)
    workflow.fire(session, again, "submit", actor=actor(applicant), registry=registry, now=now)
    (inv,) = invoices.of_application(session, again.id)
    # 25% of Bronze's £495.00 at the first band (the factory answers the first band).
    assert (inv.amount_pence, inv.vat_pence) == (12375, 2475)
    assert "re-application (25% of the fee)" in inv.description


def test_an_admin_marks_it_paid_once(session, registry, tmp_path, now):
    app, applicant = _submitted(session, registry, tmp_path, now)
    (inv,) = invoices.of_application(session, app.id)
    with pytest.raises(PermissionDenied):
        invoices.mark_paid(
            session,
            inv,
            actor_role="applicant",
            actor_id=applicant.id,
            method="bank_transfer",
            reference="x",
            now=now,
        )
    admin = make_user(session, "admin")
    invoices.mark_paid(
        session,
        inv,
        actor_role="admin",
        actor_id=admin.id,
        method="bank_transfer",
        reference="BACS 4471",
        now=now,
    )
    assert (inv.status, inv.payment_reference, inv.paid_by_id) == ("paid", "BACS 4471", admin.id)
    with pytest.raises(Conflict, match="paid already"):
        invoices.mark_paid(
            session,
            inv,
            actor_role="admin",
            actor_id=admin.id,
            method="proforma",
            reference="",
            now=now,
        )


def test_withdrawing_credits_the_invoice(session, registry, tmp_path, now):
    app, applicant = _submitted(session, registry, tmp_path, now, band="to_50m", level="bronze")
    (inv,) = invoices.of_application(session, app.id)
    admin = make_user(session, "admin")
    invoices.mark_paid(
        session,
        inv,
        actor_role="admin",
        actor_id=admin.id,
        method="proforma",
        reference="PF-1",
        now=now,
    )
    workflow.fire(session, app, "withdraw", actor=actor(applicant), registry=registry, now=now)
    original, credit = invoices.of_application(session, app.id)
    assert original.status == "credited"
    assert (credit.kind, credit.credits_id, credit.status) == ("credit_note", inv.id, "refund_due")
    assert (credit.amount_pence, credit.vat_pence) == (-89500, -17900)
    assert credit.number.startswith("CN-")


@pytest.fixture(scope="module")
def paying_registry(tmp_path_factory):
    """The real policies, SVQM's review waiting for payment (`invoice_paid` on start_review)."""
    directory = tmp_path_factory.mktemp("paying")
    shutil.copytree(POLICIES, directory, dirs_exist_ok=True)
    path = directory / "svqm.yaml"
    text = path.read_text(encoding="utf-8")
    before = "roles: [assessor],\n         guards: [audit_date_confirmed]"
    assert before in text
    path.write_text(text.replace(before, before[:-1] + ", invoice_paid]"), encoding="utf-8")
    return load_registry(directory)


def test_the_policy_can_make_review_wait_for_payment(session, paying_registry, tmp_path, now):
    app, _ = _submitted(session, paying_registry, tmp_path, now)
    (inv,) = invoices.of_application(session, app.id)
    assessor = session.get(User, app.assessor_id)
    with pytest.raises(GuardRefused) as refused:
        workflow.fire(
            session, app, "start_review", actor=actor(assessor), registry=paying_registry, now=now
        )
    assert refused.value.unmet == [f"invoice {inv.number} unpaid"]
    invoices.mark_paid(
        session,
        inv,
        actor_role="admin",
        actor_id=None,
        method="bank_transfer",
        reference="ref",
        now=now,
    )
    workflow.fire(
        session, app, "start_review", actor=actor(assessor), registry=paying_registry, now=now
    )
    assert session.get(Application, app.id).state == "under_review"


def _held(session, registry, tmp_path, now, *, band="to_10m"):
    """A Bronze application awarded, and its award in force (as `issue_award` leaves them)."""
    app, applicant = _submitted(session, registry, tmp_path, now, band=band)
    policy = registry.get("svqm").policy
    app.state = "awarded"
    award = Award(
        organisation_id=app.organisation_id,
        application_id=app.id,
        scheme="svqm",
        scheme_version=policy.version,
        policy_digest=policy.digest,
        level="bronze",
        state="active",
        certificate_number=f"T-{app.id}",
        issued_at=now,
        expires_at=now + timedelta(days=365),
        state_changed_at=now,
    )
    session.add_all([app, award])
    session.flush()
    return award, applicant


def _renew(session, registry, tmp_path, now, applicant):
    again = open_app(session, registry, applicant, now=now)
    assert again.reapplies_id is None
    upload_all(session, registry, store_at(tmp_path), again, applicant, now=now)
    workflow.fire(session, again, "submit", actor=actor(applicant), registry=registry, now=now)
    return again


def test_a_renewal_is_invoiced_as_a_renewal_at_the_full_fee(session, registry, tmp_path, now):
    award, applicant = _held(session, registry, tmp_path, now)
    renewal = _renew(session, registry, tmp_path, now, applicant)
    (inv,) = invoices.of_application(session, renewal.id)
    # Bronze at £1m to £10m (the renewal answers the first band): the whole fee, not a quarter.
    assert inv.description == "Social Value Quality Mark: Bronze renewal"
    assert (inv.amount_pence, inv.vat_pence) == (49500, 9900)
    assert inv.award_id == award.id


@pytest.fixture(scope="module")
def renewal_registry(tmp_path_factory):
    """The real policies, SVQM invoicing the award when its renewal opens."""
    directory = tmp_path_factory.mktemp("renewal-fee")
    shutil.copytree(POLICIES, directory, dirs_exist_ok=True)
    path = directory / "svqm.yaml"
    text = path.read_text(encoding="utf-8")
    before = (
        "{trigger: open_renewal, label: Time to renew, source: [active, upgrade_eligible, report_due], "
        "dest: renewal_due, roles: [system],"
    )
    assert before in text
    path.write_text(text.replace(before, before + " effects: [issue_invoice],"), encoding="utf-8")
    return load_registry(directory)


def test_opening_a_renewal_invoices_it_once(session, renewal_registry, tmp_path, now):
    award, applicant = _held(session, renewal_registry, tmp_path, now, band="to_10m")
    workflow.fire(
        session, award, "open_renewal", actor=workflow.SYSTEM, registry=renewal_registry, now=now
    )
    (inv,) = [i for i in invoices.listing(session) if i.award_id == award.id]
    # The band of the award's own application: Bronze at £1m to £10m, £695.00 and VAT.
    assert (inv.application_id, inv.amount_pence, inv.vat_pence) == (None, 69500, 13900)
    assert inv.description == "Social Value Quality Mark: Bronze renewal"
    # The renewal application takes that invoice over when it is sent: one fee, not two.
    renewal = _renew(session, renewal_registry, tmp_path, now, applicant)
    assert [i.id for i in invoices.of_application(session, renewal.id)] == [inv.id]
    assert [i.id for i in invoices.listing(session) if i.award_id == award.id] == [inv.id]
    trail = workflow.history(session, renewal)
    assert f"invoice {inv.number} (the renewal of the award) is this application's" in (
        trail[-1].comment
    )
