"""The policy fields of charters and partnership issuers, as the loader checks them: each problem
named by file, field and reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from svqm.errors import PolicyError
from svqm.policy import load_policies, load_policy
from svqm.workflow.schemes import known_effects, known_guards
from tests.conftest import POLICIES

CHARTER = POLICIES / "northshore-anchor-charter.yaml"


def _copy(tmp_path: Path, text: str | None = None, name: str = "charter.yaml") -> Path:
    (tmp_path / "logos").mkdir(exist_ok=True)
    shutil.copy(POLICIES / "logos" / "northshore-partnership.svg", tmp_path / "logos")
    path = tmp_path / name
    path.write_text(text if text is not None else CHARTER.read_text(encoding="utf-8"))
    return path


def _load(path: Path):
    return load_policy(path, known_guards=known_guards(), known_effects=known_effects())


def _edited(tmp_path: Path, old: str, new: str) -> Path:
    text = CHARTER.read_text(encoding="utf-8")
    assert old in text
    return _copy(tmp_path, text.replace(old, new, 1))


def test_the_demo_charter_loads_with_its_issuer_and_logo(tmp_path):
    policy = _load(_copy(tmp_path))
    assert policy.charter is not None
    assert (policy.charter.sign, policy.charter.withdraw) == ("sign", "withdraw")
    assert len(policy.charter.commitments) == 5
    assert policy.issuer is not None
    assert policy.issuer.id == "northshore-partnership"
    assert policy.issuer.logo_type == "image/svg+xml"
    assert policy.issuer.logo_bytes.startswith(b"<svg")
    # The logo's bytes are the loader's reading, never part of the policy text or its digest.
    assert b"<svg" not in policy.source_text.encode()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "effects: [issue_award], label: Sign the charter",
            "label: Sign the charter",
            "charter.sign: 'sign' must be the applicant's and issue the award",
        ),
        (
            "  sign: sign\n",
            "  sign: sign_it\n",
            "charter.sign: the application workflow has no trigger 'sign_it'",
        ),
        (
            "  withdraw: withdraw\n",
            "  withdraw: leave\n",
            "charter.withdraw: the award workflow has no trigger 'leave'",
        ),
        (
            "dest: withdrawn, roles: [applicant, admin],\n         guards: [has_comment]",
            "dest: withdrawn, roles: [admin],\n         guards: [has_comment]",
            "charter.withdraw: 'withdraw' must list the 'applicant' role",
        ),
        (
            "source: [signed, renewal_due], dest: withdrawn",
            "source: [signed], dest: withdrawn",
            "charter.withdraw: 'withdraw' cannot leave renewal_due",
        ),
        ("  commitments:\n", "  commitments: []\n  unused:\n", "charter.commitments"),
        ("url: https://northshore-partnership.example", "url: http://plain.example", "issuer.url"),
    ],
)
def test_a_broken_charter_or_issuer_is_refused_with_its_field(tmp_path, old, new, message):
    with pytest.raises(PolicyError) as refused:
        _load(_edited(tmp_path, old, new))
    assert message in refused.value.detail
    assert str(tmp_path / "charter.yaml") in refused.value.detail


@pytest.mark.parametrize(
    ("logo", "content", "message"),
    [
        ("logos/missing.svg", None, "issuer.logo: cannot read 'logos/missing.svg'"),
        ("../outside.svg", None, "must be a path inside the policies directory"),
        ("/etc/passwd", None, "must be a path inside the policies directory"),
        (
            "logos/bad.svg",
            b"<svg><script>alert(1)</script></svg>",
            "holds a script or event handler",
        ),
        ("logos/bad.svg", b'<svg onload="x()"></svg>', "holds a script or event handler"),
        ("logos/bad.png", b"GIF89a not a png", "is not a PNG (.png) or SVG (.svg) image"),
        ("logos/bad.svg", b"<svg>" + b" " * 300_000 + b"</svg>", "is over 256 KiB"),
    ],
)
def test_a_logo_is_a_small_png_or_svg_beside_the_policy(tmp_path, logo, content, message):
    path = _edited(tmp_path, "logo: logos/northshore-partnership.svg", f"logo: {logo}")
    if content is not None:
        (tmp_path / logo).write_bytes(content)
    with pytest.raises(PolicyError) as refused:
        _load(path)
    assert f"{path}: issuer.logo" in refused.value.detail
    assert message in refused.value.detail


def test_schemes_sharing_an_issuer_describe_it_alike(tmp_path):
    _copy(tmp_path, name="first.yaml")
    text = CHARTER.read_text(encoding="utf-8").replace(
        "name: Northshore Health and Care Partnership", "name: Another Partnership", 1
    )
    _copy(tmp_path, text, name="second.yaml")
    with pytest.raises(PolicyError) as refused:
        load_policies(tmp_path, known_guards=known_guards(), known_effects=known_effects())
    assert (
        "second: issuer.name: issuer 'northshore-partnership' is described otherwise by 'first'"
        in (refused.value.detail)
    )
    # Described alike, two schemes share one issuer (one key ring).
    _copy(tmp_path, name="second.yaml")
    loaded = load_policies(tmp_path, known_guards=known_guards(), known_effects=known_effects())
    assert {p.issuer.id for p in loaded.values() if p.issuer} == {"northshore-partnership"}
