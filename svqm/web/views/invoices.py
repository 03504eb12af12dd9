"""What the invoice pages, the API, the PDF and the finance list show of an invoice."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from svqm.accounts import service as accounts
from svqm.web.format import day
from svqm.web.schemas import InvoicePublic
from svqm.workflow import invoices
from svqm.workflow.invoices import Invoice, pounds
from svqm.workflow.schemes import SchemeRegistry

STATUS_TEXT = {
    invoices.UNPAID: "Unpaid",
    invoices.PAID: "Paid",
    invoices.CREDITED: "Credited",
    invoices.REFUND_DUE: "Refund due",
    invoices.CANCELLED: "Cancels an unpaid invoice",
}
TAGS = {
    invoices.UNPAID: "govuk-tag--yellow",
    invoices.PAID: "govuk-tag--green",
    invoices.CREDITED: "govuk-tag--grey",
    invoices.REFUND_DUE: "govuk-tag--orange",
    invoices.CANCELLED: "govuk-tag--grey",
}


def pdf_url(inv: Invoice) -> str:
    return f"/api/v1/invoices/{inv.id}/pdf"


def public(inv: Invoice) -> InvoicePublic:
    assert inv.id is not None
    return InvoicePublic(
        id=inv.id,
        number=inv.number,
        kind=inv.kind,
        amount_pence=inv.amount_pence,
        vat_pence=inv.vat_pence,
        total_pence=inv.total_pence,
        status=inv.status,
        issued_at=inv.issued_at,
        due_at=inv.due_at,
        paid_at=inv.paid_at,
        reference=inv.reference,
        description=inv.description,
        application_id=inv.application_id,
        version=inv.version,
        pdf_url=pdf_url(inv),
    )


def shown(session: Session, registry: SchemeRegistry, inv: Invoice) -> dict[str, Any]:
    """An invoice as people read it (pages and the PDF)."""
    org = accounts.get_organisation(session, inv.organisation_id)
    policy = registry.get(inv.scheme).policy if inv.scheme in registry.ids() else None
    fees = policy.fees if policy else None
    return {
        "id": inv.id,
        "number": inv.number,
        "kind": inv.kind,
        "title": "Invoice" if inv.kind == invoices.INVOICE else "Credit note",
        "organisation": org.name if org else "",
        "application_id": inv.application_id,
        "issuer": policy.name if policy else inv.scheme,
        "issued": day(inv.issued_at),
        "due": day(inv.due_at),
        "reference": inv.reference,
        "description": inv.description,
        "net": pounds(inv.amount_pence),
        "vat": pounds(inv.vat_pence),
        "vat_rate": f"{inv.vat_percent:g}%",
        "total": pounds(inv.total_pence),
        "status": inv.status,
        "status_text": STATUS_TEXT.get(inv.status, inv.status),
        "tag": TAGS.get(inv.status, ""),
        "paid": day(inv.paid_at) if inv.paid_at else "",
        "payment": f"{inv.payment_method.replace('_', ' ')} {inv.payment_reference}".strip(),
        "pay_to": fees.pay_to if fees else "",
        "pdf_url": pdf_url(inv),
        "pdf_page": f"/invoices/{inv.id}.pdf",
        "version": inv.version,
    }


def of_application(
    session: Session, registry: SchemeRegistry, application_id: int
) -> list[dict[str, Any]]:
    return [shown(session, registry, i) for i in invoices.of_application(session, application_id)]
