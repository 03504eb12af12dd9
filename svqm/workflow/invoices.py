"""Fees and invoices: the policy's price table makes an invoice when an application is submitted
(or, on an award, a renewal opened); an admin marks it paid against a bank-transfer reference or
a proforma; a withdrawal credits what was invoiced.

The price is the policy's `fees.prices` for the level, by the application's turnover band (its
eligibility answer) where the table is by band; a re-application is charged
`fees.reapplication_percent` of it. A renewal (an application at the level of an award in force
that it would supersede) is invoiced as one; where the policy invoices the award itself when its
renewal opens (`issue_invoice` on the award's step), the renewal application takes that invoice
over when it is submitted instead of being charged twice. VAT is `fees.vat_percent`. Invoice and
credit note numbers come from one counter row, bumped in the writer's transaction, so two at once
never share one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Column, Text, bindparam, update
from sqlmodel import Field, Session, SQLModel, col, select

from svqm.db import UtcDateTime, insert_now, new_row
from svqm.errors import Conflict, InvalidInput, PermissionDenied, StaleVersion
from svqm.policy import Fees, Policy
from svqm.workflow import awards, eligibility
from svqm.workflow.models import Application, Award

INVOICE, CREDIT_NOTE = "invoice", "credit_note"
UNPAID, PAID, CREDITED = "unpaid", "paid", "credited"
# A credit note: what it gives back (a paid invoice's money is owed back; an unpaid one is void).
REFUND_DUE, CANCELLED = "refund_due", "cancels_unpaid"
# Paid by: a bank transfer quoting the reference, or against a proforma invoice.
METHODS = ("bank_transfer", "proforma")


class InvoiceCounter(SQLModel, table=True):
    """The last number given, per series ("INV", "CN"): bumped in the writer's transaction."""

    __tablename__ = "invoice_counter"

    series: str = Field(primary_key=True, max_length=10)
    last: int = 0


class Invoice(SQLModel, table=True):
    """An invoice, or a credit note against one (`credits_id`), for an application or award."""

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=20, unique=True)
    kind: str = Field(default=INVOICE, max_length=20)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    application_id: int | None = Field(default=None, foreign_key="application.id", index=True)
    award_id: int | None = Field(default=None, foreign_key="award.id", index=True)
    credits_id: int | None = Field(default=None, foreign_key="invoice.id")
    scheme: str = Field(max_length=64)
    level: str = Field(max_length=64)
    turnover_band: str = Field(default="", max_length=64)
    description: str = Field(sa_column=Column(Text, nullable=False))
    # Net of VAT, the VAT on it, in pence (a credit note's are negative).
    amount_pence: int
    vat_pence: int
    vat_percent: float
    status: str = Field(default=UNPAID, max_length=20, index=True)
    issued_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    due_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    # What the payer quotes with a bank transfer (the invoice number).
    reference: str = Field(max_length=40)
    paid_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))
    paid_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    payment_method: str = Field(default="", max_length=20)
    payment_reference: str = Field(default="", max_length=100)
    version: int = 1

    @property
    def total_pence(self) -> int:
        return self.amount_pence + self.vat_pence


def pounds(pence: int) -> str:
    """'£1,194.00', '-£199.00'."""
    sign = "-" if pence < 0 else ""
    whole, part = divmod(abs(pence), 100)
    return f"{sign}£{whole:,}.{part:02d}"


def next_number(session: Session, series: str) -> str:
    """The next number of a series: the counter's row is updated first, so a second writer
    waits for (PostgreSQL's row lock, SQLite's write lock) and follows this one."""
    bumped = session.exec(
        update(InvoiceCounter)
        .where(col(InvoiceCounter.series) == series)
        .values(last=InvoiceCounter.last + 1)
    )
    if bumped.rowcount == 0:
        session.add(InvoiceCounter(series=series, last=1))
        session.flush()
        n = 1
    else:
        n = session.exec(select(InvoiceCounter.last).where(InvoiceCounter.series == series)).one()
    return f"{series}-{n:06d}"


def fees_of(policy: Policy) -> Fees:
    if policy.fees is None:
        raise InvalidInput(f"{policy.name} charges no fees")
    return policy.fees


def price(policy: Policy, level: str, band: str) -> int | None:
    """The level's price in pence for the turnover band (None: the table has none for it)."""
    if policy.fees is None:
        return None
    entry = policy.fees.prices.get(level)
    if entry is None:
        return None
    if isinstance(entry, int):
        return entry
    return entry.get(band)


