"""The admin's bulk actions on the list of applications: assign the selected to an assessor and
remind their organisations, each through the workflow (audited), each on its own."""

from __future__ import annotations

import json
import re

from sqlmodel import Session, col, select

from svqm.accounts import service as accounts
from svqm.db import writer
from svqm.notify.models import OutboxMessage
from svqm.web.format import reference
from svqm.workflow.models import Application, AuditEvent
from tests.web.pages_helpers import csrf_of
from tests.web.test_pages_staff import _person, client, world  # noqa: F401  (fixtures)


def _events(world, trigger: str) -> list[AuditEvent]:  # noqa: F811
    with Session(world.engine) as s:
        return list(
            s.exec(
                select(AuditEvent)
                .where(AuditEvent.trigger == trigger, AuditEvent.subject_kind == "application")
                .order_by(col(AuditEvent.id))
            )
        )


def _versions(html: str) -> dict[str, str]:
    return dict(re.findall(r'name="(version-\d+)" value="(\d+)"', html))


def _bulk(client, page: str, ids: list[int], **fields: str):  # noqa: F811
    data = {"csrf_token": csrf_of(page), **_versions(page), **fields, "ids": [str(i) for i in ids]}
    return client.post("/admin/applications/bulk", data=data, follow_redirects=False)


def test_bulk_assign_assigns_each_and_refuses_a_conflict_on_its_own(client, world):  # noqa: F811
    with Session(writer(world.engine)) as s:
        third = _person(s, "assessor")
        third.name = "Cleo Third"
        accounts.declare_conflict(
            s, user_id=third.id, organisation_id=world.org_b.id, reason="", recorded_by_id=None
        )
        s.commit()
        third_id = third.id
    world.sign_in(client, world.admin)
    page = client.get("/admin/applications").text
    assert f'name="ids" type="checkbox" value="{world.app_a.id}"' in page
    assert f'<option value="{third_id}">Cleo Third</option>' in page
    done = _bulk(
        client, page, [world.app_a.id, world.app_b.id], action="assign", assessor_id=str(third_id)
    )
    assert done.status_code == 200
    assert "Done: 1 application assigned." in done.text
    assert f"{reference(world.app_b.id)}: conflict of interest" in done.text
    assert world.fresh(Application, world.app_a.id).assessor_id == third_id
    assert world.fresh(Application, world.app_b.id).assessor_id == world.assessor2.id
    assigned = _events(world, "assign_assessor")
    assert [e.subject_id for e in assigned][-1] == world.app_a.id
    assert assigned[-1].actor_id == world.admin.id


def test_a_line_changed_since_the_list_was_read_is_left_alone(client, world):  # noqa: F811
    world.sign_in(client, world.admin)
    page = client.get("/admin/applications").text
    stale = page.replace(
        f'name="version-{world.app_a.id}" value="', f'name="version-{world.app_a.id}" value="9'
    )
    refused = _bulk(
        client, stale, [world.app_a.id], action="assign", assessor_id=str(world.assessor2.id)
    )
    assert refused.status_code == 409
    assert "changed since" in refused.text
    assert world.fresh(Application, world.app_a.id).assessor_id == world.assessor.id


def test_bulk_reminder_emails_each_organisation_and_is_audited(client, world):  # noqa: F811
    finished = world.award.application_id
    world.sign_in(client, world.admin)
    page = client.get("/admin/applications", params={"finished": "yes"}).text
    assert f'value="{finished}"' in page
    done = _bulk(
        client,
        page,
        [world.app_a.id, world.app_b.id, finished],
        action="remind",
        message="Please send the missing figures this week.",
    )
    assert done.status_code == 200
    assert "Done: 2 applications sent a reminder." in done.text
    assert f"{reference(finished)}: the application is finished" in done.text
    reminded = _events(world, "send_reminder")
    assert sorted(e.subject_id for e in reminded) == sorted([world.app_a.id, world.app_b.id])
    assert {e.comment for e in reminded} == {"Please send the missing figures this week."}
    with Session(world.engine) as s:
        for e in reminded:
            key = f"event:application-{e.subject_id}:{e.seq}:applicant"
            row = s.exec(select(OutboxMessage).where(OutboxMessage.key == key)).one()
            context = json.loads(row.context)
            assert context["step"] == "Reminder"
            assert context["comment"] == "Please send the missing figures this week."
            assert "a reminder about your application" in context["subject"]


