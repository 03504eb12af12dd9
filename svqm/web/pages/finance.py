"""The finance pages: every invoice for admins, a payment recorded, the CSV for finance, and
an invoice's PDF for whoever may see its application."""

from __future__ import annotations

import io
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from svqm.reporting import exports
from svqm.web.deps import (
    CSRF,
    AdminPage,
    Id,
    Page,
    PageUser,
    RegistryDep,
    SessionDep,
    finish_reading,
)
from svqm.web.forms import FormDep, attempt, field, version_of
from svqm.web.pdf import render_pdf
from svqm.web.ui import after_post, flash_of, render, templates
from svqm.web.views import invoices as views
from svqm.workflow import invoice_access, invoices
from svqm.workflow.service import Actor

router = APIRouter(dependencies=[CSRF], include_in_schema=False)
DONE = {"paid": "Payment recorded."}


def _page(page: Page, **shown: Any) -> HTMLResponse:
    rows = [views.shown(page.session, page.registry, i) for i in invoices.listing(page.session)]
    unpaid = invoices.listing(page.session, status=invoices.UNPAID)
    return render(
        page.request,
        "admin/invoices.html",
        auth=page.auth,
        title="Invoices",
        rows=rows,
        unpaid_count=len(unpaid),
        unpaid_total=invoices.pounds(sum(i.total_pence for i in unpaid)),
        **shown,
    )


@router.get("/admin/invoices")
def invoice_list(page: AdminPage, done: str = "") -> HTMLResponse:
    """Every invoice and credit note, with the forms to record payments."""
    return _page(page, flash=flash_of(done, DONE))


@router.post("/admin/invoices/{invoice_id}/paid", response_model=None)
def mark_paid(invoice_id: Id, page: AdminPage, form: FormDep) -> Response:
    """Record a bank transfer or a proforma's payment; back to the page it was made on."""
    inv = invoice_access.get_visible(
        page.session, invoice_id, Actor.of(page.auth.user), registry=page.registry
    )
    back = field(form, "back", limit=100)
    if not (back == "/admin/invoices" or back.startswith("/admin/applications/")):
        back = "/admin/invoices"

    def write() -> None:
        invoices.mark_paid(
            page.session,
            inv,
            actor_role=page.auth.user.role,
            actor_id=page.auth.user.id,
            method=field(form, "method", limit=20),
            reference=field(form, "reference", limit=100),
            now=page.now,
            expected_version=version_of(form),
        )

    if failure := attempt(page.session, write):
        return _page(page, errors=[{"text": failure.detail, "href": f"#invoice-{invoice_id}"}])
    return after_post(back, "paid", f"#invoice-{invoice_id}")


@router.get("/admin/invoices.csv", response_model=None)
def invoices_csv(page: AdminPage) -> Response:
    """Every invoice and credit note as CSV (as `svqm export invoices --format csv`)."""
    out = io.StringIO(newline="")
    exports.export(page.session, page.registry, "invoices", "csv", out)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="invoices.csv"'},
    )


@router.get("/invoices/{invoice_id}.pdf", response_model=None)
def invoice_pdf(
    invoice_id: Id, auth: PageUser, session: SessionDep, registry: RegistryDep
) -> Response:
    """The invoice or credit note as a PDF, for the people of its application."""
    inv = invoice_access.get_visible(session, invoice_id, Actor.of(auth.user), registry=registry)
    html = templates.get_template("public/invoice_print.html").render(
        {"inv": views.shown(session, registry, inv)}
    )
    number = inv.number
    finish_reading(session)
    return Response(
        render_pdf(html),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{number}.pdf"'},
    )
