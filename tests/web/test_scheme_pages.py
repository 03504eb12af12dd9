"""The pages show each scheme in its own policy's words: its tags, its main step, its messages."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from svqm.policy import parse_policy
from svqm.workflow.schemes import SchemeRegistry, known_effects, known_guards
from tests.conftest import POLICIES
from tests.factories import open_app
from tests.web.pages_helpers import csrf_of, make_account, make_client, sign_in

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _registry(scheme: str, old: str = "", new: str = "") -> SchemeRegistry:
    text = (POLICIES / f"{scheme}.yaml").read_text(encoding="utf-8")
    if old:
        assert text.count(old) == 1
        text = text.replace(old, new)
    policy = parse_policy(
        text,
        source=f"{scheme}.yaml",
        scheme_id=scheme,
        known_guards=known_guards(),
        known_effects=known_effects(),
    )
    return SchemeRegistry({scheme: policy})


def test_a_state_is_tagged_in_the_colour_its_policy_says(
    engine: Engine, session: Session, tmp_path: Path
) -> None:
    draft = "{name: draft, label: Draft, editable: true, tag: grey, private: true}"
    registry = _registry("svqm", draft, draft.replace("tag: grey", "tag: magenta"))
    applicant = make_account(session, "applicant")
    app = open_app(session, registry, applicant, now=NOW)
    session.commit()
    with make_client(engine, registry, tmp_path) as client:
        sign_in(client, applicant.email)
        dashboard = client.get("/dashboard").text
        page = client.get(f"/applications/{app.id}").text
    for html in (dashboard, page):
        assert '<strong class="govuk-tag govuk-tag--magenta">Draft</strong>' in html
        assert '<strong class="govuk-tag govuk-tag--grey">Draft</strong>' not in html


def test_another_schemes_main_step_and_its_message_are_its_own(
    engine: Engine, session: Session, tmp_path: Path
) -> None:
    registry = _registry("bcorp-style")
    applicant = make_account(session, "applicant")
    app = open_app(session, registry, applicant, scheme="bcorp-style", level="certified", now=NOW)
    session.commit()
    with make_client(engine, registry, tmp_path) as client:
        sign_in(client, applicant.email)
        page = client.get(f"/applications/{app.id}")
        # The task that ends the list is named after the policy's primary step.
        assert "Check your answers and submit for verification" in page.text
        assert "govuk-button--warning" in page.text  # withdrawing is the policy's warning step
        # Withdrawing asks first, on a page of its own; only its "Yes" button withdraws.
        question = client.post(
            f"/applications/{app.id}/events/withdraw",
            data={"csrf_token": csrf_of(page.text), "version": str(app.version)},
        )
        assert question.status_code == 200
        assert "Are you sure you want to withdraw" in question.text
        withdrawn = client.post(
            f"/applications/{app.id}/events/withdraw",
            data={
                "csrf_token": csrf_of(page.text),
                "version": str(app.version),
                "confirmed": "yes",
            },
            follow_redirects=True,
        )
    assert withdrawn.status_code == 200
    assert "Application withdrawn." in withdrawn.text
