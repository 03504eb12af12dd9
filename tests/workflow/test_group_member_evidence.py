"""Per-member evidence: a requirement with `per_member: true` asks a group's application for one
upload for each member organisation it covers. The checklist has a line per member, the submit
guard names the members still missing it, and an upload names the member it is for.

No item of the real policies asks for this (the domain brief names no per-business item), so
these tests turn it on for SVQM's executive commitment in a copy of the policies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlmodel import Session, select

from svqm.accounts import service as accounts
from svqm.db import writer
from svqm.errors import PolicyError
from svqm.evidence import requirements
from svqm.evidence.models import EvidenceItem
from svqm.policy import parse_policy
from svqm.workflow.models import Application
from svqm.workflow.schemes import SchemeRegistry, load_registry
from tests.factories import add_pledges, answer_eligibility
from tests.web.pages_helpers import (
    PASSWORD,
    csrf_of,
    make_account,
    make_client,
    sign_in,
)

POLICIES = Path(__file__).resolve().parents[2] / "policies"
ITEM = "{id: executive_commitment, title: Signed executive commitment to the pledges}"
PER_MEMBER = (
    "{id: executive_commitment, title: Signed executive commitment to the pledges, "
    "per_member: true}"
)
HOMES = ["Harbour House", "Quay Lodge", "Lighthouse Court", "Anchor View", "Marina Gardens"]


def member_policies(directory: Path) -> Path:
    """A copy of the real policies with SVQM's executive commitment asked of every member."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in POLICIES.glob("*.yaml"):
        shutil.copyfile(path, directory / path.name)
    for sub in ("logos", "organisation"):
        if (POLICIES / sub).is_dir():
            shutil.copytree(POLICIES / sub, directory / sub, dirs_exist_ok=True)
    svqm = directory / "svqm.yaml"
    text = svqm.read_text(encoding="utf-8")
    assert ITEM in text
    svqm.write_text(text.replace(ITEM, PER_MEMBER), encoding="utf-8")
    return directory


@pytest.fixture
def member_registry(tmp_path) -> SchemeRegistry:
    return load_registry(member_policies(tmp_path / "policies"))


def _token(client, email):
    response = client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _upload(client, app_id, headers, **data):
    return client.post(
        f"/api/v1/applications/{app_id}/evidence",
        headers=headers,
        data=data,
        files={"file": ("signed.txt", b"signed by the home's director\n", "text/plain")},
    )


def test_per_member_evidence_missing_for_one_member_is_refused_naming_it(
    engine, member_registry, tmp_path, now
):
    registry = member_registry
    with Session(writer(engine), expire_on_commit=False) as s:
        group = accounts.create_organisation(s, name="Harbour Care Group", sector="social care")
        homes = [
            accounts.create_organisation(s, name=n, sector="social care", parent_id=group.id)
            for n in HOMES
        ]
        outsider_org = accounts.create_organisation(s, name="Elsewhere Care")
        director = make_account(s, "applicant", group)
        manager = make_account(s, "applicant", homes[1])
        outsider = make_account(s, "applicant", outsider_org)
        make_account(s, "assessor")
    ids = {h.name: h.id for h in homes}
    with make_client(engine, registry, tmp_path) as client:
        headers = _token(client, director.email)
        app_id = client.post(
            "/api/v1/applications",
            json={"scheme": "svqm", "level": "bronze", "members": sorted(ids.values())},
            headers=headers,
        ).json()["id"]
        with Session(writer(engine), expire_on_commit=False) as s:
            app = s.get(Application, app_id)
            add_pledges(s, registry, app, director, now=now)
            answer_eligibility(s, registry, app, director, now=now)
            s.commit()

        slots = client.get(f"/api/v1/applications/{app_id}/requirements", headers=headers).json()
        commitment = [s for s in slots if s["requirement"] == "executive_commitment"]
        # One line per member, each naming its member; no line for the whole application.
        assert sorted(s["organisation_id"] for s in commitment) == sorted(ids.values())
        assert {s["title"] for s in commitment} == {
            f"Signed executive commitment to the pledges: {n}" for n in HOMES
        }
        for slot in slots:
            if slot["requirement"] != "executive_commitment":
                assert _upload(client, app_id, headers, requirement=slot["id"]).status_code == 201

        # A member the application does not cover: 422 naming the field.
        stranger = _upload(
            client,
            app_id,
            headers,
            requirement="executive_commitment",
            organisation_id=str(outsider_org.id),
        )
        assert stranger.status_code == 422, stranger.text
        assert "organisation_id" in stranger.json()["detail"]
        assert "Quay Lodge" in stranger.json()["detail"]
        # Without a member, the item names no slot of a group's application.
        bare = _upload(client, app_id, headers, requirement="executive_commitment")
        assert bare.status_code == 422
        assert f"executive_commitment:member-{ids['Quay Lodge']}" in bare.json()["detail"]
        # A member's own manager and an outsider cannot upload to the group's application.
        for person in (manager, outsider):
            refused = _upload(
                client,
                app_id,
                _token(client, person.email),
                requirement="executive_commitment",
                organisation_id=str(ids["Quay Lodge"]),
            )
            assert refused.status_code == 404, refused.text

        for name in HOMES:
            if name == "Anchor View":
                continue
            up = _upload(
                client,
                app_id,
                headers,
                requirement="executive_commitment",
                organisation_id=str(ids[name]),
            )
            assert up.status_code == 201, up.text
            assert up.json()["slot"] == f"executive_commitment:member-{ids[name]}"

        refused = client.post(
            f"/api/v1/applications/{app_id}/events/submit", json={}, headers=headers
        )
        assert refused.status_code == 422, refused.text
        unmet = " ".join(refused.json()["unmet"])
        assert "missing for Anchor View" in unmet
        assert "1 of 5 members" in unmet
        assert "Quay Lodge" not in unmet

        # The task list shows the item not yet done for every member.
        sign_in(client, director.email)
        page = client.get(f"/applications/{app_id}")
        assert "Each member uploads its own: 4 of 5 members done" in page.text
        assert "Signed executive commitment to the pledges: Anchor View" in page.text
        # The page's upload for the last member (its slot's own form).
        slot = f"executive_commitment:member-{ids['Anchor View']}"
        form = client.get(f"/applications/{app_id}/evidence/{slot}")
        assert form.status_code == 200
        sent = client.post(
            f"/applications/{app_id}/evidence",
            data={"requirement": slot, "csrf_token": csrf_of(form.text)},
            files={"file": ("signed.txt", b"signed by Anchor View\n", "text/plain")},
            follow_redirects=False,
        )
        assert sent.status_code == 303, sent.text
        assert (
            "Each member uploads its own: 5 of 5 members done"
            in client.get(f"/applications/{app_id}").text
        )

        submitted = client.post(
            f"/api/v1/applications/{app_id}/events/submit", json={}, headers=headers
        )
        assert submitted.status_code == 200, submitted.text
        listed = client.get(f"/api/v1/applications/{app_id}/evidence", headers=headers).json()
        assert sorted(
            e["member_organisation_id"]
            for e in listed
            if e["requirement_id"] == "executive_commitment"
        ) == sorted(ids.values())
    with Session(engine) as s:
        items = s.exec(select(EvidenceItem).where(EvidenceItem.slot == slot)).all()
        assert [i.member_organisation_id for i in items] == [ids["Anchor View"]]