def test_a_bulk_action_without_a_selection_or_an_assessor_says_what_is_missing(client, world):  # noqa: F811
    world.sign_in(client, world.admin)
    page = client.get("/admin/applications").text
    nothing = _bulk(client, page, [], action="remind")
    assert nothing.status_code == 422
    assert "Select the applications from the list" in nothing.text
    no_one = _bulk(client, page, [world.app_a.id], action="assign")
    assert no_one.status_code == 422
    assert "Choose an assessor to assign them to" in no_one.text
    odd = _bulk(client, page, [world.app_a.id], action="delete")
    assert odd.status_code == 422
    assert "Choose assign or send a reminder" in odd.text
    assert _events(world, "send_reminder") == []


def test_only_admins_may_use_bulk_actions(client, world):  # noqa: F811
    world.sign_in(client, world.assessor)
    page = client.get("/assess").text
    refused = client.post(
        "/admin/applications/bulk",
        data={"csrf_token": csrf_of(page), "ids": [str(world.app_a.id)], "action": "remind"},
    )
    assert refused.status_code == 403
    assert _events(world, "send_reminder") == []


# --- the same through the API -------------------------------------------------------------------


def _api(client, world):  # noqa: F811
    import pyotp

    from tests.web.test_pages_staff import PASSWORD

    answer = client.post(
        "/api/v1/auth/token",
        json={
            "email": world.admin.email,
            "password": PASSWORD,
            "otp": pyotp.TOTP(world.admin.totp_secret).now(),
        },
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_the_api_assigns_each_line_at_its_version_and_names_the_refused(client, world):  # noqa: F811
    with Session(writer(world.engine)) as s:
        third = _person(s, "assessor")
        third.name = "Cleo Third"
        accounts.declare_conflict(
            s, user_id=third.id, organisation_id=world.org_b.id, reason="", recorded_by_id=None
        )
        s.commit()
        third_id = third.id
    admin = _api(client, world)
    a, b = world.fresh(Application, world.app_a.id), world.fresh(Application, world.app_b.id)
    answer = client.post(
        "/api/v1/admin/applications/assign",
        headers=admin,
        json={
            "assessor_id": third_id,
            "applications": [
                {"id": a.id, "version": a.version},
                {"id": b.id, "version": b.version},
            ],
        },
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["done"] == [a.id]
    assert [r["id"] for r in body["refused"]] == [b.id]
    assert body["refused"][0]["reason"].startswith("conflict of interest")
    assert world.fresh(Application, a.id).assessor_id == third_id
    assert world.fresh(Application, b.id).assessor_id == world.assessor2.id
    assign = _events(world, "assign_assessor")[-1]
    assert assign.comment == "Assigned to Cleo Third for assessment"

    # A line at a version seen before a change is refused, and nothing of it changes.
    stale = client.post(
        "/api/v1/admin/applications/assign",
        headers=admin,
        json={
            "assessor_id": world.assessor.id,
            "applications": [{"id": a.id, "version": a.version}],
        },
    )
    assert stale.status_code == 200
    assert stale.json()["done"] == []
    assert stale.json()["refused"] == [
        {"id": a.id, "reason": "the application changed since you read it"}
    ]
    assert world.fresh(Application, a.id).assessor_id == third_id
    # Bad input is a 422 naming the field, never a 500.
    empty = client.post(
        "/api/v1/admin/applications/assign",
        headers=admin,
        json={"assessor_id": third_id, "applications": []},
    )
    assert empty.status_code == 422


def test_the_api_sends_reminders_each_on_its_own(client, world):  # noqa: F811
    admin = _api(client, world)
    a, b = world.fresh(Application, world.app_a.id), world.fresh(Application, world.app_b.id)
    before = len(_events(world, "send_reminder"))
    answer = client.post(
        "/api/v1/admin/applications/remind",
        headers=admin,
        json={
            "message": "Please send the signed policy.",
            "applications": [{"id": a.id, "version": a.version}, {"id": b.id, "version": 1}],
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["done"] == [a.id]
    assert answer.json()["refused"] == [
        {"id": b.id, "reason": "the application changed since you read it"}
    ]
    reminders = _events(world, "send_reminder")
    assert len(reminders) == before + 1
    assert reminders[-1].comment == "Please send the signed policy."
    # Only an admin: an assessor's token is refused.
    world.sign_in(client, world.assessor)
    assert (
        client.post(
            "/api/v1/admin/applications/remind",
            json={"applications": [{"id": a.id, "version": a.version}]},
        ).status_code
        == 401
    )
