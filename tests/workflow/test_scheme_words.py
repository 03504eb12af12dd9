"""The engine speaks no scheme's words: what it needs to know of a scheme is a policy field, and
every scheme gets the behaviour its own fields say."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from svqm.accounts import service as accounts
from svqm.cli import app as cli
from svqm.errors import GuardRefused, InvalidInput, NotFound, Reason, field_of
from svqm.evidence import service as evidence_service
from svqm.evidence.models import PledgeCreate, ReviewCreate
from svqm.policy import parse_policy
from svqm.policy.models import TransitionDef
from svqm.reporting import exports
from svqm.web.format import state_tag, step_phrase
from svqm.web.views.applicant import task_list
from svqm.workflow import actions, guards, queries, reports
from svqm.workflow import service as workflow
from svqm.workflow.models import Application, Award
from svqm.workflow.schemes import SchemeRegistry, known_effects, known_guards, load_registry
from svqm.workflow.service import Actor
from tests.conftest import POLICIES
from tests.factories import add_pledges, make_user, open_app, store_at, upload_all
from tests.workflow.harness import application_in, award_in, make_cast, satisfy

SCHEMES = sorted(p.stem for p in POLICIES.glob("*.yaml"))
_REGISTRY = load_registry(POLICIES)
runner = CliRunner()


def _first_level(registry: SchemeRegistry, scheme: str) -> str:
    return min(registry.get(scheme).policy.levels, key=lambda lv: lv.rank).id


def _reviewed_states() -> list[tuple[str, str]]:
    """(scheme, state) of every state where evidence is reviewed and the applicant cannot act."""
    return [
        (sid, s.name)
        for sid in SCHEMES
        for s in _REGISTRY.get(sid).policy.workflows.application.states
        if s.reviewable and not s.editable
    ]


def _draft_with_evidence(
    session: Session,
    registry: SchemeRegistry,
    scheme: str,
    now: datetime,
    tmp_path: Path,
    *,
    eligible: bool = True,
) -> tuple[Application, Actor]:
    cast = make_cast(session)
    app = open_app(
        session,
        registry,
        cast.applicant,
        scheme=scheme,
        level=_first_level(registry, scheme),
        now=now,
        eligible=eligible,
    )
    if registry.get(scheme).policy.level(app.level).pledge_rule:
        add_pledges(session, registry, app, cast.applicant, now=now)
    upload_all(session, registry, store_at(tmp_path / "evidence"), app, cast.applicant, now=now)
    app.assessor_id = cast.assessor.id
    session.add(app)
    session.flush()
    return app, Actor.of(cast.assessor)


# --- the hand-back trigger ------------------------------------------------------------------------


# A charter's signatories sign it themselves: no assessor reviews anything (nothing to hand back).
REVIEWED = [sid for sid in SCHEMES if _REGISTRY.get(sid).policy.charter is None]


def test_every_scheme_reviews_evidence_somewhere_it_hands_back_from() -> None:
    assert {scheme for scheme, _ in _reviewed_states()} == set(REVIEWED)
    assert REVIEWED != SCHEMES  # the charter is among the schemes, and reviews nothing


@pytest.mark.parametrize(("scheme", "state"), _reviewed_states())
def test_more_information_is_collected_and_the_hand_back_sends_it_in_every_scheme(
    session: Session,
    registry: SchemeRegistry,
    now: datetime,
    tmp_path: Path,
    scheme: str,
    state: str,
) -> None:
    app, assessor = _draft_with_evidence(session, registry, scheme, now, tmp_path)
    app.state = state
    session.add(app)
    session.flush()
    flow = registry.get(scheme).policy.workflows.application
    assert flow.hand_back is not None
    back = flow.transition(flow.hand_back, state)
    assert back is not None
    item = evidence_service.list_evidence(session, app.id or 0)[0]
    review = ReviewCreate(decision="more_information", comment="Please add last year's figures.")
    actions.review_evidence(session, app, item, review, actor=assessor, registry=registry, now=now)
    assert app.state == state  # collected: the assessor hands back when done
    assert [i.id for i in actions.collected_requests(session, app)] == [item.id]
    workflow.fire(
        session,
        app,
        flow.hand_back,
        actor=assessor,
        registry=registry,
        now=now,
        comment="Please add last year's figures.",
    )
    assert app.state == back.dest
    assert flow.state(app.state).editable
    last = workflow.history(session, app)[-1]
    assert (last.trigger, last.source, last.dest, last.actor_role) == (
        flow.hand_back,
        state,
        back.dest,
        "assessor",
    )
    assert "Please add last year's figures." in last.comment


@pytest.mark.parametrize("scheme", REVIEWED)
def test_accepting_evidence_hands_nothing_back(
    session: Session, registry: SchemeRegistry, now: datetime, tmp_path: Path, scheme: str
) -> None:
    state = next(s for sid, s in _reviewed_states() if sid == scheme)
    app, assessor = _draft_with_evidence(session, registry, scheme, now, tmp_path, eligible=False)
    app.state = state
    session.add(app)
    session.flush()
    item = evidence_service.list_evidence(session, app.id or 0)[0]
    accept = ReviewCreate(decision="accepted", comment="")
    actions.review_evidence(session, app, item, accept, actor=assessor, registry=registry, now=now)
    assert app.state == state
    assert workflow.history(session, app) == []


@pytest.mark.parametrize("scheme", REVIEWED)
def test_policy_check_refuses_a_scheme_that_reviews_evidence_without_a_hand_back(
    tmp_path: Path, scheme: str
) -> None:
    text = (POLICIES / f"{scheme}.yaml").read_text(encoding="utf-8")
    without, n = re.subn(r"(?m)^ +hand_back: .*\n", "", text)
    assert n == 1
    path = tmp_path / f"{scheme}.yaml"
    path.write_text(without, encoding="utf-8")
    result = runner.invoke(cli, ["policy", "check", str(path)])
    assert result.exit_code == 1
    assert f"error: {path}: workflows.application.hand_back: assessors review evidence" in (
        result.stderr
    )


# --- superseding an award -----------------------------------------------------------------------


def _issue_second_award(
    session: Session, registry: SchemeRegistry, scheme: str, now: datetime, tmp_path: Path
) -> tuple[Award, Award]:
    """An organisation holding an award of the scheme is awarded again."""
    policy = registry.get(scheme).policy
    cast = make_cast(session)
    level = _first_level(registry, scheme)
    old = award_in(
        session,
        registry,
        cast,
        scheme=scheme,
        level=level,
        state=policy.workflows.award.initial,
        issued=now - timedelta(days=200),
        at=now - timedelta(days=200),
    )
    t = next(t for t in policy.workflows.application.transitions if "issue_award" in t.effects)
    app = application_in(
        session, registry, cast, scheme=scheme, level=level, state=t.source[0], at=now
    )
    when, comment = satisfy(
        session, policy, registry, store_at(tmp_path / "evidence"), cast, app, t, now
    )
    workflow.fire(
        session,
        app,
        t.trigger,
        actor=cast.actor(t.roles[0]),
        registry=registry,
        now=when,
        comment=comment,
    )
    new = session.exec(select(Award).where(Award.application_id == app.id)).one()
    session.refresh(old)
    return old, new


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_new_award_supersedes_the_old_one_by_the_schemes_own_trigger(
    session: Session, registry: SchemeRegistry, now: datetime, tmp_path: Path, scheme: str
) -> None:
    old, new = _issue_second_award(session, registry, scheme, now, tmp_path)
    flow = registry.get(scheme).policy.workflows.award
    assert flow.supersede is not None
    assert new.supersedes_id == old.id
    assert old.state in flow.enters(flow.supersede)
    trail = workflow.history(session, old)
    assert (trail[-1].trigger, trail[-1].actor_role) == (flow.supersede, "system")


def test_the_superseding_trigger_may_be_called_anything(
    session: Session, now: datetime, tmp_path: Path
) -> None:
    text = (POLICIES / "svqm.yaml").read_text(encoding="utf-8")
    renamed = re.sub(r"\brenew\b", "replace_award", text)
    assert "supersede: replace_award" in renamed
    policy = parse_policy(
        renamed,
        source="svqm.yaml",
        scheme_id="svqm",
        known_guards=known_guards(),
        known_effects=known_effects(),
    )
    registry = SchemeRegistry({"svqm": policy})
    old, new = _issue_second_award(session, registry, "svqm", now, tmp_path)
    assert new.supersedes_id == old.id
    assert old.state == "renewed"
    assert workflow.history(session, old)[-1].trigger == "replace_award"


# --- what the pages read of a scheme ------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_state_is_tagged_in_the_colour_its_policy_gives(
    registry: SchemeRegistry, scheme: str
) -> None:
    policy = registry.get(scheme).policy
    for kind in ("application", "award"):
        flow = policy.workflows.of(kind)
        for s in flow.states:
            tag = state_tag(flow, s.name)
            assert tag["text"] == s.title
            assert tag["classes"] == (f"govuk-tag--{s.tag}" if s.tag and s.tag != "blue" else "")
    assert policy.workflows.application.state(policy.workflows.application.initial).tag == "grey"


def _main_step(registry: SchemeRegistry, scheme: str, app: Application) -> TransitionDef:
    """The primary step out of draft on the level's own route (self-service or assessed)."""
    policy = registry.get(scheme).policy
    flow = policy.workflows.application
    route = policy.level(app.level).self_service
    return next(
        t
        for t in flow.transitions
        if t.primary and flow.initial in t.source and t.self_service in (None, route)
    )


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_applicants_main_step_is_the_one_the_policy_marks_primary(
    session: Session, registry: SchemeRegistry, now: datetime, tmp_path: Path, scheme: str
) -> None:
    app, _ = _draft_with_evidence(session, registry, scheme, now, tmp_path)
    applicant = Actor(app.created_by_id, "applicant", app.organisation_id)
    view = task_list(session, registry, app, applicant, now)
    flow = registry.get(scheme).policy.workflows.application
    expected = _main_step(registry, scheme, app)
    assert view.primary is not None
    assert (view.primary.trigger, view.primary.title) == (expected.trigger, expected.title)
    assert view.triggers[0] == view.primary
    withdraw = [f for f in view.triggers if f.warning]
    assert [f.trigger for f in withdraw] == [
        t.trigger for t in flow.transitions if t.warning and flow.initial in t.source
    ]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_panel_does_not_see_an_applications_private_states(
    session: Session, registry: SchemeRegistry, now: datetime, scheme: str
) -> None:
    cast = make_cast(session)
    flow = registry.get(scheme).policy.workflows.application
    private = [s.name for s in flow.states if s.private]
    assert private == [flow.initial]
    app = application_in(
        session,
        registry,
        cast,
        scheme=scheme,
        level=_first_level(registry, scheme),
        state=flow.initial,
        at=now,
    )
    panel = Actor.of(make_user(session, "panel"))
    with pytest.raises(NotFound):
        queries.get_application(session, app.id or 0, panel, registry=registry)
    app.state = next(s.name for s in flow.states if not s.private)
    session.add(app)
    session.flush()
    assert queries.get_application(session, app.id or 0, panel, registry=registry) is app


