"""Every table that scrolls on its own on a narrow screen is a region a keyboard can reach and
scroll (WCAG 2.1.1, 1.4.10), named for a screen reader, and shows a shadow where more lies
beyond its edge."""

from __future__ import annotations

import re
from pathlib import Path

import svqm.web

TEMPLATES = Path(svqm.web.__file__).parent / "templates"
STYLES = Path(svqm.web.__file__).parent / "static" / "scss" / "app.scss"


def test_every_scrolling_table_is_a_named_focusable_region():
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        for tag in re.findall(r'<div class="app-table-scroll"[^>]*>', path.read_text()):
            found.append(tag)
            where = f"{path.relative_to(TEMPLATES)}: {tag}"
            assert 'role="region"' in tag, where
            assert 'tabindex="0"' in tag, where
            assert re.search(r'aria-label="[^"]+"', tag), where
    assert len(found) > 5  # the directory, the dashboards, the invoices, the queues...


def test_a_scrolling_table_shows_a_shadow_where_more_lies_beyond():
    rule = STYLES.read_text().split(".app-table-scroll {", 1)[1].split("}", 1)[0]
    assert "overflow-x: auto" in rule
    assert "background-attachment: local, local, scroll, scroll" in rule
    assert rule.count("radial-gradient") == 2
