"""B4: the assessor's queue page and the application API under load, against /healthz.

Setup: 10,000 applications in a migrated SQLite file (spread over the workflow's states, assigned to
20 assessors, so one assessor's queue holds 500), served by `svqm serve` (one uvicorn worker) on
loopback. `wrk` (Debian's, a C load generator, so the client is not the bottleneck) runs 16
connections on 2 threads for DURATION seconds against each URL in turn:
  baseline  GET /healthz
  measured  GET /assess (the queue page, signed in as an assessor with the second factor done)
            GET /api/v1/applications/{id} (an application of that assessor, bearer token)
Targets: each measured URL's requests/s >= 30% of /healthz's; its p99 <= 5x its p50; no errors
(non-2xx answers or socket errors).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert
from sqlmodel import select

from benchmarks.fixtures import NOW, migrated_sqlite, registry, temp_dir
from benchmarks.report import Check, Result
from svqm.accounts import auth
from svqm.accounts import service as accounts
from svqm.clock import utc_now
from svqm.config import Settings
from svqm.db import session_scope
from svqm.workflow.models import Application

ID = "B4"
NAME = "Queue page and application API under load"
TARGET = 0.30
P99_TARGET = 5.0
ROWS = 10_000
ASSESSORS = 20
DURATION = 10
CONNECTIONS = 16


def _seed(engine: Any) -> tuple[str, str, int]:
    """Applications, assessors, a web session cookie and an API token for assessor 1."""
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
    return cookie, token, int(app_id)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def _wrk(url: str, headers: list[str]) -> dict[str, float]:
    cmd = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency", url]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=DURATION + 30)
    text = out.stdout
    if "Latency Distribution" not in text:
        raise RuntimeError(f"wrk printed no latency distribution:\n{text}\n{out.stderr}")
    latency = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)\s*$", text, re.M))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "errors": float(sum(map(int, errors.groups())) if errors else 0)
        + float(non_2xx.group(1) if non_2xx else 0),
    }


def run() -> Result:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is missing: `apt-get install wrk` (make bench installs it)")
    with temp_dir("svqm-b4-") as tmp:
        engine = migrated_sqlite(tmp / "svqm.db")
        cookie, token, app_id = _seed(engine)
        engine.dispose()
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SVQM_")}
        env.update(
            SVQM_DATABASE_URL=f"sqlite:///{tmp / 'svqm.db'}",
            SVQM_VAR_DIR=str(tmp),
            SVQM_EVIDENCE_DIR=str(tmp / "evidence"),
            SVQM_ENV="test",
        )
        svqm = str(Path(sys.executable).with_name("svqm"))
        log = (tmp / "server.log").open("w")
        server = subprocess.Popen(
            [svqm, "serve", "--port", str(port), "--no-scheduler", "--no-access-log"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait(base, server)
            queue = _check(f"{base}/assess", {"Cookie": f"svqm_session={cookie}"})
            one = _check(
                f"{base}/api/v1/applications/{app_id}", {"Authorization": f"Bearer {token}"}
            )
            health = _wrk(f"{base}/healthz", [])
            page = _wrk(f"{base}/assess", [f"Cookie: svqm_session={cookie}"])
            api = _wrk(f"{base}/api/v1/applications/{app_id}", [f"Authorization: Bearer {token}"])
        finally:
            server.terminate()
            server.wait(timeout=15)
            log.close()
    page_ratio = page["requests_per_s"] / health["requests_per_s"]
    api_ratio = api["requests_per_s"] / health["requests_per_s"]
    return Result(
        id=ID,
        name=NAME,
        measured={
            "queue page req/s": page["requests_per_s"],
            "API req/s": api["requests_per_s"],
            "queue p50 ms": page["p50_ms"],
            "queue p99 ms": page["p99_ms"],
            "API p50 ms": api["p50_ms"],
            "API p99 ms": api["p99_ms"],
        },
        baseline={
            "/healthz req/s": health["requests_per_s"],
            "p50 ms": health["p50_ms"],
            "p99 ms": health["p99_ms"],
        },
        ratio=min(page_ratio, api_ratio),
        target=TARGET,
        unit="x of /healthz throughput",
        higher_is_better=True,
        checks=[
            Check("queue page p99/p50", page["p99_ms"] / page["p50_ms"], P99_TARGET, "x"),
            Check("API p99/p50", api["p99_ms"] / api["p50_ms"], P99_TARGET, "x"),
            Check("errors (non-2xx, socket)", page["errors"] + api["errors"], 0, ""),
        ],
        detail={
            "queue_ratio": round(page_ratio, 4),
            "api_ratio": round(api_ratio, 4),
            "queue_page_bytes": queue,
            "api_bytes": one,
            "rows": ROWS,
            "connections": CONNECTIONS,
            "duration_s": DURATION,
        },
    )


def _wait(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            return
        except httpx.TransportError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("svqm serve did not start") from None
            time.sleep(0.1)  # polling a real process while it binds its port


def _check(url: str, headers: dict[str, str]) -> int:
    """One request first: the URL must answer 200 (a redirect to sign in would flatter it)."""
    response = httpx.get(url, headers=headers, timeout=10, follow_redirects=False)
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}, not 200")
    return len(response.content)
