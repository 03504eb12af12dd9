"""B3: a 1 GiB upload through `svqm.evidence.storage.BlobStore.put` against hashing the same file.

Input: a CSV file of 1 GiB of rows plus a header line (`id,name,value`, then 32-byte rows whose
numbers differ on every row: the id is the chunk and row number), written in 1 MiB chunks to a
temporary directory and fsynced before anything is timed, so its writeback overlaps nothing.
Its SHA-256 is computed while it is written, to check what `put` stores. SVQM_B3_MIB runs a
smaller file (the result says which size ran).

Measured: `BlobStore(root, max_bytes=<size + 1 MiB>, ...).put(open(file, "rb"))`: the streamed
copy into root/tmp with SHA-256, the text check and the size cap, the background and final
fsync, content-type detection (magic numbers; text decided during the copy) and the hard link
into root/blobs.

Baseline (the limit): `hashlib.sha256` over the same file, read with `readinto` into one reused
buffer of put's own chunk size. A store named by the SHA-256 of every byte cannot finish before
that hash has read and digested every byte; put must also write them. For information, also
`shutil.copyfile` of the same file (sendfile inside the kernel: no hash, no user-space copy) and
the same file read and written in put's chunks with an fsync, hashing nothing, and put's own text
check (`TextScan`) alone over the file: with both cores free put's hash, check and write
overlap, with them busy the floor is the CPU of the three summed.

Each side runs REPEATS times, interleaved (hash, copy, put, ...), after `os.sync()` each time;
the copy and the blob are deleted after each run so every run does the same work. The best of
each side is compared, which takes the page cache's warm-up out of the figures. Wall time is the
figure (put overlaps its work on threads); the CPU time of each (getrusage, all threads) is
recorded beside it, since on a shared machine CPU time is the steadier of the two.

Target: put / hash <= 1.25 (wall time). Memory (target <= 64 MiB): peak RSS growth of the process
while `put` runs: VmHWM after minus VmRSS before, with VmHWM reset first by writing "5" to
/proc/self/clear_refs; where that is not allowed, the peak of VmRSS sampled by a thread every
10 ms. The worse of the runs counts.

Also recorded: how long each put spent in `detect_type` and in `os.fsync`, timed by wrapping
both (a function call each, nothing more), the rest being the read, hash, scan, write and link.
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

from benchmarks.report import REPO, Check, Result, cpu_seconds
from svqm.evidence import storage
from svqm.evidence.filetypes import CSV, TextScan
from svqm.evidence.storage import BlobStore

ID = "B3"
TARGET = 1.25  # put time / hash time, at most
MEMORY_TARGET = 64  # MiB of peak RSS growth during put
MIB = 1 << 20
CHUNK = MIB
CHUNKS = int(os.environ.get("SVQM_B3_MIB", "1024"))  # 1 GiB of rows by default
REPEATS = 3
NAME = f"{CHUNKS} MiB upload via BlobStore.put vs SHA-256 of the file"
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


def _hash_once(src: Path, sha256: str) -> tuple[float, float]:
    """SHA-256 of the file in put's chunk size: wall and CPU seconds."""
    os.sync()
    gc.collect()
    buf = bytearray(storage._CHUNK_SIZE)
    view = memoryview(buf)
    cpu = cpu_seconds()
    start = time.perf_counter()
    digest = hashlib.sha256()
    with open(src, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            digest.update(view[:n])
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    if digest.hexdigest() != sha256:
        raise RuntimeError("B3 baseline hash is not the file's")
    return seconds, cpu


def _scan_once(src: Path) -> float:
    """put's text check alone (strict UTF-8, no control bytes) over the file: CPU seconds."""
    os.sync()
    buf = bytearray(storage._CHUNK_SIZE)
    view = memoryview(buf)
    scan = TextScan()
    cpu = cpu_seconds()
    with open(src, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            scan.feed(buf if n == len(buf) else view[:n])
    cpu = cpu_seconds() - cpu
    if scan.verdict() != CSV:
        raise RuntimeError("B3's text scan did not find the CSV put finds")
    return cpu


def _write_once(src: Path, dst: Path) -> tuple[float, float]:
    """The same file read and written in put's chunks with a final fsync, hashing nothing."""
    os.sync()
    buf = bytearray(storage._CHUNK_SIZE)
    view = memoryview(buf)
    cpu = cpu_seconds()
    start = time.perf_counter()
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with open(src, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                storage._write_all(fd, view[:n])
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    if dst.stat().st_size != src.stat().st_size:
        raise RuntimeError("B3 read-and-write copy is the wrong size")
    dst.unlink()
    return seconds, cpu


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
) -> tuple[float, float, float, dict[str, float]]:
    """One timed put; returns wall and CPU seconds, peak RSS growth in MiB, stage timings."""
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
        cpu = cpu_seconds()
        start = time.perf_counter()
        blob = store.put(stream)
        seconds = time.perf_counter() - start
        cpu = cpu_seconds() - cpu
        peak_kib = _status_kib("VmHWM") if sampler is None else sampler.stop()
    if blob.sha256 != sha256 or blob.size != size or blob.content_type != CSV or not blob.created:
        raise RuntimeError(
            f"B3 put did not store what it was given: {blob.sha256} {blob.size} "
            f"{blob.content_type} created={blob.created} (expected {sha256} {size} {CSV})"
        )
    if blob.path.stat().st_size != size or store.leftover_temp_files():
        raise RuntimeError("B3 put left the wrong blob or a staged file behind")
    store.delete(blob.sha256)
    return seconds, cpu, (peak_kib - before_kib) / 1024, stages.seconds


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

    hash_runs: list[float] = []
    hash_cpu_runs: list[float] = []
    copy_runs: list[float] = []
    write_runs: list[float] = []
    write_cpu_runs: list[float] = []
    scan_cpu_runs: list[float] = []
    put_runs: list[float] = []
    put_cpu_runs: list[float] = []
    growth_runs: list[float] = []
    stage_runs: list[dict[str, float]] = []
    for i in range(REPEATS):
        seconds, cpu = _hash_once(src, sha256)
        hash_runs.append(seconds)
        hash_cpu_runs.append(cpu)
        copy_runs.append(_copy_once(src, tmp / f"copy-{i}.csv"))
        scan_cpu_runs.append(_scan_once(src))
        seconds, cpu = _write_once(src, tmp / f"write-{i}.csv")
        write_runs.append(seconds)
        write_cpu_runs.append(cpu)
        seconds, cpu, growth, stages = _put_once(store, src, size, sha256, hwm)
        put_runs.append(seconds)
        put_cpu_runs.append(cpu)
        growth_runs.append(growth)
        stage_runs.append(stages)

    hashed = min(hash_runs)
    copy = min(copy_runs)
    put = min(put_runs)
    best = stage_runs[put_runs.index(put)]
    detect = best.get("detect_type", 0.0)
    fsync = best.get("fsync", 0.0)
    growth = max(growth_runs)
    mib = size / MIB
    floor_cpu = min(hash_cpu_runs) + min(write_cpu_runs)
    scan_cpu = min(scan_cpu_runs)
    # Put must hash, scan and read+write every byte: on this machine's 2 cores its wall time
    # cannot be less than the hash alone, nor than half the three summed.
    must = floor_cpu + scan_cpu
    least = max(min(hash_cpu_runs), must / 2) / min(hash_cpu_runs)
    floor = (
        f"hashing alone used {min(hash_cpu_runs):.2f} s of CPU, put's text check alone "
        f"{scan_cpu:.2f} s and reading+writing alone {min(write_cpu_runs):.2f} s: "
        f"{must:.2f} s of work that only overlaps on free cores (with both free, put can "
        f"reach {least:.2f}x the hash at best); put used {min(put_cpu_runs):.2f} s of CPU "
        f"({min(put_cpu_runs) / must:.2f}x that sum)"
    )
    return Result(
        id=ID,
        name=NAME,
        unit="x the hash",
        measured={
            "put s": put,
            "put MiB/s": mib / put,
            "put CPU s": min(put_cpu_runs),
            "of which detect_type s": detect,
            "of which fsync s": fsync,
            "peak RSS growth MiB": growth,
        },
        baseline={
            "sha256 s": hashed,
            "sha256 MiB/s": mib / hashed,
            "sha256 CPU s": min(hash_cpu_runs),
            "copyfile s": copy,
            "read+write+fsync s": min(write_runs),
            "read+write+fsync CPU s": min(write_cpu_runs),
            "text check CPU s": scan_cpu,
        },
        ratio=put / hashed,
        target=TARGET,
        checks=[Check("peak RSS growth during put", growth, MEMORY_TARGET, "MiB")],
        floor=floor,
        detail={
            "file_bytes": size,
            "file": "CSV, header + 32-byte rows, written in 1 MiB chunks",
            "chunk_bytes": storage._CHUNK_SIZE,
            "work_dir_parent": str(tmp.parent),
            "repeats": REPEATS,
            "sha256_runs_s": hash_runs,
            "sha256_cpu_runs_s": hash_cpu_runs,
            "copyfile_runs_s": copy_runs,
            "put_runs_s": put_runs,
            "put_cpu_runs_s": put_cpu_runs,
            "cpu_ratio": min(put_cpu_runs) / min(hash_cpu_runs),
            "copyfile_ratio": put / copy,
            "write_runs_s": write_runs,
            "write_cpu_runs_s": write_cpu_runs,
            # With both cores free, hashing and writing overlap: put can approach the hash alone.
            # With the cores busy they cannot: the floor is then the CPU of both together.
            "cpu_floor_s (sha256 CPU + read+write CPU)": min(hash_cpu_runs) + min(write_cpu_runs),
            "text_check_cpu_runs_s": scan_cpu_runs,
            "least_ratio_two_free_cores": least,
            "put_stage_runs_s": stage_runs,
            "put_rest_s (read+hash+scan+write+link)": put - detect - fsync,
            "rss_growth_runs_mib": growth_runs,
            "rss_method": "VmHWM reset via clear_refs" if hwm else "VmRSS sampled every 10 ms",
            "generate_seconds": generate_seconds,
            "ratio_meaning": "put wall time / SHA-256 wall time over the same file, same chunks",
        },
    )
