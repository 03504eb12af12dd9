"""What the eligibility pages and API show of an application: the questions and the answers."""

from __future__ import annotations

from sqlmodel import Session

from svqm.policy import Choice
from svqm.web.schemas import ChoicePublic, EligibilityPublic, EligibilityQuestions
from svqm.workflow import eligibility
from svqm.workflow.models import Application
from svqm.workflow.schemes import SchemeRegistry


def public(session: Session, registry: SchemeRegistry, app: Application) -> EligibilityPublic:
    assert app.id is not None
    policy = registry.for_subject(session, app).policy
    rules = policy.eligibility
    row = eligibility.answers(session, app.id) if rules is not None else None
    questions = None
    if rules is not None:

        def choices(items: list[Choice]) -> list[ChoicePublic]:
            return [ChoicePublic(id=c.id, name=c.name) for c in items]

        questions = EligibilityQuestions(
            sectors=choices(rules.sectors),
            turnover_bands=choices(rules.turnover_bands),
            screen_question=rules.screen.question,
            refused=choices(rules.screen.refused),
            case_by_case=choices(rules.screen.case_by_case),
        )
    status = eligibility.outcome(rules, row).status if rules is not None else "eligible"
    return EligibilityPublic(
        application_id=app.id,
        asked=rules is not None,
        questions=questions,
        sector=row.sector if row else None,
        turnover_band=row.turnover_band if row else None,
        industries=row.industry_ids if row else [],
        answered_at=row.answered_at if row else None,
        status=status,
        conditions=row.conditions if row else "",
        decided_at=row.decided_at if row else None,
        unmet=[str(r) for r in eligibility.unmet(session, policy, app.id)],
    )
