"""Smoke tests of the browser-test fixtures: a live server, Debian's Chromium, axe-core, screenshots."""

from __future__ import annotations

TINY_PAGE = (
    "<!doctype html><html lang='en'><head><title>t</title></head>"
    "<body><main><h1>Hello</h1></main></body></html>"
)


def test_browser_shows_the_live_server_json(live_server, page, screenshot):
    response = page.goto(f"{live_server}/healthz")
    assert response is not None
    assert response.status == 200
    assert '{"status":"ok"}' in page.locator("body").inner_text()
    screenshot(page, "healthz")

    response = page.goto(f"{live_server}/api/v1/schemes")
    assert response is not None
    assert response.status == 200
    assert "Social Value Quality Mark" in page.locator("body").inner_text()
    path = screenshot(page, "schemes")
    assert path.stat().st_size > 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_axe_passes_an_accessible_page(page, axe):
    page.set_content(TINY_PAGE)
    violations = axe(page)
    assert not violations, violations


def test_axe_reports_an_image_without_alt(page, axe):
    page.set_content(TINY_PAGE.replace("<h1>Hello</h1>", "<h1>Hello</h1><img src=x>"))
    violations = axe(page)
    assert "image-alt" in {v["id"] for v in violations}, violations
    image_alt = next(v for v in violations if v["id"] == "image-alt")
    assert image_alt["impact"] == "critical"
    assert image_alt["nodes"][0]["target"] == ["img"]
