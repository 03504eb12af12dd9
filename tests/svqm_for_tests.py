"""`python -m tests.svqm_for_tests ARGS`: the svqm CLI (as `svqm ARGS`) with cheap password hashing.

For the servers and commands the tests start whose tests do not depend on the cost of a hash
(the browser tests' servers, the demo they seed): at the service's cost (argon2id, 64 MiB, t=3,
p=4) one hash takes 0.1-0.7 s of CPU, and seeding the demo hashes every demo account's password
(6.6 s of CPU a seed, 2.2 s with this hasher). The switch is here, in the tests, not in svqm:
nothing a deployment could set (a setting, an environment variable) lowers the service's cost,
and tests/test_password_storage.py checks that. Some tests keep running the real console script
(`svqm`) at the service's cost: the journey's sign-ups and sign-ins, `svqm demo` once, `svqm serve`.

Run it with `environment(env)`: Python finds `tests` through PYTHONPATH, whatever the directory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from argon2 import PasswordHasher

REPO = Path(__file__).resolve().parent.parent
# argon2id at a small cost: what a test proves of sign-in does not depend on the cost.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
# The command line that runs it, before svqm's own arguments.
COMMAND = [sys.executable, "-m", "tests.svqm_for_tests"]


def environment(env: dict[str, str]) -> dict[str, str]:
    """`env` with this checkout first on PYTHONPATH, so that `-m tests.svqm_for_tests` is found
    (and imports this checkout's svqm) from any working directory."""
    paths = [str(REPO), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    return {**env, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def _several_workers(args: list[str]) -> bool:
    """Whether `serve` is asked for more than one worker: uvicorn starts them as fresh
    interpreters, which would import svqm again and hash at the service's cost."""
    for i, arg in enumerate(args):
        value = arg.partition("=")[2] if arg.startswith("--workers=") else None
        if arg == "--workers" and i + 1 < len(args):
            value = args[i + 1]
        if value is not None and value.strip() != "1":
            return True
    return False


def main() -> None:
    if _several_workers(sys.argv[1:]):
        sys.exit("tests.svqm_for_tests: --workers would hash at the service's cost in each worker")
    from svqm.accounts import service
    from svqm.cli import main as svqm_main

    # hash_password, verify_password, password_needs_rehash and auth's dummy hash all read it.
    service._hasher = CHEAP_HASHER
    sys.argv[0] = "svqm"
    svqm_main()


if __name__ == "__main__":
    main()
