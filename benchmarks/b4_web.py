"""B4: the assessor's queue page, the review screen and the application API against the stack's floor.

Setup: 10,000 applications in a migrated SQLite file (spread over the workflow's states, assigned to
20 assessors, so one assessor's queue holds 500). One uvicorn worker on loopback serves svqm's app
(`svqm.web.app.create_app`, as `svqm serve` does) and, in the same process, the bare Starlette
floors of `benchmarks.b4_floor` (the same SQL replayed with `sqlite3`, the same Jinja2 template or
JSON body; no session, no auth). `wrk` (Debian's, a C load generator, so the client is not the
bottleneck) runs 16 connections on 2 threads for DURATION seconds against each URL in turn, each
page right after its floor so both see the same machine:
  /healthz                                 (for information: the framework's least answer)
  /floor/queue  then  GET /assess          (the queue page, signed in as an assessor, 2FA done)
  /floor/case   then  GET /assess/{id}     (the review screen of one of its applications)
  /floor/api    then  GET /api/v1/applications/{id} (bearer token)
  /floor/tasks  then  GET /applications/{id}  (the application's task list, read by its assessor)
  /floor/organisation  then  GET /organisations/{id}  (the public organisation page, a pledge
                                           on each of 9 themes with 3 accepted figures and a chart)
Each floor has a guarded twin, /floor/guarded/<name>: the floor plus the guard work every real
request for the page must do (the credential's hash and the sign-in lookup, the second-factor and
role checks, the application loaded and its access decided, the product's render wrapper and its
middleware). Timed right before its page too, it shows where the page's time goes: the share the
guards take (guarded floor / floor) and the share left to the framework and the ORM (page /
guarded floor). And a third floor a page, /floor/fastapi/<name> (`FASTAPI_FLOORS`): the guarded
floor as a FastAPI route on svqm's own app declared with the page's own dependencies (its real
sign-in and access dependency, run by FastAPI and the ORM as on the page) and rendered by the
product's `ui.render`, only the handler's own reads replayed with `sqlite3`: the least FastAPI
with svqm's guards can do for that page. Where it is itself below 0.5x the bare floor, the target
is below what FastAPI with svqm's guards can reach, and the report says so (measured); where it is
above, the report says by how much the page misses against it.

Honesty: before anything is timed, each floor's, guarded floor's and FastAPI floor's response
body must be byte for byte the page's for the same request (`same_page`), only the CSP nonce
masked (random on every response) and, on the page for no one signed in, the signed-out visitor's
form token (an HMAC of a random cookie made for each new visitor). A floor that renders less
than its page stops the run, and so does a guarded or FastAPI floor that answers other headers
than its page, or that does not refuse (or send to sign in) a request without the credential as
its page does.
Figures: each page's requests/s as a share of its floor's; and, steadier on a shared machine,
the server's CPU time per request (utime + stime of the process over the run / requests).
Targets: each page >= 0.5x its floor's requests/s; its p99 <= 5x its p50; no errors (non-2xx
answers or socket errors). Where a page misses, the report prints its guarded floor's figures;
every page's FastAPI floor is printed (page / fastapi floor, fastapi floor / floor), and for a
missed page what its FastAPI floor says of the target.
SVQM_B4_SECONDS runs each URL for fewer seconds.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import insert
from sqlmodel import select

from benchmarks.fixtures import NOW, migrated_sqlite, registry, temp_dir
from benchmarks.report import REPO, Check, Result, loadavg
from svqm.accounts import auth
from svqm.accounts import service as accounts
from svqm.clock import utc_now
from svqm.config import Settings
from svqm.db import session_scope
from svqm.evidence.models import ApplicationPledge, Pledge, PledgeRevision
from svqm.workflow.models import Application, Award
from svqm.workflow.progress import PledgeProgress
from svqm.workflow.reports import AnnualReport

ID = "B4"
NAME = "Queue page, review screen and application API vs the stack's floor"
TARGET = 0.5
P99_TARGET = 5.0
ROWS = int(os.environ.get("SVQM_B4_ROWS", "10000"))
ASSESSORS = 20
DURATION = int(os.environ.get("SVQM_B4_SECONDS", "10"))
CONNECTIONS = 16


def _seed(engine: Any) -> tuple[str, str, int, int, int]:
    """Applications, assessors, a web session cookie and an API token for assessor 1, and the
    organisation whose public page is measured."""
    reg = registry()
    scheme = reg.get("svqm")
    policy = scheme.policy
    states = [s.name for s in policy.workflows.application.states]
    settings = Settings()
    with session_scope(engine) as s:
        orgs = [
            accounts.create_organisation(s, name=f"Org {i}", sector="health") for i in range(50)
        ]
        assessors = [
            accounts.add_user(s, email=f"assessor{i}@bench.example", role="assessor")
            for i in range(ASSESSORS)
        ]
        reg.record_snapshot(s, scheme)
        rows = [
            {
                "organisation_id": orgs[i % len(orgs)].id,
                "scheme": scheme.id,
                "scheme_version": policy.version,
                "policy_digest": policy.digest,
                "level": "bronze",
                "state": states[1 + i % (len(states) - 1)],
                "version": 1,
                "assessor_id": assessors[i % ASSESSORS].id,
                "created_by_id": None,
                "created_at": NOW,
                "state_changed_at": NOW,
            }
            for i in range(ROWS)
        ]
        s.execute(insert(Application.__table__), rows)  # type: ignore[arg-type]
        me = assessors[0]
        now = utc_now()
        cookie, _ = auth.start_session(
            s, me, kind="web", now=now, settings=settings, mfa_passed=True
        )
        token, _ = auth.start_session(
            s, me, kind="api", now=now, settings=settings, mfa_passed=True
        )
        app_id = s.exec(select(Application.id).where(Application.assessor_id == me.id)).first()
        org_id = _seed_public(s, policy, int(orgs[-1].id))  # type: ignore[arg-type]
    return cookie, token, int(app_id), int(me.id), org_id  # type: ignore[arg-type]


PLEDGES = 9  # one a theme of the svqm scheme
REPORTS = 3  # accepted annual reports, each with a figure for every pledge


def _seed_public(s: Any, policy: Any, org_id: int) -> int:
    """An organisation's public page: an active award holding a pledge a theme, each with the
    figures of three accepted annual reports (a chart of five bars: baseline, three, target)."""
    issued = NOW - timedelta(days=400)
    common = {
        "organisation_id": org_id,
        "scheme": "svqm",
        "scheme_version": policy.version,
        "policy_digest": policy.digest,
        "level": "silver",
    }
    app = Application(
        **common, state="awarded", version=8, created_at=issued, state_changed_at=issued
    )
    s.add(app)
    s.flush()
    award = Award(
        **common,
        application_id=app.id,
        state="active",
        certificate_number="SVQM-BENCH-PUBLIC",
        issued_at=issued,
        expires_at=issued + timedelta(days=1095),
        created_at=issued,
        state_changed_at=issued,
    )
    s.add(award)
    pledges = []
    for i, theme in enumerate(policy.themes[:PLEDGES]):
        fields = {
            "theme": theme.id,
            "title": f"Pledge {i + 1} on {theme.name.lower()}",
            "indicator": f"People reached through pledge {i + 1}",
            "unit": "people",
            "baseline": float(10 * i),
            "target": str(100 + 10 * i),
            "due_date": (issued + timedelta(days=1000)).date(),
        }
        pledge = Pledge(**fields, organisation_id=org_id, application_id=app.id, created_at=issued)
        s.add(pledge)
        s.flush()
        pledges.append(pledge)
        s.add(ApplicationPledge(application_id=app.id, pledge_id=pledge.id, disposition="made"))
        s.add(
            PledgeRevision(
                **fields,
                pledge_id=pledge.id,
                revision=1,
                application_id=app.id,
                change="made",
                at=issued,
            )
        )
    s.flush()
    for year in range(REPORTS):
        report = AnnualReport(
            award_id=award.id,
            organisation_id=org_id,
            scheme="svqm",
            level="silver",
            policy_digest=policy.digest,
            deadline_kind="annual_report",
            period=str(issued.year + year),
            filename=f"report-{year}.json",
            sha256="0" * 64,
            size=1,
            content_type="application/json",
            submitted_at=issued + timedelta(days=300 * (year + 1)),
            # Accepted through the report workflow: a published state, so its figures are public.
            state="accepted",
            published=True,
        )
        s.add(report)
        s.flush()
        for i, pledge in enumerate(pledges):
            s.add(
                PledgeProgress(
                    report_id=report.id, pledge_id=pledge.id, actual=float(10 * i + 20 * (year + 1))
                )
            )
    s.flush()
    return org_id


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def _cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _wrk(url: str, headers: list[str], pid: int) -> dict[str, float]:
    cmd = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency", url]
    for h in headers:
        cmd += ["-H", h]
    ticks = _cpu_ticks(pid)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=DURATION + 30)
    cpu_s = (_cpu_ticks(pid) - ticks) / os.sysconf("SC_CLK_TCK")
    text = out.stdout
    if "Latency Distribution" not in text:
        raise RuntimeError(f"wrk printed no latency distribution:\n{text}\n{out.stderr}")
    latency = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)\s*$", text, re.M))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    requests = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    return {
        "cpu_ms_per_request": 1000 * cpu_s / max(requests, 1),
        "loadavg": loadavg()[0],
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "errors": float(sum(map(int, errors.groups())) if errors else 0)
        + float(non_2xx.group(1) if non_2xx else 0),
        # Which errors: wrk's socket errors by kind (a timeout is a request over 2 s) and the
        # answers that were not 2xx or 3xx.
        **{
            f"errors_{kind}": float(n)
            for kind, n in zip(
                ("connect", "read", "write", "timeout", "non_2xx"),
                [*(errors.groups() if errors else (0,) * 4), non_2xx.group(1) if non_2xx else 0],
                strict=True,
            )
        },
    }


PAGES = {
    # name: (the page's path, its floors' name in benchmarks.b4_floor)
    "queue": ("/assess", "queue"),
    "case": ("/assess/{app}", "case"),
    "api": ("/api/v1/applications/{app}", "api"),
    # Pages of later issues: the application's task list (read by its assessor) and the public
    # organisation page with a chart a pledge (no one signed in).
    "task list": ("/applications/{app}", "tasks"),
    "organisation": ("/organisations/{org}", "organisation"),
}
# Each page's guarded floor as a FastAPI route behind the page's own dependencies.
FASTAPI_FLOORS = {
    "queue": "/floor/fastapi/queue",
    "case": "/floor/fastapi/case/{app}",
    "api": "/floor/fastapi/api",
    "task list": "/floor/fastapi/tasks/{app}",
    "organisation": "/floor/fastapi/organisation/{org}",
}
PUBLIC = {"organisation"}  # for no one signed in: each new visitor gets a form token of its own
_NONCE = re.compile(rb'nonce="[^"]*"')
_FORM_TOKEN = re.compile(rb'(name="csrf_token" value=")[^"]*(")')


def normalised(body: bytes, *, public: bool) -> bytes:
    """The body with what must differ between two answers to the same request masked: the CSP
    nonce (random on every response) and, for a visitor signed out, the form token."""
    body = _NONCE.sub(b'nonce=""', body)
    return _FORM_TOKEN.sub(rb"\1\2", body) if public else body


def same_page(page: bytes, floor: bytes, *, public: bool, what: str) -> None:
    """Refuse a floor whose body is not the page's, byte for byte (but for `normalised`)."""
    a, b = normalised(page, public=public), normalised(floor, public=public)
    if a == b:
        return
    at = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    raise RuntimeError(
        f"{what} does not answer its page's bytes ({len(b)} vs {len(a)} bytes; first difference "
        f"at byte {at}):\n  page:  {a[max(0, at - 80) : at + 80]!r}\n  floor: "
        f"{b[max(0, at - 80) : at + 80]!r}"
    )


