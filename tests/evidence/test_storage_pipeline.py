"""The upload pipeline behind BlobStore.put: reused buffers, threads, write-back, durability."""

from __future__ import annotations

import hashlib
import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from svqm.errors import UnsupportedFileType
from svqm.evidence import storage
from svqm.evidence.storage import BlobStore

MIB = 1 << 20
PDF = b"%PDF-1.4\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"


def make_store(root: Path, *, max_bytes: int = 25 * MIB) -> BlobStore:
    return BlobStore(root, max_bytes=max_bytes, max_unpacked_bytes=200 * MIB, max_entries=2000)


def assert_nothing_stored(store: BlobStore) -> None:
    blobs = store.root / "blobs"
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))
    assert store.leftover_temp_files() == []


class ShortReader(io.RawIOBase):
    """A file object whose readinto returns fewer bytes than asked, as pipes and sockets do."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._step = step
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._step, len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        self._step = self._step % 7919 + 4999
        return n


def csv_rows(size: int) -> bytes:
    rows = b"".join(b"%d,name %d,\xc3\xa9t\xc3\xa9 %d\n" % (i, i % 97, i * 31) for i in range(size))
    return b"id,name,value\n" + rows


def test_put_reuses_read_buffers_without_mixing_chunks(tmp_path: Path) -> None:
    data = csv_rows(200_000)
    store = make_store(tmp_path)
    for stream, chunk_size in [(io.BytesIO(data), 65536), (ShortReader(data, 3000), 8192)]:
        blob = store.put(stream, chunk_size=chunk_size)
        assert blob.sha256 == hashlib.sha256(data).hexdigest()
        assert blob.path.read_bytes() == data
        assert blob.content_type == "text/csv"
    assert store.leftover_temp_files() == []


def test_put_copies_chunks_a_caller_may_reuse(tmp_path: Path) -> None:
    data = csv_rows(5000)

    def reused_buffer() -> Iterator[bytearray]:
        buffer = bytearray(1000)
        for start in range(0, len(data), 1000):
            piece = data[start : start + 1000]
            buffer[: len(piece)] = piece
            yield buffer if len(piece) == 1000 else bytearray(piece)

    blob = make_store(tmp_path).put(reused_buffer())
    assert blob.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("late", [b"\x00", b"\xff"])
def test_put_checks_text_far_past_the_sample(tmp_path: Path, late: bytes) -> None:
    store = make_store(tmp_path)
    with pytest.raises(UnsupportedFileType):
        store.put(io.BytesIO(csv_rows(100_000) + late), chunk_size=MIB)
    assert_nothing_stored(store)


def test_put_fsyncs_the_file_before_publishing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_publish = storage.os.fsync, storage._publish

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    def publish(tmp: Path, final: Path) -> bool:
        events.append("publish")
        return real_publish(tmp, final)

    monkeypatch.setattr(storage.os, "fsync", fsync)
    monkeypatch.setattr(storage, "_publish", publish)
    make_store(tmp_path).put(io.BytesIO(PDF))
    # The file, then the link, then (inside _publish) its directory.
    assert events == ["fsync", "publish", "fsync"]


def test_put_writes_back_while_copying(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = storage.os.fdatasync

    def fdatasync(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(storage, "_WRITEBACK_EVERY", 64 * 1024)
    monkeypatch.setattr(storage.os, "fdatasync", fdatasync)
    blob = make_store(tmp_path).put(io.BytesIO(csv_rows(100_000)), chunk_size=16384)
    assert synced
    assert blob.content_type == "text/csv"


def test_put_raises_a_write_back_error_and_stores_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(storage, "_WRITEBACK_EVERY", 64 * 1024)
    monkeypatch.setattr(storage.os, "fdatasync", failing)
    store = make_store(tmp_path)
    with pytest.raises(OSError, match="Input/output"):
        store.put(io.BytesIO(csv_rows(100_000)), chunk_size=16384)
    assert_nothing_stored(store)


def test_put_raises_an_error_from_a_pipeline_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: object, chunk: object) -> None:
        raise RuntimeError("scan failed")

    monkeypatch.setattr(storage.TextScan, "feed", broken)
    store = make_store(tmp_path)
    with pytest.raises(RuntimeError, match="scan failed"):
        store.put(io.BytesIO(csv_rows(50_000)), chunk_size=4096)
    assert_nothing_stored(store)


def test_put_memory_is_bounded_for_file_objects(tmp_path: Path) -> None:
    pattern = (b"alpha,beta,gamma,delta,epsilon\n" * 300_000)[: 8 * MIB]

    class Generated(io.RawIOBase):
        def __init__(self, total: int) -> None:
            self.left = total

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            n = min(len(buffer), self.left)
            buffer[:n] = pattern[:n]
            self.left -= n
            return n

    store = make_store(tmp_path, max_bytes=200 * MIB)
    tracemalloc.start()
    try:
        blob = store.put(Generated(160 * MIB))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert blob.size == 160 * MIB
    assert blob.content_type == "text/csv"
    # The reused buffers, plus the small first ones (64 KiB doubling: less than one chunk in all)
    # while they are swapped for full-sized ones, plus slack.
    assert peak < (storage._IN_FLIGHT + 1) * storage._CHUNK_SIZE + 4 * MIB


def test_put_of_bytes_already_stored_does_not_wait_for_its_own_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store(tmp_path)
    first = store.put(io.BytesIO(PDF))
    synced: list[str] = []
    real_fsync = storage.os.fsync

    def fsync(fd: int) -> None:
        synced.append("directory" if Path(f"/proc/self/fd/{fd}").resolve().is_dir() else "file")
        real_fsync(fd)

    def publish(tmp: Path, final: Path) -> bool:
        raise AssertionError("a copy of stored bytes is never published")

    monkeypatch.setattr(storage.os, "fsync", fsync)
    monkeypatch.setattr(storage, "_publish", publish)
    again = store.put(io.BytesIO(PDF))
    # Only the blob's directory (in case its entry is not yet durable), never the staged copy.
    assert synced == ["directory"]
    assert (again.sha256, again.path, again.created) == (first.sha256, first.path, False)
    assert again.path.read_bytes() == PDF
    assert store.leftover_temp_files() == []
