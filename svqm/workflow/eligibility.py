"""Eligibility: the questions an organisation answers before its application is submitted.

The questions are the policy's `eligibility`: a sector and a turnover band (choices from the
policy), and the risk-industry screen in two tiers. An industry of the `refused` tier refuses the
application (the guard `eligibility_met` lists it); one of the `case_by_case` tier waits for an
admin, who approves it with the conditions agreed upfront, or refuses it. Answering and deciding
are audit events of the application (its state does not move; svqm.workflow.screening).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Text, bindparam
from sqlmodel import Field, Session, SQLModel, col, select

from svqm.accounts.models import Organisation
from svqm.db import UtcDateTime
from svqm.errors import Reason
from svqm.policy import Eligibility, Policy
from svqm.workflow.models import Application
from svqm.workflow.schemes import SchemeRegistry

APPROVED, REFUSED = "approved", "refused"
# What an application's answers come to, for the guard, the pages and the API.
NOT_ANSWERED, ELIGIBLE, EXCLUDED = "not_answered", "eligible", "excluded"
AWAITING, CONDITIONS_AGREED, REFUSED_BY_ADMIN = "awaiting_decision", "approved", "refused"


class ApplicationEligibility(SQLModel, table=True):
    """An application's answers to the eligibility questions, and the admin's decision on a
    case-by-case industry."""

    __tablename__ = "application_eligibility"

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id", unique=True)
    sector: str = Field(max_length=64)
    turnover_band: str = Field(max_length=64)
    # The risk-screen industries the organisation works in, ids separated by commas ("" none).
    industries: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    answered_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    answered_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    # A case-by-case industry's decision: "" (none yet), APPROVED or REFUSED.
    decision: str = Field(default="", max_length=20)
    # The conditions agreed upfront (approved), or the reason (refused).
    conditions: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    decided_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    decided_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )

    @property
    def industry_ids(self) -> list[str]:
        return [i for i in self.industries.split(",") if i]


@dataclass(frozen=True)
class Outcome:
    """What the answers come to: a status (one of the constants above) and the industries of
    each tier the organisation named, by name."""

    status: str
    refused: tuple[str, ...] = ()
    case_by_case: tuple[str, ...] = ()


# Built once: every submission's guard reads the answers.
_ANSWERS = select(ApplicationEligibility).where(
    col(ApplicationEligibility.application_id) == bindparam("application_id")
)


def answers(session: Session, application_id: int) -> ApplicationEligibility | None:
    return session.exec(_ANSWERS, params={"application_id": application_id}).first()


def outcome(rules: Eligibility, row: ApplicationEligibility | None) -> Outcome:
    if row is None:
        return Outcome(NOT_ANSWERED)
    refused: list[str] = []
    cases: list[str] = []
    for industry_id in row.industry_ids:
        found = rules.industry(industry_id)
        if found is None:
            continue
        (refused if found[0] == "refused" else cases).append(found[1].name)
    if refused:
        return Outcome(EXCLUDED, tuple(refused), tuple(cases))
    if not cases:
        return Outcome(ELIGIBLE)
    status = {APPROVED: CONDITIONS_AGREED, REFUSED: REFUSED_BY_ADMIN}.get(row.decision, AWAITING)
    return Outcome(status, (), tuple(cases))


def unmet(session: Session, policy: Policy, application_id: int) -> list[str]:
    """Every reason the application's eligibility stops it being submitted (none asked: none)."""
    rules = policy.eligibility
    if rules is None:
        return []
    row = answers(session, application_id)
    result = outcome(rules, row)
    field = "eligibility"
    if result.status == NOT_ANSWERED:
        return [Reason("answer the eligibility questions", field=field)]
    out: list[str] = []
    if row is not None and rules.sector(row.sector) is None:
        out.append(Reason(f"'{row.sector}' is no longer a sector of the scheme", field=field))
    if row is not None and rules.band(row.turnover_band) is None:
        out.append(Reason(f"'{row.turnover_band}' is no longer a turnover band", field=field))
    for name in result.refused:
        out.append(Reason(f"{policy.name} does not accredit organisations in {name}", field=field))
    if result.status == AWAITING:
        names = ", ".join(result.case_by_case)
        out.append(
            Reason(
                f"an admin has not yet decided on working in {names} (case by case)", field=field
            )
        )
    if result.status == REFUSED_BY_ADMIN and row is not None:
        why = f": {row.conditions}" if row.conditions else ""
        out.append(Reason(f"eligibility refused by the scheme{why}", field=field))
    return out


@dataclass(frozen=True)
class Waiting:
    """An application whose case-by-case industry waits for an admin's decision."""

    application_id: int
    organisation: str
    scheme: str
    level: str
    industries: tuple[str, ...]
    answered_at: datetime


def waiting(session: Session, registry: SchemeRegistry) -> list[Waiting]:
    """Every application still open whose answers name a case-by-case industry no admin has
    decided on, oldest answer first (the admin's queue of eligibility decisions)."""
    rows = session.exec(
        select(ApplicationEligibility, Application, Organisation.name)
        .join(Application, col(Application.id) == col(ApplicationEligibility.application_id))
        .join(Organisation, col(Organisation.id) == col(Application.organisation_id))
        .where(ApplicationEligibility.decision == "", ApplicationEligibility.industries != "")
        .order_by(col(ApplicationEligibility.answered_at), col(ApplicationEligibility.id))
    ).all()
    out: list[Waiting] = []
    for row, app, organisation in rows:
        policy = registry.for_subject(session, app).policy
        flow = policy.workflows.application
        if policy.eligibility is None or flow.state(app.state).terminal:
            continue
        found = outcome(policy.eligibility, row)
        if found.status != AWAITING:
            continue
        out.append(
            Waiting(
                application_id=app.id or 0,
                organisation=organisation,
                scheme=policy.name,
                level=policy.level(app.level).name,
                industries=found.case_by_case,
                answered_at=row.answered_at,
            )
        )
    return out
