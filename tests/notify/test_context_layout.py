"""ContextLayout: contexts that share most values encode to exactly the text outbox.message writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from svqm.notify import outbox
from svqm.notify.outbox import ContextLayout
from svqm.notify.recipients import Audience
from svqm.workflow.schemes import SchemeRegistry

_KEYS = st.text(min_size=0, max_size=6)  # any text: quotes, escapes, non-ASCII, empty
_SCALARS = (
    st.text(max_size=12)
    | st.integers(-(10**20), 10**20)
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=False, allow_infinity=False)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=6,
)


def _stored(context: dict[str, Any]) -> str:
    return str(
        outbox.message(key="k", template="t", context=context, to_addrs=[], now=_NOW)["context"]
    )


_NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@given(st.dictionaries(_KEYS, _VALUES, max_size=8), st.data())
def test_the_text_is_what_message_writes_for_the_whole_context(
    context: dict[str, Any], data: st.DataObject
) -> None:
    varying = data.draw(st.lists(st.sampled_from(sorted(context)), unique=True)) if context else []
    fixed = {k: v for k, v in context.items() if k not in varying}
    layout = ContextLayout(fixed, varying)
    # The same varying keys with other values: the layout is built once for many messages.
    for values in (
        [context[k] for k in varying],
        data.draw(st.lists(_VALUES, min_size=len(varying), max_size=len(varying))),
    ):
        whole = layout.context(values)
        assert whole == {**fixed, **dict(zip(varying, values, strict=True))}
        text = layout.encode(values)
        assert text == _stored(whole)
        assert outbox.message(
            key="k", template="t", encoded=text, to_addrs=[], now=_NOW
        ) == outbox.message(key="k", template="t", context=whole, to_addrs=[], now=_NOW)


def test_keys_are_text_each_once_and_every_value_given() -> None:
    with pytest.raises(ValueError, match="once"):
        ContextLayout({"a": 1}, ["a"])
    with pytest.raises(ValueError, match="once"):
        ContextLayout({}, ["a", "a"])
    with pytest.raises(ValueError, match="text"):
        ContextLayout({1: "x"}, [])  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="one value for each"):
        ContextLayout({}, ["a", "b"]).encode(["only one"])
    with pytest.raises(ValueError, match="not both"):
        outbox.message(key="k", template="t", context={}, encoded="{}", to_addrs=[], now=_NOW)


class _Subject:
    def __init__(self, sid: int, org: int, state: str, number: str) -> None:
        self.id, self.organisation_id, self.level, self.state = sid, org, "silver", state
        self.policy_digest, self.certificate_number = "", number


def test_a_reminders_encoded_context_is_its_context(registry: SchemeRegistry) -> None:
    policy = registry.get("svqm").policy
    audience = Audience.__new__(Audience)  # its lookups filled in by hand: no database needed
    audience.base_url, audience._fixed, audience._staff = "https://svqm.example", {}, {}
    audience.organisations = {1: 'Kind & Co <Ltd> "quoted"', 2: "Café Ñandú ☃"}
    audience.members = {1: ["a@example.org", "b@example.org"], 2: ["z@example.org"]}
    audience.names = {"a@example.org": "Ann \\ O'Neil", "b@example.org": "", "z@example.org": "Zoë"}
    audience.assessors = {}
    due = datetime(2026, 5, 4, 23, 30, tzinfo=UTC)  # the next day in London
    seen = 0
    for d in policy.deadlines:
        for subject in (_Subject(7, 1, "active", "SVQM-1"), _Subject(8, 2, "suspended", "é")):
            for days, outcome in ((30, ""), (0, "the award is now 'Lapsed' (it was 'Active')")):
                args = (policy, "award", subject, d, due, "applicant")
                context = audience.context(*args, days_before=days, outcome=outcome)
                text = audience.encoded_context(*args, days_before=days, outcome=outcome)
                assert text == _stored(context)
                assert (
                    json.loads(text)["organisation"]
                    == audience.organisations[subject.organisation_id]
                )
                seen += 1
    assert seen >= 16
