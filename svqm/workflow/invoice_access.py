"""Who may read an invoice: the people of its application (an admin: any)."""

from __future__ import annotations

from sqlmodel import Session

from svqm.errors import NotFound
from svqm.workflow import queries
from svqm.workflow.invoices import Invoice
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor


def get_visible(
    session: Session, invoice_id: int, actor: Actor, *, registry: SchemeRegistry
) -> Invoice:
    """An invoice of an application the actor may see (an admin: any); else not found."""
    inv = session.get(Invoice, invoice_id)
    if inv is not None and actor.role == "admin":
        return inv
    if inv is None or inv.application_id is None:
        raise NotFound(f"no invoice {invoice_id}")
    try:
        queries.get_application(session, inv.application_id, actor, registry=registry)
    except NotFound:
        raise NotFound(f"no invoice {invoice_id}") from None
    return inv
