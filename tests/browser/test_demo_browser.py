"""The demo's pages in a real browser, on one live server seeded once by `svqm demo`.

- The admin dashboard: the admin signs in with a code and opens /admin; charts, their figures,
  a screenshot (var/screenshots/test_dashboard_charts_are_accessible/) and axe-core.
- The care group's bid director switches between its homes and reads the group page (axe-core, 320 px).
- Every award the demo makes can be checked: the directory, each award's verify page and
  certificate (and its PDF), and checking a pasted credential; screenshots of each (under
  var/screenshots/test_every_demo_award_can_be_checked/) and axe-core on each: no WCAG 2.2 A/AA
  violations.

Then the same pages under the real Content-Security-Policy: nothing refused, nothing fetched
from elsewhere.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import ConsoleMessage, Page, Response, expect

from tests.browser.conftest import DemoServer
from tests.browser.demo_crawl import ADMIN, DEMO_PASSWORD, GROUPS, PEOPLE, fits_320, sign_in

HERE = Path(__file__).resolve().parent
CHARTS = [
    "Awards in force by level and scheme",
    "Applications by status",
    "Open deadlines by when they fall due",
    "Open applications per assessor",
]


@pytest.fixture(scope="module")
def live_server(demo_server: DemoServer) -> str:
    """The session's demo server, shared with the crawls (these tests leave its data as it was)."""
    return demo_server.url


def _watch(page: Page, problems: list[str]) -> None:
    def on_response(response: Response) -> None:
        # Chromium may still ask for /favicon.ico on its own (the pages link an SVG icon).
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            problems.append(f"HTTP {response.status} for {response.url}")

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console error: {message.text}")

    page.on("response", on_response)
    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))


def test_dashboard_charts_are_accessible(live_server, demo_server, new_page, screenshot, axe):
    problems: list[str] = []
    # bypass_csp only lets `axe` inject its inline script; the second page below has the real CSP.
    page = new_page(bypass_csp=True)
    _watch(page, problems)
    page.goto(f"{live_server}/login")
    page.get_by_label("Email address").fill(ADMIN)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login/second-factor"))
    page.get_by_label("Security code").fill(demo_server.code(ADMIN))
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/admin$"))

    expect(page.get_by_role("heading", level=1)).to_have_text("Administration")
    for name in CHARTS:
        expect(page.get_by_role("img", name=name, exact=True)).to_be_visible()
    expect(page.locator("svg.app-chart")).to_have_count(len(CHARTS))
    # A bar for each level of each scheme with awards in force in the demo (its Health Bronze, its
    # Bronze and the Northshore charter's signatures), the same as the rows of the figures' table,
    # and a bar for each of both demo assessors.
    rows = page.locator("#table-awards tbody tr")
    schemes = {rows.nth(i).get_attribute("data-scheme") for i in range(rows.count())}
    assert schemes == {"svqm", "svqm-health", "northshore-anchor-charter"}, schemes
    expect(page.locator("#chart-awards rect.app-chart__bar")).to_have_count(rows.count())
    expect(page.locator("#chart-workload rect.app-chart__bar")).to_have_count(2)
    expect(page.get_by_role("link", name="Every award (CSV)")).to_have_attribute(
        "href", "/admin/exports/awards.csv"
    )
    # Open every "Show the figures" so that the screenshot and axe see the tables too.
    for summary in page.locator("summary.govuk-details__summary").all():
        summary.click()
    expect(page.locator("#table-awards")).to_be_visible()
    screenshot(page, "dashboard")
    violations = axe(page)
    assert not violations, violations

    # The same page under the real Content-Security-Policy: nothing refused, nothing fetched.
    strict = new_page(storage_state=page.context.storage_state())
    _watch(strict, problems)
    requests: list[str] = []
    strict.on("request", lambda request: requests.append(request.url))
    strict.goto(f"{live_server}/admin")
    expect(strict.locator("svg.app-chart")).to_have_count(len(CHARTS))
    strict.wait_for_load_state("load")
    assert all(url.startswith(live_server) for url in requests), requests
    assert not problems, problems


