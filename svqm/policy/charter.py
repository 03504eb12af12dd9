"""An organisation's own charter as data: which pillars it has, what each holds, and its words.

The engine knows four kinds of pillar content (`collaborators`: people and bodies, each of a kind
the file lists; `leads`: named people with a role, and a text; `statements`: named texts; `list`:
short items). Which pillars exist, their names and hints come from the charter file
(Settings.CHARTER_FILE), so no scheme's or guidance's words live in the engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from svqm.errors import PolicyError
from svqm.policy.models import Slug

Content = Literal["collaborators", "leads", "statements", "list"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Named(_Strict):
    id: Slug
    name: str = Field(min_length=1, max_length=200)
    hint: str = ""


class Pillar(_Strict):
    id: Slug
    # `name` speaks to the organisation's own people ("Your place"); `public_name` is what the
    # public pages call it, in the third person ("Its place").
    name: str = Field(min_length=1, max_length=200)
    public_name: str = Field(min_length=1, max_length=200)
    hint: str = ""
    content: Content
    # collaborators: the kinds a collaborator may be of (at least one).
    kinds: list[Named] = []
    # statements: the texts the pillar asks for (at least one).
    fields: list[Named] = []
    # leads: what the text beside the named people is about; collaborators: optional.
    text_label: str = ""
    # The text_label as the public pages say it (required with a text_label).
    public_text_label: str = ""
    # list: what one item is called ("a principle").
    item_label: str = ""

    @model_validator(mode="after")
    def _fits_its_content(self) -> Pillar:
        if self.content == "collaborators" and not self.kinds:
            raise ValueError("a collaborators pillar lists the kinds a collaborator may be of")
        if self.content != "collaborators" and self.kinds:
            raise ValueError(
                f"kinds: only a collaborators pillar has them (this is {self.content})"
            )
        if self.content == "statements" and not self.fields:
            raise ValueError("a statements pillar lists its fields")
        if self.content != "statements" and self.fields:
            raise ValueError(f"fields: only a statements pillar has them (this is {self.content})")
        if self.content == "leads" and not self.text_label:
            raise ValueError("a leads pillar says what its text is about (text_label)")
        if self.text_label and not self.public_text_label:
            raise ValueError(
                "public_text_label: a pillar with a text_label says it for the public pages too"
            )
        for label, items in (("kinds", self.kinds), ("fields", self.fields)):
            ids = [i.id for i in items]
            if len(set(ids)) != len(ids):
                raise ValueError(f"{label}: an id is listed twice")
        return self

    def kind(self, kind_id: str) -> Named | None:
        return next((k for k in self.kinds if k.id == kind_id), None)


class Priorities(_Strict):
    name: str = "Priorities"
    hint: str = ""
    max_count: int = Field(default=20, ge=1, le=100)


class CharterRules(_Strict):
    """The charter file: its name, its pillars in order, and what its priorities are called."""

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    pillars: list[Pillar] = Field(min_length=1, max_length=12)
    priorities: Priorities = Priorities()

    @model_validator(mode="after")
    def _unique_pillars(self) -> CharterRules:
        ids = [p.id for p in self.pillars]
        if len(set(ids)) != len(ids):
            raise ValueError("pillars: a pillar id is listed twice")
        return self

    def pillar(self, pillar_id: str) -> Pillar | None:
        return next((p for p in self.pillars if p.id == pillar_id), None)


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_charter_rules(text: str, *, source: str) -> CharterRules:
    """Parse the charter file; PolicyError names the file, the field and the reason."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        raise PolicyError(f"{source}: {where}: YAML syntax error") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: (top level): expected a mapping of charter fields")
    try:
        return CharterRules.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{source}: {_loc(tuple(e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise PolicyError("\n".join(problems)) from None


def load_charter_rules(path: Path) -> CharterRules:
    """Read and check the charter file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: (file): cannot read: {exc}") from None
    return parse_charter_rules(text, source=str(path))
