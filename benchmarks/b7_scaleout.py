"""B7: scale-out on PostgreSQL: two web workers against one, and two schedulers sharing one outbox.

Setup: a fresh PostgreSQL database on loopback (SVQM_BENCH_POSTGRES_URL, else the test server's
`postgresql+psycopg://postgres@127.0.0.1:5432/`), migrated with Alembic and seeded as B4 does
(10,000 applications, 20 assessors, one signed-in assessor and an API token).

Web: `svqm serve --workers N --no-scheduler --no-access-log` for N = 1, then N = 2, on the same
data; `wrk` (16 connections, 2 threads, DURATION seconds) on the queue page and the application
API each time. Figure: requests/s with 2 workers / with 1 (target >= 1.6 on this 2-core
machine), the worse of the two pages; no errors. The baseline is the same server with one
worker, measured in the same run: the most one process does, which two can at best double.
The load average is recorded with each run: with the cores already busy a second worker has no
core to run on, and the ratio says so. Each run also records the CPU each worker used (from
/proc: how the work split between the two) and how many of the machine's cores were busy
(/proc/stat). The floor printed when the target is missed is that ceiling: one worker's
throughput scaled from the cores the machine kept busy serving it (the worker, PostgreSQL, wrk
and the kernel's loopback traffic) to all of them, the most any number of workers could reach
here. Anything else running on the machine counts as busy too: read it on a quiet machine.

Mail: OUTBOX messages enqueued (through `svqm.notify.outbox`), then two `svqm scheduler`
processes started against the same database and an aiosmtpd relay on loopback; when every row
is sent, they are stopped. Checks: the relay got every message once (0 duplicates, 0 lost), and
the report gives how many each scheduler delivered (from `delivery_attempt.worker`).

SVQM_B7_SECONDS runs wrk for fewer seconds, SVQM_B7_MESSAGES enqueues fewer messages.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, select

from benchmarks import b4_web
from benchmarks.fixtures import temp_dir
from benchmarks.report import Check, Result
from svqm.clock import utc_now
from svqm.db import make_engine, table_of
from svqm.dbmigrate import upgrade
from svqm.notify import outbox
from svqm.notify.models import SENT, DeliveryAttempt, OutboxMessage

ID = "B7"
NAME = "Scale-out on PostgreSQL: 2 web workers vs 1, two schedulers on one outbox"
TARGET = 1.6
DURATION = int(os.environ.get("SVQM_B7_SECONDS", "10"))
MESSAGES = int(os.environ.get("SVQM_B7_MESSAGES", "5000"))
SERVER = os.environ.get("SVQM_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/")
SVQM = str(Path(sys.executable).with_name("svqm"))
CORES = os.cpu_count() or 1
MAIL_FROM = "SVQM bench <bench@svqm.example>"
MAIL_SECONDS = 600


class _Relay:
    """An aiosmtpd relay that counts each message by its X-SVQM-Key header."""

    def __init__(self, port: int) -> None:
        self.keys: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for line in envelope.content.split(b"\r\n"):
            if not line:
                break
            if line.lower().startswith(b"x-svqm-key:"):
                with self._lock:
                    self.keys[line.split(b":", 1)[1].strip().decode()] += 1
        return "250 OK"

    @property
    def count(self) -> int:
        with self._lock:
            return sum(self.keys.values())


def _database() -> tuple[str, Engine]:
    """A new, empty database on the server; its URL and an engine on the server's own db."""
    url = make_url(SERVER)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"svqm_bench_b7_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return url.set(database=name).render_as_string(hide_password=False), admin


