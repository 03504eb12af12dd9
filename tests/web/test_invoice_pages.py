"""Invoices on the pages: the applicant's case page lists its invoice with its PDF, the admin
records the payment from the finance list, whose CSV has it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from svqm.accounts.models import Organisation
from svqm.clock import FixedClock
from svqm.db import session_scope
from svqm.workflow import invoices
from svqm.workflow import service as workflow
from tests.factories import actor, add_pledges, open_app, store_at, upload_all
from tests.web.award_world import app_client, page_sign_in
from tests.web.pages_helpers import csrf_of, make_account

NOW = datetime(2026, 2, 16, 9, 0, tzinfo=UTC)


@pytest.fixture
def client(engine, registry, tmp_path):
    with app_client(engine, registry, tmp_path, FixedClock(NOW)) as c:
        yield c


def test_the_applicant_sees_the_invoice_and_the_admin_records_payment(
    client, engine, registry, tmp_path
):
    with session_scope(engine) as s:
        org = s.merge(Organisation(name="Paying Partners", sector="Health"))
        s.flush()
        applicant = make_account(s, "applicant", org)
        make_account(s, "assessor")
        admin = make_account(s, "admin")
        app = open_app(s, registry, applicant, now=NOW)
        add_pledges(s, registry, app, applicant, now=NOW)
        upload_all(s, registry, store_at(tmp_path / "evidence"), app, applicant, now=NOW)
        workflow.fire(s, app, "submit", actor=actor(applicant), registry=registry, now=NOW)
        (inv,) = invoices.of_application(s, app.id)
        number, inv_id, app_id = inv.number, inv.id, app.id
        s.commit()

    page_sign_in(client, applicant)
    case = client.get(f"/applications/{app_id}")
    assert number in case.text
    assert "£594.00" in case.text  # £495.00 + £99.00 VAT
    assert f"Pay by bank transfer quoting {number}" in case.text
    pdf = client.get(f"/invoices/{inv_id}.pdf")
    assert pdf.content.startswith(b"%PDF")
    assert client.get("/admin/invoices").status_code in (403, 404)

    page_sign_in(client, admin)
    listing = client.get("/admin/invoices")
    assert number in listing.text
    assert 'href="/admin/invoices.csv"' in listing.text
    paid = client.post(
        f"/admin/invoices/{inv_id}/paid",
        data={
            "csrf_token": csrf_of(listing.text),
            "version": "1",
            "method": "bank_transfer",
            "reference": "FP 88123",
            "back": "/admin/invoices",
        },
    )
    assert paid.status_code == 200
    assert "Payment recorded." in paid.text
    exported = client.get("/admin/invoices.csv")
    assert f'"{number}","invoice"' in exported.text
    assert '"paid"' in exported.text
    assert '"FP 88123"' in exported.text
    assert number in client.get(f"/admin/applications/{app_id}").text
