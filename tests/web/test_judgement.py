"""Independent appeals decided by two panel members, and double marking with moderation, through
the API and the staff's pages (issue 18, items 5 and 6), with the opt-in settings switched on."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlmodel import Session

from svqm.accounts.models import User
from svqm.clock import utc_now
from svqm.workflow.models import Application
from tests.judgement_policies import judgement_registry
from tests.web.pages_helpers import api_token, make_account, make_client, sign_in
from tests.web.test_api import bronze_ready
from tests.workflow.harness import application_in


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return judgement_registry(tmp_path_factory.mktemp("judgement"))


@pytest.fixture
def client(engine, registry, tmp_path):
    with make_client(engine, registry, tmp_path) as c:
        yield c


def _people(engine, *roles: str) -> list[User]:
    with Session(engine) as s:
        users = [make_account(s, role) for role in roles]
        for u in users:
            s.refresh(u)
            s.expunge(u)
    return users


def _bearer(client, user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(client, user)}"}


def _fire(client, app_id, trigger, headers, comment=""):
    return client.post(
        f"/api/v1/applications/{app_id}/events/{trigger}",
        headers=headers,
        json={"comment": comment},
    )


def _panel_due(client, app_id, headers):
    app = client.get(f"/api/v1/applications/{app_id}", headers=headers).json()
    return {d["kind"]: d["due_at"] for d in app["deadlines"]}.get("panel_decision"), app


def test_an_appeal_needs_two_independent_members_and_keeps_its_21_days(client, engine):
    applicant, assessor, decider, second, third, fourth = _people(
        engine, "applicant", "assessor", "panel", "panel", "panel", "panel"
    )
    own = _bearer(client, applicant)
    app_id = bronze_ready(client, own)["id"]
    staff = {u.id: _bearer(client, u) for u in (assessor, decider, second, third, fourth)}
    assert _fire(client, app_id, "submit", own).status_code == 200
    # The application went to the only assessor free of conflicts (or an earlier one): use ours.
    with Session(engine) as s:
        row = s.get(Application, app_id)
        row.assessor_id = assessor.id
        s.add(row)
        s.commit()
    assert _fire(client, app_id, "start_review", staff[assessor.id]).status_code == 200
    assert _fire(client, app_id, "recommend_refusal", staff[assessor.id], "Weak").status_code == 200
    assert (
        _fire(client, app_id, "confirm_refusal", staff[decider.id]).json()["state"] == "not_awarded"
    )
    # The organisation's page says at the top what it can do now, before the long task list.
    sign_in(client, applicant.email)
    page = client.get(f"/applications/{app_id}")
    top = page.text.split('id="you-can"', 1)[1].split("</div>", 1)[0]
    assert '<a class="govuk-link" href="#steps">Appeal</a>' in top
    assert 'href="#comments"' in top
    assert page.text.index('id="you-can"') < page.text.index('class="govuk-task-list"')
    client.cookies.clear()
    appealed = _fire(client, app_id, "appeal", own, "The evidence was there")
    assert appealed.json()["state"] == "appealed", appealed.text
    due, app = _panel_due(client, app_id, staff[second.id])
    # The Oversight panel decides within 21 days of the appeal.
    entered = datetime.fromisoformat(app["state_changed_at"])
    assert datetime.fromisoformat(due) - entered == timedelta(days=21)

    # An independent member's page leads with the appeal and the decision it answers.
    sign_in(client, third.email, totp_secret=third.totp_secret)
    page = client.get(f"/panel/{app_id}")
    assert page.status_code == 200
    request = page.text.split('id="request"', 1)[1].split('id="side-by-side"', 1)[0]
    assert "The organisation's appeal</h2>" in request
    assert "The evidence was there" in request
    assert "It answers the panel's decision" in request
    assert "Confirm refusal" in request
    client.cookies.clear()

    # The member who confirmed the refusal may not decide the appeal.
    refused = _fire(client, app_id, "uphold_appeal", staff[decider.id], "I was wrong")
    assert refused.status_code == 422, refused.text
    assert "took part in the decision" in refused.text

    # One independent member's decision is recorded, and does not decide the appeal.
    first = _fire(client, app_id, "uphold_appeal", staff[second.id], "Evidence meets the bar")
    assert first.status_code == 200, first.text
    assert first.json()["state"] == "appealed"
    assert "uphold_appeal" not in first.json()["triggers"]
    assert "recorded your decision" in " ".join(first.json()["unmet"]["uphold_appeal"])
    decisions = client.get(f"/api/v1/applications/{app_id}/decisions", headers=staff[third.id])
    steps = {s["trigger"]: s for s in decisions.json()["steps"]}
    assert steps["uphold_appeal"] == {
        "trigger": "uphold_appeal",
        "title": "Uphold appeal",
        "quorum": 2,
        "agreeing": 1,
        "needed": 1,
    }
    assert steps["dismiss_appeal"]["needed"] == 2
    assert [(v["member_id"], v["trigger"]) for v in decisions.json()["recorded"]] == [
        (second.id, "uphold_appeal")
    ]
    # The applicant reads what is still needed, not who decided what.
    theirs = client.get(f"/api/v1/applications/{app_id}/decisions", headers=own).json()
    assert theirs["recorded"] == []
    assert theirs["steps"][0]["quorum"] == 2
    # A member decides once; the 21 days still run from the appeal.
    again = _fire(client, app_id, "dismiss_appeal", staff[second.id], "On reflection, no")
    assert again.status_code == 409, again.text
    assert "already recorded your decision" in again.text
    assert _panel_due(client, app_id, staff[third.id])[0] == due

    # A member who disagrees does not decide it either; a second agreeing member does.
    assert (
        _fire(client, app_id, "dismiss_appeal", staff[third.id], "No").json()["state"] == "appealed"
    )
    decided = _fire(client, app_id, "uphold_appeal", staff[fourth.id], "Agree with the appeal")
    assert decided.json()["state"] == "awarded", decided.text
    history = client.get(f"/api/v1/applications/{app_id}/history", headers=staff[fourth.id]).json()
    assert [e["trigger"] for e in history].count("record_decision") == 2
    assert "decided by 2 members agreeing" in history[-1]["comment"]


def _silver_under_review(engine, registry):
    applicant, first, second, panel, admin = _people(
        engine, "applicant", "assessor", "assessor", "panel", "admin"
    )
    org = SimpleNamespace(id=applicant.organisation_id)
    cast = SimpleNamespace(org=org, assessor=first)
    with Session(engine) as s:
        app = application_in(
            s, registry, cast, scheme="svqm", level="silver", state="under_review", at=utc_now()
        )
        app.second_assessor_id = second.id
        s.add(app)
        s.commit()
        app_id = app.id
    return app_id, applicant, first, second, panel, admin


def _all_scores(registry, off=None):
    policy = registry.get("svqm").policy
    for sid in policy.level("silver").standards:
        for q in policy.standard(sid).questions:
            yield sid, q.id, q.max_score + (off or {}).get(f"{sid}/{q.id}", 0)


def test_two_assessors_score_blind_and_a_wide_difference_is_moderated(client, engine, registry):
    app_id, applicant, first, second, panel, admin = _silver_under_review(engine, registry)
    a, b = _bearer(client, first), _bearer(client, second)
    for sid, qid, score in _all_scores(registry):
        r = client.post(
            f"/api/v1/applications/{app_id}/scores",
            headers=a,
            json={"standard": sid, "question": qid, "score": score, "note": "first's view"},
        )
        assert r.status_code == 200, r.text

    # The second assessor sees none of the first's scores, history or notes.
    theirs = client.get(f"/api/v1/applications/{app_id}/scores", headers=b).json()["marking"]
    assert theirs["revealed"] is False
    assert theirs["first_scored"] == theirs["questions_total"]
    assert all(q["first"] is None and q["agreed"] is None for q in theirs["questions"])
    assert client.get(f"/api/v1/applications/{app_id}/score-history", headers=b).json() == []
    history = client.get(f"/api/v1/applications/{app_id}/history", headers=b).json()
    assert not [e for e in history if e["trigger"] == "score"]
    # The first sees their own.
    mine = client.get(f"/api/v1/applications/{app_id}/scores", headers=a).json()["marking"]
    assert all(q["first"] is not None for q in mine["questions"])
    # The applicant's scores carry no marking at all; the score history is staff's only.
    own = _bearer(client, applicant)
    assert (
        client.get(f"/api/v1/applications/{app_id}/scores", headers=own).json()["marking"] is None
    )
    assert (
        client.get(f"/api/v1/applications/{app_id}/score-history", headers=own).status_code == 403
    )
    # The first's review page works out no agreed result before the second has scored (it would
    # read as a fail on questions it calls unscored).
    sign_in(client, first.email, totp_secret=first.totp_secret)
    page = client.get(f"/assess/{app_id}")
    assert 'id="agreed-later"' in page.text
    assert 'id="result"' not in page.text
    client.cookies.clear()
    # Moderation before both are in is refused.
    early = client.post(
        f"/api/v1/applications/{app_id}/moderation",
        headers=_bearer(client, admin),
        json={"standard": "plan", "question": "stakeholder_map", "score": 2, "note": "early"},
    )
    assert early.status_code == 409, early.text

    for sid, qid, score in _all_scores(registry, {"plan/stakeholder_map": -3}):
        r = client.post(
            f"/api/v1/applications/{app_id}/scores",
            headers=b,
            json={"standard": sid, "question": qid, "score": score},
        )
        assert r.status_code == 200, r.text
    marking = client.get(f"/api/v1/applications/{app_id}/scores", headers=b).json()["marking"]
    assert marking["revealed"] is True
    assert marking["both_scored"] is True
    assert marking["to_moderate"] == ["plan/stakeholder_map"]
    sign_in(client, first.email, totp_secret=first.totp_secret)
    page = client.get(f"/assess/{app_id}")
    assert 'id="result"' in page.text
    assert 'id="agreed-later"' not in page.text
    client.cookies.clear()
    assert all(q["first"] is not None for q in marking["questions"])

    # A panel member is not this scheme's moderator; an admin is, and must give a note.
    body = {"standard": "plan", "question": "stakeholder_map", "score": 2, "note": "Partial map"}
    denied = client.post(
        f"/api/v1/applications/{app_id}/moderation", headers=_bearer(client, panel), json=body
    )
    assert denied.status_code == 403
    blank = client.post(
        f"/api/v1/applications/{app_id}/moderation",
        headers=_bearer(client, admin),
        json=body | {"note": ""},
    )
    assert blank.status_code == 422
    done = client.post(
        f"/api/v1/applications/{app_id}/moderation", headers=_bearer(client, admin), json=body
    )
    assert done.status_code == 200, done.text
    assert done.json()["marking"]["to_moderate"] == []
    # Every question agreed: the result stands on the agreed scores (one question at 2 of 4).
    assert done.json()["passed"] is True
    assert done.json()["unscored"] == []
    changes = client.get(
        f"/api/v1/applications/{app_id}/score-history", headers=_bearer(client, panel)
    ).json()
    moderated = [c for c in changes if c["kind"] == "moderated"]
    assert [(c["old"], c["new"], c["note"], c["actor_id"]) for c in moderated] == [
        (None, 2, "Partial map", admin.id)
    ]
    assert {c["kind"] for c in changes} == {"assessor", "agreed", "moderated"}

    # The panel's case page shows both sets of scores and the score history.
    sign_in(client, panel.email, totp_secret=panel.totp_secret)
    page = client.get(f"/panel/{app_id}")
    assert page.status_code == 200
    assert "The two assessors&#39; scores" in page.text or "The two assessors' scores" in page.text
    assert 'id="score-history"' in page.text
    assert "Partial map" in page.text
    assert "Moderated" in page.text