def spread(p50_ms: float, p99_ms: float) -> float:
    """p99 / p50; infinite when wrk reports a p50 of 0 (below its resolution) and a p99 above."""
    if p50_ms > 0:
        return p99_ms / p50_ms
    return 1.0 if p99_ms <= 0 else float("inf")


def run() -> Result:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is missing: `apt-get install wrk` (make setup installs it)")
    with temp_dir("svqm-b4-") as tmp:
        engine = migrated_sqlite(tmp / "svqm.db")
        cookie, token, app_id, assessor_id, org_id = _seed(engine)
        engine.dispose()
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SVQM_")}
        env.update(
            SVQM_DATABASE_URL=f"sqlite:///{tmp / 'svqm.db'}",
            SVQM_VAR_DIR=str(tmp),
            SVQM_EVIDENCE_DIR=str(tmp / "evidence"),
            SVQM_ENV="test",
            SVQM_RUN_SCHEDULER="false",
            SVQM_B4_ASSESSOR=str(assessor_id),
            SVQM_B4_APPLICATION=str(app_id),
            SVQM_B4_ORGANISATION=str(org_id),
            SVQM_B4_COOKIE=cookie,
            SVQM_B4_TOKEN=token,
            PYTHONPATH=str(REPO),
        )
        log = (tmp / "server.log").open("w")
        # As `svqm serve --no-scheduler --no-access-log` runs uvicorn, with the floors beside.
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "--factory", "benchmarks.b4_floor:create_app"),
                *("--host", "127.0.0.1", "--port", str(port), "--no-access-log"),
                *("--log-level", "warning"),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
        headers = {
            "queue": {"Cookie": f"svqm_session={cookie}"},
            "case": {"Cookie": f"svqm_session={cookie}"},
            "api": {"Authorization": f"Bearer {token}"},
            "task list": {"Cookie": f"svqm_session={cookie}"},
            "organisation": {},
        }
        figures: dict[str, dict[str, float]] = {}
        sizes: dict[str, int] = {}
        try:
            base = f"http://127.0.0.1:{port}"
            _wait(base, server)
            for name, (path, floor) in PAGES.items():
                url = base + path.format(app=app_id, org=org_id)
                response = _check(url, headers[name])
                body = response.content
                sizes[name] = len(body)
                if name == "organisation" and body.count(b'<svg class="app-chart"') != PLEDGES:
                    raise RuntimeError(
                        f"{url} does not show a chart for each of its {PLEDGES} pledges"
                    )
                public = name in PUBLIC
                bare = _check(f"{base}/floor/{floor}", {})
                same_page(body, bare.content, public=public, what=f"/floor/{floor}")
                sizes[f"{name} floor"] = len(bare.content)
                guarded = _check(f"{base}/floor/guarded/{floor}", headers[name])
                same_page(body, guarded.content, public=public, what=f"/floor/guarded/{floor}")
                sizes[f"{name} guarded floor"] = len(guarded.content)
                # The guarded floor answers with the page's headers (the security headers, the
                # CSP with its nonce, a visitor's cookie): the same names.
                if _header_names(guarded) != _header_names(response):
                    raise RuntimeError(
                        f"/floor/guarded/{floor} answers headers {_header_names(guarded)}, "
                        f"its page {_header_names(response)}"
                    )
                # Without the credential a guarded floor refuses, as its page does.
                _check(f"{base}/floor/guarded/{floor}", {}, ok=200 if public else 403)
                through_url = base + FASTAPI_FLOORS[name].format(app=app_id, org=org_id)
                through = _check_fastapi_floor(url, through_url, response, headers, name)
                sizes[f"{name} fastapi floor"] = len(through.content)
            figures["healthz"] = _wrk(f"{base}/healthz", [], server.pid)
            for name, (path, floor) in PAGES.items():
                url = base + path.format(app=app_id, org=org_id)
                wanted = [f"{k}: {v}" for k, v in headers[name].items()]
                figures[f"{name} floor"] = _wrk(f"{base}/floor/{floor}", [], server.pid)
                figures[f"{name} guarded floor"] = _wrk(
                    f"{base}/floor/guarded/{floor}", wanted, server.pid
                )
                figures[f"{name} fastapi floor"] = _wrk(
                    base + FASTAPI_FLOORS[name].format(app=app_id, org=org_id), wanted, server.pid
                )
                figures[name] = _wrk(url, wanted, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=15)
            log.close()
    return _result(figures, sizes)


