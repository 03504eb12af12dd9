"""The benchmarks' own honesty, on quick sizes: each checks the work it timed and times a floor.

These run `benchmarks.b3_upload` and `benchmarks.b5_sweep` small (SQLite only: the benchmarks
measure the SQLite file the product uses by default), so a change that breaks a benchmark, or
its baseline, fails here rather than at the next `make bench`.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from benchmarks import report


@pytest.fixture
def sized() -> Iterator[Callable[..., ModuleType]]:
    """A benchmark module loaded with its size variables set; put back at full size afterwards."""
    loaded: list[ModuleType] = []

    def load(name: str, **env: str) -> ModuleType:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in env.items():
                mp.setenv(key, value)
            module = importlib.reload(importlib.import_module(f"benchmarks.{name}"))
        loaded.append(module)
        return module

    yield load
    for module in loaded:
        importlib.reload(module)


def test_b1_baseline_writes_what_fire_writes(sized: Callable[..., ModuleType]) -> None:
    b1 = sized("b1_transitions", SVQM_B1_TRANSITIONS="200")
    result = b1.run()  # raises unless both sides end with the same deadline and outbox rows
    deadlines, still_open, outbox = result.detail["deadline_open_outbox_rows"]
    # Every transition tells the holder; each reinstatement opens three deadlines again.
    assert outbox == b1.WARMUP + 200
    assert deadlines > 0
    assert still_open == 0  # 300 steps over 100 awards: each ends suspended, its rows cancelled
    assert result.ratio == pytest.approx(result.measured["seconds"] / result.baseline["seconds"])
    assert result.baseline["CPU ms/unit"] > 0


def test_b3_times_put_against_the_hash_of_the_same_file(
    sized: Callable[..., ModuleType],
) -> None:
    b3 = sized("b3_upload", SVQM_B3_MIB="8")
    result = b3.run()
    assert result.detail["file_bytes"] == 8 * (1 << 20) + len(b3.HEADER)
    assert result.ratio == pytest.approx(result.measured["put s"] / result.baseline["sha256 s"])
    assert result.baseline["sha256 s"] > 0
    assert result.baseline["read+write+fsync s"] > 0
    assert result.target == 1.25
    assert not result.higher_is_better
    assert "hashing alone used" in result.floor
    assert len(result.detail["sha256_runs_s"]) == len(result.detail["put_runs_s"]) == b3.REPEATS


def test_b5_times_the_sweep_against_raw_sqlite3(sized: Callable[..., ModuleType]) -> None:
    b5 = sized("b5_sweep", SVQM_B5_DIVIDE="100")
    assert (b5.BIG, b5.SMALL, b5.DUE) == (2000, 200, 20)
    result = b5.run()  # raises if the sweep or the raw baseline did not do every due row
    assert result.ratio == pytest.approx(
        result.measured["sweep 2k ms"] / result.baseline["raw sqlite3 2k ms"]
    )
    assert result.baseline["raw sqlite3 2k CPU ms"] > 0
    assert result.checks[0].name == "sweep(2k) / sweep(0.2k)"
    assert "raw sqlite3 doing the same reads and writes" in result.floor


def test_results_carry_the_load_and_the_floor(tmp_path: Path) -> None:
    result = report.Result(
        id="BX",
        name="x",
        measured={"a": 2.0},
        baseline={"b": 1.0},
        ratio=2.0,
        target=1.5,
        unit="x",
        floor="the floor",
        detail={"loadavg": report.loadavg()},
    )
    path = tmp_path / "results.json"
    report.save(result, path)
    saved = json.loads(path.read_text())["BX"]
    assert saved["passed"] is False
    assert saved["detail"]["floor"] == "the floor"
    assert len(saved["detail"]["loadavg"]) == 3
    assert report.cpu_seconds() > 0


def test_b4_serves_each_page_beside_its_floors(sized: Callable[..., ModuleType]) -> None:
    b4 = sized("b4_web", SVQM_B4_SECONDS="1", SVQM_B4_ROWS="400")
    # Raises unless every page and floor answered 200 first, and each floor (bare, guarded and
    # FastAPI) answered its page's body byte for byte (the nonce, and a visitor's form token,
    # masked), and each FastAPI floor refused (or sent to sign in) a request without the
    # credential as its page did.
    result = b4.run()
    sizes = result.detail["bytes"]
    names = {"queue", "case", "api", "task list", "organisation"}
    assert set(result.detail["ratios"]) == names
    assert set(result.detail["guarded_ratios (page / guarded floor)"]) == names
    assert set(result.detail["fastapi_ratios (page / fastapi floor)"]) == names
    assert set(result.detail["fastapi_floor_ratios (fastapi floor / floor)"]) == names
    for name in names:
        # Masking replaces values of one length: the same page, the same number of bytes.
        assert (
            sizes[name]
            == sizes[f"{name} floor"]
            == sizes[f"{name} guarded floor"]
            == sizes[f"{name} fastapi floor"]
        )
        assert result.baseline[f"{name} floor req/s"] > 0
        assert result.baseline[f"{name} guarded floor req/s"] > 0
        assert result.measured[f"{name} CPU ms/req"] > 0
        # Each page's guarded floor through FastAPI and the page's own dependencies answered
        # every timed request (wrk counts a redirect to sign in or a refusal as an error) and
        # is reported: its figures, and both its ratios in the floor's text.
        timed = result.detail["wrk"][f"{name} fastapi floor"]
        assert timed["errors"] == 0
        assert result.baseline[f"{name} fastapi floor req/s"] > 0
        assert result.baseline[f"{name} fastapi floor CPU ms/req"] > 0
        assert result.measured[f"{name} / fastapi floor"] > 0
        assert result.measured[f"{name} fastapi floor / floor"] > 0
        assert b4.FASTAPI_FLOORS[name] in result.floor
    assert result.ratio == pytest.approx(min(result.detail["ratios"].values()), abs=1e-3)
    # The public page has its charts (one a pledge), on the page and its floors alike.
    assert sizes["organisation"] > 20_000
    # What a missed target prints: where the page's time goes, against its guarded floor.
    assert "page / guarded floor" in result.floor
    assert "page / fastapi floor and fastapi floor / floor" in result.floor


def test_b4_refuses_a_floor_that_is_not_its_page() -> None:
    from benchmarks import b4_web

    page = (
        b'<script nonce="abc">x</script><input type="hidden" name="csrf_token" value="t1">'
        b"<td>Org 1</td>"
    )
    other_nonce = page.replace(b'nonce="abc"', b'nonce="xyz"')
    b4_web.same_page(page, other_nonce, public=False, what="floor")  # the nonce must differ
    other_token = other_nonce.replace(b'value="t1"', b'value="t2"')
    b4_web.same_page(page, other_token, public=True, what="floor")  # a new visitor's token
    with pytest.raises(RuntimeError, match="does not answer its page's bytes"):
        b4_web.same_page(page, other_token, public=False, what="floor")  # a session's is fixed
    with pytest.raises(RuntimeError, match="first difference at byte"):
        b4_web.same_page(page, page.replace(b"Org 1", b"Org 2"), public=True, what="floor")
    with pytest.raises(RuntimeError):
        b4_web.same_page(page, page[:-5], public=True, what="floor")  # renders less


def test_b4_reports_a_p50_of_zero_without_dividing_by_it() -> None:
    from benchmarks import b4_web

    assert b4_web.spread(2.0, 5.0) == 2.5
    assert b4_web.spread(0.0, 3.0) == float("inf")
    assert b4_web.spread(0.0, 0.0) == 1.0
    run = {"requests_per_s": 100.0, "cpu_ms_per_request": 1.0, "errors": 0.0}
    figures = {"healthz": {**run, "p50_ms": 1.0, "p99_ms": 2.0}}
    for name in b4_web.PAGES:
        for kind in ("", " floor", " guarded floor", " fastapi floor"):
            figures[name + kind] = {**run, "p50_ms": 0.0, "p99_ms": 1.0}
    result = b4_web._result(figures, {})
    spreads = [c for c in result.checks if c.name.endswith("p99/p50")]
    assert len(spreads) == len(b4_web.PAGES)
    assert all(c.value == float("inf") and not c.passed for c in spreads)


def test_b4_says_what_a_missed_target_means() -> None:
    """A missed page whose FastAPI floor is itself under the target: the target is below what
    FastAPI with svqm's guards can do; one whose FastAPI floor is above: missed, by how much."""
    from benchmarks import b4_web

    def run(rate: float, cpu: float) -> dict[str, float]:
        return {
            "requests_per_s": rate,
            "cpu_ms_per_request": cpu,
            "errors": 0.0,
            "p50_ms": 1.0,
            "p99_ms": 2.0,
        }

    figures = {"healthz": run(5000, 0.4)}
    for name in b4_web.PAGES:
        figures[f"{name} floor"] = run(1000, 1.0)
        figures[f"{name} guarded floor"] = run(900, 1.1)
        figures[f"{name} fastapi floor"] = run(700, 1.4)  # 0.7x the floor
        figures[name] = run(600, 1.6)  # met: 0.6x
    figures["api fastapi floor"] = run(200, 5.0)  # 0.2x the floor: under the target itself
    figures["api"] = run(100, 10.0)
    figures["case"] = run(280, 3.5)  # 0.28x the floor, 0.4x its fastapi floor
    # Under the target in throughput, within it in CPU a request (a busy machine): both said.
    figures["task list fastapi floor"] = run(400, 1.6)
    figures["task list"] = run(200, 4.0)
    result = b4_web._result(figures, {})
    assert result.measured["api fastapi floor / floor"] == pytest.approx(0.2)
    assert "task list: missed (0.20x its floor), and the target is below" in result.floor
    assert "by CPU a request, though, the fastapi floor costs 1.60x the floor's (0.62x" in (
        result.floor
    )
    assert result.floor.count("by CPU a request, though") == 1
    assert result.measured["case / fastapi floor"] == pytest.approx(0.4)
    assert (
        "api: missed (0.10x its floor), and the target is below the least FastAPI" in result.floor
    )
    assert "(measured)" in result.floor
    # The case page: 0.5 / 0.7 = 0.71x its fastapi floor would meet the target, 1.79x more.
    assert "case: missed (0.28x its floor) against a fastapi floor that reaches 0.70x" in (
        result.floor
    )
    assert "0.71x would meet the target, 1.79x more throughput" in result.floor
    assert "queue: missed" not in result.floor  # met
    assert result.baseline["queue fastapi floor CPU ms/req"] == 1.4


