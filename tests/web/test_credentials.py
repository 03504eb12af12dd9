"""Signed award credentials as a third party sees them: checked with joserfc (a JOSE library the
service does not sign with) against the published JWKS; tampering, suspension, withdrawal and
expiry each change the verdict; the status lists say so too."""

from __future__ import annotations

import base64
import gzip
import json
import re
import zlib
from datetime import timedelta
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet
from sqlmodel import Session

from svqm.clock import FixedClock
from svqm.db import session_scope, writer
from svqm.web.pages.public_awards import pdf_of
from svqm.workflow import service as workflow
from svqm.workflow.models import Award
from svqm.workflow.service import Actor
from tests.factories import make_org, make_user
from tests.notify.timeline import confirmed_award
from tests.web.award_world import BASE_URL, T0, app_client, issue_award
from tests.web.pages_helpers import csrf_of
from tests.workflow.harness import Cast

NOW = T0 + timedelta(days=30)

# The credentials are signed with alg "EdDSA": what deployed JWT libraries verify today. RFC 9864
# (2025) deprecates the name in favour of "Ed25519", and joserfc warns about it; the signature is
# the same Ed25519 either way, so the warning is expected here and nothing else is let through.
pytestmark = pytest.mark.filterwarnings(
    "ignore:EdDSA is deprecated via RFC 9864:joserfc.errors.SecurityWarning"
)


@pytest.fixture
def issued(engine, registry, tmp_path):
    return issue_award(engine, registry, tmp_path, name="Harbour Care Trust")


@pytest.fixture
def clock():
    return FixedClock(NOW)


@pytest.fixture
def client(engine, registry, tmp_path, clock):
    with app_client(engine, registry, tmp_path, clock) as c:
        yield c


def _keys(client) -> KeySet:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return KeySet.import_key_set(response.json())


def _credential(client, award_id: int) -> str:
    response = client.get(f"/api/v1/awards/{award_id}/credential")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vc+jwt"
    return response.text


def _bit(client, purpose: str, index: int) -> bool:
    """Read the bit as a verifier would: fetch the list, check its signature, unpack it."""
    response = client.get(f"/credentials/status/{purpose}")
    assert response.headers["content-type"] == "application/vc+jwt"
    claims = jwt.decode(response.text, _keys(client), algorithms=["EdDSA"]).claims
    assert "BitstringStatusListCredential" in claims["type"]
    subject = claims["credentialSubject"]
    assert subject["statusPurpose"] == purpose
    encoded = subject["encodedList"]
    assert encoded.startswith("u")
    bits = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    assert len(bits) >= 16 * 1024
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


def _verdict(html: str) -> str:
    found = re.search(r'data-verdict="([a-z_]+)"', html)
    assert found, "the page shows no verdict"
    return found.group(1)