def _check_fastapi_floor(
    url: str,
    through_url: str,
    page: httpx.Response,
    headers: dict[str, dict[str, str]],
    name: str,
) -> httpx.Response:
    """The FastAPI floor answers its page's bytes and header names for the page's credential,
    and without it answers as its page does: the API a 401, a page for the signed-in a redirect
    to sign in (303); the public page, for a signed-in person, their page (the dependency found
    them) byte for byte."""
    what = FASTAPI_FLOORS[name]
    public = name in PUBLIC
    through = _check(through_url, headers[name])
    same_page(page.content, through.content, public=public, what=what)
    if _header_names(through) != _header_names(page):
        raise RuntimeError(
            f"{what} answers headers {_header_names(through)}, its page {_header_names(page)}"
        )
    if public:
        signed_in = headers["queue"]
        mine = _check(url, signed_in)
        same_page(mine.content, _check(through_url, signed_in).content, public=False, what=what)
        if normalised(mine.content, public=True) == normalised(page.content, public=True):
            raise RuntimeError(f"{url} shows a signed-in person what it shows anyone")
        return through
    refused = 401 if name == "api" else 303
    bare_page = _check(url, {}, ok=refused)
    bare_floor = _check(through_url, {}, ok=refused)
    if refused == 303:
        # To sign in, and back to the page (each to its own path) afterwards.
        for got, path in ((bare_page, url), (bare_floor, through_url)):
            wanted = "/login?next=" + httpx.URL(path).path
            if got.headers.get("location") != wanted:
                raise RuntimeError(f"{path} sends to {got.headers.get('location')}, not {wanted}")
    return through


