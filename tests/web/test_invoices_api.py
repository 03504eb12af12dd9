"""Invoices through the API: the list of an application's invoices (the SPEC's fields), the PDF
with its number, an admin marking one paid, and the finance team's CSV."""

from __future__ import annotations

import csv
import io
import re
import zlib

from tests.web.test_api import (  # noqa: F401
    bronze_ready,
    client,
    signup,
    staff,
    token,
)


def _pdf_text(pdf: bytes) -> bytes:
    """The PDF's bytes, its compressed streams inflated and UTF-16 hex strings decoded."""
    parts = [pdf]
    for stream in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            parts.append(zlib.decompress(stream.group(1)))
        except zlib.error:
            continue
    body = b"\n".join(parts)
    for hexed in re.findall(rb"<FEFF([0-9A-Fa-f]+)>", body):
        body += bytes.fromhex(hexed.decode()).decode("utf-16-be", "replace").encode()
    return body


def test_an_invoice_is_listed_printed_paid_and_exported(client, engine):  # noqa: F811
    applicant, _ = signup(client, "Invoiced Trust")
    other, _ = signup(client, "Nosy Neighbour")
    app = bronze_ready(client, applicant)
    assert client.get(f"/api/v1/applications/{app['id']}/invoices", headers=applicant).json() == []
    sent = client.post(
        f"/api/v1/applications/{app['id']}/events/submit", headers=applicant, json={}
    )
    assert sent.status_code == 200, sent.text
    listed = client.get(f"/api/v1/applications/{app['id']}/invoices", headers=applicant).json()
    (inv,) = listed
    assert {"id", "number", "amount_pence", "vat_pence", "status", "issued_at", "pdf_url"} <= set(
        inv
    )
    assert (inv["amount_pence"], inv["vat_pence"], inv["status"]) == (49500, 9900, "unpaid")
    pdf = client.get(inv["pdf_url"], headers=applicant)
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    assert inv["number"].encode() in _pdf_text(pdf.content)
    # Another organisation sees neither the list nor the PDF.
    assert (
        client.get(f"/api/v1/applications/{app['id']}/invoices", headers=other).status_code == 404
    )
    assert client.get(inv["pdf_url"], headers=other).status_code == 404
    # Only an admin records the payment.
    url = f"/api/v1/invoices/{inv['id']}/paid"
    body = {"method": "bank_transfer", "reference": "BACS 20261203"}
    assert client.post(url, headers=applicant, json=body).status_code == 403
    admin = token(client, *staff(engine, "admin"))
    paid = client.post(url, headers=admin, json=body)
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "paid"
    assert client.post(url, headers=admin, json=body).status_code == 409
    exported = client.get("/api/v1/admin/invoices.csv", headers=admin)
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["number"], r["total_pence"], r["status"]) for r in rows] == [
        (inv["number"], "59400", "paid")
    ]
    assert rows[0]["organisation_name"] == "Invoiced Trust"
    assert rows[0]["payment_reference"] == "BACS 20261203"
    assert client.get("/api/v1/admin/invoices.csv", headers=applicant).status_code == 403
