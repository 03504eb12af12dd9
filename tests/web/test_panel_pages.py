"""The panel's case page: who may not decide is told why before any button (and gets none), the
recommendation, scores and notes side by side, and overturning asks for confirmation first."""

from __future__ import annotations

from sqlmodel import Session, select

from svqm.accounts import service as accounts
from svqm.accounts.models import User
from svqm.db import writer
from svqm.evidence import pledges as pledge_service
from svqm.evidence.models import EvidenceItem, Review
from svqm.workflow.models import Application
from tests.web.test_pages_staff import (  # noqa: F401  (fixtures)
    _post,
    _recommended,
    _version,
    client,
    world,
)


def _state(world) -> str:  # noqa: F811
    return world.fresh(Application, world.app_a.id).state


def test_a_conflicted_panel_member_sees_why_and_no_decision_buttons(client, world):  # noqa: F811
    _recommended(world)
    with Session(writer(world.engine)) as s:
        accounts.declare_conflict(
            s,
            user_id=world.panel.id,
            organisation_id=world.org_a.id,
            reason="former trustee",
            recorded_by_id=world.admin.id,
        )
        s.commit()
    world.sign_in(client, world.panel)
    queue = client.get("/panel").text
    row = queue[queue.index(f'href="/panel/{world.app_a.id}"') :].split("</tr>")[0]
    assert "You have a conflict of interest</strong>" in row
    assert "former trustee" in row
    page = client.get(f"/panel/{world.app_a.id}")
    assert page.status_code == 200
    assert "You cannot decide on this application" in page.text
    assert "A conflict of interest with Alpha Trust is on record for you (former trustee)." in (
        page.text
    )
    assert 'action="/panel/' not in page.text
    assert "govuk-button" not in page.text.split('id="decision"')[1].split('id="history"')[0]
    # A forged post is refused all the same, and the case stays where it was.
    refused = _post(
        client,
        f"/panel/{world.app_a.id}/events/confirm_award",
        page.text,
        version=str(world.fresh(Application, world.app_a.id).version),
    )
    assert refused.status_code == 403
    assert "conflict of interest" in refused.text
    assert _state(world) == "recommended_award"


def test_an_assessor_turned_panel_member_is_told_of_four_eyes(client, world):  # noqa: F811
    _recommended(world)
    with Session(writer(world.engine)) as s:
        s.get(User, world.assessor.id).role = "panel"
        s.commit()
    world.sign_in(client, world.assessor)
    queue = client.get("/panel").text
    assert f'href="/panel/{world.app_a.id}"' in queue
    assert "conflict of interest</strong>" not in queue  # none declared
    page = client.get(f"/panel/{world.app_a.id}")
    assert "You assessed this application, so another panel member" in page.text
    assert "four eyes" not in page.text.lower()
    assert 'action="/panel/' not in page.text


def test_the_recommendation_scores_and_notes_sit_side_by_side_before_the_buttons(client, world):  # noqa: F811
    _recommended(world)
    with Session(writer(world.engine)) as s:
        item = s.exec(
            select(EvidenceItem).where(EvidenceItem.application_id == world.app_a.id)
        ).first()
        s.add(
            Review(
                evidence_id=item.id,
                reviewer_id=world.assessor.id,
                decision="accepted",
                comment="Clear and recent figures.",
                visibility="internal",
            )
        )
        s.commit()
    world.sign_in(client, world.panel)
    page = client.get(f"/panel/{world.app_a.id}").text
    side, rest = page.split('id="side-by-side"')[1].split('id="decision"')
    assert "The assessor's recommendation" in side
    assert "Recommend award" in side
    assert "Strong evidence throughout." in side
    assert 'id="result"' in side
    assert "The assessor's notes" in side
    assert "Clear and recent figures." in side
    assert "Staff only" in side
    # The rules come before the first button; overturning is the weightier (warning) button.
    assert rest.index('id="rules"') < rest.index("<button")
    overturn = rest.split('id="trigger-overturn_to_refusal"')[1].split("</form>")[0]
    assert "govuk-button--warning" in overturn
    confirm = rest.split('id="trigger-confirm_award"')[1].split("</form>")[0]
    assert "govuk-button--warning" not in confirm


def test_the_panel_sees_the_pledges_it_would_certify_before_deciding(client, world):  # noqa: F811
    """The commitments an award certifies are on the panel's page, each with its theme,
    indicator and target, above the decision buttons."""
    _recommended(world)
    world.sign_in(client, world.panel)
    page = client.get(f"/panel/{world.app_a.id}").text
    pledges = page.split('id="pledges"')[1].split('id="decision"')[0]
    with Session(writer(world.engine)) as s:
        held = pledge_service.list_pledges(s, world.app_a.id)
    assert len(held) == 2
    for p in held:
        assert p.title in pledges
        assert p.indicator in pledges
    assert pledges.count('class="govuk-summary-card__title"') == 2
    assert pledges.count(">Target</dt>") == 2
    assert pledges.count(">In this application</dt>") == 2


def test_a_carried_pledge_is_staff_wording_to_staff(client, world):  # noqa: F811
    """To staff it is the award in force; to its holder, "your award"."""
    world.sign_in(client, world.assessor)
    staff = client.get(f"/applications/{world.app_a.id}/pledges").text
    assert "Carried from the award in force" in staff
    assert "your award" not in staff
    world.sign_in(client, world.applicant)
    own = client.get(f"/applications/{world.app_a.id}/pledges").text
    assert "Carried from your award" in own


def test_overturning_asks_for_confirmation_first(client, world):  # noqa: F811
    _recommended(world)
    world.sign_in(client, world.panel)
    url = f"/panel/{world.app_a.id}"
    page = client.get(url)
    asked = _post(
        client,
        f"{url}/events/overturn_to_refusal",
        page.text,
        version=_version(page.text),
        comment="The pledges are not measurable.",
        visibility="applicant",
    )
    assert asked.status_code == 200
    assert "Are you sure you want to overturn to refusal?" in asked.text
    assert "This goes against the assessor's recommendation (recommend award)" in asked.text
    assert 'name="confirmed" value="yes"' in asked.text
    assert 'value="The pledges are not measurable."' in asked.text
    assert 'class="govuk-button govuk-button--warning" id="confirm"' in asked.text
    assert f'href="{url}"' in asked.text
    assert _state(world) == "recommended_award"
    done = _post(
        client,
        f"{url}/events/overturn_to_refusal",
        asked.text,
        version=_version(asked.text),
        comment="The pledges are not measurable.",
        visibility="applicant",
        confirmed="yes",
    )
    assert done.status_code == 303
    assert _state(world) == "not_awarded"
    history = client.get(done.headers["location"]).text
    assert "The pledges are not measurable." in history


def test_overturning_without_its_comment_says_so_before_any_confirmation(client, world):  # noqa: F811
    _recommended(world)
    world.sign_in(client, world.panel)
    url = f"/panel/{world.app_a.id}"
    page = client.get(url)
    refused = _post(
        client, f"{url}/events/overturn_to_refusal", page.text, version=_version(page.text)
    )
    assert "Are you sure" not in refused.text
    assert "govuk-error-summary" in refused.text
    assert "comment" in refused.text.lower()
    assert _state(world) == "recommended_award"


def test_confirming_a_recommendation_needs_no_confirmation_page(client, world):  # noqa: F811
    _recommended(world)
    world.sign_in(client, world.panel)
    url = f"/panel/{world.app_a.id}"
    page = client.get(url)
    done = _post(client, f"{url}/events/confirm_award", page.text, version=_version(page.text))
    assert done.status_code == 303
    assert _state(world) == "awarded"