@pytest.mark.parametrize("scheme", SCHEMES)
def test_an_exports_submitted_at_is_the_first_primary_step_out_of_the_initial_state(
    session: Session, registry: SchemeRegistry, now: datetime, tmp_path: Path, scheme: str
) -> None:
    app, _ = _draft_with_evidence(session, registry, scheme, now, tmp_path)
    step = _main_step(registry, scheme, app)
    applicant = Actor(app.created_by_id, "applicant", app.organisation_id)
    later = now + timedelta(hours=3)
    workflow.fire(session, app, step.trigger, actor=applicant, registry=registry, now=later)
    rows = {r["id"]: r for r in exports.application_rows(session, registry)}
    assert rows[app.id]["submitted_at"] == later


def test_a_deadline_no_filed_by_names_is_not_a_filing_whatever_its_kind() -> None:
    text = (POLICIES / "svqm.yaml").read_text(encoding="utf-8")
    plain = text.replace("filed_by: [applicant, admin], on_late_filing: file_report,", "")
    policy = parse_policy(
        plain,
        source="svqm.yaml",
        scheme_id="svqm",
        known_guards=known_guards(),
        known_effects=known_effects(),
    )
    d = policy.deadline("annual_report")
    assert d is not None
    assert (d.filed_by, d.on_late_filing) == ([], None)
    assert reports.filing_deadlines(policy) == []


