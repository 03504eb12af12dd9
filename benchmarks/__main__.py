"""Run the benchmarks: `python -m benchmarks` runs them all in order, `python -m benchmarks B2` one.

Exits 0 when every benchmark ran, whether or not it met its target (the table says which did);
1 if a benchmark failed to run; 2 for an unknown benchmark id.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback

from rich.console import Console

from benchmarks.report import RESULTS, Result, loadavg, print_table, save

# In the order they run; later benchmarks add themselves here.
BENCHMARKS: dict[str, str] = {
    "B1": "benchmarks.b1_transitions",
    "B2": "benchmarks.b2_bind",
    "B3": "benchmarks.b3_upload",
    "B4": "benchmarks.b4_web",
    "B5": "benchmarks.b5_sweep",
    "B6": "benchmarks.b6_simulate",
    "B7": "benchmarks.b7_scaleout",
}


def main(argv: list[str]) -> int:
    # Wide enough for the table when the output is a file or a pipe (make, CI logs).
    console = Console() if sys.stdout.isatty() else Console(width=120)
    wanted = [a.upper() for a in argv] or list(BENCHMARKS)
    unknown = [w for w in wanted if w not in BENCHMARKS]
    if unknown:
        console.print(
            f"[red]unknown benchmark(s): {', '.join(unknown)}[/] (known: {', '.join(BENCHMARKS)})"
        )
        return 2
    results: list[Result] = []
    failed: list[str] = []
    for bid in wanted:
        module = importlib.import_module(BENCHMARKS[bid])
        console.print(f"[bold]{bid}[/]: {module.NAME} ...", highlight=False)
        start = time.perf_counter()
        load_before = loadavg()
        try:
            result: Result = module.run()
        except Exception:
            console.print(f"[red]{bid} failed to run:[/]\n{traceback.format_exc()}")
            failed.append(bid)
            continue
        console.print(f"  done in {time.perf_counter() - start:.1f}s", highlight=False)
        # The machine's load around the figures: on a shared machine wall-clock times are noisy.
        result.detail.setdefault("loadavg_before", load_before)
        result.detail.setdefault("loadavg", loadavg())
        save(result)
        results.append(result)
    if results:
        print_table(results, console)
        met = sum(r.passed for r in results)
        console.print(
            f"{met}/{len(results)} targets met; results merged into {RESULTS}", highlight=False
        )
    if failed:
        console.print(f"[red]failed to run: {', '.join(failed)}[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