def _drop(admin: Engine, url: str) -> None:
    name = make_url(url).database
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _serve(env: dict[str, str], workers: int, tmp: Path, pages: dict[str, tuple[str, list[str]]]):  # type: ignore[no-untyped-def]
    port = b4_web._free_port()
    log = (tmp / f"serve-{workers}.log").open("w")
    cmd = [SVQM, "serve", "--port", str(port), "--workers", str(workers), "--no-scheduler"]
    server = subprocess.Popen(
        [*cmd, "--no-access-log"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp
    )
    figures: dict[str, dict[str, Any]] = {}
    try:
        base = f"http://127.0.0.1:{port}"
        try:
            b4_web._wait(base, server)
        except RuntimeError as exc:
            log.flush()
            tail = (tmp / f"serve-{workers}.log").read_text()[-2000:]
            raise RuntimeError(f"{exc}; its log ends:\n{tail}") from None
        for path, headers in pages.values():
            b4_web._check(base + path, dict(h.split(": ", 1) for h in headers))
        for name, (path, headers) in pages.items():
            figures[name] = _wrk(base + path, headers, server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    return figures


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
            if ppid == pid:
                kids.append(int(entry))
    return kids


def _machine() -> tuple[int, int]:
    """(busy, all) clock ticks of the whole machine so far (/proc/stat; idle and iowait are not busy)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


def _wrk(url: str, headers: list[str], pid: int) -> dict[str, Any]:
    """wrk's figures, and the CPU each worker used, and how busy the machine's cores were."""
    old = b4_web.DURATION
    b4_web.DURATION = DURATION
    workers = _children(pid) or [pid]  # one worker: uvicorn serves in the process itself
    before = {k: b4_web._cpu_ticks(k) for k in workers}
    busy, total = _machine()
    try:
        figures: dict[str, Any] = dict(b4_web._wrk(url, headers, pid))
    finally:
        b4_web.DURATION = old
    busy, total = _machine()[0] - busy, _machine()[1] - total
    used = sorted(
        (b4_web._cpu_ticks(k) - before[k] for k in workers if os.path.exists(f"/proc/{k}")),
        reverse=True,
    )
    # Children that used no CPU (the spawn method's resource tracker) are not workers.
    used = [u for u in used if u > 0] or [0]
    tick = os.sysconf("SC_CLK_TCK")
    requests = figures["requests_per_s"] * DURATION
    figures["server_cpu_ms_per_request"] = 1000 * (sum(used) / tick) / max(requests, 1)
    figures["worker_cpu_s"] = [u / tick for u in used]
    figures["busy_cores"] = CORES * busy / max(total, 1)
    return figures


def _enqueue(engine: Engine, count: int) -> list[str]:
    now = utc_now()
    keys = [f"b7:{n:05d}" for n in range(count)]
    rows = [
        outbox.message(
            key=key,
            template="reminder",
            context={
                "organisation": f"Org {n}",
                "scheme": "Social Value Quality Mark",
                "label": "Annual report",
                "kind": "annual_report",
                "subject_title": f"Silver award (SVQM-{n:05d})",
                "due_at": "2027-01-05T09:00:00+00:00",
                "due_text": "5 January 2027",
                "days_before": 30,
                "on_due_text": "",
                "outcome": "",
                "link": f"https://svqm.example/awards/{n}",
                "home_link": "https://svqm.example/dashboard",
                "audience": "applicant",
            },
            to_addrs=[f"applicant{n}@bench.example"],
            now=now,
            organisation_id=None,
        )
        for n, key in enumerate(keys)
    ]
    with engine.begin() as conn:
        for i in range(0, len(rows), 1000):
            conn.execute(insert(table_of(OutboxMessage)), rows[i : i + 1000])
    return keys


def _mail(engine: Engine, env: dict[str, str], tmp: Path) -> dict[str, Any]:
    port = b4_web._free_port()
    relay = _Relay(port)
    relay.controller.start()
    keys = _enqueue(engine, MESSAGES)
    mail_env = {
        **env,
        "SVQM_SMTP_HOST": "127.0.0.1",
        "SVQM_SMTP_PORT": str(port),
        "SVQM_MAIL_FROM": MAIL_FROM,
        "SVQM_DISPATCH_INTERVAL_SECONDS": "0.5",
        "SVQM_SWEEP_INTERVAL_SECONDS": "3600",
        "SVQM_OUTBOX_LEASE_SECONDS": "60",
        "PYTHONUNBUFFERED": "1",
    }
    procs = []
    logs = [(tmp / f"scheduler-{name}.log").open("w") for name in ("a", "b")]
    start = time.perf_counter()
    try:
        for out in logs:
            procs.append(
                subprocess.Popen([SVQM, "scheduler"], env=mail_env, stdout=out, stderr=out, cwd=tmp)
            )
        deadline = time.monotonic() + MAIL_SECONDS
        while True:
            with Session(engine) as s:
                sent = outbox.counts(s)[SENT]
            if sent == MESSAGES or time.monotonic() > deadline:
                break
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a scheduler exited while there was mail to send")
            time.sleep(0.5)  # polling real processes while they deliver
        seconds = time.perf_counter() - start
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
        for out in logs:
            out.close()
        relay.controller.stop()
    with Session(engine) as s:
        workers = Counter(s.exec(select(DeliveryAttempt.worker)))
        outcomes = Counter(s.exec(select(DeliveryAttempt.outcome)))
        sent = outbox.counts(s)[SENT]
    by_pid = {str(p.pid): 0 for p in procs}
    for worker, n in workers.items():
        by_pid[worker.rpartition(":")[2]] = by_pid.get(worker.rpartition(":")[2], 0) + n
    duplicates = sum(n - 1 for n in relay.keys.values() if n > 1)
    lost = len(set(keys) - set(relay.keys))
    return {
        "messages": MESSAGES,
        "sent_rows": sent,
        "relay_received": relay.count,
        "duplicates": duplicates,
        "lost": lost,
        "seconds": seconds,
        "messages_per_s": MESSAGES / seconds,
        "split": list(by_pid.values()),
        "outcomes": dict(outcomes),
    }


def run() -> Result:
    url, admin = _database()
    try:
        engine = make_engine(url)
        upgrade(engine)
        cookie, token, app_id, _, _ = b4_web._seed(engine)
        with temp_dir("svqm-b7-") as tmp:
            env = {k: v for k, v in os.environ.items() if not k.startswith("SVQM_")}
            env.update(
                SVQM_DATABASE_URL=url,
                SVQM_VAR_DIR=str(tmp),
                SVQM_EVIDENCE_DIR=str(tmp / "evidence"),
                SVQM_ENV="test",
            )
            pages = {
                "queue": ("/assess", [f"Cookie: svqm_session={cookie}"]),
                "api": (f"/api/v1/applications/{app_id}", [f"Authorization: Bearer {token}"]),
            }
            one = _serve(env, 1, tmp, pages)
            two = _serve(env, 2, tmp, pages)
            mail = _mail(engine, env, tmp)
        engine.dispose()
    finally:
        _drop(admin, url)
    ratios = {name: two[name]["requests_per_s"] / one[name]["requests_per_s"] for name in one}
    worst = min(ratios, key=ratios.__getitem__)
    errors = sum(f["errors"] for f in [*one.values(), *two.values()])
    load = max(f["loadavg"] for f in [*one.values(), *two.values()])
    # The most two workers can do: one worker's throughput scaled from the cores the whole
    # machine kept busy serving it (the worker, PostgreSQL, wrk, the kernel's loopback) to all.
    ceiling = {n: CORES / max(f["busy_cores"], 1e-9) for n, f in one.items()}
    floor = (
        f"with one worker the machine's {CORES} cores were already busy "
        + ", ".join(
            f"{one[n]['busy_cores']:.2f} on {n} (the worker {one[n]['server_cpu_ms_per_request']:.2f}"
            f" ms CPU a request; the rest PostgreSQL, wrk and the kernel): at most "
            f"{ceiling[n]:.2f}x with every core busy"
            for n in one
        )
        + f"; load average up to {load:.2f}. Two workers' CPU split: "
        + ", ".join(
            f"{n} " + " / ".join(f"{c:.1f} s" for c in f["worker_cpu_s"]) for n, f in two.items()
        )
    )
    return Result(
        id=ID,
        name=NAME,
        unit="x one worker's throughput",
        measured={
            **{f"{n} req/s, 2 workers": f["requests_per_s"] for n, f in two.items()},
            "messages/s, 2 schedulers": mail["messages_per_s"],
        },
        baseline={f"{n} req/s, 1 worker": f["requests_per_s"] for n, f in one.items()},
        ratio=ratios[worst],
        target=TARGET,
        higher_is_better=True,
        floor=floor,
        checks=[
            *(
                Check(f"{n}: 2 workers / 1", r, TARGET, "x", True)
                for n, r in ratios.items()
                if n != worst
            ),
            Check("web errors (non-2xx, socket)", errors, 0, ""),
            Check("mail duplicates", mail["duplicates"], 0, ""),
            Check("mail lost", mail["lost"], 0, ""),
        ],
        detail={
            "ratios": ratios,
            "ceiling (cores / busy cores with one worker)": ceiling,
            "one_worker": one,
            "two_workers": two,
            "mail": mail,
            "mail_split": f"{mail['split'][0]} / {mail['split'][1]}",
            "duration_s": DURATION,
            "database": "PostgreSQL on loopback",
        },
    )