# --- what a person gives when taking a step, and errors that name their field -------------------


def test_a_comment_is_asked_for_with_the_step_not_listed_as_unmet_beforehand() -> None:
    assert guards.asks_for(["has_comment", "score_passes"], "comment")
    assert not guards.asks_for(["score_passes"], "comment")
    assert guards.checked_before(["has_comment", "before_deadline:appeal_window"]) == [
        "before_deadline:appeal_window"
    ]


def test_a_missing_comment_names_the_comment_field(
    session: Session, registry: SchemeRegistry, now: datetime
) -> None:
    cast = make_cast(session)
    app = application_in(
        session, registry, cast, scheme="svqm", level="bronze", state="under_review", at=now
    )
    with pytest.raises(GuardRefused) as refused:
        workflow.fire(
            session,
            app,
            "recommend_refusal",
            actor=cast.actor("assessor"),
            registry=registry,
            now=now,
        )
    unmet = refused.value.unmet
    assert [field_of(r) for r in unmet] == ["comment"]
    assert isinstance(unmet[0], Reason)


def test_domain_errors_name_the_field_they_are_about(
    session: Session, registry: SchemeRegistry, now: datetime, tmp_path: Path
) -> None:
    cast = make_cast(session)
    app = open_app(session, registry, cast.applicant, now=now)
    pledge = PledgeCreate(
        theme="nope",
        title="t",
        indicator="i",
        target="1",
        due_date=(now + timedelta(days=9)).date(),
    )
    applicant = Actor.of(cast.applicant)
    with pytest.raises(InvalidInput) as bad_theme:
        actions.add_pledge(session, app, pledge, actor=applicant, registry=registry, now=now)
    assert bad_theme.value.field == "theme"
    theme = registry.get("svqm").policy.themes[0].id
    past = pledge.model_copy(update={"theme": theme, "due_date": (now - timedelta(days=1)).date()})
    with pytest.raises(InvalidInput) as bad_date:
        actions.add_pledge(session, app, past, actor=applicant, registry=registry, now=now)
    assert bad_date.value.field == "due_date"
    with pytest.raises(InvalidInput) as short:
        accounts.add_user(session, email="x@example.test", role="admin", password="short")
    assert short.value.field == "password"
    with pytest.raises(InvalidInput) as taken:
        accounts.add_user(session, email=cast.admin.email, role="admin")
    assert taken.value.field == "email"
    award = award_in(
        session,
        registry,
        cast,
        scheme="svqm",
        level="bronze",
        state="active",
        issued=now - timedelta(days=300),
        at=now,
    )
    with pytest.raises(InvalidInput) as period:
        reports.file_report(
            session,
            award,
            store_at(tmp_path / "evidence"),
            period="not a period!",
            stream=[b"%PDF-1.4\n"],
            filename="r.pdf",
            title="",
            actor=applicant,
            registry=registry,
            now=now,
        )
    assert period.value.field == "period"


@pytest.mark.parametrize(
    ("title", "whose", "phrase"),
    [
        ("Submit application", "your", "submit your application"),
        ("Resubmit application", "the", "resubmit the application"),
        ("Submit for assessment", "your", "submit for assessment"),
        ("Sign the charter", "your", "sign the charter"),
        ("Request the audit", "your", "request the audit"),
        ("Submit to SVQM", "your", "submit to SVQM"),
        ("Withdraw", "your", "withdraw"),
    ],
)
def test_a_steps_title_reads_inside_a_sentence_whatever_the_scheme_calls_it(
    title: str, whose: str, phrase: str
) -> None:
    assert step_phrase(title, whose) == phrase