def test_every_demo_award_can_be_checked(live_server, demo_server, new_page, screenshot, axe):
    # bypass_csp only lets `axe` inject its script; the strict page below has the real CSP.
    page = new_page(bypass_csp=True)
    page.goto(f"{live_server}/awards")
    expect(page.get_by_role("heading", level=1)).to_have_text("Directory of awards")
    links = page.locator("table.govuk-table a[href$='/verify']")
    # The demo's eight awards, all in force (five care homes, and Kestrel Leisure Trust's Bronze).
    expect(links).to_have_count(8)
    screenshot(page, "directory")
    assert not (violations := axe(page)), violations
    verify_paths = [links.nth(i).get_attribute("href") for i in range(links.count())]

    for n, path in enumerate(verify_paths):
        page.goto(f"{live_server}{path}")
        expect(page.locator("#verdict")).to_have_text(re.compile("This award is valid."))
        checks = page.locator("#checks tbody tr")
        expect(checks).to_have_count(5)
        expect(page.locator("#checks .govuk-tag--green")).to_have_count(5)
        screenshot(page, f"verify-{n}")
        assert not (violations := axe(page)), violations

        page.get_by_role("link", name="View the certificate").click()
        expect(page).to_have_url(re.compile(r"/awards/\d+/certificate$"))
        expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
        expect(page.locator("#not-valid")).to_have_count(0)
        screenshot(page, f"certificate-{n}")
        assert not (violations := axe(page)), violations
        pdf = page.request.get(page.url + ".pdf")
        assert pdf.ok
        assert pdf.body().startswith(b"%PDF-")

        award_id = re.search(r"/awards/(\d+)/", path).group(1)
        credential = page.request.get(f"{live_server}/api/v1/awards/{award_id}/credential")
        assert credential.headers["content-type"] == "application/vc+jwt"
        page.goto(f"{live_server}/awards/verify")
        page.get_by_label("Credential").fill(credential.text())
        page.get_by_role("button", name="Check the credential").click()
        expect(page.locator("#verdict")).to_have_attribute("data-verdict", "valid")
        if n == 0:
            screenshot(page, "pasted-credential")
            assert not (violations := axe(page)), violations

    # Under the real CSP: no errors, no request leaves the site.
    strict = new_page()
    problems: list[str] = []
    requests: list[str] = []
    _watch(strict, problems)
    strict.on("request", lambda r: requests.append(r.url))
    for path in ("/awards", verify_paths[0], verify_paths[0].replace("verify", "certificate")):
        strict.goto(f"{live_server}{path}")
        strict.wait_for_load_state("load")
    assert not problems, problems
    assert all(url.startswith(live_server) for url in requests), requests


def test_the_care_groups_bid_director_switches_between_its_homes(
    live_server, demo_server, new_page, screenshot, axe
):
    page = new_page(bypass_csp=True)
    page.goto(f"{live_server}/login")
    page.get_by_label("Email address").fill("applicant@harbour.demo.svqm.test")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("link", name="Your organisations").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your organisations")
    assert not (violations := axe(page)), violations
    screenshot(page, "organisations")

    page.get_by_role("button", name="Switch to Quay Lodge").click()
    expect(page).to_have_url(re.compile(r"/dashboard\?done=switched$"))
    expect(page.get_by_text("You are now acting for this organisation.")).to_be_visible()
    expect(page.locator(".govuk-caption-l")).to_have_text("Quay Lodge")
    expect(page.locator("#awards + .app-table-scroll table tbody tr")).to_have_count(1)

    page.goto(f"{live_server}/account/organisations")
    page.get_by_role("button", name="Switch to Harbour Care Group").click()
    page.goto(f"{live_server}/group")
    homes = ["Anchor View", "Harbour House", "Lighthouse Court", "Marina Gardens", "Quay Lodge"]
    expect(page.locator("section h2")).to_have_text(homes)
    assert not (violations := axe(page)), violations
    screenshot(page, "group")
    # At 320 px nothing but a table's own scrolling region is wider than the screen.
    page.set_viewport_size({"width": 320, "height": 800})
    for path in ("/group", "/account/organisations", "/awards?region=Cheshire+and+Merseyside"):
        page.goto(f"{live_server}{path}")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 320, (path, width)
    screenshot(page, "directory-by-region-320")


