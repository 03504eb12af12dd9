"""Every page the demo reaches at 320 px, as the care group's bid director and one of its homes' manager:
no document is wider than the screen; axe-core on the first page of each kind
(tests/browser/demo_crawl.py)."""

from __future__ import annotations

from tests.browser.demo_crawl import GROUPS, crawl


def test_no_page_is_wider_than_a_320px_screen(demo_server, new_page, axe):
    visited, reached = crawl(demo_server, new_page, axe, GROUPS["care_group"])
    # Their audiences' pages were reached (the numbers keep the crawl honest, not exact: 103
    # pages on 2026-12-03).
    for kind in ["/dashboard", "/group"]:
        assert kind in reached, (kind, sorted(reached))
    assert visited > 50, visited
