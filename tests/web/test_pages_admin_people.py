# ruff: noqa: F811 (the staff pages' `world` and `client` fixtures are imported as arguments)
"""An admin's pages on people: editing a user's name, role and organisations, re-enabling a
disabled account, removing a recorded conflict with a reason (each audited on the person's
history), and the confirmation pages before disabling a user or withdrawing or suspending an
award (a GET asks; only the post from it acts)."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from svqm.accounts import service as accounts
from svqm.accounts.models import ConflictOfInterest, Membership, User
from svqm.db import session_scope
from svqm.workflow import people
from svqm.workflow.audit import verify_chain
from svqm.workflow.models import Award
from tests.web.pages_helpers import csrf_of
from tests.web.test_pages_staff import _post, _version, client, world  # noqa: F401

pytestmark = pytest.mark.usefixtures("client")


def _memberships(engine, user_id: int) -> set[int]:
    with Session(engine) as s:
        rows = s.exec(select(Membership.organisation_id).where(Membership.user_id == user_id))
        return set(rows)


def _events(engine, user_id: int) -> list[tuple[str, str, int | None]]:
    with Session(engine) as s:
        return [(e.trigger, e.comment, e.actor_id) for e in people.history(s, user_id)]


def test_an_admin_edits_name_role_and_organisations_and_it_is_audited(client, world):
    engine = world.engine
    world.sign_in(client, world.admin)
    users = client.get("/admin/users")
    assert f'href="/admin/users/{world.applicant.id}"' in users.text
    page = client.get(f"/admin/users/{world.applicant.id}")
    assert page.status_code == 200
    assert "Stop acting for Alpha Trust" in page.text
    # Acts for Beta Care by default now, and stops acting for Alpha Trust.
    saved = _post(
        client,
        f"/admin/users/{world.applicant.id}",
        page.text,
        name="Ada Applicant",
        role="applicant",
        organisation_id=str(world.org_b.id),
        leave=str(world.org_a.id),
    )
    assert saved.status_code == 303, saved.text[:2000]
    shown = client.get(saved.headers["location"])
    assert "The user&#39;s details have been saved." in shown.text
    person = world.fresh(User, world.applicant.id)
    assert (person.name, person.organisation_id) == ("Ada Applicant", world.org_b.id)
    assert _memberships(engine, world.applicant.id) == {world.org_b.id}
    [(trigger, comment, by)] = _events(engine, world.applicant.id)
    assert (trigger, by) == ("edit", world.admin.id)
    assert "now acts for Beta Care" in comment
    assert "no longer acts for Alpha Trust" in comment
    assert "Ada Applicant" in shown.text
    assert "now acts for Beta Care" in shown.text
    with Session(engine) as s:
        assert verify_chain(s)[1] == []


def test_an_applicant_cannot_be_left_without_an_organisation(client, world):
    world.sign_in(client, world.admin)
    page = client.get(f"/admin/users/{world.applicant.id}")
    refused = _post(
        client,
        f"/admin/users/{world.applicant.id}",
        page.text,
        name="",
        role="applicant",
        organisation_id="",
        leave=str(world.org_a.id),
    )
    assert refused.status_code == 422
    assert "an applicant must belong to an organisation" in refused.text.lower()
    assert _memberships(world.engine, world.applicant.id) == {world.org_a.id}
    assert _events(world.engine, world.applicant.id) == []


def test_a_new_role_signs_the_person_out(client, world):
    world.sign_in(client, world.assessor2)
    theirs = dict(client.cookies)
    world.sign_in(client, world.admin)
    page = client.get(f"/admin/users/{world.assessor2.id}")
    saved = _post(
        client,
        f"/admin/users/{world.assessor2.id}",
        page.text,
        name="Pat Panel",
        role="panel",
        organisation_id="",
    )
    assert saved.status_code == 303
    assert world.fresh(User, world.assessor2.id).role == "panel"
    client.cookies.clear()
    client.cookies.update(theirs)
    assert client.get("/assess", follow_redirects=False).headers["location"].startswith("/login")


def test_disable_asks_first_and_re_enable_brings_the_account_back(client, world):
    world.sign_in(client, world.admin)
    users = client.get("/admin/users")
    # The list links to the question; a post that does not come from it changes nothing.
    assert f'href="/admin/users/{world.assessor2.id}/disable"' in users.text
    stray = _post(client, f"/admin/users/{world.assessor2.id}/disable", users.text)
    assert stray.status_code == 303
    assert stray.headers["location"] == f"/admin/users/{world.assessor2.id}/disable"
    assert world.fresh(User, world.assessor2.id).active is True
    question = client.get(stray.headers["location"])
    assert "Are you sure you want to disable" in question.text
    assert 'name="confirmed" value="yes"' in question.text
    done = _post(
        client, f"/admin/users/{world.assessor2.id}/disable", question.text, confirmed="yes"
    )
    assert done.status_code == 303
    assert world.fresh(User, world.assessor2.id).active is False
    page = client.get(f"/admin/users/{world.assessor2.id}")
    assert "Re-enable this account" in page.text
    enabled = _post(client, f"/admin/users/{world.assessor2.id}/enable", page.text)
    assert enabled.status_code == 303
    assert world.fresh(User, world.assessor2.id).active is True
    assert [t for t, _, _ in _events(world.engine, world.assessor2.id)] == ["disable", "enable"]


def test_removing_a_conflict_asks_for_a_reason_and_is_audited(client, world):
    with session_scope(world.engine) as s:
        row = accounts.declare_conflict(
            s,
            user_id=world.assessor2.id,
            organisation_id=world.org_a.id,
            reason="Was a trustee until 2025",
            recorded_by_id=world.admin.id,
        )
        conflict_id = row.id
    world.sign_in(client, world.admin)
    listed = client.get("/admin/conflicts")
    assert f'href="/admin/conflicts/{conflict_id}/remove"' in listed.text
    page = client.get(f"/admin/conflicts/{conflict_id}/remove")
    assert "Why does the conflict no longer apply?" in page.text
    blank = _post(client, f"/admin/conflicts/{conflict_id}/remove", page.text, reason=" ")
    assert blank.status_code == 422
    assert 'href="#reason"' in blank.text
    removed = _post(
        client,
        f"/admin/conflicts/{conflict_id}/remove",
        page.text,
        reason="Trusteeship ended in 2025",
    )
    assert removed.status_code == 303
    with Session(world.engine) as s:
        assert s.get(ConflictOfInterest, conflict_id) is None
    [(trigger, comment, by)] = _events(world.engine, world.assessor2.id)
    assert (trigger, by) == ("remove_conflict", world.admin.id)
    assert "Alpha Trust" in comment
    assert "Was a trustee until 2025" in comment
    assert comment.endswith("Trusteeship ended in 2025")
    assert client.get(f"/admin/conflicts/{conflict_id}/remove").status_code == 404


def test_withdraw_and_suspend_ask_on_a_page_of_their_own(client, world):
    world.sign_in(client, world.admin)
    awards = client.get("/admin/awards")
    part = awards.text.split(f'id="award-{world.award.id}"')[1]
    for trigger in ("withdraw", "suspend"):
        assert f'href="/admin/awards/{world.award.id}/events/{trigger}"' in part
        assert f'action="/admin/awards/{world.award.id}/events/{trigger}"' not in part
    question = client.get(f"/admin/awards/{world.award.id}/events/withdraw")
    assert question.status_code == 200
    assert "Are you sure you want to withdraw" in question.text
    stray = _post(
        client,
        f"/admin/awards/{world.award.id}/events/withdraw",
        question.text,
        version=_version(question.text),
        comment="Fraud found",
    )
    assert stray.status_code == 303
    assert world.fresh(Award, world.award.id).state == "active"
    done = _post(
        client,
        f"/admin/awards/{world.award.id}/events/withdraw",
        question.text,
        version=_version(question.text),
        comment="Fraud found",
        confirmed="yes",
    )
    assert done.status_code == 303, done.text[:2000]
    assert world.fresh(Award, world.award.id).state == "withdrawn"
    # Nothing left to confirm on a withdrawn award.
    assert client.get(f"/admin/awards/{world.award.id}/events/suspend").status_code == 404


@pytest.mark.parametrize("who", ["applicant", "assessor", "panel"])
def test_only_admins_may_change_people(client, world, who):
    with session_scope(world.engine) as s:
        row = accounts.declare_conflict(
            s,
            user_id=world.assessor2.id,
            organisation_id=world.org_a.id,
            reason="r",
            recorded_by_id=world.admin.id,
        )
        conflict_id = row.id
    world.sign_in(client, getattr(world, who))
    token = csrf_of(client.get("/").text)
    target = world.assessor2.id
    for path in (
        f"/admin/users/{target}",
        f"/admin/users/{target}/disable",
        f"/admin/conflicts/{conflict_id}/remove",
        f"/admin/awards/{world.award.id}/events/withdraw",
    ):
        assert client.get(path).status_code in (403, 404), path
    for path, data in (
        (f"/admin/users/{target}", {"name": "x", "role": "admin", "organisation_id": ""}),
        (f"/admin/users/{target}/disable", {"confirmed": "yes"}),
        (f"/admin/users/{target}/enable", {}),
        (f"/admin/conflicts/{conflict_id}/remove", {"reason": "no"}),
    ):
        response = client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)
        assert response.status_code in (403, 404), path
    person = world.fresh(User, target)
    assert (person.role, person.active) == ("assessor", True)
    with Session(world.engine) as s:
        assert s.get(ConflictOfInterest, conflict_id) is not None
    assert _events(world.engine, target) == []


def test_only_one_navigation_item_is_active(client, world):
    world.sign_in(client, world.admin)
    for path, current in (
        ("/admin/users", "Users"),
        ("/admin", "Admin"),
        ("/admin/awards", "Admin"),
    ):
        page = client.get(path).text
        active = page.count("govuk-service-navigation__item--active")
        assert active == 1, (path, active)
        item = page.split("govuk-service-navigation__item--active")[1].split("</li>")[0]
        assert current in item, path
