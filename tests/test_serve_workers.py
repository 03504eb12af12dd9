"""`svqm serve --workers 2`: the workers share the connections, a worker that dies is replaced,
and SIGTERM stops them all.

The workers are real processes on a real port; which worker holds a connection is read from
the kernel (/proc/net/tcp and each worker's open sockets), not from anything svqm reports.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

SVQM = str(Path(sys.executable).with_name("svqm"))
CONNECTIONS = 16

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found


def _workers(server: subprocess.Popen[str], count: int) -> set[int]:
    """The worker processes (the spawn start method's resource tracker excluded: no socket)."""
    deadline = time.monotonic() + 120
    while True:
        workers = {p for p in _children(server.pid) if _listens(p)}
        if len(workers) == count:
            return workers
        if time.monotonic() > deadline or server.poll() is not None:
            raise AssertionError(f"expected {count} listening workers, found {workers}")
        time.sleep(0.1)  # waiting for real processes to start and bind


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


LISTEN = "0A"
ESTABLISHED = "01"


def _tcp() -> list[tuple[int, int, str, int]]:
    """(local port, remote port, state, inode) of every IPv4 TCP socket."""
    rows = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        local, remote, state, inode = cols[1], cols[2], cols[3], int(cols[9])
        rows.append((int(local.split(":")[1], 16), int(remote.split(":")[1], 16), state, inode))
    return rows


def _listens(pid: int) -> bool:
    try:
        mine = _socket_inodes(pid)
    except OSError:
        return False
    return any(state == LISTEN and inode in mine for _, _, state, inode in _tcp())


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    env = {
        **os.environ,
        "SVQM_DATABASE_URL": f"sqlite:///{tmp_path}/svqm.db",
        "SVQM_EVIDENCE_DIR": str(tmp_path / "evidence"),
    }
    env.pop("SVQM_BASE_URL", None)
    subprocess.run([SVQM, "db", "upgrade"], env=env, check=True, capture_output=True)
    port = _free_port()
    server = subprocess.Popen(
        [SVQM, "serve", "--port", str(port), "--workers", "2", "--no-scheduler", "--no-access-log"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so that nothing outlives the test
    )
    try:
        yield server, port
    finally:
        if server.poll() is None:
            server.terminate()
        try:
            server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.communicate(timeout=30)


def test_two_workers_share_connections_opened_together(served):
    server, port = served
    workers = _workers(server, 2)
    # The connections a proxy's pool or a load test opens at once, then one request on each.
    clients = [
        http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(CONNECTIONS)
    ]
    for c in clients:
        c.connect()
    for c in clients:
        c.request("GET", "/healthz")
    for c in clients:
        response = c.getresponse()
        assert (response.status, response.read()) == (200, b'{"status":"ok"}')
    ours = {c.sock.getsockname()[1] for c in clients}
    # The server's end of each of our connections, and the worker holding it.
    inodes = {
        inode
        for local, remote, state, inode in _tcp()
        if local == port and remote in ours and state == ESTABLISHED
    }
    assert len(inodes) == CONNECTIONS
    held = {pid: len(_socket_inodes(pid) & inodes) for pid in workers}
    for c in clients:
        c.close()
    assert sum(held.values()) == CONNECTIONS
    # One shared socket let the first worker to wake accept all 16; with a socket each the
    # kernel spreads them (all 16 on one of two sockets by chance: 2 in 65,536).
    assert all(n > 0 for n in held.values()), held


def test_a_worker_that_dies_is_replaced_and_sigterm_stops_them_all(served):
    server, port = served
    first, second = sorted(_workers(server, 2))
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while True:
        now = _workers(server, 2)
        if first not in now:
            break
        assert time.monotonic() < deadline, "the killed worker was not replaced"
        time.sleep(0.1)  # the parent looks twice a second
    assert second in now
    # The site answers throughout on the same port.
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).json() == {"status": "ok"}
    server.send_signal(signal.SIGTERM)
    _, log = server.communicate(timeout=60)
    assert server.returncode == 0, log
    assert "exited" in log
    assert "starting another" in log
    assert not any(_running(pid) for pid in now), "a worker outlived its parent"


def test_workers_stop_when_their_parent_is_killed(served):
    server, _ = served
    workers = _workers(server, 2)
    server.kill()  # SIGKILL: the parent cannot stop them itself
    server.wait(timeout=30)
    deadline = time.monotonic() + 60
    while any(_running(pid) for pid in workers):
        assert time.monotonic() < deadline, "workers outlived their killed parent"
        time.sleep(0.2)  # each worker looks for its parent once a second


def test_a_port_already_taken_is_one_line_and_exit_1(tmp_path):
    env = {**os.environ, "SVQM_DATABASE_URL": f"sqlite:///{tmp_path}/svqm.db"}
    subprocess.run([SVQM, "db", "upgrade"], env=env, check=True, capture_output=True)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [SVQM, "serve", "--port", str(port), "--workers", "2", "--no-scheduler"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_a_workers_connections_send_without_waiting_for_acks() -> None:
    """A worker's listening socket says TCP, so asyncio turns Nagle's algorithm off on each
    connection it accepts: a response goes out as two writes (head, body), and with Nagle on
    the body waited for the client's delayed ACK of the head (about 40 ms a request on
    loopback). Socket type 0 left it on: two workers answered B7's API no faster than one.

    The loop runs in a thread of its own: a browser test earlier in the same pytest worker can
    leave Playwright's loop running on the main thread, where asyncio.run refuses to start."""
    import asyncio
    import threading

    from svqm.cli.serving import _bind, address_of

    family, address = address_of("127.0.0.1", 0)
    listening = _bind(family, address)
    listening.listen(8)
    seen: list[int] = []
    failed: list[BaseException] = []

    async def main() -> None:
        accepted_one = asyncio.Event()

        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()
            accepted_one.set()

        server = await asyncio.start_server(accepted, sock=listening)
        port = listening.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await asyncio.wait_for(accepted_one.wait(), timeout=10)
        finally:
            writer.close()
            server.close()
            await server.wait_closed()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as error:  # reported on the test's own thread below
            failed.append(error)

    try:
        thread = threading.Thread(target=run)
        thread.start()
        thread.join(timeout=30)
    finally:
        listening.close()
    assert not thread.is_alive(), "the accept loop did not finish"
    assert not failed, failed
    assert seen, "the connection was never accepted"
    assert seen[0] != 0, "Nagle's algorithm is still on for the worker's connections"
