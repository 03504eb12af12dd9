"""B3: a 1 GiB upload through `svqm.evidence.storage.BlobStore.put`, its memory and its speed.

Input: a CSV file of 1 GiB of rows plus a header line (`id,name,value`, then 32-byte rows whose
numbers differ on every row: the id is the chunk and row number), written in 1 MiB chunks to a
temporary directory and fsynced before anything is timed, so its writeback overlaps nothing.
Its SHA-256 is computed while it is written, to check what `put` stores.

Measured: `BlobStore(root, max_bytes=<size + 1 MiB>, ...).put(open(file, "rb"))`: the streamed
copy into root/tmp with SHA-256, the text check and the size cap (each on its own thread), the
background and final fsync, content-type detection (magic numbers; text decided during the copy)
and the hard link into root/blobs.

Baseline: `shutil.copyfile` of the same file to a new path in the same directory (sendfile on
Linux, no fsync).

Each side runs twice, interleaved (copy, put, copy, put), after `os.sync()` each time; the copy
and the blob are deleted after each run so every run does the same work. The best of each side
is compared, which takes the page cache's warm-up out of the figures.

Speed (target >= 0.5, higher is better): copy time / put time, i.e. put's throughput as a share
of copyfile's.

Memory (target <= 64 MiB): peak RSS growth of the process while `put` runs: VmHWM after minus
VmRSS before, with VmHWM reset first by writing "5" to /proc/self/clear_refs; where that is not
allowed, the peak of VmRSS sampled by a thread every 10 ms. The worse of the two runs counts.

Also recorded, for information: how long each put spent in `detect_type` and in `os.fsync`,
timed by wrapping both (a function call each, nothing more), the rest being the read, hash,
write and link.
"""

from __future__ import annotations

import gc
import hashlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from benchmarks.report import REPO, Check, Result
from svqm.evidence import storage
from svqm.evidence.filetypes import CSV
from svqm.evidence.storage import BlobStore

ID = "B3"
NAME = "1 GiB upload via BlobStore.put"
TARGET = 0.5  # put throughput / copyfile throughput, at least
MEMORY_TARGET = 64  # MiB of peak RSS growth during put
MIB = 1 << 20
CHUNK = MIB
CHUNKS = 1024  # 1 GiB of rows
REPEATS = 2
HEADER = b"id,name,value\n"
ROW_BYTES = 32
_TAG = b"KKKKKK"  # replaced by the chunk number in each chunk
# Free space wanted for the source, one copy or blob at a time, and some headroom.
NEEDED_FREE = 3 * CHUNKS * CHUNK
SAMPLE_SECONDS = 0.01


