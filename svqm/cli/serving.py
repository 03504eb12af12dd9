"""`svqm serve --workers N`: N web worker processes on one port, each listening on a socket of its own.

uvicorn's own `workers=N` shares one listening socket between its processes, and whichever wakes
first accepts every connection waiting (asyncio accepts up to the backlog at each wake-up). A
client that opens its keep-alive connections together (a proxy's pool, a load test) is then
served by one worker while the others idle: measured with 16 connections on the application API,
one worker used 787 clock ticks and the other 5, and two workers answered no more requests a
second than one. Here each worker binds its own socket with SO_REUSEPORT, so the kernel spreads
new connections across the workers' sockets (a hash of each connection's addresses), as nginx's
`reuseport` does; a worker that exits takes its socket with it, so no connection waits on a
socket that nobody accepts from.

The parent holds the port (bound with SO_REUSEPORT, never listening: it takes no connections),
starts the workers, restarts one that dies, and stops them all on SIGINT or SIGTERM. A worker
that cannot start (exit code 3, uvicorn's startup failure) stops the parent too: its
replacement would fail the same way.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

logger = logging.getLogger("svqm.serve")

STARTUP_FAILURE = 3  # uvicorn.config.STARTUP_FAILURE: the app, its lifespan or the bind failed
BACKLOG = 2048  # uvicorn's default listen backlog
PARENT_CHECK_SECONDS = 1.0
STOP_SECONDS = 30  # how long a worker may take to finish its requests once told to stop


def _bind(family: int, address: tuple[Any, ...]) -> socket.socket:
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on connections
    # whose socket says TCP, and a response goes out as two writes (its head, then its body).
    # With Nagle on, the body waited for the client's delayed ACK of the head: about 40 ms a
    # request on loopback, so two workers answered no faster than one.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind(address)
    return sock


def address_of(host: str, port: int) -> tuple[int, tuple[Any, ...]]:
    """The socket family and address `host`:`port` binds to."""
    family, _, _, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return family, address


def _worker(
    family: int, address: tuple[Any, ...], options: dict[str, Any], setup: Callable[[], None]
) -> None:
    """One worker: its own listening socket on the shared port, and uvicorn serving on it."""
    import uvicorn

    setup()
    _stop_with_parent(os.getppid())
    try:
        sock = _bind(family, address)
        sock.listen(BACKLOG)
    except OSError as exc:
        logger.error("cannot listen on %s: %s", address, exc)
        sys.exit(STARTUP_FAILURE)
    # Server.run with the socket given: uvicorn serves it, and on SIGINT/SIGTERM finishes its
    # requests and stops (its own signal handlers).
    uvicorn.Server(uvicorn.Config(**options)).run(sockets=[sock])


def _stop_with_parent(parent: int) -> None:
    """Stop this worker (as SIGTERM would) once its parent is gone, even killed with SIGKILL:
    a worker left behind would keep taking its share of the port's connections."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        logger.warning("the parent process [%s] is gone; stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="svqm-parent-watch", daemon=True).start()


def serve_workers(
    host: str, port: int, workers: int, options: dict[str, Any], setup: Callable[[], None]
) -> int:
    """Serve with `workers` processes until told to stop; the exit code for the command.

    `options` are uvicorn.Config's (the app and how to serve it, not the address); `setup` runs
    first in each worker (logging): a module-level function, as workers are spawned afresh.
    """
    family, address = address_of(host, port)
    try:
        holder = _bind(family, address)
    except OSError as exc:
        logger.error("cannot listen on %s:%s: %s", host, port, exc)
        return 1
    address = holder.getsockname()  # port 0 becomes the port the system chose
    spawn = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def start() -> BaseProcess:
        process = spawn.Process(
            target=_worker, args=(family, address, options, setup), name="svqm-web"
        )
        process.start()
        logger.info("Started worker process [%s]", process.pid)
        return process

    def asked_to_stop(signum: int, _frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, asked_to_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    processes = [start() for _ in range(workers)]
    logger.info(
        "Serving on http://%s:%s with %d workers, each on its own socket (SO_REUSEPORT)",
        host,
        address[1],
        workers,
    )
    try:
        while not stop.wait(0.5):
            for i, process in enumerate(processes):
                if process.is_alive():
                    continue
                process.join()
                if process.exitcode == STARTUP_FAILURE:
                    logger.error("worker [%s] could not start; stopping", process.pid)
                    stop.set()
                    code = 1
                    break
                logger.info(
                    "worker [%s] exited (%s); starting another", process.pid, process.exitcode
                )
                processes[i] = start()
    finally:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                process.terminate()  # SIGTERM: uvicorn finishes its requests, then exits
        for process in processes:
            process.join(STOP_SECONDS)
            if process.is_alive():
                logger.warning(
                    "worker [%s] did not stop in %d s; killed", process.pid, STOP_SECONDS
                )
                process.kill()
                process.join()
        holder.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return code
