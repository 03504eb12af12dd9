"""The demo's partnership charter in a real browser (axe-core, 1280 and 320 px): its public page
lists every signatory with its pledges, a signature's verify page names the partnership as its
issuer, and a signatory withdraws from its award page after a page that asks first."""

from __future__ import annotations

import re

from playwright.sync_api import expect

CHARTER = "/charters/northshore-anchor-charter"
LEAD = "anchors@northshore-icb.demo.svqm.test"
DEMO_PASSWORD = "demo-password-2026"


def _fits(page) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 320, (page.url, width)


def test_the_charter_page_lists_its_signatories(live_server, demo_keys, new_page, screenshot, axe):
    page = new_page(bypass_csp=True)
    page.goto(f"{live_server}{CHARTER}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Northshore Anchor Charter")
    signatories = page.locator("[id^=signatory-] h3")
    expect(signatories).to_have_count(12)
    expect(page.locator("#signatory-count")).to_have_text(
        "12 organisations have signed the charter."
    )
    expect(
        page.get_by_role("link", name="Northshore Integrated Care Board", exact=True)
    ).to_be_visible()
    expect(page.get_by_text("Coastline Community Transport")).to_have_count(0)  # withdrew
    expect(
        page.get_by_role("img", name="Northshore Health and Care Partnership logo")
    ).to_be_visible()
    screenshot(page, "charter-1280")
    assert not (violations := axe(page)), violations
    page.set_viewport_size({"width": 320, "height": 800})
    page.reload()
    _fits(page)
    screenshot(page, "charter-320")
    assert not (violations := axe(page)), violations

    # A signature's verify page: valid, issued and signed by the partnership.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server}{CHARTER}")
    page.get_by_role("link", name="Check the signature of Northshore College").click()
    expect(page.locator("#verdict")).to_have_text(re.compile("This award is valid."))
    expect(page.locator("#issuer")).to_contain_text(
        "Issued and signed by Northshore Health and Care Partnership"
    )
    screenshot(page, "signature-verify-1280")
    assert not (violations := axe(page)), violations
    page.set_viewport_size({"width": 320, "height": 800})
    page.reload()
    _fits(page)
    screenshot(page, "signature-verify-320")


def test_a_signatory_withdraws_from_its_award_page(
    live_server, demo_keys, new_page, screenshot, axe
):
    page = new_page(bypass_csp=True)
    page.goto(f"{live_server}/login")
    page.get_by_label("Email address").fill(LEAD)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.goto(f"{live_server}/dashboard")
    page.locator("a[href^='/dashboard/awards/']").first.click()
    expect(page).to_have_url(re.compile(r"/dashboard/awards/\d+$"))
    page.get_by_role("button", name="Withdraw from the charter").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Are you sure you want to withdraw from the charter?"
    )
    page.set_viewport_size({"width": 320, "height": 800})
    _fits(page)
    screenshot(page, "withdraw-320")
    assert not (violations := axe(page)), violations
    # The reason is required: refused, said at the top, nothing changed.
    page.get_by_role("button", name="Yes, withdraw from the charter").click()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    assert not (violations := axe(page)), violations
    page.get_by_label(re.compile("Reason")).fill("The board is reviewing all its commitments.")
    page.get_by_role("button", name="Yes, withdraw from the charter").click()
    expect(page.get_by_text("no longer listed as a signatory")).to_be_visible()
    page.set_viewport_size({"width": 1280, "height": 900})
    screenshot(page, "withdrawn-1280")
    page.goto(f"{live_server}{CHARTER}")
    expect(page.locator("[id^=signatory-] h3")).to_have_count(11)
    expect(
        page.get_by_role("link", name="Northshore Integrated Care Board", exact=True)
    ).to_have_count(0)


def test_the_partnerships_logo_shows_all_of_its_name(live_server, new_page):
    """Each line of the logo's text lies inside the logo as Chromium lays it out (its second line
    ran past the right edge once)."""
    page = new_page()
    response = page.goto(f"{live_server}/issuers/northshore-partnership/logo")
    assert response is not None
    assert response.ok
    box = page.evaluate("() => document.documentElement.viewBox.baseVal.width")
    lines = page.evaluate(
        "() => [...document.querySelectorAll('text')].map(t => {"
        " const b = t.getBBox(); return [t.textContent, b.x, b.x + b.width]; })"
    )
    assert [text for text, _, _ in lines] == ["Northshore", "Health and Care Partnership"]
    for text, left, right in lines:
        assert left >= 0, (text, left)
        assert right <= box, (text, right, box)


def _lines(page, selector: str) -> int:
    """How many lines the browser lays the element's text out on."""
    return page.evaluate(
        "(s) => { const r = document.createRange();"
        " r.selectNodeContents(document.querySelector(s));"
        " return new Set([...r.getClientRects()].map(b => Math.round(b.top))).size; }",
        selector,
    )


def test_an_organisations_charter_keeps_its_line_breaks_and_speaks_of_it(
    live_server, demo_keys, new_page, screenshot, axe
):
    page = new_page(bypass_csp=True)
    page.goto(f"{live_server}/login")
    page.get_by_label("Email address").fill("applicant@riverside.demo.svqm.test")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.goto(f"{live_server}/charter/pillars/vision")
    page.get_by_label("Vision", exact=True).fill("Healthier lives.\nFairer chances.")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/charter(\?.*)?$"))
    vision = "#pillars-vision .app-multiline"
    # The saved page's URL comes before its document is parsed: wait for the text itself.
    expect(page.locator(vision).first).to_be_visible()
    assert page.evaluate(
        "(s) => getComputedStyle(document.querySelector(s)).whiteSpace", vision
    ) == ("pre-line")
    assert _lines(page, vision) == 2
    page.get_by_role("button", name="Publish charter").click()

    page.get_by_role("link", name="See your published charter").click()
    expect(page.get_by_role("heading", level=2, name="Its vision and mission")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("^Your "))).to_have_count(0)
    shown = "#charter-vision + .govuk-summary-list dd"
    expect(page.locator(shown).first).to_have_text("Healthier lives.\nFairer chances.")
    assert _lines(page, shown) == 2
    screenshot(page, "org-charter-1280")
    assert not (violations := axe(page)), violations
    page.set_viewport_size({"width": 320, "height": 800})
    page.reload()
    _fits(page)
    assert _lines(page, shown) == 2
    screenshot(page, "org-charter-320")
