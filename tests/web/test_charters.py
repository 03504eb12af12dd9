"""A partnership's charter: organisations sign it (the signature is an award the charter's policy
runs: sign, renew, withdraw), its public page lists every signatory with its pledges, and the
partnership signs the credentials with its own key, which can be rotated without breaking the
credentials signed before."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlmodel import Session, col, select

from svqm.clock import FixedClock
from svqm.credentials import keys
from svqm.db import writer
from svqm.evidence import pledges as pledge_service
from svqm.workflow import service as workflow
from svqm.workflow.models import Application, Award
from tests.factories import actor, add_pledges, make_org, open_app
from tests.web.award_world import BASE_URL, T0, app_client, page_sign_in
from tests.web.pages_helpers import csrf_of, make_account

CHARTER = "northshore-anchor-charter"
ISSUER = f"{BASE_URL}/issuers/northshore-partnership"
NOW = T0 + timedelta(days=40)

pytestmark = pytest.mark.filterwarnings(
    "ignore:EdDSA is deprecated via RFC 9864:joserfc.errors.SecurityWarning"
)


@pytest.fixture
def client(engine, registry, tmp_path):
    with app_client(engine, registry, tmp_path, FixedClock(NOW)) as c:
        yield c


def _sign(engine, registry, name: str, *, at=T0, pledges: int = 2):
    """An organisation signs the charter through the workflow; its applicant and its award."""
    with Session(writer(engine), expire_on_commit=False) as s:
        org = make_org(s, name)
        user = make_account(s, "applicant", org)
        app = open_app(s, registry, user, scheme=CHARTER, level="signatory", now=at)
        add_pledges(s, registry, app, user, now=at, count=pledges)
        workflow.fire(s, app, "sign", actor=actor(user), registry=registry, now=at)
        award = s.exec(select(Award).where(Award.application_id == app.id)).one()
        s.commit()
        return org, user, award


def _credential(client, award_id: int) -> str:
    response = client.get(f"/api/v1/awards/{award_id}/credential")
    assert response.status_code == 200
    return response.text


def _paste(client, token: str) -> str:
    form = {"credential": token, "csrf_token": csrf_of(client.get("/awards/verify").text)}
    response = client.post("/awards/verify", data=form)
    assert response.status_code == 200, response.text[:300]
    return re.search(r'data-verdict="([a-z_]+)"', response.text).group(1)


def _signatories(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'id="signatory-(\d+)"', html)]


def test_a_charter_with_ten_signatories_shows_them_all_with_their_pledges(engine, registry, client):
    signed = [_sign(engine, registry, f"Northshore Body {n}")[0] for n in range(1, 11)]
    # Neither an organisation still drafting its signature nor another scheme's holder is listed.
    with Session(writer(engine)) as s:
        drafting = make_account(s, "applicant", make_org(s, "Still Drafting Council"))
        open_app(s, registry, drafting, scheme=CHARTER, level="signatory", now=T0)
        s.commit()
    page = client.get(f"/charters/{CHARTER}")
    assert page.status_code == 200
    assert sorted(_signatories(page.text)) == sorted(o.id for o in signed)
    assert "10 organisations have signed the charter." in page.text
    for org in signed:
        assert org.name in page.text
    # Each signatory's pledges (as signed) are under its name.
    first = page.text.split(f'id="signatory-{signed[0].id}"')[1].split('id="signatory-')[0]
    assert "Pledge 1 on Local employment and widening access" in first
    assert "Still Drafting Council" not in page.text
    # The charter's words and its issuer come from the policy.
    assert "Buy locally and for social value" in page.text
    assert (
        "Issued and signed by <strong>Northshore Health and Care Partnership</strong>" in page.text
    )
    assert 'src="data:image/svg+xml;base64,' in page.text
    # Only charters have such a page; the scheme page links to it.
    assert client.get("/charters/svqm").status_code == 404
    assert client.get("/charters/no-such-scheme").status_code == 404
    assert f'href="/charters/{CHARTER}"' in client.get(f"/schemes/{CHARTER}").text


def test_a_partnership_credential_verifies_against_its_own_key_in_the_jwks(
    engine, registry, client
):
    _, _, award = _sign(engine, registry, "Northshore Teaching Hospitals")
    token = _credential(client, award.id)
    jwks = client.get("/.well-known/jwks.json").json()
    partnership = client.app.state.issuers.get("northshore-partnership")
    service = client.app.state.issuers.default
    assert {k["kid"] for k in jwks["keys"]} >= {partnership.key.kid, service.key.kid}
    assert partnership.key.kid != service.key.kid, "the partnership has a key of its own"
    own = KeySet.import_key_set(
        {"keys": [k for k in jwks["keys"] if k["kid"] == partnership.key.kid]}
    )
    claims = jwt.decode(token, own, algorithms=["EdDSA"]).claims
    assert claims["issuer"]["id"] == claims["iss"] == ISSUER
    assert claims["issuer"]["name"] == "Northshore Health and Care Partnership"
    assert claims["issuer"]["image"]["id"] == f"{ISSUER}/logo"
    assert claims["credentialSubject"]["achievement"]["creator"]["id"] == ISSUER
    # Its status lists are the partnership's own, signed with the same key.
    entry = {e["statusPurpose"]: e for e in claims["credentialStatus"]}["revocation"]
    assert entry["statusListCredential"] == f"{ISSUER}/status/revocation"
    listed = client.get("/issuers/northshore-partnership/status/revocation")
    assert jwt.decode(listed.text, own, algorithms=["EdDSA"]).claims["issuer"] == ISSUER
    # The issuer's profile and logo are where the credential says.
    profile = client.get("/issuers/northshore-partnership").json()
    assert profile["id"] == ISSUER
    assert profile["image"]["id"] == f"{ISSUER}/logo"
    logo = client.get("/issuers/northshore-partnership/logo")
    assert logo.headers["content-type"] == "image/svg+xml"
    assert "sandbox" in logo.headers["content-security-policy"]
    assert client.get("/issuers/nobody").status_code == 404
    # The verify page and certificate name the partnership, and the check passes.
    verify = client.get(f"/awards/{award.id}/verify").text
    assert 'data-verdict="valid"' in verify
    assert "Issued and signed by <strong>Northshore Health and Care Partnership" in verify
    assert 'href="/issuers/northshore-partnership"' in verify
    cert = client.get(f"/awards/{award.id}/certificate").text
    assert "Northshore Health and Care Partnership" in cert
    assert 'alt="Northshore Health and Care Partnership logo"' in cert
    assert _paste(client, token) == "valid"
    # A credential claiming the service as issuer but signed with the partnership's key fails.
    forged = claims | {"issuer": {"id": f"{BASE_URL}/issuer", "type": ["Profile"]}}
    from svqm.credentials.signing import sign

    assert _paste(client, sign(forged, partnership.key)) == "invalid"


def test_after_a_key_rotation_old_and_new_credentials_both_verify(engine, registry, client):
    _, _, first = _sign(engine, registry, "Saltmarsh Borough Council")
    old_token = _credential(client, first.id)
    partnership = client.app.state.issuers.get("northshore-partnership")
    service_kid = client.app.state.issuers.default.key.kid
    old_kid, new_kid = keys.rotate(partnership.keys.path)
    assert old_kid != new_kid
    assert partnership.key.kid == new_kid, "the running app reads the rotated key at once"
    _, _, second = _sign(engine, registry, "Northshore College")
    new_token = _credential(client, second.id)
    assert (
        jwt.decode(
            new_token,
            KeySet.import_key_set(client.get("/.well-known/jwks.json").json()),
            algorithms=["EdDSA"],
        ).header["kid"]
        == new_kid
    )
    jwks = client.get("/.well-known/jwks.json").json()
    assert {k["kid"] for k in jwks["keys"]} == {service_kid, old_kid, new_kid}
    assert all("d" not in k for k in jwks["keys"]), "no private part is published"
    every = KeySet.import_key_set(jwks)
    assert jwt.decode(old_token, every, algorithms=["EdDSA"]).header["kid"] == old_kid
    assert _paste(client, old_token) == "valid"
    assert _paste(client, new_token) == "valid"
    # The first award's credential is signed with the new key from now on.
    assert (
        jwt.decode(_credential(client, first.id), every, algorithms=["EdDSA"]).header["kid"]
        == new_kid
    )
    # The retired key's file holds only its public half.
    kept = keys.retired_dir(partnership.keys.path) / f"{old_kid}.pub.pem"
    assert b"PRIVATE" not in kept.read_bytes()


def test_sign_renew_and_withdraw_through_the_workflow(engine, registry, client):
    org, user, first = _sign(engine, registry, "Harbourside Carers Centre", at=T0)
    page_sign_in(client, user)
    # Renewing is signing again: the signature's pledges are carried into the new one.
    with Session(writer(engine), expire_on_commit=False) as s:
        again = open_app(s, registry, user, scheme=CHARTER, level="signatory", now=NOW)
        carried = pledge_service.list_pledges(s, again.id)
        workflow.fire(s, again, "sign", actor=actor(user), registry=registry, now=NOW)
        s.commit()
    with Session(engine) as s:
        old = s.get(Award, first.id)
        new = s.exec(select(Award).where(Award.application_id == again.id)).one()
        assert (old.state, new.state, new.supersedes_id) == ("renewed", "signed", old.id)
        assert workflow.history(s, old)[-1].trigger == "renew"
    assert len(carried) == 2
    charter = client.get(f"/charters/{CHARTER}").text
    assert _signatories(charter) == [org.id]
    assert f'href="/awards/{new.id}/verify"' in charter
    # Withdrawing: from the award page, asked on a page of its own, with the reason required.
    award_page = client.get(f"/dashboard/awards/{new.id}").text
    assert f'href="/dashboard/awards/{new.id}/events/withdraw"' in award_page
    assert "Withdraw from the charter" in award_page
    ask = client.get(f"/dashboard/awards/{new.id}/events/withdraw")
    assert ask.status_code == 200, ask.text[-3000:]
    assert "Are you sure you want to withdraw from the charter?" in ask.text
    token = csrf_of(ask.text)
    # A post that did not come from the question is sent to it; nothing changes.
    skipped = client.post(
        f"/dashboard/awards/{new.id}/events/withdraw",
        data={"csrf_token": token, "comment": "x"},
        follow_redirects=False,
    )
    assert skipped.status_code == 303
    assert skipped.headers["location"] == f"/dashboard/awards/{new.id}/events/withdraw"
    form = {"csrf_token": token, "confirmed": "yes", "version": str(new.version)}
    no_reason = client.post(f"/dashboard/awards/{new.id}/events/withdraw", data=form)
    assert no_reason.status_code in (409, 422)
    assert "There is a problem" in no_reason.text
    # A stale page (the award changed since) is refused with 409.
    stale = client.post(
        f"/dashboard/awards/{new.id}/events/withdraw",
        data=form | {"comment": "Merging", "version": str(new.version - 1)},
    )
    assert stale.status_code == 409
    done = client.post(
        f"/dashboard/awards/{new.id}/events/withdraw",
        data=form | {"comment": "We are merging with another charity."},
        follow_redirects=False,
    )
    assert done.status_code == 303
    followed = client.get(done.headers["location"]).text
    assert "no longer listed as a signatory" in followed
    with Session(engine) as s:
        award = s.get(Award, new.id)
        assert award.state == "withdrawn"
        last = workflow.history(s, award)[-1]
        assert (last.trigger, last.actor_role) == ("withdraw", "applicant")
        assert "merging" in last.comment
    assert _signatories(client.get(f"/charters/{CHARTER}").text) == []
    assert 'data-verdict="withdrawn"' in client.get(f"/awards/{new.id}/verify").text
    # Nothing is left to withdraw; and another organisation's signature is not found.
    assert client.get(f"/dashboard/awards/{new.id}/events/withdraw").status_code == 404
    _, _, other = _sign(engine, registry, "Coastline Community Transport")
    assert client.get(f"/dashboard/awards/{other.id}/events/withdraw").status_code == 404
    with Session(engine) as s:
        signed = s.exec(
            select(Application.state).where(col(Application.organisation_id) == org.id)
        ).all()
    assert sorted(signed) == ["signed", "signed"]


def test_an_svqm_award_is_still_signed_by_the_service(engine, registry, client, tmp_path):
    from tests.web.award_world import issue_award

    issued = issue_award(engine, registry, tmp_path, name="Plain Trust")
    token = _credential(client, issued.award_id)
    claims = jwt.decode(
        token,
        KeySet.import_key_set(client.get("/.well-known/jwks.json").json()),
        algorithms=["EdDSA"],
    ).claims
    assert claims["issuer"]["id"] == f"{BASE_URL}/issuer"
    assert "image" not in claims["issuer"]
    assert {e["statusListCredential"] for e in claims["credentialStatus"]} == {
        f"{BASE_URL}/credentials/status/revocation",
        f"{BASE_URL}/credentials/status/suspension",
    }
    assert _paste(client, token) == "valid"