def test_an_organisations_public_page_shows_its_pledges_and_chart(
    live_server, demo_server, new_page, screenshot, axe
):
    page = new_page(bypass_csp=True)
    page.goto(f"{live_server}/awards")
    page.get_by_role(
        "link", name="Pledges and progress of Riverside Community Health NHS Trust"
    ).click()
    expect(page).to_have_url(re.compile(r"/organisations/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Riverside Community Health NHS Trust"
    )
    # Each pledge's chart is one image to assistive technology, named by its title, with the
    # same figures in a table beside it; the demo's first year was filed and accepted.
    charts = page.get_by_role("img", name=re.compile("figures against the target"))
    assert charts.count() >= 1
    first = charts.first
    expect(first).to_be_visible()
    assert "Latest accepted figure" in (first.locator("desc").text_content() or "")
    tables = page.get_by_role("table", name="The figures in the chart")
    assert tables.count() == charts.count()
    expect(tables.first.get_by_role("rowheader", name="Target")).to_be_visible()
    screenshot(page, "organisation")
    assert not (violations := axe(page)), violations
    # At 320 px the page is no wider than the screen (tables scroll in their own region).
    page.set_viewport_size({"width": 320, "height": 800})
    page.reload()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 320, width
    screenshot(page, "organisation-320")
    assert not (violations := axe(page)), violations


def test_the_holder_reads_its_progress_and_the_figures_form(
    live_server, demo_server, new_page, screenshot, axe
):
    page = new_page(bypass_csp=True)
    page.goto(f"{live_server}/login")
    page.get_by_label("Email address").fill("applicant@riverside.demo.svqm.test")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.locator("a[href^='/dashboard/awards/']").first.click()
    expect(page).to_have_url(re.compile(r"/dashboard/awards/\d+$"))
    # The same chart and table as the public page, and the form to report figures per pledge.
    expect(page.get_by_role("heading", name="Pledges and progress")).to_be_visible()
    charts = page.get_by_role("img", name=re.compile("figures against the target"))
    assert charts.count() >= 1
    assert page.get_by_role("table", name="The figures in the chart").count() == charts.count()
    if page.locator("#figures").count():
        expect(page.get_by_role("button", name="Send figures for review")).to_be_visible()
        expect(page.get_by_label("Supporting files (optional)")).to_be_visible()
    screenshot(page, "award")
    assert not (violations := axe(page)), violations
    page.set_viewport_size({"width": 320, "height": 800})
    page.reload()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 320, width
    screenshot(page, "award-320")


def test_the_staff_queues_fit_a_narrow_screen(live_server, demo_server, new_page, screenshot, axe):
    """The assessor's queue and the panel's decisions, with their search, filters and tags: no
    axe-core violation, and at 320 px no page wider than the screen."""
    for email, path, heading in [
        ("assessor@demo.svqm.test", "/assess?finished=yes", "Your applications to assess"),
        ("panel@demo.svqm.test", "/panel", "Decisions for the panel"),
    ]:
        page = new_page(bypass_csp=True)
        page.goto(f"{live_server}/login")
        page.get_by_label("Email address").fill(email)
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page).to_have_url(re.compile(r"/login/second-factor"))
        page.get_by_label("Security code").fill(demo_server.code(email))
        page.get_by_role("button", name="Continue").click()
        page.goto(f"{live_server}{path}")
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        if path.startswith("/assess"):
            # The panel's filters show once something waits for it (nothing does in the demo).
            expect(page.get_by_label("Search by organisation or reference")).to_be_visible()
        assert axe(page) == [], path
        page.set_viewport_size({"width": 320, "height": 800})
        page.goto(f"{live_server}{path}")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 320, (path, width)
        screenshot(page, f"{path.strip('/').split('?')[0]}-320")


def test_admin_people_pages_and_a_workflow_diagram_fit_a_narrow_screen(
    live_server, demo_server, new_page, screenshot, axe
):
    """The admin's users and conflicts pages, one user's page, and a scheme's page with its
    workflow diagrams: no axe-core violation, and at 320 px none wider than the screen (the
    tables and the diagrams scroll within their own boxes)."""
    page = new_page(bypass_csp=True)
    page.goto(f"{live_server}/login")
    page.get_by_label("Email address").fill(ADMIN)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login/second-factor"))
    page.get_by_label("Security code").fill(demo_server.code(ADMIN))
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/admin$"))
    page.goto(f"{live_server}/admin/users")
    user_link = page.locator('a[href^="/admin/users/"]').first.get_attribute("href")
    assert user_link
    for path in ("/admin/users", user_link, "/admin/conflicts", "/schemes/svqm"):
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"{live_server}{path}")
        assert axe(page) == [], path
        page.set_viewport_size({"width": 320, "height": 800})
        page.goto(f"{live_server}{path}")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        wide = page.evaluate(
            "() => [...document.querySelectorAll('body *')].filter(e => "
            "e.getBoundingClientRect().right > 321 && !e.closest('.app-table-scroll'))"
            ".slice(0, 5).map(e => e.tagName + '.' + "
            "e.className + '#' + e.id + ':' + Math.round(e.getBoundingClientRect().right))"
        )
        assert width <= 320, (path, width, wide)
        screenshot(page, f"{path.strip('/').replace('/', '-')}-320")


# --- the panel, and the crawl's people -----------------------------------------------------------


