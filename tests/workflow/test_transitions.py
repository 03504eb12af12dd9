from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import Session, select

from svqm.errors import GuardRefused, NotFound, PermissionDenied, StaleVersion, TransitionRefused
from svqm.policy import load_policies
from svqm.workflow import service as workflow
from svqm.workflow.models import Application, AuditEvent, Award
from svqm.workflow.schemes import SchemeRegistry
from tests.conftest import POLICIES
from tests.factories import add_pledges, open_app, store_at
from tests.workflow.harness import application_in, award_in, make_cast, satisfy

ROLES = ["applicant", "assessor", "panel", "admin", "system"]


def _cases() -> list[tuple[str, str, str, str, tuple[str, ...]]]:
    cases = []
    for scheme, policy in sorted(load_policies(POLICIES).items()):
        for kind in ("application", "award"):
            for t in policy.workflows.of(kind).transitions:
                for source in t.source:
                    cases.append((scheme, kind, t.trigger, source, tuple(t.roles)))
    return cases


CASES = _cases()


def _subject(
    session: Session,
    registry: SchemeRegistry,
    cast,
    scheme: str,
    kind: str,
    state: str,
    now: datetime,
    self_service: bool = False,
) -> Application | Award:
    # Silver where the scheme has it (SVQM's, with a prerequisite), else the scheme's first level;
    # a self-service level for the steps that are only theirs.
    policy = registry.get(scheme).policy
    levels = [lv.id for lv in policy.levels if not self_service]
    if self_service:
        levels = [lv.id for lv in policy.levels if lv.self_service]
    level = "silver" if "silver" in levels else levels[0]
    if kind == "application":
        return application_in(
            session, registry, cast, scheme=scheme, level=level, state=state, at=now
        )
    return award_in(
        session,
        registry,
        cast,
        scheme=scheme,
        level=level,
        state=state,
        issued=now - timedelta(days=400),
        at=now,
    )


def _events(session: Session, subject: Application | Award) -> int:
    kind = workflow.kind_of(subject)
    return len(
        session.exec(
            select(AuditEvent).where(
                AuditEvent.subject_kind == kind, AuditEvent.subject_id == subject.id
            )
        ).all()
    )


@pytest.mark.parametrize(
    ("scheme", "kind", "trigger", "source", "roles"),
    CASES,
    ids=[f"{c[0]}-{c[1]}-{c[2]}-from-{c[3]}" for c in CASES],
)
def test_every_transition_fires_for_an_allowed_role(
    session, registry, now, tmp_path, scheme, kind, trigger, source, roles
):
    cast = make_cast(session)
    policy = registry.get(scheme).policy
    t = policy.workflows.of(kind).transition(trigger, source)
    assert t is not None
    subject = _subject(
        session, registry, cast, scheme, kind, source, now, self_service=bool(t.self_service)
    )
    at, comment = satisfy(session, policy, registry, store_at(tmp_path), cast, subject, t, now)
    version = subject.version

    event = workflow.fire(
        session,
        subject,
        trigger,
        actor=cast.actor(roles[0]),
        registry=registry,
        now=at,
        comment=comment,
    )

    assert subject.state == t.dest
    assert subject.version == version + 1
    assert (event.source, event.dest, event.trigger, event.seq) == (
        source,
        t.dest,
        trigger,
        version,
    )
    # One event appended: the subject's earlier changes (eligibility answered) are its versions.
    assert _events(session, subject) == version
    if "issue_award" in t.effects:
        award = session.exec(select(Award).where(Award.application_id == subject.id)).one()
        # An award starts in its own workflow's first state ("active"; a charter's "signed").
        assert award.state == policy.workflows.award.initial
        assert award.expires_at > award.issued_at


@pytest.mark.parametrize(
    ("scheme", "kind", "trigger", "source", "roles"),
    CASES,
    ids=[f"{c[0]}-{c[1]}-{c[2]}-from-{c[3]}" for c in CASES],
)
def test_every_transition_refuses_the_other_roles(
    session, registry, now, scheme, kind, trigger, source, roles
):
    cast = make_cast(session)
    subject = _subject(session, registry, cast, scheme, kind, source, now)
    for role in (r for r in ROLES if r not in roles):
        with pytest.raises(PermissionDenied, match=f"a {role} may not '{trigger}'"):
            workflow.fire(
                session,
                subject,
                trigger,
                actor=cast.actor(role),
                registry=registry,
                now=now,
                comment="why",
            )
    assert subject.state == source
    assert subject.version == 1
    assert _events(session, subject) == 0


def test_submit_lists_every_unmet_requirement(session, registry, now):
    cast = make_cast(session)
    app = open_app(session, registry, cast.applicant, level="bronze", now=now)
    add_pledges(session, registry, app, cast.applicant, now=now, count=2)

    with pytest.raises(GuardRefused) as refused:
        workflow.fire(
            session, app, "submit", actor=cast.actor("applicant"), registry=registry, now=now
        )

    unmet = refused.value.unmet
    assert any("under at least 6 different themes" in r and "2 covered" in r for r in unmet)
    assert "evidence missing: Signed executive commitment to the pledges" in unmet
    assert sum(r.startswith("evidence missing: Delivery plan for the pledge: ") for r in unmet) == 2
    # People read these: requirement titles, never the checklist's slot ids.
    assert not any("pledge_plan" in r or "executive_commitment" in r for r in unmet)
    assert len(unmet) == 4
    assert app.state == "draft"


def test_silver_needs_bronze_held(session, registry, now):
    cast = make_cast(session)
    with pytest.raises(GuardRefused) as refused:
        open_app(session, registry, cast.applicant, level="Silver", now=now)
    assert refused.value.unmet == ["Silver needs a Bronze award in force"]


