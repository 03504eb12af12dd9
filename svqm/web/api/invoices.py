"""JSON: an application's invoices and credit notes, each one's PDF, an admin recording a
payment, and the finance team's CSV of every invoice."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from svqm.accounts.models import User
from svqm.reporting import exports
from svqm.web.deps import (
    ApiUser,
    Id,
    NowDep,
    RegistryDep,
    SessionDep,
    actor_of,
    api_role,
    finish_reading,
)
from svqm.web.pdf import render_pdf
from svqm.web.schemas import InvoicePaidRequest, InvoicePublic
from svqm.web.ui import templates
from svqm.web.views import invoices as views
from svqm.workflow import invoice_access, invoices, queries
from svqm.workflow.invoices import Invoice

router = APIRouter(prefix="/api/v1", tags=["invoices"])
AdminUser = Annotated[User, Depends(api_role("admin"))]


@router.get("/applications/{application_id}/invoices")
def list_invoices(
    application_id: Id, user: ApiUser, session: SessionDep, registry: RegistryDep
) -> list[InvoicePublic]:
    """The application's invoices and credit notes, oldest first: `amount_pence` before VAT,
    `vat_pence`, `status` (unpaid, paid, credited; a credit note: refund_due, cancels_unpaid)."""
    app = queries.get_application(session, application_id, actor_of(user), registry=registry)
    assert app.id is not None
    return [views.public(i) for i in invoices.of_application(session, app.id)]


def _visible(session: SessionDep, registry: RegistryDep, user: User, invoice_id: int) -> Invoice:
    return invoice_access.get_visible(session, invoice_id, actor_of(user), registry=registry)


@router.get("/invoices/{invoice_id}/pdf", response_class=Response)
def invoice_pdf(
    invoice_id: Id, user: ApiUser, session: SessionDep, registry: RegistryDep
) -> Response:
    """The invoice or credit note as an A4 PDF (WeasyPrint), its number on it."""
    inv = _visible(session, registry, user, invoice_id)
    html = templates.get_template("public/invoice_print.html").render(
        {"inv": views.shown(session, registry, inv)}
    )
    number = inv.number
    # The database connection goes back to the pool before the render.
    finish_reading(session)
    return Response(
        render_pdf(html),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{number}.pdf"'},
    )


@router.post("/invoices/{invoice_id}/paid")
def mark_invoice_paid(
    invoice_id: Id,
    body: InvoicePaidRequest,
    user: AdminUser,
    session: SessionDep,
    registry: RegistryDep,
    now: NowDep,
) -> InvoicePublic:
    """An admin records the payment: a bank transfer (quoting the invoice's reference) or a
    proforma paid; 409 when it is paid or credited already."""
    inv = _visible(session, registry, user, invoice_id)
    invoices.mark_paid(
        session,
        inv,
        actor_role=user.role,
        actor_id=user.id,
        method=body.method,
        reference=body.reference,
        now=now,
        expected_version=body.version,
    )
    return views.public(inv)


@router.get("/admin/invoices.csv", response_class=Response)
def invoices_csv(_user: AdminUser, session: SessionDep, registry: RegistryDep) -> Response:
    """Every invoice and credit note, for the finance team (as `svqm export invoices`)."""
    out = io.StringIO(newline="")
    exports.export(session, registry, "invoices", "csv", out)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="invoices.csv"'},
    )
