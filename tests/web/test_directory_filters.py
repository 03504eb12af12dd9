"""The directory's level and pledge theme filters with every scheme loaded: schemes share level
and theme ids ("silver", "employment") that are not the same thing, so each option is one
scheme's ("svqm:employment"), grouped by scheme, levels in the policy's order.

A link from before, naming only the id, matches that id in every scheme the list shows that has
it (charters' only when their scheme is chosen); when that is one scheme its option is shown as
chosen, when several a "(any scheme)" option says so."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlmodel import Session

from svqm.accounts import service as accounts
from svqm.clock import utc_now
from svqm.db import writer
from svqm.evidence.models import ApplicationPledge, Pledge, PledgeRevision
from svqm.workflow.models import Award
from tests.factories import make_user
from tests.web.test_pages_public import _names, client
from tests.workflow.harness import Cast, award_in

__all__ = ["client"]


def _award(s: Session, registry, name: str, scheme: str, level: str, state: str, *themes: str):
    """An award in force for a new organisation, holding a pledge of each theme."""
    now = utc_now()
    org = accounts.create_organisation(s, name=name, sector="health")
    cast = Cast(org, None, make_user(s, "assessor"), None, None)  # type: ignore[arg-type]
    award = award_in(
        s,
        registry,
        cast,
        scheme=scheme,
        level=level,
        state=state,
        issued=now - timedelta(days=30),
        at=now,
    )
    due = (now + timedelta(days=365)).date()
    for theme in themes:
        words = {"title": f"{name} on {theme}", "indicator": "people", "target": "10"}
        pledge = Pledge(
            organisation_id=org.id or 0,
            application_id=award.application_id,
            theme=theme,
            due_date=due,
            **words,
        )
        s.add(pledge)
        s.flush()
        assert pledge.id is not None
        s.add(ApplicationPledge(application_id=award.application_id, pledge_id=pledge.id))
        s.add(
            PledgeRevision(
                pledge_id=pledge.id,
                revision=1,
                application_id=award.application_id,
                change="made",
                theme=theme,
                due_date=due,
                at=now,
                **words,
            )
        )
    s.flush()
    return award


@pytest.fixture
def listed(engine, registry) -> dict[str, Award]:
    with Session(writer(engine), expire_on_commit=False) as s:
        made = {
            "Svqm Jobs": _award(s, registry, "Svqm Jobs", "svqm", "bronze", "active", "employment"),
            "Svqm Silver": _award(s, registry, "Svqm Silver", "svqm", "silver", "active", "skills"),
            "Health Silver": _award(
                s, registry, "Health Silver", "svqm-health", "silver", "active", "leadership"
            ),
            "People Silver": _award(
                s, registry, "People Silver", "iip-style", "silver", "active", "leading"
            ),
            "Northshore Jobs": _award(
                s,
                registry,
                "Northshore Jobs",
                "northshore-anchor-charter",
                "signatory",
                "signed",
                "employment",
            ),
        }
        s.commit()
    return made


def _select(page: str, name: str) -> list[tuple[str | None, str, str, bool]]:
    """The select's options: (its group's label, value, text, selected), in order."""
    body = page.split(f'id="{name}" name="{name}">')[1].split("</select>")[0]
    out = []
    group = None
    for tag in re.finditer(
        r'<optgroup label="([^"]*)">|<option value="([^"]*)"([^>]*)>([^<]*)<', body
    ):
        if tag.group(1) is not None:
            group = html.unescape(tag.group(1))
            continue
        value, attrs, text = tag.group(2), tag.group(3), html.unescape(tag.group(4))
        out.append((group if value else None, value, text, "selected" in attrs))
    return out


def _chosen(page: str, name: str) -> list[tuple[str, str]]:
    return [(value, text) for _, value, text, on in _select(page, name) if on]


def test_each_theme_option_is_one_schemes_and_every_name_is_offered(client, registry, listed):
    page = client.get("/awards").text
    themes = _select(page, "theme")
    values = [v for _, v, _, _ in themes if v]
    texts = [t for _, v, t, _ in themes if v]
    assert (
        len(values)
        == len(set(values))
        == sum(len(s.policy.themes) for s in registry.current.values())
    )
    assert len(texts) == len(set(texts)), "no two options read alike"
    svqm = registry.get("svqm").policy
    offered = {v: t for group, v, t, _ in themes if group == svqm.name}
    # Every SVQM theme, by its own name; "Health and wellbeing" is also the Health Award's.
    assert list(offered) == [f"svqm:{t.id}" for t in svqm.themes]
    assert offered["svqm:employment"] == "Employment and employability"
    assert offered["svqm:health"] == "Health and wellbeing (Social Value Quality Mark)"
    assert "svqm-health:health_wellbeing" in values
    assert "health" not in values
    every = {v: t for _, v, t, _ in themes}
    assert every["northshore-anchor-charter:employment"] == "Local employment and widening access"


def test_each_level_option_is_one_schemes_in_the_policys_order(client, registry, listed):
    levels = _select(client.get("/awards").text, "level")
    for sid, sch in registry.current.items():
        policy = sch.policy
        offered = [v for group, v, _, _ in levels if group == policy.name]
        assert offered == [f"{sid}:{lv.id}" for lv in sorted(policy.levels, key=lambda lv: lv.rank)]
    svqm = [t for group, _, t, _ in levels if group == "Social Value Quality Mark"]
    assert svqm == [
        "Bronze",
        "Silver (Social Value Quality Mark)",
        "Gold (Social Value Quality Mark)",
        "Platinum (Social Value Quality Mark)",
    ]
    texts = [t for _, v, t, _ in levels if v]
    assert len(texts) == len(set(texts))


@pytest.mark.parametrize(
    ("query", "expected", "selected"),
    [
        # Chosen from the options: that scheme's theme or level only.
        ({"theme": "svqm:employment"}, {"Svqm Jobs"}, "svqm:employment"),
        (
            {"theme": "northshore-anchor-charter:employment"},
            {"Northshore Jobs"},
            "northshore-anchor-charter:employment",
        ),
        ({"level": "svqm:silver"}, {"Svqm Silver"}, "svqm:silver"),
        ({"level": "svqm-health:silver"}, {"Health Silver"}, "svqm-health:silver"),
        ({"level": "northshore-anchor-charter:signatory"}, {"Northshore Jobs"}, None),
        # A link from before: the id in each scheme listed (a charter's only when chosen).
        ({"theme": "employment"}, {"Svqm Jobs"}, "svqm:employment"),
        (
            {"theme": "employment", "scheme": "northshore-anchor-charter"},
            {"Northshore Jobs"},
            "northshore-anchor-charter:employment",
        ),
        ({"level": "silver"}, {"Svqm Silver", "Health Silver", "People Silver"}, "silver"),
        ({"level": "silver", "scheme": "iip-style"}, {"People Silver"}, "iip-style:silver"),
        # What no scheme has matches nothing, and is no error.
        ({"theme": "svqm:leading"}, set(), None),
        ({"level": "nope:silver"}, set(), None),
        ({"level": "nope"}, set(), None),
    ],
)
def test_the_filters_match_the_scheme_and_the_id(client, listed, query, expected, selected):
    page = client.get("/awards", params=query)
    assert page.status_code == 200
    assert _names(page.text) == expected
    name = next(iter(k for k in query if k != "scheme"))
    if selected is not None:
        assert [v for v, _ in _chosen(page.text, name)] == [selected]


def test_an_old_links_id_several_schemes_have_says_so(client, listed):
    page = client.get("/awards", params={"level": "silver"}).text
    assert _chosen(page, "level") == [("silver", "Silver (any scheme)")]
    assert _select(page, "level")[1][:3] == (None, "silver", "Silver (any scheme)")
    # Names that differ are both given.
    page = client.get("/awards", params={"theme": "customers"}).text
    assert _chosen(page, "theme") == [
        ("customers", "Customers or Customers and interested parties")
    ]
    # Without an old link the select has no such option.
    assert "(any scheme)" not in client.get("/awards").text