def _rate(figures: dict[str, dict[str, float]], a: str, b: str) -> float:
    """a's requests/s as a share of b's."""
    return figures[a]["requests_per_s"] / max(figures[b]["requests_per_s"], 1e-9)


def _result(figures: dict[str, dict[str, float]], sizes: dict[str, int]) -> Result:
    ratios = {name: _rate(figures, name, f"{name} floor") for name in PAGES}
    guarded = {name: _rate(figures, name, f"{name} guarded floor") for name in PAGES}
    guards = {name: _rate(figures, f"{name} guarded floor", f"{name} floor") for name in PAGES}

    def cpu(key: str) -> float:
        return figures[key]["cpu_ms_per_request"]

    cpu_ratios = {name: cpu(f"{name} floor") / max(cpu(name), 1e-9) for name in PAGES}
    # The least FastAPI with svqm's guards does: the page against it, it against the bare floor
    # (throughput, and CPU a request as the floor's share).
    fastapi = {name: _rate(figures, name, f"{name} fastapi floor") for name in PAGES}
    fastapi_floor = {
        name: _rate(figures, f"{name} fastapi floor", f"{name} floor") for name in PAGES
    }
    fastapi_cpu = {name: cpu(f"{name} fastapi floor") / max(cpu(name), 1e-9) for name in PAGES}
    fastapi_floor_cpu = {
        name: cpu(f"{name} floor") / max(cpu(f"{name} fastapi floor"), 1e-9) for name in PAGES
    }
    worst = min(ratios, key=ratios.__getitem__)
    missed = [name for name in PAGES if ratios[name] < TARGET] or [worst]
    health_cpu = cpu("healthz")
    floor = (
        "page / guarded floor (the floor plus the sign-in lookup, role and access checks, the "
        "application loaded, the render wrapper and the security headers: what is left is "
        "FastAPI and the ORM): "
        + "; ".join(
            f"{name} {guarded[name]:.2f}x (page {figures[name]['requests_per_s']:.0f}, guarded "
            f"floor {figures[f'{name} guarded floor']['requests_per_s']:.0f}, floor "
            f"{figures[f'{name} floor']['requests_per_s']:.0f} req/s; the guards alone leave "
            f"{guards[name]:.2f}x of the floor; CPU a request: page {cpu(name):.2f}, guarded "
            f"{cpu(f'{name} guarded floor'):.2f}, floor {cpu(f'{name} floor'):.2f} ms)"
            for name in missed
        )
        + f". svqm's own /healthz (its middleware, no database) {health_cpu:.2f} ms CPU"
        + ". Each page's guarded floor as a FastAPI route behind the page's own dependencies "
        "(/floor/fastapi/<name>: the least FastAPI with svqm's guards can do for it), page / "
        "fastapi floor and fastapi floor / floor in throughput (in brackets the same two in CPU "
        "a request: the second's over the first's): "
        + "; ".join(
            f"{name} {fastapi[name]:.2f}x and {fastapi_floor[name]:.2f}x (CPU "
            f"{fastapi_cpu[name]:.2f}x and {fastapi_floor_cpu[name]:.2f}x: page {cpu(name):.2f}, "
            f"fastapi floor {cpu(f'{name} fastapi floor'):.2f}, floor "
            f"{cpu(f'{name} floor'):.2f} ms; "
            f"{figures[f'{name} fastapi floor']['requests_per_s']:.0f} req/s at "
            f"{FASTAPI_FLOORS[name]})"
            for name in PAGES
        )
        + "".join(
            f". {_verdict(name, ratios[name], fastapi[name], fastapi_floor[name])}"
            f"{_by_cpu(fastapi_floor[name], fastapi_floor_cpu[name])} (CPU a request: page "
            f"{cpu(name):.2f}, fastapi floor {cpu(f'{name} fastapi floor'):.2f}, floor "
            f"{cpu(f'{name} floor'):.2f} ms)"
            for name in PAGES
            if ratios[name] < TARGET
        )
    )
    measured: dict[str, float] = {}
    baseline: dict[str, float] = {
        "/healthz req/s": figures["healthz"]["requests_per_s"],
        "/healthz CPU ms/req": health_cpu,
    }
    checks = []
    for name in PAGES:
        page = figures[name]
        measured[f"{name} req/s"] = page["requests_per_s"]
        measured[f"{name} CPU ms/req"] = page["cpu_ms_per_request"]
        measured[f"{name} p50 ms"] = page["p50_ms"]
        measured[f"{name} p99 ms"] = page["p99_ms"]
        measured[f"{name} / guarded floor"] = guarded[name]
        measured[f"{name} / fastapi floor"] = fastapi[name]
        measured[f"{name} fastapi floor / floor"] = fastapi_floor[name]
        for kind in ("floor", "guarded floor", "fastapi floor"):
            baseline[f"{name} {kind} req/s"] = figures[f"{name} {kind}"]["requests_per_s"]
            baseline[f"{name} {kind} CPU ms/req"] = cpu(f"{name} {kind}")
        if name != worst:
            checks.append(Check(f"{name} / its floor", ratios[name], TARGET, "x", True))
        checks.append(
            Check(f"{name} p99/p50", spread(page["p50_ms"], page["p99_ms"]), P99_TARGET, "x")
        )
    # The product's pages must answer every request; the floors' own errors are only recorded.
    errors = sum(figures[name]["errors"] for name in PAGES)
    checks.append(Check("errors (non-2xx, socket)", errors, 0, ""))
    return Result(
        id=ID,
        name=NAME,
        measured=measured,
        baseline=baseline,
        ratio=ratios[worst],
        target=TARGET,
        unit=f"x its floor's throughput (worst: {worst})",
        higher_is_better=True,
        checks=checks,
        floor=floor,
        detail={
            "ratios": {k: round(v, 4) for k, v in ratios.items()},
            "guarded_ratios (page / guarded floor)": {k: round(v, 4) for k, v in guarded.items()},
            "guard_ratios (guarded floor / floor)": {k: round(v, 4) for k, v in guards.items()},
            "cpu_ratios (floor CPU / page CPU per request)": {
                k: round(v, 4) for k, v in cpu_ratios.items()
            },
            "fastapi_ratios (page / fastapi floor)": {k: round(v, 4) for k, v in fastapi.items()},
            "fastapi_floor_ratios (fastapi floor / floor)": {
                k: round(v, 4) for k, v in fastapi_floor.items()
            },
            "fastapi_cpu_ratios (fastapi floor CPU / page CPU per request)": {
                k: round(v, 4) for k, v in fastapi_cpu.items()
            },
            "fastapi_floor_cpu_ratios (floor CPU / fastapi floor CPU per request)": {
                k: round(v, 4) for k, v in fastapi_floor_cpu.items()
            },
            "fastapi_floors": FASTAPI_FLOORS,
            "same_bytes": "each floor, guarded floor and fastapi floor answered its page's body "
            "(nonce and a signed-out visitor's form token masked)",
            "wrk": figures,
            "bytes": sizes,
            "rows": ROWS,
            "connections": CONNECTIONS,
            "duration_s": DURATION,
        },
    )