def _pdf_objects(pdf: bytes) -> bytes:
    """The PDF's bytes with each of its compressed streams (object streams too) inflated."""
    parts = [pdf]
    # Up to `endstream` with the end of line before it: a stream whose last byte is a carriage
    # return would otherwise lose it (and fail to inflate). The inflater stops at the end of the
    # compressed data and leaves the end of line over.
    for stream in re.finditer(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        try:
            parts.append(zlib.decompressobj().decompress(stream.group(1)))
        except zlib.error:
            continue
    return b"\n".join(parts)


def _fire(engine, registry, issued, trigger: str, now) -> None:
    with Session(writer(engine)) as s:
        award = s.get(Award, issued.award_id)
        workflow.fire(
            s,
            award,
            trigger,
            actor=Actor.of(issued.admin),
            registry=registry,
            now=now,
            comment=f"{trigger} for the test",
        )
        s.commit()


def _paste(client, token: str) -> str:
    form = {"credential": token, "csrf_token": csrf_of(client.get("/awards/verify").text)}
    response = client.post("/awards/verify", data=form)
    assert response.status_code == 200, response.text[:300]
    return response.text


def test_the_credential_verifies_with_an_independent_library(client, issued, engine):
    token = _credential(client, issued.award_id)
    assert _credential(client, issued.award_id) == token, "the same award gives the same bytes"
    decoded = jwt.decode(token, _keys(client), algorithms=["EdDSA"])
    assert decoded.header["typ"] == "vc+jwt"
    assert decoded.header["kid"] == _keys(client).keys[0].kid
    vc = decoded.claims
    with Session(engine) as s:
        award = s.get(Award, issued.award_id)
    assert vc["@context"][0] == "https://www.w3.org/ns/credentials/v2"
    assert "openbadges" in vc["@context"][1] or "ob/v3p0" in vc["@context"][1]
    assert vc["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert vc["issuer"]["id"] == f"{BASE_URL}/issuer"
    assert vc["issuer"]["type"] == ["Profile"]
    assert vc["validFrom"] == award.issued_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert vc["validUntil"] == award.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    achievement = vc["credentialSubject"]["achievement"]
    assert achievement["achievementType"] == "Certification"
    assert achievement["name"] == "Social Value Quality Mark: Silver"
    assert vc["credentialSubject"]["result"][0]["value"] == "Silver"
    assert "Silver" in achievement["resultDescription"][0]["allowedValue"]
    assert award.certificate_number in vc["description"]
    statuses = {e["statusPurpose"]: e for e in vc["credentialStatus"]}
    assert set(statuses) == {"revocation", "suspension"}
    for purpose, entry in statuses.items():
        assert entry["type"] == "BitstringStatusListEntry"
        assert entry["statusListIndex"] == str(issued.award_id)
        assert entry["statusListCredential"] == f"{BASE_URL}/credentials/status/{purpose}"
    # The registered claims let a generic JWT library check the dates as well.
    claims = jwt.JWTClaimsRegistry(now=int(NOW.timestamp()), exp={"essential": True})
    claims.validate(vc)
    late = jwt.JWTClaimsRegistry(now=int((award.expires_at + timedelta(days=1)).timestamp()))
    with pytest.raises(Exception, match="expired"):
        late.validate(vc)
    assert client.get("/issuer").json()["id"] == vc["issuer"]["id"]
    (listed,) = client.get("/api/v1/awards").json()
    assert client.get(listed["credential_url"]).text == token
    assert client.get(listed["certificate_url"]).status_code == 200


def test_a_tampered_or_foreign_credential_fails(client, issued):
    token = _credential(client, issued.award_id)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["credentialSubject"]["result"][0]["value"] = "Platinum"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    tampered = f"{header}.{forged}.{signature}"
    with pytest.raises(BadSignatureError):
        jwt.decode(tampered, _keys(client), algorithms=["EdDSA"])
    page = _paste(client, tampered)
    assert _verdict(page) == "invalid"
    assert "Failed" in page
    assert "the signature does not verify" in page
    assert "Platinum" not in page, "nothing from an unverified credential is shown as fact"

    # Signed properly, but by a key this issuer does not publish.
    from jwt import encode  # PyJWT, only to forge a well-formed token with another key

    other = encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "x"})
    assert _verdict(_paste(client, other)) == "invalid"
    assert _verdict(_paste(client, "eyJnot.a.jwt")) == "invalid"

    genuine = _paste(client, token)
    assert _verdict(genuine) == "valid"
    assert "Harbour Care Trust" in genuine


def test_pasting_nothing_or_too_much_is_a_clear_error(client):
    token = csrf_of(client.get("/awards/verify").text)
    empty = client.post("/awards/verify", data={"credential": " ", "csrf_token": token})
    assert empty.status_code == 422
    assert "Paste the credential" in empty.text
    huge = client.post("/awards/verify", data={"credential": "e" * 20_001, "csrf_token": token})
    assert huge.status_code == 422
    assert "longer than a credential" in huge.text


def test_suspension_and_withdrawal_revoke_through_the_status_lists(
    client, issued, engine, registry
):
    award_id = issued.award_id
    token = _credential(client, award_id)
    assert not _bit(client, "suspension", award_id)
    assert not _bit(client, "revocation", award_id)
    assert _verdict(client.get(f"/awards/{award_id}/verify").text) == "valid"

    _fire(engine, registry, issued, "suspend", NOW)
    assert _bit(client, "suspension", award_id)
    assert not _bit(client, "revocation", award_id)
    page = client.get(f"/awards/{award_id}/verify").text
    assert _verdict(page) == "suspended"
    assert re.search(
        r"Not suspended</th>\s*<td[^>]*>.*?</td>\s*<td[^>]*>The issuer has suspended it.</td>", page
    )
    assert "The issuer has not withdrawn it." in page
    # The list and bit are kept for a verifier, out of the way of everyone else.
    details = page[page.index('id="technical-details"') :]
    assert f"Not suspended: Bit {award_id} of the suspension status list is set." in details
    assert "bit " not in page[: page.index('id="technical-details"')].lower()
    # The credential handed out before the suspension now checks as suspended, too.
    assert _verdict(_paste(client, token)) == "suspended"

    _fire(engine, registry, issued, "reinstate", NOW)
    assert not _bit(client, "suspension", award_id)
    assert _verdict(_paste(client, token)) == "valid"

    _fire(engine, registry, issued, "withdraw", NOW)
    assert _bit(client, "revocation", award_id)
    assert _verdict(client.get(f"/awards/{award_id}/verify").text) == "withdrawn"
    assert _verdict(_paste(client, token)) == "withdrawn"
    assert client.get("/api/v1/awards").json() == []


def test_after_expiry_the_verify_page_says_expired(client, issued, engine, clock):
    with Session(engine) as s:
        expires = s.get(Award, issued.award_id).expires_at
    assert [a["id"] for a in client.get("/api/v1/awards").json()] == [issued.award_id]
    clock.at = expires + timedelta(minutes=1)
    page = client.get(f"/awards/{issued.award_id}/verify").text
    assert _verdict(page) == "expired"
    assert re.search(r"Validity dates</th>\s*<td[^>]*><strong[^>]*>Failed", page)
    # Even before the sweep moves it out of an in-force state, the directory leaves it out.
    assert client.get("/api/v1/awards").json() == []
    assert "Harbour Care Trust" not in client.get("/awards").text


