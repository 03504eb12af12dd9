"""An organisation's own charter over the API: its people write and publish it (403 for anyone
else, 409 for a stale version), the public reads only the published revision (404 before)."""

from __future__ import annotations

from tests.web.test_api import (  # noqa: F401
    bronze_ready,
    client,
    signup,
    staff,
    token,
)

PILLARS = {
    "place": {"entries": [{"name": "Northshore ICB", "kind": "icb"}]},
    "people": {"entries": [{"name": "Ada Lead", "role": "Executive sponsor"}], "text": "Monthly."},
    "vision": {"statements": {"vision": "Healthier lives", "mission": "Act locally"}},
    "principles": {"items": ["Wellbeing and equity"]},
}


def _url(org_id: int, tail: str = "") -> str:
    return f"/api/v1/organisations/{org_id}/charter{tail}"


def test_write_publish_and_the_public_reads_only_the_published(client):  # noqa: F811
    applicant, org_id = signup(client, "Charter Trust")
    app = bronze_ready(client, applicant)
    pledge_ids = [
        p["id"]
        for p in client.get(f"/api/v1/applications/{app['id']}/pledges", headers=applicant).json()
    ]
    fresh = client.get(_url(org_id), headers=applicant)
    assert fresh.status_code == 200, fresh.text
    assert (fresh.json()["version"], fresh.json()["revision"]) == (0, 0)
    assert [p["id"] for p in fresh.json()["pillars"]] == ["place", "people", "vision", "principles"]
    assert client.get(_url(org_id, "/published")).status_code == 404

    wrote = client.put(
        _url(org_id),
        headers=applicant,
        json={
            "version": 0,
            "pillars": PILLARS,
            "priorities": [
                {
                    "title": "Local jobs",
                    "target": "50 local hires",
                    "outcome": "Fewer people out of work",
                    "target_date": "2027-03-31",
                    "pledge_ids": pledge_ids[:2],
                }
            ],
        },
    )
    assert wrote.status_code == 200, wrote.text
    body = wrote.json()
    assert (body["version"], body["revision"], body["published"]) == (2, 1, False)
    assert body["priorities"][0]["pledge_ids"] == pledge_ids[:2]
    stale = client.post(_url(org_id, "/publish"), headers=applicant, json={"version": 1})
    assert stale.status_code == 409, stale.text
    published = client.post(_url(org_id, "/publish"), headers=applicant, json={"version": 2})
    assert published.status_code == 200, published.text
    assert published.json()["published"] is True

    public = client.get(_url(org_id, "/published"))
    assert public.status_code == 200, public.text
    assert public.json()["revision"] == 1
    assert public.json()["pillars"][0]["entries"] == [
        {"name": "Northshore ICB", "kind": "icb", "role": ""}
    ]
    # No award in force yet: the public is not told which pledges deliver the priority.
    assert public.json()["priorities"][0]["pledge_ids"] == []

    edited = client.put(
        _url(org_id),
        headers=applicant,
        json={"version": 3, "pillars": {"principles": {"items": ["Transparency"]}}},
    )
    assert edited.status_code == 200, edited.text
    assert (edited.json()["revision"], edited.json()["published_revision"]) == (2, 1)
    public = client.get(_url(org_id, "/published")).json()
    assert public["revision"] == 1
    assert public["pillars"][3]["items"] == ["Wellbeing and equity"]


def test_another_organisation_and_staff_are_refused(client):  # noqa: F811
    owner, org_id = signup(client, "Owner Trust")
    other, _ = signup(client, "Other Trust")
    admin = token(client, *staff(client.app.state.engine, "admin"))
    for who in (other, admin):
        assert client.get(_url(org_id), headers=who).status_code == 403
        put = client.put(_url(org_id), headers=who, json={"version": 0, "pillars": PILLARS})
        assert put.status_code == 403
        assert (
            client.post(_url(org_id, "/publish"), headers=who, json={"version": 0}).status_code
            == 403
        )
    assert client.get(_url(org_id)).status_code == 401
    # Nothing was written by the refused requests.
    assert client.get(_url(org_id), headers=owner).json()["version"] == 0


def test_bad_content_is_named_and_an_empty_charter_is_not_published(client):  # noqa: F811
    applicant, org_id = signup(client, "Named Trust")
    bad = client.put(
        _url(org_id),
        headers=applicant,
        json={"version": 0, "pillars": {"place": {"entries": [{"name": "X", "kind": "moon"}]}}},
    )
    assert bad.status_code == 422, bad.text
    assert "pillars.place.entries[0].kind: 'moon' is not one of" in bad.json()["detail"]
    nothing = client.post(_url(org_id, "/publish"), headers=applicant, json={"version": 0})
    assert nothing.status_code == 409, nothing.text
    client.put(
        _url(org_id), headers=applicant, json={"version": 0, "pillars": {"place": PILLARS["place"]}}
    )
    lacking = client.post(_url(org_id, "/publish"), headers=applicant, json={"version": 2})
    assert lacking.status_code == 422, lacking.text
    assert any("Your people" in u for u in lacking.json()["unmet"])
    assert any("Priorities" in u for u in lacking.json()["unmet"])