def test_gold_needs_silver_for_twelve_months(session, registry, now):
    cast = make_cast(session)
    award_in(
        session,
        registry,
        cast,
        scheme="svqm",
        level="silver",
        state="active",
        issued=now - timedelta(days=300),
        at=now,
    )
    with pytest.raises(GuardRefused) as refused:
        open_app(session, registry, cast.applicant, level="gold", now=now)
    assert refused.value.unmet == ["Gold needs a Silver award in force held for at least 12 months"]
    open_app(session, registry, cast.applicant, level="gold", now=now + timedelta(days=70))


def test_level_found_by_alias(session, registry, now):
    cast = make_cast(session)
    app = open_app(session, registry, cast.applicant, level="Level 1", now=now, eligible=False)
    assert (app.level, app.state, app.version) == ("bronze", "draft", 1)


def test_a_trigger_from_the_wrong_state_is_refused_with_what_is_allowed(session, registry, now):
    cast = make_cast(session)
    app = open_app(session, registry, cast.applicant, now=now)
    with pytest.raises(TransitionRefused, match=r"allowed now: submit, withdraw"):
        workflow.fire(
            session, app, "confirm_award", actor=cast.actor("panel"), registry=registry, now=now
        )


def test_stale_expected_version_is_a_conflict(session, registry, now):
    cast = make_cast(session)
    app = open_app(session, registry, cast.applicant, now=now, eligible=False)
    with pytest.raises(StaleVersion):
        workflow.fire(
            session,
            app,
            "withdraw",
            actor=cast.actor("applicant"),
            registry=registry,
            now=now,
            expected_version=7,
        )
    workflow.fire(
        session,
        app,
        "withdraw",
        actor=cast.actor("applicant"),
        registry=registry,
        now=now,
        expected_version=1,
    )
    assert (app.state, app.version) == ("withdrawn", 2)


def test_other_organisations_application_is_not_found(session, registry, now):
    cast, other = make_cast(session), make_cast(session)
    app = open_app(session, registry, cast.applicant, now=now)
    with pytest.raises(NotFound):
        workflow.fire(
            session, app, "withdraw", actor=other.actor("applicant"), registry=registry, now=now
        )


def test_only_the_assigned_assessor_may_act(session, registry, now):
    cast, other = make_cast(session), make_cast(session)
    app = application_in(
        session, registry, cast, scheme="svqm", level="bronze", state="submitted", at=now
    )
    with pytest.raises(PermissionDenied, match="only the assessor assigned"):
        workflow.fire(
            session, app, "start_review", actor=other.actor("assessor"), registry=registry, now=now
        )


def test_the_assessor_can_never_be_the_panel_decider(session, registry, now):
    cast = make_cast(session)
    app = application_in(
        session, registry, cast, scheme="svqm", level="bronze", state="recommended_refusal", at=now
    )
    # Same person in the panel role (a role change after assessing): four eyes still holds.
    app.assessor_id = cast.panel.id
    with pytest.raises(PermissionDenied, match="another panel member must"):
        workflow.fire(
            session, app, "confirm_refusal", actor=cast.actor("panel"), registry=registry, now=now
        )


def test_submit_assigns_the_least_loaded_assessor_without_conflict(
    session, registry, now, tmp_path
):
    cast, elsewhere = make_cast(session), make_cast(session)
    busy = cast.assessor
    queued = application_in(
        session, registry, elsewhere, scheme="svqm", level="bronze", state="under_review", at=now
    )
    queued.assessor_id = busy.id
    elsewhere.assessor.active = False
    from tests.factories import make_user

    free = make_user(session, "assessor")
    member = make_user(session, "assessor", cast.org)  # belongs to the applicant: a conflict
    app = open_app(session, registry, cast.applicant, level="bronze", now=now)
    policy = registry.get("svqm").policy
    t = policy.workflows.application.transition("submit", "draft")
    satisfy(session, policy, registry, store_at(tmp_path), cast, app, t, now)
    event = workflow.fire(
        session, app, "submit", actor=cast.actor("applicant"), registry=registry, now=now
    )
    assert app.assessor_id == free.id
    assert app.assessor_id not in (busy.id, member.id)
    # The record names the person, never their id.
    assert f"Assigned to {free.name or free.email} for assessment" in event.comment
    assert f"assessor {free.id}" not in event.comment


def test_appeal_window_counts_working_days_across_bank_holidays(session, registry):
    from datetime import UTC

    cast = make_cast(session)
    # Refused on Thursday 17 Dec 2026. 25 Dec, 28 Dec (the Boxing Day substitute) and 1 Jan are
    # bank holidays, so the tenth working day is Tuesday 5 January 2027 (GMT, so UTC midnight).
    decided = datetime(2026, 12, 17, 15, 0, tzinfo=UTC)
    app = application_in(
        session, registry, cast, scheme="svqm", level="bronze", state="not_awarded", at=decided
    )
    last_day = datetime(2027, 1, 5, 20, 0, tzinfo=UTC)
    with pytest.raises(GuardRefused, match="requirement"):
        workflow.fire(
            session,
            app,
            "appeal",
            actor=cast.actor("applicant"),
            registry=registry,
            now=datetime(2027, 1, 6, 0, 1, tzinfo=UTC),
            comment="we disagree",
        )
    with pytest.raises(GuardRefused):
        workflow.fire(
            session,
            app,
            "close_appeal_window",
            actor=workflow.SYSTEM,
            registry=registry,
            now=last_day,
        )
    workflow.fire(
        session,
        app,
        "appeal",
        actor=cast.actor("applicant"),
        registry=registry,
        now=last_day,
        comment="we disagree",
    )
    assert app.state == "appealed"