def _template() -> bytes:
    """1 MiB of rows; each row's id and value carry the chunk number in place of _TAG."""
    rows = b"".join(
        b"%s%05d,name%03d,%05d%s\n" % (_TAG, j, j % 997, (j * 7919) % 100_000, _TAG)
        for j in range(CHUNK // ROW_BYTES)
    )
    assert len(rows) == CHUNK
    return rows


def _write_csv(path: Path) -> tuple[int, str]:
    """Write the input in 1 MiB chunks and fsync it; return its size and SHA-256."""
    template = _template()
    digest = hashlib.sha256(HEADER)
    size = len(HEADER)
    with open(path, "wb") as f:
        f.write(HEADER)
        for k in range(CHUNKS):
            chunk = template.replace(_TAG, b"%06d" % k)
            digest.update(chunk)
            f.write(chunk)
            size += len(chunk)
        f.flush()
        os.fsync(f.fileno())
    return size, digest.hexdigest()


@contextmanager
def _work_dir() -> Iterator[Path]:
    """A temporary directory with room for 3 GiB: in the system temp dir, else under var/bench."""
    candidates = [Path(tempfile.gettempdir()), REPO / "var" / "bench" / "tmp"]
    for parent in candidates:
        parent.mkdir(parents=True, exist_ok=True)
        if shutil.disk_usage(parent).free >= NEEDED_FREE:
            break
    else:
        raise RuntimeError(
            f"B3 needs {NEEDED_FREE / (1 << 30):.0f} GiB free in one of "
            f"{', '.join(str(p) for p in candidates)}"
        )
    path = Path(tempfile.mkdtemp(prefix="svqm-bench-b3-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_hwm() -> bool:
    """Reset VmHWM to the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


class _RssSampler(threading.Thread):
    """The highest VmRSS seen, sampled every SAMPLE_SECONDS until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kib = _status_kib("VmRSS")
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(SAMPLE_SECONDS):
            self.peak_kib = max(self.peak_kib, _status_kib("VmRSS"))

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        self.peak_kib = max(self.peak_kib, _status_kib("VmRSS"))
        return self.peak_kib


class _StageTimer:
    """Seconds spent inside wrapped functions, by name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

        return timed


def _copy_once(src: Path, dst: Path) -> float:
    os.sync()
    start = time.perf_counter()
    shutil.copyfile(src, dst)
    seconds = time.perf_counter() - start
    if dst.stat().st_size != src.stat().st_size:
        raise RuntimeError("B3 baseline copy is the wrong size")
    dst.unlink()
    return seconds


def _put_once(
    store: BlobStore, src: Path, size: int, sha256: str, hwm: bool
) -> tuple[float, float, dict[str, float]]:
    """One timed put; returns seconds, peak RSS growth in MiB and the stage timings."""
    stages = _StageTimer()
    os.sync()
    gc.collect()
    with (
        mock.patch.object(storage, "detect_type", stages.wrap("detect_type", storage.detect_type)),
        mock.patch.object(storage.os, "fsync", stages.wrap("fsync", os.fsync)),
        open(src, "rb") as stream,
    ):
        before_kib = _status_kib("VmRSS")
        sampler = None
        if hwm:
            _reset_hwm()
        else:
            sampler = _RssSampler()
            sampler.start()
        start = time.perf_counter()
        blob = store.put(stream)
        seconds = time.perf_counter() - start
        peak_kib = _status_kib("VmHWM") if sampler is None else sampler.stop()
    if blob.sha256 != sha256 or blob.size != size or blob.content_type != CSV or not blob.created:
        raise RuntimeError(
            f"B3 put did not store what it was given: {blob.sha256} {blob.size} "
            f"{blob.content_type} created={blob.created} (expected {sha256} {size} {CSV})"
        )
    if blob.path.stat().st_size != size or store.leftover_temp_files():
        raise RuntimeError("B3 put left the wrong blob or a staged file behind")
    store.delete(blob.sha256)
    return seconds, (peak_kib - before_kib) / 1024, stages.seconds


def run() -> Result:
    with _work_dir() as tmp:
        return _run(tmp)


def _run(tmp: Path) -> Result:
    src = tmp / "upload.csv"
    start = time.perf_counter()
    size, sha256 = _write_csv(src)
    generate_seconds = time.perf_counter() - start
    store = BlobStore(
        tmp / "store", max_bytes=size + MIB, max_unpacked_bytes=200 * MIB, max_entries=2000
    )
    hwm = _reset_hwm()

    copy_runs: list[float] = []
    put_runs: list[float] = []
    growth_runs: list[float] = []
    stage_runs: list[dict[str, float]] = []
    for i in range(REPEATS):
        copy_runs.append(_copy_once(src, tmp / f"copy-{i}.csv"))
        seconds, growth, stages = _put_once(store, src, size, sha256, hwm)
        put_runs.append(seconds)
        growth_runs.append(growth)
        stage_runs.append(stages)

    copy = min(copy_runs)
    put = min(put_runs)
    best = stage_runs[put_runs.index(put)]
    detect = best.get("detect_type", 0.0)
    fsync = best.get("fsync", 0.0)
    growth = max(growth_runs)
    mib = size / MIB
    return Result(
        id=ID,
        name=NAME,
        unit="MiB/s",
        measured={
            "put MiB/s": mib / put,
            "seconds": put,
            "of which detect_type s": detect,
            "of which fsync s": fsync,
            "peak RSS growth MiB": growth,
        },
        baseline={"copyfile MiB/s": mib / copy, "seconds": copy},
        ratio=copy / put,
        target=TARGET,
        higher_is_better=True,
        checks=[Check("peak RSS growth during put", growth, MEMORY_TARGET, "MiB")],
        detail={
            "file_bytes": size,
            "file": "CSV, header + 32-byte rows, written in 1 MiB chunks",
            "work_dir_parent": str(tmp.parent),
            "repeats": REPEATS,
            "copyfile_runs_s": copy_runs,
            "put_runs_s": put_runs,
            "put_stage_runs_s": stage_runs,
            "put_rest_s (read+hash+write+link)": put - detect - fsync,
            "rss_growth_runs_mib": growth_runs,
            "rss_method": "VmHWM reset via clear_refs" if hwm else "VmRSS sampled every 10 ms",
            "generate_seconds": generate_seconds,
            "ratio_meaning": "copyfile time / put time (put throughput as a share of copyfile's)",
        },
    )