def test_b6_counts_cpu_and_statements_per_event(sized: Callable[..., ModuleType]) -> None:
    b6 = sized("b6_simulate", SVQM_B6_ORGANISATIONS="4", SVQM_B6_YEARS="0.1")
    result = b6.run()
    assert result.absolute
    assert result.target == 1000
    assert result.measured["events"] > 0
    assert result.measured["SQL statements per event"] > 1  # every event goes through the services
    assert result.measured["events per CPU s"] > 0
    assert "SQL statements per event" in result.floor
    # The database's floor, measured in the same run: the run's own statements, replayed (and
    # checked to leave the same rows), each event's share of it below the event's whole cost.
    replayed = result.detail["replayed_statements"]
    assert 0 < replayed <= result.detail["sql_statements"]
    floor = result.measured["raw sqlite3 replay CPU ms per event"]
    assert 0 < floor < result.measured["CPU ms per event"]
    assert "replayed with raw sqlite3" in result.floor
    # The same statements through SQLAlchemy Core: more than the raw driver, less than the event.
    core = result.measured["SQLAlchemy Core replay CPU ms per event"]
    assert floor < core < result.measured["CPU ms per event"]
    assert "through SQLAlchemy Core" in result.floor


@pytest.mark.postgres
def test_b7_two_schedulers_deliver_each_message_once(sized: Callable[..., ModuleType]) -> None:
    server = os.environ.get("SVQM_TEST_POSTGRES_URL")
    if not server:
        pytest.skip("SVQM_TEST_POSTGRES_URL is not set (make test sets it)")
    sized("b4_web", SVQM_B4_ROWS="200")
    b7 = sized(
        "b7_scaleout",
        SVQM_B7_SECONDS="1",
        SVQM_B7_MESSAGES="60",
        SVQM_BENCH_POSTGRES_URL=server,
    )
    result = b7.run()
    mail = result.detail["mail"]
    assert mail["relay_received"] == mail["sent_rows"] == 60
    assert (mail["duplicates"], mail["lost"]) == (0, 0)
    assert sum(mail["split"]) == 60
    assert len(mail["split"]) == 2
    assert set(result.detail["ratios"]) == {"queue", "api"}
    # Both web workers served (each on its own socket): the CPU each used, and the machine's
    # busy cores with one worker, from which the printed ceiling is worked out.
    for page in ("queue", "api"):
        assert len(result.detail["two_workers"][page]["worker_cpu_s"]) == 2
        assert 0 < result.detail["one_worker"][page]["busy_cores"] <= 2
    assert "at most" in result.floor


def test_b6_times_a_run_with_nothing_of_its_own_attached_and_records_another(
    sized: Callable[..., ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recording each statement for the floors costs over a tenth of a run's CPU: it is done in
    a second run of the same simulation, never in the timed one."""
    b6 = sized("b6_simulate", SVQM_B6_ORGANISATIONS="3", SVQM_B6_YEARS="0.1")
    recorders: list[Any] = []
    recording: list[bool] = []

    class Recorder(b6._Recorder):  # type: ignore[misc, name-defined]
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            recorders.append(self)

    class Watched(b6.Simulation):  # type: ignore[misc, name-defined]
        def run(self, **kwargs: Any) -> Any:
            ran = super().run(**kwargs)
            # Whether a recorder held statements of this run when it ended.
            recording.append(any(r.recorded for r in recorders))
            return ran

    monkeypatch.setattr(b6, "_Recorder", Recorder)
    monkeypatch.setattr(b6, "Simulation", Watched)
    result = b6.run()
    assert recording == [False, True]  # the timed run first, with none; then the recorded one
    assert result.detail["replayed_statements"] > 0