def vat_of(net: int, percent: float) -> int:
    """VAT in whole pence, rounded half up (HMRC allows rounding to the nearest penny)."""
    return int((net * percent + 50) // 100) if net >= 0 else -vat_of(-net, percent)


def _band(session: Session, application_id: int | None) -> str:
    if application_id is None:
        return ""
    row = eligibility.answers(session, application_id)
    return row.turnover_band if row else ""


# Built once: every submission and renewal asks whether its subject is invoiced already.
_NOT_CREDITED = select(Invoice).where(Invoice.kind == INVOICE, col(Invoice.status) != CREDITED)
_OPEN_OF_APPLICATION = _NOT_CREDITED.where(
    col(Invoice.application_id) == bindparam("application_id")
).order_by(col(Invoice.id))
_OPEN_OF_AWARD_ALONE = _NOT_CREDITED.where(
    col(Invoice.award_id) == bindparam("award_id"), col(Invoice.application_id).is_(None)
).order_by(col(Invoice.id))


def _open_invoice(session: Session, **where: int | None) -> Invoice | None:
    """The subject's invoice not credited, if any (`application_id=` or `award_id=`)."""
    if where.keys() == {"application_id"} and where["application_id"] is not None:
        return session.exec(_OPEN_OF_APPLICATION, params=where).first()
    if where.keys() == {"award_id", "application_id"} and where["application_id"] is None:
        found = session.exec(_OPEN_OF_AWARD_ALONE, params={"award_id": where["award_id"]})
        return found.first()
    statement = _NOT_CREDITED
    for name, value in where.items():
        statement = statement.where(getattr(Invoice, name) == value)
    return session.exec(statement.order_by(col(Invoice.id))).first()


def issue_for(session: Session, policy: Policy, subject: Application | Award, now: datetime) -> str:
    """Invoice the subject's fee (its note for the audit comment): a submitted application's
    (a re-application's share of it; a renewal's, or the renewal invoice of its award), or a
    renewal opened on an award."""
    fees = fees_of(policy)
    if isinstance(subject, Application):
        if _open_invoice(session, application_id=subject.id) is not None:
            return "already invoiced"
        renewed = awards.renewed_by(session, policy, subject)
    else:
        renewed = subject
    if renewed is not None and (
        taken := _open_invoice(session, award_id=renewed.id, application_id=None)
    ):
        if isinstance(subject, Award):
            return f"renewal already invoiced ({taken.number})"
        # The award's renewal invoice is this application's: one fee, not two.
        taken.application_id = subject.id
        taken.version += 1
        session.add(taken)
        session.flush()
        return f"invoice {taken.number} (the renewal of the award) is this application's"
    app_id = subject.id if isinstance(subject, Application) else subject.application_id
    band = _band(session, app_id)
    net = price(policy, subject.level, band)
    level = policy.level(subject.level).name
    if net is None:
        return f"no fee in the price table for {level} at turnover '{band or 'unknown'}'"
    what = f"{policy.name}: {level} application and award"
    if isinstance(subject, Application) and subject.reapplies_id is not None:
        net = net * fees.reapplication_percent // 100
        what = f"{policy.name}: {level} re-application ({fees.reapplication_percent}% of the fee)"
    elif renewed is not None:
        what = f"{policy.name}: {level} renewal"
    if fees.extra.get(subject.level):
        what = f"{what} ({fees.extra[subject.level]})"
    number = next_number(session, fees.invoice_prefix)
    invoice = new_row(
        Invoice,
        number=number,
        organisation_id=subject.organisation_id,
        application_id=subject.id if isinstance(subject, Application) else None,
        award_id=renewed.id if renewed is not None else None,
        scheme=policy.id,
        level=subject.level,
        turnover_band=band,
        description=what,
        amount_pence=net,
        vat_pence=vat_of(net, fees.vat_percent),
        vat_percent=fees.vat_percent,
        issued_at=now,
        due_at=now + timedelta(days=fees.due_days),
        reference=number,
    )
    insert_now(session, invoice)
    return f"invoice {number} issued"


def credit_for(session: Session, policy: Policy, app: Application, now: datetime) -> str:
    """A credit note for each invoice of the application not yet credited (a withdrawal)."""
    fees = fees_of(policy)
    open_ = session.exec(
        select(Invoice).where(
            Invoice.application_id == app.id,
            Invoice.kind == INVOICE,
            col(Invoice.status) != CREDITED,
        )
    ).all()
    notes = []
    for original in open_:
        number = next_number(session, fees.credit_prefix)
        was_paid = original.status == PAID
        session.add(
            Invoice(
                number=number,
                kind=CREDIT_NOTE,
                organisation_id=original.organisation_id,
                application_id=original.application_id,
                award_id=original.award_id,
                credits_id=original.id,
                scheme=original.scheme,
                level=original.level,
                turnover_band=original.turnover_band,
                description=f"Credit note for invoice {original.number} (application withdrawn)",
                amount_pence=-original.amount_pence,
                vat_pence=-original.vat_pence,
                vat_percent=original.vat_percent,
                status=REFUND_DUE if was_paid else CANCELLED,
                issued_at=now,
                due_at=now,
                reference=original.number,
            )
        )
        original.status = CREDITED
        original.version += 1
        session.add(original)
        notes.append(f"credit note {number} for {original.number}")
    session.flush()
    return "; ".join(notes) or "nothing invoiced to credit"


# Built once: every step that waits for payment asks what is still to pay.
_UNPAID = (
    select(Invoice)
    .where(
        col(Invoice.application_id) == bindparam("application_id"),
        Invoice.kind == INVOICE,
        Invoice.status == UNPAID,
    )
    .order_by(col(Invoice.id))
)


def unpaid(session: Session, application_id: int) -> list[Invoice]:
    """The application's invoices still to pay."""
    return list(session.exec(_UNPAID, params={"application_id": application_id}))


def of_application(session: Session, application_id: int) -> list[Invoice]:
    return list(
        session.exec(
            select(Invoice)
            .where(Invoice.application_id == application_id)
            .order_by(col(Invoice.id))
        )
    )


def mark_paid(
    session: Session,
    invoice: Invoice,
    *,
    actor_role: str,
    actor_id: int | None,
    method: str,
    reference: str,
    now: datetime,
    expected_version: int | None = None,
) -> Invoice:
    """An admin records the payment: a bank transfer (its reference) or a proforma's."""
    if actor_role != "admin":
        raise PermissionDenied("only an admin records a payment")
    if invoice.kind != INVOICE:
        raise Conflict(f"{invoice.number} is a credit note: there is nothing to pay")
    if expected_version is not None and expected_version != invoice.version:
        raise StaleVersion(f"invoice {invoice.number} changed since you read it; reload it")
    if invoice.status != UNPAID:
        raise Conflict(f"invoice {invoice.number} is {invoice.status.replace('_', ' ')} already")
    if method not in METHODS:
        raise InvalidInput("pay by bank_transfer or proforma", field="method")
    bumped = session.exec(
        update(Invoice)
        .where(col(Invoice.id) == invoice.id, col(Invoice.version) == invoice.version)
        .values(
            status=PAID,
            paid_at=now,
            paid_by_id=actor_id,
            payment_method=method,
            payment_reference=reference.strip()[:100],
            version=invoice.version + 1,
        )
    )
    if bumped.rowcount != 1:
        raise StaleVersion(f"invoice {invoice.number} changed since you read it; reload it")
    session.refresh(invoice)
    return invoice


def listing(session: Session, *, status: str | None = None) -> list[Invoice]:
    """Every invoice and credit note, newest first (the finance list and export)."""
    statement = select(Invoice).order_by(col(Invoice.id).desc())
    if status:
        statement = statement.where(Invoice.status == status)
    return list(session.exec(statement))


def counts(session: Session) -> dict[str, int]:
    """Invoices issued, paid (and paid after their due date) and unpaid, credit notes, and the
    invoices of re-applications, everywhere (the simulation's report)."""
    rows = session.exec(
        select(Invoice, col(Application.reapplies_id)).outerjoin(
            Application, col(Application.id) == col(Invoice.application_id)
        )
    ).all()
    issued = [(i, again) for i, again in rows if i.kind == INVOICE]
    late = [i for i, _ in issued if i.status == PAID and i.paid_at and i.paid_at > i.due_at]
    return {
        "issued": len(issued),
        "paid": sum(1 for i, _ in issued if i.status == PAID),
        "paid after the due date": len(late),
        "unpaid": sum(1 for i, _ in issued if i.status == UNPAID),
        "credit notes": sum(1 for i, _ in rows if i.kind == CREDIT_NOTE),
        "for re-applications": sum(1 for _, again in issued if again is not None),
    }