def _verdict(name: str, ratio: float, fastapi: float, fastapi_floor: float) -> str:
    """What a missed page's target means against the least FastAPI with svqm's guards does."""
    if fastapi_floor < TARGET:
        return (
            f"{name}: missed ({ratio:.2f}x its floor), and the target is below the least FastAPI "
            f"with svqm's guards can do (measured): its fastapi floor reaches only "
            f"{fastapi_floor:.3f}x the bare floor, under the {TARGET}x asked of the page"
        )
    # The page's throughput that would meet the target, as a share of its fastapi floor's.
    needed = TARGET / fastapi_floor
    return (
        f"{name}: missed ({ratio:.2f}x its floor) against a fastapi floor that reaches "
        f"{fastapi_floor:.2f}x it: the page answers {fastapi:.2f}x its fastapi floor where "
        f"{needed:.2f}x would meet the target, {needed / max(fastapi, 1e-9):.2f}x more throughput"
    )


def _by_cpu(fastapi_floor: float, fastapi_floor_cpu: float) -> str:
    """Where the CPU a request says otherwise than the throughput (a shared machine's noise)."""
    if (fastapi_floor < TARGET) == (fastapi_floor_cpu < TARGET):
        return ""
    return (
        f"; by CPU a request, though, the fastapi floor costs {1 / max(fastapi_floor_cpu, 1e-9):.2f}x "
        f"the floor's ({fastapi_floor_cpu:.2f}x as a share), "
        + ("within" if fastapi_floor_cpu >= TARGET else "beyond")
        + " the target's reach"
    )


def _header_names(response: httpx.Response) -> list[str]:
    return sorted({k.lower() for k in response.headers} - {"date", "server", "content-length"})


def _wait(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120  # a busy shared machine starts processes slowly
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            return
        except httpx.TransportError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("svqm serve did not start") from None
            time.sleep(0.1)  # polling a real process while it binds its port


def _check(url: str, headers: dict[str, str], ok: int = 200) -> httpx.Response:
    """One request first: the URL must answer 200 (a redirect to sign in would flatter it)."""
    response = httpx.get(url, headers=headers, timeout=10, follow_redirects=False)
    if response.status_code != ok:
        raise RuntimeError(f"{url} answered {response.status_code}, not {ok}")
    return response
