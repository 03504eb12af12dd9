"""Loading policy files: YAML (duplicate keys refused), validation, cross-checks, errors that name the field."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from svqm.errors import PolicyError
from svqm.policy.checks import check_equivalents, check_issuers, cross_check
from svqm.policy.models import Policy

_SCHEME_ID = re.compile(r"^[a-z][a-z0-9_-]*$")


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; a policy author almost always meant something else."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _loc(parts: Iterable[int | str]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_policy(
    text: str,
    *,
    source: str,
    scheme_id: str,
    known_guards: Mapping[str, str | None] | None = None,
    known_effects: Iterable[str] | None = None,
) -> Policy:
    """Parse and validate one policy's text.

    Args:
        text: the YAML text.
        source: the file name used in error messages.
        scheme_id: the scheme's id (its file name without `.yaml`).
        known_guards: guard name -> the kind of argument it takes; None skips that check.
        known_effects: effect names the engine implements; None skips that check.

    Raises:
        PolicyError: naming the file, the field and the reason of every problem found.
    """
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        reason = getattr(exc, "problem", None) or str(exc)
        raise PolicyError(f"{source}: {where}: YAML syntax error: {reason}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: (top level): expected a mapping of policy fields")
    if "id" in data:
        raise PolicyError(
            f"{source}: id: not allowed; a scheme's id is its file name ({scheme_id})"
        )
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems = [f"{source}: {_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise PolicyError("\n".join(problems)) from None
    problems = cross_check(policy, known_guards=known_guards, known_effects=known_effects)
    if problems:
        raise PolicyError("\n".join(f"{source}: {p}" for p in problems))
    digest = hashlib.sha256(text.encode()).hexdigest()
    return policy.model_copy(update={"id": scheme_id, "digest": digest, "source_text": text})


def load_policy(
    path: Path,
    *,
    known_guards: Mapping[str, str | None] | None = None,
    known_effects: Iterable[str] | None = None,
) -> Policy:
    """Load one policy file; see `parse_policy`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read: {exc}") from None
    if not path.name.endswith(".yaml"):
        raise PolicyError(f"{path}: (file): a policy file's name ends in .yaml")
    scheme_id = path.name[: -len(".yaml")]
    if not _SCHEME_ID.match(scheme_id):
        raise PolicyError(
            f"{path}: (file name): a scheme id is lower-case letters, digits, '-' or '_'"
        )
    policy = parse_policy(
        text,
        source=str(path),
        scheme_id=scheme_id,
        known_guards=known_guards,
        known_effects=known_effects,
    )
    if policy.issuer is not None and policy.issuer.logo:
        data, media_type = _read_logo(path, policy.issuer.logo)
        issuer = policy.issuer.model_copy(update={"logo_bytes": data, "logo_type": media_type})
        policy = policy.model_copy(update={"issuer": issuer})
    return policy


MAX_LOGO_BYTES = 256 * 1024
_PNG = b"\x89PNG\r\n\x1a\n"
# An SVG shown as an image runs nothing, but one opened at its own address could: refused.
_ACTIVE_SVG = re.compile(rb"<script|<foreignobject|\son[a-z]+\s*=|javascript:", re.IGNORECASE)


def _read_logo(policy_path: Path, name: str) -> tuple[bytes, str]:
    """The issuer's logo: a PNG or SVG file inside the policies directory, at most 256 KiB."""
    where = f"{policy_path}: issuer.logo"
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise PolicyError(f"{where}: '{name}' must be a path inside the policies directory")
    file = policy_path.parent / relative
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{where}: cannot read '{name}': {exc.strerror or exc}") from None
    if len(data) > MAX_LOGO_BYTES:
        raise PolicyError(f"{where}: '{name}' is over {MAX_LOGO_BYTES // 1024} KiB")
    if data.startswith(_PNG) and relative.suffix.lower() == ".png":
        return data, "image/png"
    if relative.suffix.lower() == ".svg" and b"<svg" in data[:4096]:
        if _ACTIVE_SVG.search(data):
            raise PolicyError(f"{where}: '{name}' holds a script or event handler; refused")
        return data, "image/svg+xml"
    raise PolicyError(f"{where}: '{name}' is not a PNG (.png) or SVG (.svg) image")


def load_policies(
    directory: Path,
    *,
    known_guards: Mapping[str, str | None] | None = None,
    known_effects: Iterable[str] | None = None,
) -> dict[str, Policy]:
    """Load every `*.yaml` in a directory, keyed by scheme id; any invalid file raises."""
    if not directory.is_dir():
        raise PolicyError(f"{directory}: (directory): no such policies directory")
    policies = {}
    for path in sorted(directory.glob("*.yaml")):
        policy = load_policy(path, known_guards=known_guards, known_effects=known_effects)
        policies[policy.id] = policy
    if not policies:
        raise PolicyError(f"{directory}: (directory): no *.yaml policy files")
    problems = check_equivalents(policies) + check_issuers(policies)
    if problems:
        raise PolicyError("\n".join(f"{directory}/{p}" for p in problems))
    return policies
