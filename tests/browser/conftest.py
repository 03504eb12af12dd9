"""Browser tests: Debian's Chromium driven by Playwright against a real `svqm serve`, with axe-core.

The browser is Debian's package (`make system-deps` installs it at /usr/bin/chromium); Playwright's own
browser download (`playwright install`) is never used. axe-core comes from npm (`make setup`).

Fixtures:
- `chromium_path` (session): the browser's path; skipped when missing, a failure when CI is set.
- `live_server` (module): base URL of `svqm serve` on a fresh migrated SQLite database in a temp dir.
  The servers and the demo seeds started here hash passwords cheaply (`python -m tests.svqm_for_tests`,
  tests/svqm_for_tests.py); a module that signs in at the service's cost overrides `live_server`
  with `serve_fresh(tmp_path_factory, PRODUCTION_SVQM)` (test_journey.py does).
- `live_server_env` (module): the environment `live_server` runs with, for `svqm` commands on its database.
- `demo_keys` (module): seeds `svqm demo` on `live_server`'s database; each staff account's TOTP key.
- `demo_server` (session): a `DemoServer`, `svqm serve` on a database seeded by `svqm demo`, shared by
  the demo's files that only read it (its `code(email)` gives a TOTP code the server has not had).
- `browser` (session) and `page` (per test, in a fresh context; requests off this machine are aborted).
- `new_page`: `open(**context_options) -> Page`, a page in another fresh context set up like `page`'s
  (one per person in a test with several people); the options go to `browser.new_context`.
- `axe`: `check_accessibility(page) -> list[dict]`, the axe-core WCAG 2.x A/AA violations of the page.
- `screenshot`: `save(page, step) -> Path`, a full-page PNG at var/screenshots/<test>/<step>.png.
A failing test that used `page` also gets var/screenshots/<test>/failure.png (and failure-<n>.png for
each page of `new_page`) and, with `live_server`,
the server's log in its report.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyotp
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    Route,
    sync_playwright,
)

from tests import svqm_for_tests

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CHROMIUM = Path("/usr/bin/chromium")
AXE_JS = REPO / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO / "var" / "screenshots"
SVQM = Path(sys.executable).parent / "svqm"  # the console script of this venv
# svqm at the service's cost of a password hash (the console script), and the same CLI hashing
# cheaply (tests/svqm_for_tests.py): the servers and seeds here use the second unless told.
PRODUCTION_SVQM = (str(SVQM),)
CHEAP_SVQM = tuple(svqm_for_tests.COMMAND)
# Importing the app costs about 2 s of CPU; on a loaded 2-core machine (a CI run, other suites)
# that has been seen to pass 30 s of wall time, so the deadline only catches a server that hangs.
STARTUP_DEADLINE_S = 120.0
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# Base URL of each running live server -> its log file, for the report of a failing test.
_SERVER_LOGS: dict[str, Path] = {}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _missing(what: str) -> None:
    """Skip on a developer's machine; fail under CI, where a missing tool is a broken setup."""
    message = f"{what}: run `make setup` (browser tests need it)"
    if _in_ci():
        pytest.fail(f"{message}; CI is set, so this is a failure, not a skip", pytrace=False)
    pytest.skip(message)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "_"


# --- marker -------------------------------------------------------------------------------------


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/browser is marked `browser` (deselect with -m 'not browser')."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


# --- live server --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_env(tmp: Path) -> dict[str, str]:
    """This process's environment without any SVQM_* of the developer's, plus the server's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SVQM_")}
    env.update(
        SVQM_DATABASE_URL=f"sqlite:///{tmp / 'svqm.db'}",
        SVQM_EVIDENCE_DIR=str(tmp / "evidence"),
        SVQM_VAR_DIR=str(tmp / "var"),
        SVQM_MAIL_DIR=str(tmp / "mail"),
        SVQM_ENV="test",
    )
    return svqm_for_tests.environment(env)


# `serving_policies` replaces `_server_env` while a module's server starts; the session's demo
# server always reads the real policies.
_plain_server_env = _server_env


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except urllib.error.HTTPError as exc:
        exc.close()
        return False
    except OSError:  # refused, reset, timed out: not up yet
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def _serving(tmp: Path, env: dict[str, str], svqm: tuple[str, ...] = CHEAP_SVQM) -> Iterator[str]:
    """Migrate the database in `env` and run `svqm serve` on it until closed; yields its base URL."""
    migrate = subprocess.run(
        [*svqm, "db", "upgrade"],
        cwd=tmp,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if migrate.returncode != 0:
        pytest.fail(f"`svqm db upgrade` failed:\n{migrate.stdout}{migrate.stderr}", pytrace=False)

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp / "server.log"
    command = [*svqm, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-scheduler"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while not _answers(f"{base_url}/healthz"):
            if process.poll() is not None:
                pytest.fail(
                    f"`svqm serve` exited with {process.returncode} before answering:\n"
                    f"{log_path.read_text(errors='replace')}",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"`svqm serve` did not answer {base_url}/healthz within "
                    f"{STARTUP_DEADLINE_S:g} s:\n{log_path.read_text(errors='replace')}",
                    pytrace=False,
                )
            time.sleep(0.05)
        _SERVER_LOGS[base_url] = log_path
        yield base_url
    finally:
        _SERVER_LOGS.pop(base_url, None)
        _stop(process)


@contextmanager
def serve_fresh(
    tmp_path_factory: pytest.TempPathFactory, svqm: tuple[str, ...] = CHEAP_SVQM
) -> Iterator[str]:
    """`svqm serve` (run as `svqm`) on a migrated SQLite database of its own, until closed;
    yields its base URL. `live_server` is this with cheap hashing."""
    tmp = tmp_path_factory.mktemp("live_server")
    with _serving(tmp, _server_env(tmp), svqm) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`svqm serve` on a migrated SQLite database of its own; yields "http://127.0.0.1:PORT".

    One server per test module (starting one costs about a second): tests in a module share its data.
    """
    with serve_fresh(tmp_path_factory) as base_url:
        yield base_url


