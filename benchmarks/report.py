"""Shared reporting: a benchmark's `Result`, the rich table, and `var/bench/results.json`."""

from __future__ import annotations

import json
import os
import resource
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "var" / "bench" / "results.json"


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages: how busy the machine was around a figure."""
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return []


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and all its threads so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _meets(value: float, target: float, higher_is_better: bool) -> bool:
    return value >= target if higher_is_better else value <= target


def _bound(higher_is_better: bool) -> str:
    return ">=" if higher_is_better else "<="


@dataclass
class Check:
    """A secondary target a result must also meet (e.g. memory per application).

    Passes when `value <= target`, or `value >= target` with `higher_is_better`.
    """

    name: str
    value: float
    target: float
    unit: str
    higher_is_better: bool = False

    @property
    def passed(self) -> bool:
        return _meets(self.value, self.target, self.higher_is_better)


@dataclass
class Result:
    """One benchmark's outcome: the measured figure(s) against a baseline timed in the same run.

    `ratio` is measured time / baseline time; the result passes when `ratio <= target` and every
    extra check is within its own target. With `higher_is_better` the ratio is one where more is
    better (e.g. baseline time / measured time, a relative throughput) and passes when
    `ratio >= target`. A figure with no target (`target=None`, e.g. a rate to watch over time)
    is reported in `unit` and always passes: running it is the test.
    """

    id: str
    name: str
    measured: dict[str, float]
    baseline: dict[str, float]
    ratio: float
    target: float | None
    unit: str
    checks: list[Check] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    higher_is_better: bool = False
    # The measured floor behind the figure, printed when the target is missed (why it is).
    floor: str = ""
    # The figure is a rate in `unit` (e.g. events/s), not a ratio against a baseline.
    absolute: bool = False

    @property
    def ratio_passed(self) -> bool:
        if self.target is None:
            return True
        return _meets(self.ratio, self.target, self.higher_is_better)

    @property
    def passed(self) -> bool:
        return self.ratio_passed and all(c.passed for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "ratio": round(self.ratio, 4),
            "target": self.target,
            "passed": self.passed,
            "detail": {
                "name": self.name,
                "unit": self.unit,
                "measured": self.measured,
                "baseline": self.baseline,
                "higher_is_better": self.higher_is_better,
                "checks": [
                    {
                        "name": c.name,
                        "value": c.value,
                        "target": c.target,
                        "unit": c.unit,
                        "higher_is_better": c.higher_is_better,
                        "passed": c.passed,
                    }
                    for c in self.checks
                ],
                "floor": self.floor,
                **self.detail,
            },
        }


def _figures(figures: dict[str, float]) -> str:
    return "\n".join(f"{k}: {_num(v)}" for k, v in figures.items())


def _num(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.3f}".rstrip("0").rstrip(".") if value else "0"


def _verdict(ok: bool) -> str:
    return "[bold green]MET[/]" if ok else "[bold red]MISSED[/]"


def _is_ratio(r: Result) -> bool:
    return not r.absolute


def _ratio_text(r: Result) -> str:
    return f"{r.ratio:.2f}x" if _is_ratio(r) else f"{_num(r.ratio)} {r.unit}"


def _target_text(r: Result) -> str:
    suffix = "x" if _is_ratio(r) else f" {r.unit}"
    return f"{_bound(r.higher_is_better)} {r.target:g}{suffix}"


def print_table(results: list[Result], console: Console | None = None) -> None:
    """One row per result (and one per extra check), then a line per benchmark saying met/missed."""
    console = console or Console()
    table = Table(title="svqm benchmarks", show_lines=True)
    for col in ("ID", "Benchmark", "Measured", "Baseline", "Ratio", "Target", "Result"):
        table.add_column(col, overflow="fold")
    for r in results:
        table.add_row(
            r.id,
            r.name,
            _figures(r.measured),
            _figures(r.baseline),
            _ratio_text(r) if r.target is not None else f"{_num(r.ratio)} {r.unit}",
            _target_text(r) if r.target is not None else "none",
            _verdict(r.ratio_passed) if r.target is not None else "[bold]RAN[/]",
        )
        for c in r.checks:
            table.add_row(
                "",
                c.name,
                f"{_num(c.value)} {c.unit}",
                "-",
                "-",
                f"{_bound(c.higher_is_better)} {c.target:g} {c.unit}",
                _verdict(c.passed),
            )
    console.print(table)
    for r in results:
        extra = "".join(
            f"; {c.name} {_num(c.value)} {c.unit} (target {_bound(c.higher_is_better)} {c.target:g})"
            for c in r.checks
        )
        if r.target is None:
            figure = f"{_num(r.ratio)} {r.unit}, no target"
        else:
            figure = f"{_ratio_text(r)}, target {_target_text(r)}"
        verdict = "target met" if r.passed else "TARGET MISSED"
        load = r.detail.get("loadavg")
        if load:
            extra += f"; load average {' '.join(f'{x:.2f}' for x in load)}"
        if r.target is None and not r.checks:
            verdict = "ran"
        console.print(
            f"{r.id}: {verdict} ({figure}{extra})",
            style="green" if r.passed else "red",
            highlight=False,
        )
        if r.floor and not r.passed:
            console.print(f"    measured floor: {r.floor}", highlight=False)


def save(result: Result, path: Path = RESULTS) -> None:
    """Merge the result into the JSON file, keeping every other benchmark id already there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text())
            if isinstance(loaded, dict):
                data = loaded
        except (OSError, ValueError):
            data = {}
    data[result.id] = result.to_json()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
