"""The whole journey through the web pages, in a real browser, with axe-core on every page.

An organisation signs up, opens a Bronze application, makes six pledges, uploads evidence for
every checklist slot and submits; the assessor (the only one, so assigned automatically) asks
for more information on two items, collected, and sends them back together; the applicant sees
both on the task list, uploads a new version of each and resubmits once; the assessor accepts
everything and recommends the award; a panel member confirms it; the applicant's dashboard shows
the award. Then the first yearly report: the holder files a figure per pledge with narratives
and a supporting file through the award page's form, the award's assessor asks for more
information, the holder files the same period again (the form offers it), the assessor accepts,
and the organisation's public page shows the accepted figures. Last, near expiry (the deadline
sweep run as of two months before it), the award is due for renewal: the holder starts the renewal
from the award page, and the renewal application carries the award's six pledges. Staff
accounts are made with `svqm user add` (the only way to make them); everything else goes through
the pages, as a person would.

Each person has a browser context of their own. Every distinct page is screenshotted at 1280 px
and at 320 px on the same page (only the viewport changes), in
var/screenshots/test_journey_from_sign_up_to_award/<step>-1280.png and <step>-320.png, and checked
with axe-core (WCAG 2.x A and AA) at 1280 px. The test fails at the end if any page has a
violation, is wider than 320 px at 320 px, if the browser saw an error response or a script
error, or if a page lacked something the journey could go on without (`problems`).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from playwright.sync_api import Locator, Page, Response, expect
from sqlalchemy import create_engine, text

from svqm.workflow.models import application_reference
from tests.browser.conftest import PRODUCTION_SVQM, serve_fresh

SVQM = Path(sys.executable).parent / "svqm"  # this venv's console script, as conftest runs it

ORGANISATION = "Harbour Lane Community Trust"
APPLICANT = "ops@harbour-lane.example"
APPLICANT_PASSWORD = "tide-lantern-orchard-57"
ASSESSOR = "assessor@svqm.example"
PANEL = "panel@svqm.example"
STAFF_PASSWORD = "granite-meadow-compass-83"
SCHEME = "Social Value Quality Mark"
LEVEL = "Bronze (Level 1)"
COMMITMENT = "Signed executive commitment to the pledges"
DELIVERY_PLAN = "Delivery plan for the pledge"
# Six of the scheme's nine themes (policies/svqm.yaml), as the theme list names them.
PLEDGES = [
    ("Employment and employability", "Hire local young people", "people hired, kept a year", "10"),
    ("Education, training and development", "Run apprenticeships", "apprentices completing", "6"),
    ("Health and wellbeing", "Support staff wellbeing", "staff using the wellbeing service", "60%"),
    ("Local economy and procurement", "Buy from local suppliers", "local spend", "30%"),
    ("Environment and carbon reduction", "Cut fleet emissions", "tonnes of CO2e saved", "40"),
    ("Community and volunteering", "Give volunteering days", "volunteering days given", "200"),
]
StaffAdding = subprocess.Popen[str]
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 320, "height": 800}
# What makes a page wider than 320 px (outside the tables' own scrolling regions), for the report.
WIDE_ELEMENTS = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > 321 && !e.closest('.app-table-scroll'))
    .slice(0, 5).map(e => e.tagName + '.' + e.className + ':' + Math.round(
        e.getBoundingClientRect().right))"""
MORE_INFO = "Please upload the commitment signed by your chief executive, with the date."
MORE_INFO_PLAN = "Please say who leads the hiring plan and when each step happens."
# The whole link text: the award page link only mentions the number in its hidden text.
CERTIFICATE = re.compile(r"^SVQM-\d{4}-[0-9A-F]{8}$")


def _text_file(name: str, text: str) -> dict[str, object]:
    return {"name": name, "mimeType": "text/plain", "buffer": text.encode()}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The journey's server hashes at the service's cost (the console script, as deployed):
    the one browser file whose sign-up and sign-ins take the service's own path; the other
    files' servers hash cheaply (tests/svqm_for_tests.py)."""
    with serve_fresh(tmp_path_factory, PRODUCTION_SVQM) as base_url:
        yield base_url