@contextmanager
def serving_policies(policies: Path) -> Iterator[Path]:
    """While open, the live servers started here read their policies from `policies`: a test
    module overrides `live_server` with a fixture that opens this first."""
    original = _server_env

    def env(tmp: Path) -> dict[str, str]:
        return {**original(tmp), "SVQM_POLICIES_DIR": str(policies)}

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys.modules[__name__], "_server_env", env)
        yield policies


@pytest.fixture(scope="module")
def live_server_env(live_server: str) -> dict[str, str]:
    """The environment `live_server` runs with: run `svqm` commands with it to reach its database."""
    return _server_env(_SERVER_LOGS[live_server].parent)


def _seed_demo(env: dict[str, str]) -> dict[str, str]:
    """Seed `svqm demo` on the database in `env`: each staff account's authenticator key, by email."""
    result = subprocess.run(
        [*CHEAP_SVQM, "demo"],
        # Wide enough that each account and its key are printed on one line.
        env={**env, "COLUMNS": "500"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, f"svqm demo failed:\n{result.stdout}{result.stderr}"
    return dict(re.findall(r"(\S+@\S+)\s+key\s+([A-Z2-7]+)", result.stdout))


@pytest.fixture(scope="module")
def demo_keys(live_server_env: dict[str, str]) -> dict[str, str]:
    """Seed `svqm demo` on the live server's database (once per module): each staff account's
    authenticator key, by email."""
    return _seed_demo(live_server_env)


class DemoServer:
    """`svqm serve` on a database seeded by `svqm demo`, shared by the demo's test files that
    leave its data as they found it (they only read and sign in; see `demo_server`).

    `url` is its base URL, `env` its environment, `keys` each staff account's authenticator key;
    `checked` is the set of page kinds axe-core has checked on it (a crawl checks the first page
    of each kind this server shows, as one crawl over every person did).
    """

    def __init__(self, url: str, env: dict[str, str], keys: dict[str, str]) -> None:
        self.url = url
        self.env = env
        self.keys = keys
        self.checked: set[str] = set()
        self._last_step: dict[str, int] = {}

    def code(self, email: str) -> str:
        """A TOTP code for `email` that this server has not had yet.

        The server takes each code once, and a code only for a later step than the last one it
        took (ASVS 6.5.1), allowing one step of clock drift either side. Files sharing this
        server sign the same people in, at times a few seconds apart: this gives the current
        step's code, or the next step's when the current one was used. Only when both were used
        (a third sign-in within one 30-second step) does it wait for the clock's next step, as
        a person would.
        """
        totp = pyotp.TOTP(self.keys[email])
        while True:
            now = time.time()
            current = totp.timecode(datetime.fromtimestamp(now, tz=UTC))
            step = max(current, self._last_step.get(email, current - 1) + 1)
            if step <= current + 1:
                break
            time.sleep(totp.interval - now % totp.interval + 0.05)
        self._last_step[email] = step
        return totp.generate_otp(step)


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """One demo server for the session (under pytest-xdist: one per worker that runs a demo
    file), shared by the demo's read-only browser files (test_demo_browser.py and the crawls,
    test_demo_crawl_*.py): the crawl is split by person into files so that the workers share it,
    without a server and a seeded demo for each file. A file that changes the demo's data (the
    charter's withdrawal) seeds its own with `live_server` and `demo_keys`."""
    tmp = tmp_path_factory.mktemp("demo_server")
    env = _plain_server_env(tmp)
    with _serving(tmp, env) as base_url:
        yield DemoServer(base_url, env, _seed_demo(env))


# --- browser ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium (package chromium)."""
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"{CHROMIUM} is missing (Debian package chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright, chromium_path: Path) -> Iterator[Browser]:
    """One headless Chromium for the whole session."""
    browser = playwright.chromium.launch(
        executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


def _local_only(route: Route) -> None:
    """This machine reaches no other host: abort such requests at once instead of waiting on them."""
    url = urlsplit(route.request.url)
    if url.scheme in ("http", "https", "ws", "wss") and url.hostname not in LOCAL_HOSTS:
        route.abort("blockedbyclient")
    else:
        route.continue_()


def _new_context(browser: Browser, **options: Any) -> BrowserContext:
    """A fresh context with the tests' settings; `options` add to or override `new_context`'s."""
    context = browser.new_context(
        **{"viewport": {"width": 1280, "height": 800}, "locale": "en-GB", **options}
    )
    # A bound, not a wait: a page answers in milliseconds, but a loaded 2-core CI machine has been
    # seen to take over 10 s over a first page that draws its diagrams.
    context.set_default_timeout(30_000)
    context.route("**/*", _local_only)
    return context


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies or storage shared with other tests)."""
    context = _new_context(browser)
    page = context.new_page()
    yield page
    context.close()


class PageOpener:
    """`open(**context_options) -> Page`: each call a page in a fresh context of its own."""

    def __init__(self, browser: Browser) -> None:
        self._browser = browser
        self.pages: list[Page] = []

    def __call__(self, **context_options: Any) -> Page:
        page = _new_context(self._browser, **context_options).new_page()
        self.pages.append(page)
        return page

    def close(self) -> None:
        for page in self.pages:
            page.context.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[PageOpener]:
    """Pages in contexts of their own (one per person), set up like `page`'s; closed after the test."""
    opener = PageOpener(browser)
    yield opener
    opener.close()


# --- helpers ------------------------------------------------------------------------------------


class AxeViolations(list[dict]):
    """axe-core's violations; str() lists each one's id, impact, help and target nodes."""

    def __str__(self) -> str:
        if not self:
            return "no accessibility violations"
        lines = [f"{len(self)} accessibility violation(s):"]
        for v in self:
            lines.append(f"- {v['id']} ({v.get('impact')}): {v['help']} [{v.get('helpUrl', '')}]")
            for node in v.get("nodes", []):
                lines.append(f"    at {node.get('target')}: {node.get('html', '')[:200]}")
        return "\n".join(lines)

    __repr__ = __str__


def check_accessibility(page: Page) -> list[dict]:
    """Run axe-core (WCAG 2.0/2.1 A and AA, WCAG 2.2 AA) on the page; return its violations.

    Use: `violations = axe(page); assert not violations, violations` (the message lists them).
    """
    if not AXE_JS.is_file():
        _missing(f"{AXE_JS.relative_to(REPO)} is missing (npm package axe-core)")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_JS))
    violations = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {
                runOnly: {type: "tag", values: tags},
                resultTypes: ["violations"],
            });
            return result.violations;
        }""",
        WCAG_TAGS,
    )
    return AxeViolations(violations)


@pytest.fixture
def axe() -> Callable[[Page], list[dict]]:
    """`check_accessibility(page) -> list[dict]`: axe-core's WCAG A/AA violations of the page."""
    return check_accessibility


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """`save(page, step) -> Path`: a full-page PNG at var/screenshots/<test name>/<step>.png.

    The test's folder is emptied first, so it holds only this run's steps.
    """
    folder = SCREENSHOTS / _safe_name(request.node.name)
    shutil.rmtree(folder, ignore_errors=True)

    def save(page: Page, step: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{_safe_name(step)}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


# --- what a failing test leaves behind ----------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report: pytest.TestReport = yield
    if report.when != "call" or not report.failed:
        return report
    funcargs = getattr(item, "funcargs", {})
    pages = [("failure", funcargs.get("page"))]
    opener = funcargs.get("new_page")
    if isinstance(opener, PageOpener):
        pages += [(f"failure-{n}", p) for n, p in enumerate(opener.pages, 1)]
    for name, page in pages:
        if page is None:
            continue
        path = SCREENSHOTS / _safe_name(item.name) / f"{name}.png"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(path), full_page=True)
            report.sections.append(("browser", f"screenshot of the page at failure: {path}"))
        except Exception as exc:  # the page may be gone; the test's own failure matters more
            report.sections.append(("browser", f"no failure screenshot: {exc}"))
    demo = funcargs.get("demo_server")
    base = demo.url if isinstance(demo, DemoServer) else funcargs.get("live_server", "")
    log = _SERVER_LOGS.get(base)
    if log is not None and log.is_file():
        tail = log.read_text(errors="replace").splitlines()[-60:]
        report.sections.append(("live server log (last 60 lines)", "\n".join(tail)))
    return report
