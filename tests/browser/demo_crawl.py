"""Every page the demo reaches, at 320 px, as each of its people: the crawl the test_demo_crawl_*
files run, one group of people a file, on the session's demo server (conftest's `demo_server`).

It was one test over all eleven people (about three minutes of one worker, the longest file of
the suite); split by person into files, pytest-xdist runs them on both workers. Each person
follows every link from where they land (two pages of each kind); no document is wider than the
screen, and axe-core checks the first page of each kind the server shows, as before.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect

from tests.browser.conftest import DemoServer, PageOpener

ADMIN = "admin@demo.svqm.test"
DEMO_PASSWORD = "demo-password-2026"
# Who the demo lets in, and where each lands: the public, applicants (the care group's bid
# director reaches /group), assessors, the panel (one of them with a conflict) and the admin.
PEOPLE = [
    "",
    "applicant@harbour.demo.svqm.test",
    "applicant@riverside.demo.svqm.test",
    "applicant@northgate.demo.svqm.test",
    "applicant@westbrook.demo.svqm.test",
    "applicant@kestrel.demo.svqm.test",
    "manager@quaylodge.demo.svqm.test",
    "assessor@demo.svqm.test",
    "assessor2@demo.svqm.test",
    "panel@demo.svqm.test",
    "panel2@demo.svqm.test",
    ADMIN,
]
# Who each test_demo_crawl_<name>.py crawls: about a minute of one worker each on a quiet machine
# (pages and axe-core checks, from the eleven people's crawl timed one by one; Kestrel, added
# since, has one award and nothing open). Every person is in one group (test_demo_browser.py
# checks it).
GROUPS = {
    "public_and_admin": ["", ADMIN],
    "care_group": ["applicant@harbour.demo.svqm.test", "manager@quaylodge.demo.svqm.test"],
    "applicants": [
        "applicant@riverside.demo.svqm.test",
        "applicant@northgate.demo.svqm.test",
        "applicant@kestrel.demo.svqm.test",
    ],
    "panel": [
        "applicant@westbrook.demo.svqm.test",
        "panel@demo.svqm.test",
        "panel2@demo.svqm.test",
    ],
    "assessors": ["assessor@demo.svqm.test", "assessor2@demo.svqm.test"],
}
# Links the crawl does not follow: files (a message's attachment too), feeds and the API (not pages).
NOT_PAGES = re.compile(
    r"(\.(csv|pdf|ics|json|svg|png)$|/credential$|/download$|/file$|/files/\d+$|/preview$|^/api/|^/static/)"
)
WIDE_ELEMENTS = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > 321 && !e.closest('.app-table-scroll'))
    .slice(0, 5).map(e => e.tagName + '.' + e.className + ':' + Math.round(
        e.getBoundingClientRect().right))"""


def sign_in(page: Page, server: DemoServer, email: str) -> None:
    """Sign `email` in with the demo password (and, for staff, a code the server has not had)."""
    page.goto(f"{server.url}/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    if email in server.keys:
        expect(page).to_have_url(re.compile(r"/login/second-factor"))
        page.get_by_label("Security code").fill(server.code(email))
        page.get_by_role("button", name="Continue").click()
    expect(page).not_to_have_url(re.compile(r"/login"))


def fits_320(page: Page) -> None:
    """At 320 px the document is no wider than the screen (tables scroll in their own region)."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 320, (page.url, width, page.evaluate(WIDE_ELEMENTS))


def pattern(path: str) -> str:
    """A page's kind: its path with numbers as N and its query's names ('/assess/N?finished')."""
    base, _, query = path.partition("?")
    names = sorted({part.split("=")[0] for part in query.split("&") if part})
    return re.sub(r"\d+", "N", base) + ("?" + "&".join(names) if names else "")


def crawl(server: DemoServer, new_page: PageOpener, axe, people: list[str]) -> tuple[int, set[str]]:
    """Each of `people` ("" is the public) follows every link from where they land, at 320 px
    (two pages of each kind): no document is wider than the screen; axe-core on the first page
    of each kind this server shows (`server.checked`). Returns the HTML pages visited and the
    kinds reached."""
    visited = 0
    reached: set[str] = set()
    for email in people:
        page = new_page(bypass_csp=True, viewport={"width": 320, "height": 800})
        if email:
            sign_in(page, server, email)
        start = urlsplit(page.url).path if email else "/"
        seen: dict[str, int] = {}
        done: set[str] = set()
        todo = [start]
        while todo:
            path = todo.pop(0)
            kind = pattern(path)
            if path in done or seen.get(kind, 0) >= 2:
                continue
            done.add(path)
            seen[kind] = seen.get(kind, 0) + 1
            response = page.goto(f"{server.url}{path}")
            assert response is not None, (email, path)
            assert response.ok, (email, path, response.status)
            if "text/html" not in response.headers.get("content-type", ""):
                continue
            visited += 1
            reached.add(kind)
            fits_320(page)
            if kind not in server.checked:
                server.checked.add(kind)
                assert not (violations := axe(page)), (email, path, violations)
            for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
                url = urlsplit(href)
                if url.netloc != urlsplit(server.url).netloc or NOT_PAGES.search(url.path):
                    continue
                found = url.path + (f"?{url.query}" if url.query else "")
                if found not in done:
                    todo.append(found)
        page.context.close()
    return visited, reached
