"""Simulated payments, where the policy charges fees: an admin records each invoice's bank
transfer some days after it is issued (some after the due date), and where the policy makes a
step wait for payment (the guard `invoice_paid`, say on the start of the review) the person
whose step it is takes it only once the application's invoices are paid.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy.orm import object_session
from sqlmodel import Session

from svqm.simulate.audits import Auditing
from svqm.simulate.route import at_work
from svqm.simulate.world import Member
from svqm.workflow import invoices
from svqm.workflow.models import Application

# Days from an invoice to its payment (uniform); invoices are due in `fees.due_days` (30 for
# SVQM), so about half are paid late.
PAY_DAYS = (2, 60)


class Paying(Auditing):
    """People who also pay their invoices, and wait for payment where the policy says so."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # A chance of its own, seeded from the run's (never drawn from it): the rest of the run
        # draws what it drew before payments existed.
        self._pay = random.Random(hash(self.rng.getstate()[1]))
        self._billed: set[int] = set()  # invoices whose payment is on the calendar
        self._waiting: dict[int, Member] = {}  # application id -> member: a step waits to be paid
        self.waited = 0  # steps that waited for payment

    def act(
        self, session: Session, m: Member, task: str, sid: int, arg: str, now: datetime
    ) -> None:
        if task == "pay":
            self._pay_invoice(session, sid, now)
            return
        super().act(session, m, task, sid, arg, now)

    def _waits_for_payment(self, app: Application) -> bool:
        role = self.route.role_for(app.state)
        if role is None or role == "applicant":
            return False
        return any("invoice_paid" in t.guards for t in self.route.moves(app.state, role))

    def _next_turn(self, m: Member, app: Application, now: datetime) -> None:
        session = object_session(app)
        if session is None or app.id is None or not self.staff.get("admin"):
            super()._next_turn(m, app, now)
            return
        assert isinstance(session, Session)
        unpaid = invoices.unpaid(session, app.id)
        for invoice in unpaid:
            if invoice.id is None or invoice.id in self._billed:
                continue
            self._billed.add(invoice.id)
            day = invoice.issued_at + timedelta(days=self._pay.uniform(*PAY_DAYS))
            self._later(
                m, max(at_work(day, self._pay), now + timedelta(hours=1)), "pay", invoice.id, ""
            )
        if unpaid and self._waits_for_payment(app):
            self._waiting[app.id] = m
            self.waited += 1
            return
        super()._next_turn(m, app, now)

    def _pay_invoice(self, session: Session, invoice_id: int, now: datetime) -> None:
        invoice = session.get(invoices.Invoice, invoice_id)
        if invoice is None or invoice.status != invoices.UNPAID:  # credited: withdrawn meanwhile
            return
        admin = self._pay.choice(self.staff["admin"])
        invoices.mark_paid(
            session,
            invoice,
            actor_role="admin",
            actor_id=admin.id,
            method="bank_transfer",
            reference=f"simulated transfer {invoice.number}",
            now=now,
        )
        self.actions += 1
        app_id = invoice.application_id
        if app_id is None or app_id not in self._waiting or invoices.unpaid(session, app_id):
            return
        member = self._waiting.pop(app_id)
        app = session.get(Application, app_id)
        if app is not None:
            self._next_turn(member, app, now)
