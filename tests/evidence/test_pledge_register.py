"""The organisation's pledge register: revise and withdraw in draft, audited; carried up the levels;
the level's rule (carried, measured) refuses with its reasons."""

from __future__ import annotations

from datetime import timedelta

import pytest

from svqm.errors import Conflict, GuardRefused, NotFound
from svqm.evidence import pledges as pledge_service
from svqm.evidence.models import PledgeUpdate
from svqm.workflow import actions
from svqm.workflow import service as workflow
from svqm.workflow.models import Award
from tests.factories import actor, add_pledges, make_org, make_user, open_app
from tests.notify.timeline import T0, confirmed_award
from tests.workflow.harness import award_in, make_cast


def test_a_draft_pledge_is_revised_and_withdrawn_with_its_history_and_audit(session, registry, now):
    org = make_org(session)
    applicant = make_user(session, "applicant", org)
    app = open_app(session, registry, applicant, now=now, eligible=False)
    add_pledges(session, registry, app, applicant, now=now, count=2)
    first, second = pledge_service.list_pledges(session, app.id)
    version = app.version

    actions.revise_pledge(
        session,
        first,
        PledgeUpdate(target="25", unit="apprentices", baseline=4),
        actor=actor(applicant),
        registry=registry,
        now=now,
    )
    assert (first.target, first.unit, first.baseline, first.revision) == ("25", "apprentices", 4, 2)
    revisions = pledge_service.revisions_of(session, first.id)
    assert [(r.revision, r.change, r.target) for r in revisions] == [
        (1, "made", "10"),
        (2, "revised", "25"),
    ]
    assert (
        actions.withdraw_pledge(session, second, actor=actor(applicant), registry=registry, now=now)
        == "withdrawn"
    )
    assert [p.id for p in pledge_service.list_pledges(session, app.id)] == [first.id]
    events = workflow.history(session, app)
    assert [e.trigger for e in events] == ["revise_pledge", "withdraw_pledge"]
    assert "target" in events[0].comment
    assert "unit" in events[0].comment
    assert all(e.source == e.dest == "draft" for e in events)
    # Each change moves the version on: a step decided on the old pledges is a stale write.
    assert app.version == version + 2


def test_changing_nothing_writes_no_revision(session, registry, now):
    org = make_org(session)
    applicant = make_user(session, "applicant", org)
    app = open_app(session, registry, applicant, now=now, eligible=False)
    add_pledges(session, registry, app, applicant, now=now, count=1)
    (pledge,) = pledge_service.list_pledges(session, app.id)
    actions.revise_pledge(
        session,
        pledge,
        PledgeUpdate(target=pledge.target),
        actor=actor(applicant),
        registry=registry,
        now=now,
    )
    assert pledge.revision == 1
    assert workflow.history(session, app) == []


def test_pledges_are_fixed_once_submitted_and_hidden_from_other_organisations(
    session, registry, now
):
    org, other = make_org(session), make_org(session)
    applicant, stranger = (
        make_user(session, "applicant", org),
        make_user(session, "applicant", other),
    )
    app = open_app(session, registry, applicant, now=now)
    add_pledges(session, registry, app, applicant, now=now, count=1)
    (pledge,) = pledge_service.list_pledges(session, app.id)
    with pytest.raises(NotFound):
        actions.revise_pledge(
            session,
            pledge,
            PledgeUpdate(title="mine now"),
            actor=actor(stranger),
            registry=registry,
            now=now,
        )
    app.state = "submitted"
    session.add(app)
    session.flush()
    with pytest.raises(Conflict, match="still being prepared"):
        actions.revise_pledge(
            session,
            pledge,
            PledgeUpdate(title="later"),
            actor=actor(applicant),
            registry=registry,
            now=now,
        )
    with pytest.raises(Conflict):
        actions.withdraw_pledge(session, pledge, actor=actor(applicant), registry=registry, now=now)
    assert pledge.title.startswith("Pledge 1")
    assert pledge.status == "active"


def _silver_unmet(session, registry, cast, app) -> list[str]:
    _, unmet = workflow.available(
        session, app, actor=cast.actor("applicant"), registry=registry, now=T0
    )
    return unmet.get("submit", [])


