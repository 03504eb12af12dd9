"""The steps of eligibility: the organisation answers the questions, an admin decides a
case-by-case industry. Each is an audit event of the application (its state does not move)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session

from svqm.accounts.models import Organisation
from svqm.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Reason,
    StaleVersion,
    field_of,
)
from svqm.policy import Eligibility, Policy
from svqm.workflow import eligibility as rules_of
from svqm.workflow.eligibility import ApplicationEligibility
from svqm.workflow.models import Application
from svqm.workflow.schemes import SchemeRegistry
from svqm.workflow.service import Actor, record_change

ANSWER, APPROVE, REFUSE = "answer_eligibility", "approve_eligibility", "refuse_eligibility"


def rules(policy: Policy) -> Eligibility:
    """The policy's questions, or InvalidInput when the scheme asks none."""
    if policy.eligibility is None:
        raise InvalidInput(f"{policy.name} asks no eligibility questions")
    return policy.eligibility


def _open(policy: Policy, app: Application, what: str) -> None:
    if app.state != policy.workflows.application.initial:
        state = policy.workflows.application.state(app.state).title
        raise Conflict(f"eligibility is {what} before the application is sent (it is {state})")


def answer(
    session: Session,
    app: Application,
    *,
    sector: str,
    turnover_band: str,
    industries: Sequence[str],
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
    expected_version: int | None = None,
) -> ApplicationEligibility:
    """Record the organisation's answers (again: they replace the last, and a case-by-case
    decision is asked for afresh). Every unknown choice is named (InvalidInput)."""
    if actor.role != "applicant":
        raise PermissionDenied("the organisation answers the eligibility questions")
    if actor.organisation_id != app.organisation_id:
        raise NotFound(f"no application {app.id}")
    policy = registry.for_subject(session, app).policy
    el = rules(policy)
    _open(policy, app, "answered")
    if expected_version is not None and expected_version != app.version:
        raise StaleVersion("the application changed since you read it; reload it and try again")
    problems: list[str] = []
    chosen = el.sector(sector)
    if chosen is None:
        names = ", ".join(c.id for c in el.sectors)
        problems.append(
            Reason(f"'{sector}' is not a sector (choose one of: {names})", field="sector")
        )
    band = el.band(turnover_band)
    if band is None:
        names = ", ".join(c.id for c in el.turnover_bands)
        problems.append(
            Reason(
                f"'{turnover_band}' is not a turnover band (choose one of: {names})",
                field="turnover_band",
            )
        )
    for n, industry in enumerate(industries):
        if el.industry(industry) is None:
            problems.append(
                Reason(f"'{industry}' is not an industry of the screen", field=f"industries.{n}")
            )
    if len(set(industries)) != len(industries):
        problems.append(Reason("each industry is named once", field="industries"))
    if problems:
        raise InvalidInput("; ".join(problems), field=field_of(problems[0]))
    assert chosen is not None
    assert band is not None
    assert app.id is not None
    row = rules_of.answers(session, app.id) or ApplicationEligibility(
        application_id=app.id, sector=sector, turnover_band=turnover_band, answered_at=now
    )
    row.sector, row.turnover_band = chosen.id, band.id
    row.industries = ",".join(industries)
    row.answered_by_id, row.answered_at = actor.id, now
    row.decision, row.conditions, row.decided_by_id, row.decided_at = "", "", None, None
    session.add(row)
    # The organisation's sector, as the directory shows it, is the scheme's word for it.
    org = session.get(Organisation, app.organisation_id)
    if org is not None and org.sector != chosen.name:
        org.sector = chosen.name
        session.add(org)
    result = rules_of.outcome(el, row)
    said = [f"sector {chosen.name}", f"turnover {band.name}"]
    if result.refused or result.case_by_case:
        said.append("works in " + ", ".join((*result.refused, *result.case_by_case)))
    record_change(
        session,
        app,
        ANSWER,
        actor=actor,
        registry=registry,
        now=now,
        comment="eligibility answered: " + "; ".join(said),
    )
    session.flush()
    return row


def decide(
    session: Session,
    app: Application,
    *,
    approve: bool,
    conditions: str,
    actor: Actor,
    registry: SchemeRegistry,
    now: datetime,
    expected_version: int | None = None,
) -> ApplicationEligibility:
    """An admin decides a case-by-case industry: approves it with the conditions agreed upfront
    (required), or refuses it with the reason (required)."""
    if actor.role != "admin":
        raise PermissionDenied("only an admin decides a case-by-case eligibility")
    policy = registry.for_subject(session, app).policy
    el = rules(policy)
    _open(policy, app, "decided")
    if expected_version is not None and expected_version != app.version:
        raise StaleVersion("the application changed since you read it; reload it and try again")
    assert app.id is not None
    row = rules_of.answers(session, app.id)
    result = rules_of.outcome(el, row)
    if row is None or result.status not in (
        rules_of.AWAITING,
        rules_of.CONDITIONS_AGREED,
        rules_of.REFUSED_BY_ADMIN,
    ):
        raise Conflict("there is no case-by-case industry to decide on this application")
    text = conditions.strip()
    if not text:
        what = "the conditions agreed upfront" if approve else "the reason for refusing"
        raise InvalidInput(f"give {what}", field="conditions")
    row.decision = rules_of.APPROVED if approve else rules_of.REFUSED
    row.conditions, row.decided_by_id, row.decided_at = text, actor.id, now
    session.add(row)
    names = ", ".join(result.case_by_case)
    comment = (
        f"eligibility approved for working in {names}, on these conditions: {text}"
        if approve
        else f"eligibility refused for working in {names}: {text}"
    )
    record_change(
        session,
        app,
        APPROVE if approve else REFUSE,
        actor=actor,
        registry=registry,
        now=now,
        comment=comment,
    )
    session.flush()
    return row