def _both_widths(page: Page, screenshot, axe, step: str) -> None:
    """A step at 1280 px and at 320 px: screenshot each, axe-core on each, and the 320 px check."""
    page.set_viewport_size({"width": 1280, "height": 800})
    screenshot(page, f"{step}-1280")
    assert not (violations := axe(page)), (step, violations)
    page.set_viewport_size({"width": 320, "height": 800})
    fits_320(page)
    screenshot(page, f"{step}-320")
    assert not (violations := axe(page)), (step, violations)
    page.set_viewport_size({"width": 1280, "height": 800})


def test_every_person_of_the_demo_is_crawled_by_one_file():
    """Each person of the demo is crawled at 320 px (tests/browser/demo_crawl.py) by exactly one
    test_demo_crawl_<group>.py, and each group has its file."""
    crawled = [email for people in GROUPS.values() for email in people]
    assert sorted(crawled) == sorted(PEOPLE), crawled
    files = {
        path.stem.removeprefix("test_demo_crawl_") for path in HERE.glob("test_demo_crawl_*.py")
    }
    assert files == set(GROUPS), files


def test_the_panel_case_for_a_conflicted_and_a_free_member(
    live_server, demo_server, new_page, screenshot, axe
):
    """Westbrook's Bronze, recommended and awaiting the panel: Pat Panel (a conflict on record)
    reads why they cannot decide and gets no buttons; Priya Panel sees the recommendation, the
    scores and the assessor's notes side by side, and overturning asks on a page of its own."""
    conflicted = new_page(bypass_csp=True)
    sign_in(conflicted, demo_server, "panel2@demo.svqm.test")
    expect(conflicted).to_have_url(re.compile(r"/panel$"))
    case = conflicted.get_by_role("link", name=re.compile("^Westbrook Housing Association"))
    expect(case).to_have_count(1)
    _both_widths(conflicted, screenshot, axe, "01-panel-queue-conflicted")
    case.click()
    expect(conflicted).to_have_url(re.compile(r"/panel/\d+$"))
    case_path = urlsplit(conflicted.url).path
    expect(conflicted.locator("#barred")).to_contain_text("You cannot decide on this application")
    expect(conflicted.locator("#barred-reasons")).to_contain_text(
        "A conflict of interest with Westbrook Housing Association is on record for you "
        "(sits on the association's board)."
    )
    expect(conflicted.locator(f"form[action^='{case_path}/events']")).to_have_count(0)
    expect(conflicted.get_by_role("button", name=re.compile("award|refusal", re.I))).to_have_count(
        0
    )
    _both_widths(conflicted, screenshot, axe, "02-panel-case-conflicted")

    free = new_page(bypass_csp=True)
    sign_in(free, demo_server, "panel@demo.svqm.test")
    free.goto(f"{live_server}{case_path}")
    expect(free.locator("#barred")).to_have_count(0)
    side = free.locator("#side-by-side")
    expect(side.locator("#recommendation")).to_be_visible()
    expect(side).to_contain_text("Six themes with clear targets; the evidence is complete.")
    expect(side.locator("#scores")).to_be_visible()
    expect(side.locator("#notes")).to_be_visible()
    # Side by side at 1280 px: the three columns start on the same line.
    tops = [
        side.locator(f"#{name}").bounding_box()["y"]  # type: ignore[index]
        for name in ("recommendation", "scores", "notes")
    ]
    assert len(set(tops)) == 1, tops
    expect(free.get_by_role("button", name="Confirm award", exact=True)).to_be_visible()
    overturn = free.locator("form[id^='trigger-overturn']")
    expect(overturn).to_have_count(1)
    expect(overturn.locator("button.govuk-button--warning")).to_have_count(1)
    _both_widths(free, screenshot, axe, "03-panel-case-free")

    overturn.get_by_role("textbox").fill("The pay gap target is not ambitious enough.")
    overturn.locator("button").click()
    expect(free.get_by_role("heading", level=1)).to_have_text(
        re.compile("^Are you sure you want to overturn")
    )
    expect(free.locator(".govuk-warning-text")).to_contain_text(
        "This goes against the assessor's recommendation"
    )
    expect(free.locator("#confirm")).to_have_class(re.compile("govuk-button--warning"))
    _both_widths(free, screenshot, axe, "04-panel-overturn-confirm")
    # "No" goes back to the case, which is still awaiting the panel.
    free.get_by_role("link", name="No, go back to the application").click()
    expect(free).to_have_url(f"{live_server}{case_path}")
    expect(free.get_by_role("button", name="Confirm award", exact=True)).to_be_visible()