def test_silver_carries_the_bronze_pledges_and_measures_each(session, registry, tmp_path):
    cast = make_cast(session)
    bronze = confirmed_award(session, registry, cast, tmp_path, "bronze")
    made = pledge_service.list_pledges(session, bronze.application_id)
    assert len(made) == 6
    silver = open_app(session, registry, cast.applicant, level="silver", now=T0 + timedelta(days=1))
    held = pledge_service.application_pledges(session, silver.id)
    # The same pledges, not copies: Silver measures what Bronze committed to.
    assert [p.id for p, _ in held] == [p.id for p in made]
    assert {link.disposition for _, link in held} == {"carried"}
    assert not any(
        "carried" in r or "not measured" in r
        for r in _silver_unmet(session, registry, cast, silver)
    )

    # A pledge without its unit is not measured: the refusal names it and what it lacks.
    first = made[0]
    later = T0 + timedelta(days=2)
    actions.revise_pledge(
        session,
        first,
        PledgeUpdate(unit=""),
        actor=cast.actor("applicant"),
        registry=registry,
        now=later,
    )
    unmet = _silver_unmet(session, registry, cast, silver)
    assert f"pledge '{first.title}' is not measured yet: give it a unit" in unmet
    assert dict(held_disposition(session, silver.id))[first.id] == "revised"

    # Retiring every carried pledge leaves nothing measured against Bronze: refused, with why.
    for p in made:
        assert (
            actions.withdraw_pledge(
                session, p, actor=cast.actor("applicant"), registry=registry, now=later
            )
            == "retired"
        )
    unmet = _silver_unmet(session, registry, cast, silver)
    assert any("at least 1 pledge carried" in r and "0 carried" in r for r in unmet), unmet
    with pytest.raises(GuardRefused) as refused:
        workflow.fire(
            session, silver, "submit", actor=cast.actor("applicant"), registry=registry, now=later
        )
    assert any("0 carried" in r for r in refused.value.unmet)
    # Retired in Silver, the pledges still stand on the Bronze award's application.
    assert len(pledge_service.list_pledges(session, bronze.application_id)) == 6


def held_disposition(session, application_id):
    return [
        (p.id, link.disposition)
        for p, link in pledge_service.application_pledges(session, application_id)
    ]


def test_silver_over_a_bronze_award_without_pledges_is_refused_with_the_reason(
    session, registry, now
):
    cast = make_cast(session)
    award_in(
        session,
        registry,
        cast,
        scheme="svqm",
        level="bronze",
        state="active",
        issued=now - timedelta(days=40),
        at=now,
    )
    silver = open_app(session, registry, cast.applicant, level="silver", now=now)
    assert pledge_service.list_pledges(session, silver.id) == []
    _, unmet = workflow.available(
        session, silver, actor=cast.actor("applicant"), registry=registry, now=now
    )
    assert any(
        "measures the pledges of the award it builds on" in r and "0 carried" in r
        for r in unmet["submit"]
    )


def test_a_renewal_carries_only_pledges_in_force(session, registry, tmp_path):
    cast = make_cast(session)
    bronze = confirmed_award(session, registry, cast, tmp_path, "bronze")
    bronze.state = "withdrawn"
    session.add(bronze)
    session.flush()
    renewal = open_app(session, registry, cast.applicant, now=T0 + timedelta(days=1))
    # A withdrawn award holds nothing in force, so nothing is carried.
    assert pledge_service.list_pledges(session, renewal.id) == []
    assert session.get(Award, bronze.id).state == "withdrawn"


def test_silver_carries_the_pledges_of_a_health_bronze_that_counts_for_it(session, registry, now):
    from svqm.workflow.models import Application
    from tests.workflow.harness import _pledges

    cast = make_cast(session)
    health = award_in(
        session,
        registry,
        cast,
        scheme="svqm-health",
        level="health_bronze",
        state="active",
        issued=now - timedelta(days=40),
        at=now,
    )
    holder = session.get(Application, health.application_id)
    _pledges(session, registry.get("svqm-health").policy, holder, now)
    silver = open_app(session, registry, cast.applicant, level="silver", now=now)
    carried = pledge_service.application_pledges(session, silver.id)
    assert len(carried) == 6
    assert {link.disposition for _, link in carried} == {"carried"}