def _stored_hash_parameters(env: dict[str, str]) -> dict[str, str]:
    """Each account's argon2 parameters ("m=65536,t=3,p=4"), by email, read off its stored hash."""
    engine = create_engine(env["SVQM_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT email, password_hash FROM user_account")).all()
    finally:
        engine.dispose()
    return {email: (stored or "").split("$")[3] for email, stored in rows if stored}


@pytest.fixture
def add_staff(live_server_env: dict[str, str]) -> Iterator[Callable[[str, str], StaffAdding]]:
    """`add(email, role)`: start `svqm user add` on the live server's database, in the background.

    Starting the CLI takes seconds (its imports), so it runs while the applicant starts; the
    password goes in (and the account is made) when `_totp_secret` finishes it.
    """
    started: list[StaffAdding] = []

    def add(email: str, role: str) -> StaffAdding:
        process = subprocess.Popen(
            [str(SVQM), "user", "add", email, "--role", role, "--password-stdin"],
            # Wide enough that the otpauth URI is printed on one line.
            env={**live_server_env, "COLUMNS": "500"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield add
    for process in started:
        if process.returncode is None:  # the test failed before finishing it
            process.kill()
            process.communicate()


def sweep_as_of(env: dict[str, str], when: datetime) -> None:
    """`svqm sweep --now WHEN` on the live server's database: the deadlines due by then act."""
    result = subprocess.run(
        [str(SVQM), "sweep", "--now", when.strftime("%Y-%m-%dT09:00Z")],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"svqm sweep failed:\n{result.stdout}{result.stderr}"


def _totp_secret(process: StaffAdding) -> str:
    """Give `svqm user add` its password; the TOTP secret in the otpauth URI it prints for staff."""
    out, err = process.communicate(STAFF_PASSWORD + "\n", timeout=60)
    assert process.returncode == 0, f"{' '.join(map(str, process.args))} failed:\n{out}{err}"
    uri = next((w for w in out.split() if w.startswith("otpauth://")), None)
    assert uri is not None, f"no otpauth URI in the output of svqm user add:\n{out}"
    return parse_qs(urlsplit(uri).query)["secret"][0]


@dataclass
class Journey:
    """Visits pages: screenshots each, runs axe on each, and notes what went wrong on the way."""

    base: str
    screenshot: Callable[[Page, str], Path]
    axe: Callable[[Page], list[dict]]
    violations: dict[str, tuple[str, list[dict]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    # Requests the journey makes wrong on purpose, to see the error where the person looks.
    refusals: set[tuple[str, str]] = field(default_factory=set)

    def person(self, opener: Callable[..., Page], who: str) -> Page:
        # bypass_csp: the pages' strict CSP (script nonces) would block the inline <script> that
        # `axe` injects with add_script_tag. It only lets the test inject axe-core: the pages' own
        # scripts are external files or carry the nonce, and nothing here depends on the bypass.
        page = opener(bypass_csp=True)

        def on_response(response: Response) -> None:
            # Chromium asks for /favicon.ico on its own; the pages link no icon.
            meant = (response.request.method, response.url.removeprefix(self.base))
            if response.status == 422 and meant in self.refusals:
                return
            if response.status >= 400 and not response.url.endswith("/favicon.ico"):
                self.problems.append(
                    f"{who}: HTTP {response.status} for {response.request.method} {response.url}"
                )

        page.on("response", on_response)
        page.on("pageerror", lambda exc: self.problems.append(f"{who}: script error {exc}"))
        return page

    def check(self, page: Page, step: str) -> None:
        """The page at both widths, on the same page (only the viewport changes): a screenshot at
        1280 px with its accessibility violations kept, then one at 320 px, where the document
        must be no wider than the screen (tables scroll in their own region)."""
        page.wait_for_load_state("load")
        self.screenshot(page, f"{step}-1280")
        found = self.axe(page)
        if found:
            self.violations[step] = (page.url.removeprefix(self.base), found)
        page.set_viewport_size(NARROW)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        if width > NARROW["width"]:
            self.problems.append(
                f"{step} ({page.url.removeprefix(self.base)}): {width} px wide at 320 px, "
                f"widened by {page.evaluate(WIDE_ELEMENTS)}"
            )
        self.screenshot(page, f"{step}-320")
        page.set_viewport_size(WIDE)

    def expect_menu(self, page: Page, step: str, *links: str) -> None:
        """The header's navigation ("Menu") should offer these links; noted, not fatal, if not."""
        menu = page.get_by_role("navigation", name="Menu")
        missing = [name for name in links if not menu.get_by_role("link", name=name).count()]
        if missing:
            self.problems.append(
                f"{step} ({page.url.removeprefix(self.base)}): the header's navigation 'Menu' "
                f"has no link {', '.join(repr(m) for m in missing)}"
            )

    def report(self) -> str:
        lines = []
        for step, (url, found) in self.violations.items():
            lines.append(f"{step} ({url}):")
            for v in found:
                targets = "; ".join(str(n.get("target")) for n in v.get("nodes", []))
                lines.append(f"  - {v['id']} ({v.get('impact')}): {v['help']} at {targets}")
        lines += [f"- {p}" for p in self.problems]
        return "\n".join(lines)


# --- steps shared by several people ------------------------------------------------------------


def sign_in(
    journey: Journey, page: Page, email: str, password: str, step: str | None = None
) -> None:
    """Sign in; the sign-in page is checked (both widths, axe) at `step`, once is enough."""
    page.goto(f"{journey.base}/login")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    if step:
        journey.check(page, step)
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def second_factor(journey: Journey, page: Page, secret: str, step: str | None = None) -> None:
    """The first sign-in of a staff member, with the key `svqm user add` printed once: the
    password alone never shows it again."""
    expect(page).to_have_url(re.compile(r"/login/second-factor"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your security code")
    assert secret not in page.content(), "signing in with the password showed the key"
    if step:
        journey.check(page, step)
    page.get_by_label("Security code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Continue").click()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login\?done=signed-out"))


def task_status(page: Page, task: str) -> Locator:
    """The status of a task on the application's task list, found by the task's name."""
    item = page.locator(".govuk-task-list__item").filter(has=page.get_by_text(task, exact=True))
    return item.locator(".govuk-task-list__status")


def upload(page: Page, slot: str, name: str, text: str, *, again: bool = False) -> None:
    """Upload a text file through a checklist slot's own form."""
    what = "Upload a new version" if again else "Upload a file"
    page.get_by_label(f"{what} for {slot}", exact=True).set_input_files(_text_file(name, text))
    page.get_by_role("button", name=f"Upload evidence for {slot}", exact=True).click()
    expect(page.get_by_text("Evidence uploaded.")).to_be_visible()


def queue_link(application_id: int) -> re.Pattern[str]:
    """A queue's link to an application: the organisation, then (for screen readers) its
    reference."""
    # The reference is in a visually hidden span, which the accessible name sets off with a space.
    reference = application_reference(application_id)
    return re.compile(rf"^{re.escape(ORGANISATION)}\s*: application {reference}$")


def review_form(page: Page, slot: str) -> Locator:
    """The assessor's review form of a slot's current version."""
    decision = page.get_by_role(
        "group", name=re.compile(rf"^Your decision on version \d+ of {re.escape(slot)}$")
    )
    return page.locator("form").filter(has=decision)


def review(page: Page, slot: str, decision: str, comment: str = "") -> None:
    form = review_form(page, slot)
    form.get_by_label(decision, exact=True).check()
    if comment:
        form.get_by_label(re.compile("^Comment \\(required unless you accept")).fill(comment)
    form.get_by_role("button", name=f"Save review of {slot}", exact=True).click()


# The yearly report's figures: pledge title -> (actual, narrative). The first filing leaves the
# hiring pledge below target without saying why; the second answers the assessor's question.
FIRST_FIGURES = {
    PLEDGES[0][1]: ("4", ""),
    PLEDGES[1][1]: ("5", "Five apprentices finished; one more starts in spring."),
    PLEDGES[4][1]: ("22", "Two electric vans replaced diesel ones."),
}
SECOND_FIGURES = {
    **FIRST_FIGURES,
    PLEDGES[0][1]: ("4", "Four hired and kept; the second intake was moved to April."),
}
MORE_FIGURES = "Hiring is well below target: please say why and what happens next."


def file_figures(page: Page, figures: dict[str, tuple[str, str]], file_name: str) -> str:
    """The award page's figures form: each pledge's figure and narrative, one supporting file;
    the period it covers (the form's own)."""
    form = page.locator("form").filter(
        has=page.get_by_role("button", name="Send figures for review")
    )
    period = form.get_by_label("Period the figures cover").input_value()
    assert period, "the figures form names no period"
    for title, (actual, narrative) in figures.items():
        pledge = form.get_by_role("group", name=title, exact=True)
        indicator = next(p[2] for p in PLEDGES if p[1] == title)
        pledge.get_by_label(re.compile(rf"^{re.escape(indicator)}")).fill(actual)
        pledge.get_by_label("What happened this period (optional)").fill(narrative)
    form.get_by_label("Supporting files (optional)").set_input_files(
        _text_file(file_name, "The year's records, as the assessor asked.\n")
    )
    form.get_by_role("button", name="Send figures for review").click()
    return period


def review_report(journey: Journey, assessor: Page, step: str, *, queue: bool = True) -> Page:
    """The assessor opens the report waiting for review from the queue's link to the reports."""
    assessor.goto(f"{journey.base}/assess")
    assessor.get_by_role("link", name="Yearly reports with figures to review").click()
    expect(assessor).to_have_url(f"{journey.base}/reports")
    if queue:
        journey.check(assessor, f"{step}-reports-to-review")
    assessor.get_by_role("link", name=re.compile(rf"^{re.escape(ORGANISATION)}")).click()
    expect(assessor).to_have_url(re.compile(r"/reports/\d+$"))
    expect(assessor.get_by_role("table", name=re.compile("reported figure"))).to_be_visible()
    journey.check(assessor, f"{step}b-report-review")
    return assessor


# --- the journey -------------------------------------------------------------------------------


def test_journey_from_sign_up_to_award(
    live_server, live_server_env, add_staff, new_page, screenshot, axe
):
    journey = Journey(live_server, screenshot, axe)
    base = live_server
    # The staff accounts, made with the CLI while the applicant starts (before the submission,
    # which assigns the only assessor automatically).
    adding = [add_staff(ASSESSOR, "assessor"), add_staff(PANEL, "panel")]
    slots = [COMMITMENT] + [f"{DELIVERY_PLAN}: {title}" for _, title, _, _ in PLEDGES]
    queries = {COMMITMENT: MORE_INFO, slots[1]: MORE_INFO_PLAN}

    # The public pages.
    applicant = journey.person(new_page, "applicant")
    applicant.goto(f"{base}/schemes")
    expect(applicant.get_by_role("heading", level=1)).to_have_text("Schemes")
    journey.check(applicant, "01-schemes")
    journey.expect_menu(applicant, "01-schemes", "Schemes", "Directory", "Sign in")
    applicant.get_by_role("link", name=SCHEME, exact=True).click()
    expect(applicant).to_have_url(f"{base}/schemes/svqm")
    expect(applicant.get_by_role("heading", level=1)).to_have_text(SCHEME)
    journey.check(applicant, "02-scheme-svqm")

    # 1. Sign up, start a Bronze application, pledge, upload, submit.
    applicant.goto(f"{base}/signup")
    journey.check(applicant, "03-signup")
    applicant.get_by_label("Your name").fill("Jo Applicant")
    applicant.get_by_label("Organisation name").fill(ORGANISATION)
    applicant.get_by_label("Sector (optional)").fill("Community services")
    applicant.get_by_label("Your email address").fill(APPLICANT)
    applicant.get_by_label("Create a password").fill(APPLICANT_PASSWORD)
    applicant.get_by_role("button", name="Register").click()
    # The same answer whether or not the email had an account: then sign in.
    expect(applicant).to_have_url(re.compile(r"/login\?done=signed-up"))
    applicant.get_by_label("Email address").fill(APPLICANT)
    applicant.get_by_label("Password").fill(APPLICANT_PASSWORD)
    applicant.get_by_role("button", name="Sign in", exact=True).click()
    expect(applicant).to_have_url(re.compile(r"/dashboard"))
    journey.check(applicant, "04-dashboard-new")
    journey.expect_menu(applicant, "04-dashboard-new", "Dashboard", "Schemes", "Directory")

    # One question a page: the scheme (with its description), then only that scheme's levels.
    applicant.get_by_role("button", name="Start an application").click()
    expect(applicant).to_have_url(f"{base}/apply")
    journey.check(applicant, "05a-choose-scheme")
    journey.refusals.add(("GET", "/apply?answered=yes"))
    applicant.get_by_role("button", name="Continue").click()  # nothing chosen
    expect(
        applicant.get_by_role("link", name="Choose the scheme you want to apply for")
    ).to_be_visible()
    applicant.get_by_label(SCHEME, exact=True).check()
    applicant.get_by_role("button", name="Continue").click()
    expect(applicant).to_have_url(f"{base}/apply/svqm")
    expect(applicant.get_by_label("Health Bronze (Bronze, Level 1)")).to_have_count(0)
    journey.check(applicant, "05b-choose-level")
    applicant.get_by_label(LEVEL, exact=True).check()
    applicant.get_by_role("button", name="Start application").click()
    expect(applicant).to_have_url(re.compile(r"/applications/\d+\?done=opened"))
    application_id = int(re.search(r"/applications/(\d+)", applicant.url).group(1))
    task_list = applicant.url.split("?")[0]
    expect(applicant.get_by_role("heading", level=1)).to_have_text(f"{LEVEL} application")
    expect(task_status(applicant, "Pledges")).to_have_text("Not started")
    expect(task_status(applicant, "Check your answers and submit your application")).to_have_text(
        "Cannot start yet"
    )
    journey.check(applicant, "05-application-new")

    # Eligibility: the sector and turnover are the scheme's choices; no higher-risk industry.
    expect(task_status(applicant, "Eligibility")).to_have_text("Not started")
    applicant.get_by_role("link", name="Eligibility", exact=True).click()
    journey.check(applicant, "05c-eligibility")
    applicant.get_by_label("Facilities management", exact=True).check()
    applicant.get_by_label("Under £1 million", exact=True).check()
    applicant.get_by_role("button", name="Save and continue").click()
    # Saved, and on to the task list (the next task), which says what the answers mean.
    expect(applicant).to_have_url(f"{task_list}?done=eligibility-eligible")
    expect(applicant.get_by_text("Your organisation is eligible.")).to_be_visible()
    expect(task_status(applicant, "Eligibility")).to_have_text("Completed")

    applicant.get_by_role("link", name="Pledges", exact=True).click()
    for n, (theme, title, indicator, target) in enumerate(PLEDGES, 1):
        applicant.get_by_label("Theme", exact=True).select_option(label=theme)
        applicant.get_by_label("Pledge", exact=True).fill(title)
        applicant.get_by_label("Description (optional)").fill(f"How we will {title.lower()}.")
        applicant.get_by_label("Key value indicator").fill(indicator)
        applicant.get_by_label("Target", exact=True).fill(target)
        applicant.get_by_label("Day", exact=True).fill("31")
        applicant.get_by_label("Month", exact=True).fill("3")
        applicant.get_by_label("Year", exact=True).fill("2027")
        applicant.get_by_role("button", name="Add pledge").click()
        expect(applicant.get_by_text("Pledge added.")).to_be_visible()
        expect(applicant.get_by_role("table").filter(has_text=title)).to_be_visible()
        expect(applicant.get_by_role("caption")).to_have_text(
            f"{n} pledge" + ("s" if n > 1 else "")
        )
    # The pledge rule is met: the pledges page no longer lists what is still needed.
    expect(applicant.get_by_text("Still needed:", exact=True)).to_have_count(0)
    journey.check(applicant, "06-pledges")
    applicant.goto(task_list)
    expect(task_status(applicant, "Pledges")).to_have_text("Completed")
    journey.check(applicant, "06b-application-pledged")

    for n, slot in enumerate(slots, 1):
        applicant.get_by_role("link", name=slot, exact=True).click()
        if n == 1:
            journey.check(applicant, "07a-evidence-item")
        upload(applicant, slot, f"evidence-{n}.txt", f"Evidence for {slot}.\n")
        applicant.get_by_role("link", name="Back to your application").first.click()
        expect(task_status(applicant, slot)).to_have_text("Completed")
    journey.check(applicant, "07-application-ready")
    assessor_secret, panel_secret = (_totp_secret(process) for process in adding)
    applicant.get_by_role("link", name="Check your answers and submit your application").click()
    expect(applicant.get_by_role("heading", level=1)).to_have_text(
        "Check your answers before you submit your application"
    )
    journey.check(applicant, "07b-check-answers")
    journey.refusals.add(("POST", f"/applications/{application_id}/check"))
    applicant.get_by_role("button", name="Accept and submit application").click()  # undeclared
    expect(
        applicant.get_by_role("link", name="Confirm the declaration to send your application")
    ).to_be_visible()
    applicant.get_by_label(re.compile("^I confirm that I may apply")).check()
    applicant.get_by_role("button", name="Accept and submit application").click()
    expect(applicant.get_by_role("heading", level=1)).to_have_text("Application submitted")
    expect(applicant.get_by_text(f"APP-{application_id:06d}")).to_be_visible()
    journey.check(applicant, "08-application-submitted")
    sign_out(applicant)

    # 2. The assessor signs in (enrolling the authenticator), starts the review, asks for more.
    assessor = journey.person(new_page, "assessor")
    sign_in(journey, assessor, ASSESSOR, STAFF_PASSWORD, "09-login")
    second_factor(journey, assessor, assessor_secret, "10-second-factor-enrolment")
    expect(assessor).to_have_url(f"{base}/assess")
    journey.check(assessor, "11-assess-queue")
    journey.expect_menu(assessor, "11-assess-queue", "My queue", "Schemes", "Directory")
    assessor.get_by_role("link", name=queue_link(application_id)).click()
    expect(assessor).to_have_url(f"{base}/assess/{application_id}")
    journey.check(assessor, "12-review-submitted")
    assessor.get_by_role("button", name="Start review", exact=True).click()
    expect(
        assessor.get_by_text("Review started. Review each evidence item and score each question.")
    ).to_be_visible()
    journey.check(assessor, "13-review-under-review")
    # Two queries: each is collected, and the application stays with the assessor meanwhile.
    for slot, query in queries.items():
        review(assessor, slot, "More information needed", query)
        expect(assessor.get_by_text("Your review has been saved.")).to_be_visible()
        expect(assessor.locator("#collected")).to_contain_text(slot)
    expect(assessor.get_by_role("table", name="Review history").first).to_contain_text(MORE_INFO)
    expect(assessor.locator("#collected li")).to_have_count(2)
    journey.check(assessor, "13b-review-two-queries")
    # Both go back together, in one hand-back (a step of its own).
    assessor.get_by_role("button", name="Ask for more information", exact=True).click()
    expect(
        assessor.get_by_text("Request sent. The organisation has been told what is asked for.")
    ).to_be_visible()

    # 3. The applicant reads the comment, uploads a new version and resubmits.
    sign_in(journey, applicant, APPLICANT, APPLICANT_PASSWORD)
    expect(applicant).to_have_url(f"{base}/dashboard")
    # The dashboard names it by the reference its emails quote.
    applicant.get_by_role("link", name=application_reference(application_id), exact=True).click()
    expect(applicant).to_have_url(f"{base}/applications/{application_id}")
    # Both queries at once on the task list; the other items stay completed.
    for slot in queries:
        expect(task_status(applicant, slot)).to_have_text("In progress")
    expect(task_status(applicant, slots[2])).to_have_text("Completed")
    expect(
        applicant.get_by_text("Please answer the 2 requests for more information.")
    ).to_be_visible()
    journey.check(applicant, "15-application-more-information")
    for n, (slot, query) in enumerate(queries.items(), 1):
        applicant.get_by_role("link", name=slot, exact=True).click()
        expect(
            applicant.get_by_role("heading", name=re.compile("^Assessor's comment on version 1"))
        ).to_be_visible()
        expect(applicant.get_by_text(query).first).to_be_visible()
        if n == 1:
            journey.check(applicant, "15b-evidence-item-query")
        upload(applicant, slot, f"answer-{n}.txt", f"Answer {n}: as asked.\n", again=True)
        applicant.get_by_role("link", name="Back to your application").first.click()
    # One resubmission answers both.
    applicant.get_by_role("link", name="Check your answers and resubmit your application").click()
    applicant.get_by_label(re.compile("^I confirm that I may apply")).check()
    applicant.get_by_role("button", name="Accept and resubmit application").click()
    expect(applicant.get_by_role("heading", level=1)).to_have_text(
        "Application sent back to the assessor"
    )
    sign_out(applicant)

    # 4. The assessor accepts every item and recommends the award.
    assessor.goto(f"{base}/assess/{application_id}")
    for slot in slots:
        review(assessor, slot, "Accepted")
        expect(assessor.get_by_text("Your review has been saved.")).to_be_visible()
    expect(assessor.locator("#trigger-recommend_award-unmet")).to_have_count(0)
    journey.check(assessor, "16-review-all-accepted")
    assessor.get_by_role("button", name="Recommend award", exact=True).click()
    expect(assessor.get_by_text("Award recommended. The panel will decide.")).to_be_visible()

    # 5. A panel member confirms the award, with a comment.
    panel = journey.person(new_page, "panel")
    sign_in(journey, panel, PANEL, STAFF_PASSWORD)
    second_factor(journey, panel, panel_secret)
    expect(panel).to_have_url(f"{base}/panel")
    journey.check(panel, "19-panel-queue")
    journey.expect_menu(panel, "19-panel-queue", "Decisions", "Schemes", "Directory")
    panel.get_by_role("link", name=queue_link(application_id)).click()
    expect(panel).to_have_url(f"{base}/panel/{application_id}")
    journey.check(panel, "20-panel-decision")
    confirm = panel.locator("form").filter(
        has=panel.get_by_role("button", name="Confirm award", exact=True)
    )
    comment = confirm.get_by_role("textbox")
    if comment.count():
        comment.fill("Confirmed: the evidence and pledges meet Bronze.")
    else:
        journey.problems.append(
            f"/panel/{application_id}: the 'Confirm award' form has no comment box, so the panel "
            "cannot confirm with a comment (the page shows one only for steps whose guards need it)"
        )
    confirm.get_by_role("button", name="Confirm award", exact=True).click()
    expect(
        panel.get_by_text(
            "Award confirmed. The organisation has been told and its certificate issued."
        )
    ).to_be_visible()

    # 6. The applicant's dashboard shows the award; the public directory lists it.
    sign_in(journey, applicant, APPLICANT, APPLICANT_PASSWORD)
    expect(applicant).to_have_url(f"{base}/dashboard")
    awards = applicant.get_by_role("table", name="Your organisation's awards")
    row = awards.get_by_role("row").filter(has_text=LEVEL)
    expect(row).to_have_count(1)
    expect(row.get_by_role("link", name=CERTIFICATE)).to_be_visible()
    certificate = row.get_by_role("link", name=CERTIFICATE).inner_text()
    journey.check(applicant, "22-dashboard-award")
    # The award's own page: its deadlines and the form for the year's report.
    row.get_by_role("link", name=re.compile("Reports and deadlines")).click()
    expect(applicant).to_have_url(re.compile(r"/dashboard/awards/\d+"))
    expect(applicant.get_by_text("Annual report").first).to_be_visible()
    award_page = applicant.url
    journey.check(applicant, "22b-award-page")
    applicant.go_back()
    applicant.get_by_role("link", name=certificate, exact=True).click()
    expect(applicant).to_have_url(re.compile(r"/awards/\d+/verify"))
    expect(applicant.get_by_text("This award is valid.")).to_be_visible()
    journey.check(applicant, "23-award-verify")
    applicant.goto(f"{base}/awards")
    expect(applicant.get_by_text(ORGANISATION).first).to_be_visible()
    journey.check(applicant, "24-awards-directory")

    # 7. The first yearly report: a figure per pledge, narratives and a supporting file; the
    # award's assessor asks for more information, the holder files again, the assessor accepts.
    applicant.goto(award_page)
    first_period = file_figures(applicant, FIRST_FIGURES, "figures.txt")
    expect(applicant.get_by_text("Figures filed. An assessor will review them.")).to_be_visible()
    journey.check(applicant, "25-award-figures-filed")
    report = review_report(journey, assessor, "26")
    expect(report.get_by_role("link", name="figures.txt")).to_be_visible()
    expect(report.get_by_role("row").filter(has_text=PLEDGES[0][1])).to_contain_text("Below target")
    report.get_by_label("Ask for more information").check()
    report.get_by_label("Comment").fill(MORE_FIGURES)
    report.get_by_role("button", name="Save review").click()
    expect(report.get_by_text("More information asked for.")).to_be_visible()

    applicant.goto(award_page)
    reports = applicant.get_by_role("table", name=re.compile("^Annual reports filed"))
    expect(reports).to_contain_text(MORE_FIGURES)
    # The form offers the report sent back again: its period, its figures, the question.
    expect(applicant.locator("#figures-sent-back")).to_contain_text(MORE_FIGURES)
    apprentices = applicant.get_by_role("textbox", name=re.compile(rf"^{PLEDGES[1][2]}"))
    expect(apprentices).to_have_value(FIRST_FIGURES[PLEDGES[1][1]][0])
    journey.check(applicant, "27-award-report-more-information")
    period = file_figures(applicant, SECOND_FIGURES, "hiring-record.txt")
    assert period == first_period, "filing again is for the period sent back"
    expect(applicant.get_by_text("Figures filed. An assessor will review them.")).to_be_visible()

    report = review_report(journey, assessor, "28", queue=False)
    expect(report.get_by_role("row").filter(has_text=PLEDGES[0][1])).to_contain_text(
        SECOND_FIGURES[PLEDGES[0][1]][1]
    )
    report.get_by_label("Accept: publish the figures").check()
    report.get_by_role("button", name="Save review").click()
    expect(report.get_by_text("Report accepted.")).to_be_visible()

    # The public organisation page shows the accepted figures against each target.
    applicant.goto(award_page)
    applicant.get_by_role("link", name="See your public page").click()
    expect(applicant).to_have_url(re.compile(r"/organisations/\d+$"))
    expect(applicant.get_by_role("heading", level=1)).to_have_text(ORGANISATION)
    for title, (actual, _) in SECOND_FIGURES.items():
        pledge = applicant.locator(".app-pledge").filter(
            has=applicant.get_by_role("heading", name=title, exact=True)
        )
        expect(
            pledge.locator(".govuk-summary-list__row").filter(has_text="Latest accepted")
        ).to_contain_text(actual)
        figures = pledge.get_by_role("table", name="The figures in the chart")
        expect(figures.get_by_role("row", name=f"{period} {actual}", exact=True)).to_be_visible()
    journey.check(applicant, "29-organisation-public")

    # 8. Near expiry: the deadline sweep, as of two months before the award expires (after the
    # renewal deadline, three months before), opens the renewal; the holder starts it from the
    # award page and the renewal application carries the award's pledges.
    applicant.goto(award_page)
    expires = applicant.locator(".govuk-summary-list__row").filter(has_text="Expires")
    expiry = datetime.strptime(expires.locator("dd").inner_text().strip(), "%d %B %Y")
    sweep_as_of(live_server_env, expiry - timedelta(days=60))
    applicant.reload()
    expect(applicant.locator(".govuk-summary-list__row").filter(has_text="Status")).to_contain_text(
        "Renewal due"
    )
    renewal = applicant.locator("#next-same")
    expect(renewal).to_contain_text("the pledges of your awards in force")
    journey.check(applicant, "30-award-renewal-due")
    renewal.get_by_role("button", name="Start renewal").click()
    expect(applicant).to_have_url(re.compile(r"/applications/\d+\?done=opened"))
    assert int(re.search(r"/applications/(\d+)", applicant.url).group(1)) != application_id
    expect(applicant.get_by_role("heading", level=1)).to_have_text(f"{LEVEL} renewal application")
    journey.check(applicant, "31-renewal-application")
    applicant.get_by_role("link", name="Pledges", exact=True).click()
    carried = applicant.get_by_role("table").filter(has_text=PLEDGES[0][1])
    expect(carried.get_by_role("caption")).to_have_text(f"{len(PLEDGES)} pledges")
    for _, title, _, _ in PLEDGES:
        expect(carried.get_by_role("rowheader", name=re.compile(re.escape(title)))).to_be_visible()
    journey.check(applicant, "32-renewal-pledges-carried")

    # Everyone signed in at the service's cost: the sign-up's hash and `svqm user add`'s.
    service_cost = "m=65536,t=3,p=4"
    assert _stored_hash_parameters(live_server_env) == {
        APPLICANT: service_cost,
        ASSESSOR: service_cost,
        PANEL: service_cost,
    }

    # One failure listing every page's violations (pytest's rewrite of an assert would repeat it).
    if summary := journey.report():
        pytest.fail(
            f"{len(journey.violations)} page(s) with accessibility violations, "
            f"{len(journey.problems)} other problem(s):\n{summary}",
            pytrace=False,
        )