def test_the_certificate_page_and_pdf(client, issued, engine, registry):
    page = client.get(f"/awards/{issued.award_id}/certificate")
    assert page.status_code == 200
    assert "Harbour Care Trust" in page.text
    assert "Silver" in page.text
    assert f"{BASE_URL}/awards/{issued.award_id}/verify" in page.text
    qr = re.search(
        r'<img class="app-certificate__qr" src="data:image/svg\+xml;base64,([^"]+)"', page.text
    )
    assert qr, "the certificate has an inline QR code"
    assert base64.b64decode(qr.group(1)).startswith(b"<?xml") or b"<svg" in base64.b64decode(
        qr.group(1)
    )
    assert 'id="not-valid"' not in page.text
    pdf = client.get(f"/awards/{issued.award_id}/certificate.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    assert "attachment" in pdf.headers["content-disposition"]
    # A tagged PDF: the catalogue names a structure tree and says its content is marked.
    body = _pdf_objects(pdf.content)
    assert b"/StructTreeRoot" in body
    assert re.search(rb"/MarkInfo\s*<<\s*/Marked\s+true", body)
    assert b"/Lang" in body
    assert b"/H1" in body or b"/H" in body
    # The same certificate again is the cached render; a change of status is a new one.
    hits = pdf_of.cache_info().hits
    assert client.get(f"/awards/{issued.award_id}/certificate.pdf").content == pdf.content
    assert pdf_of.cache_info().hits == hits + 1
    _fire(engine, registry, issued, "suspend", NOW)
    assert 'id="not-valid"' in client.get(f"/awards/{issued.award_id}/certificate").text
    suspended = client.get(f"/awards/{issued.award_id}/certificate.pdf")
    assert suspended.content.startswith(b"%PDF-")
    assert suspended.content != pdf.content
    assert client.get("/awards/999999/certificate").status_code == 404
    assert client.get("/awards/999999/certificate.pdf").status_code == 404
    assert client.get("/api/v1/awards/999999/credential").status_code == 404


def test_status_lists_are_only_the_two_purposes(client):
    assert client.get("/credentials/status/revocation").status_code == 200
    # A purpose there is not is a list that does not exist (before: 422, as bad input).
    other = client.get("/credentials/status/other")
    assert other.status_code == 404
    assert "Traceback" not in other.text


def test_a_renewed_award_is_superseded_and_links_to_its_successor(
    client, engine, registry, tmp_path
):
    with session_scope(engine) as s:
        org = make_org(s, "Chain Trust")
        cast = Cast(org, make_user(s, "applicant", org), make_user(s, "assessor"),
                    make_user(s, "panel"), make_user(s, "admin"))  # fmt: skip
        first = confirmed_award(s, registry, cast, tmp_path / "one", "bronze").id
        second = confirmed_award(s, registry, cast, tmp_path / "two", "silver")
        assert second.supersedes_id == first
        second_id = second.id
    old = client.get(f"/awards/{first}/verify").text
    assert _verdict(old) == "superseded"
    assert f'href="/awards/{second_id}/verify"' in old
    assert _verdict(client.get(f"/awards/{second_id}/verify").text) == "valid"
    # Its credential still verifies (it was genuine), and the record says what replaced it.
    assert _verdict(_paste(client, _credential(client, first))) == "superseded"
    assert [a["id"] for a in client.get("/api/v1/awards").json()] == [second_id]


def test_the_certificate_pdf_is_rendered_by_the_one_pdf_module(client, issued, monkeypatch):
    from svqm.web import pdf as pdf_module

    rendered: list[str] = []

    class _Document:
        def __init__(self, string, url_fetcher):
            rendered.append(string)
            self.fetcher = url_fetcher

        def write_pdf(self, pdf_tags):
            assert pdf_tags is True
            # Holding the lock every PDF shares: an invoice cannot render beside it.
            assert pdf_module._ONE_RENDER_AT_A_TIME.locked()
            return b"%PDF-from-svqm.web.pdf"

    class _Fetcher:
        def __init__(self, allowed_protocols, fail_on_errors):
            assert allowed_protocols == ["data"]

    monkeypatch.setattr(
        pdf_module,
        "_renderer",
        lambda: SimpleNamespace(HTML=_Document, URLFetcher=_Fetcher),
    )
    pdf_of.cache_clear()
    response = client.get(f"/awards/{issued.award_id}/certificate.pdf")
    pdf_of.cache_clear()
    assert response.status_code == 200
    assert response.content == b"%PDF-from-svqm.web.pdf"
    assert len(rendered) == 1
    assert "Harbour Care Trust" in rendered[0]