def test_an_organisations_own_application_asks_a_per_member_item_once(
    engine, member_registry, tmp_path, now
):
    with Session(writer(engine), expire_on_commit=False) as s:
        person = make_account(s, "applicant")
    with make_client(engine, member_registry, tmp_path) as client:
        headers = _token(client, person.email)
        app_id = client.post(
            "/api/v1/applications", json={"scheme": "svqm", "level": "bronze"}, headers=headers
        ).json()["id"]
        slots = client.get(f"/api/v1/applications/{app_id}/requirements", headers=headers).json()
        commitment = [s for s in slots if s["requirement"] == "executive_commitment"]
        assert [(s["id"], s["organisation_id"]) for s in commitment] == [
            ("executive_commitment", None)
        ]
        other = _upload(
            client,
            app_id,
            headers,
            requirement="executive_commitment",
            organisation_id=str(person.organisation_id + 1000),
        )
        assert other.status_code == 422
        assert "organisation_id" in other.json()["detail"]
        assert (
            _upload(client, app_id, headers, requirement="executive_commitment").status_code == 201
        )


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (
            "- {id: pledge_plan, title: Delivery plan for the pledge, per: pledge,",
            "evidence_requirements[1].per_member: one upload per member",
        ),
        (
            "- {id: standard_evidence, title: Evidence for the standard, per: standard",
            "evidence_requirements[6].per_member: one upload per member",
        ),
    ],
)
def test_per_member_is_checked_in_the_policy(change, where):
    text = (POLICIES / "svqm.yaml").read_text(encoding="utf-8")
    assert change in text
    bad = text.replace(change, change.replace("{id:", "{per_member: true, id:"))
    with pytest.raises(PolicyError) as raised:
        parse_policy(bad, source="svqm.yaml", scheme_id="svqm")
    assert f"svqm.yaml: {where}" in str(raised.value)
    wrong = text.replace(ITEM, ITEM.replace("}", ", per_member: sometimes}"))
    with pytest.raises(PolicyError, match=r"svqm\.yaml: evidence_requirements\[0\]\.per_member"):
        parse_policy(wrong, source="svqm.yaml", scheme_id="svqm")


def test_the_checklist_lists_each_member_and_missing_names_them(session, member_registry):
    registry = member_registry
    policy = registry.get("svqm").policy
    level = policy.level("bronze")
    names = {7: "Quay Lodge", 9: "Anchor View"}
    slots = requirements.slots_for(policy, level, [], names)
    mine = [s for s in slots if s.requirement_id == "executive_commitment"]
    assert [(s.id, s.member_id) for s in mine] == [
        ("executive_commitment:member-7", 7),
        ("executive_commitment:member-9", 9),
    ]
    reasons = requirements.missing(mine)
    assert reasons == [
        "evidence missing for 2 of 2 members: Signed executive commitment to the pledges "
        "(each member uploads its own; missing for Quay Lodge, Anchor View)"
    ]
    assert requirements.find_slot(slots, "executive_commitment", None, 9) is mine[1]
    assert requirements.find_slot(slots, "executive_commitment:member-9", None) is mine[1]
    assert requirements.find_slot(slots, "executive_commitment", None, 8) is None
