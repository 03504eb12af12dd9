"""A content-addressed store of uploaded files on disk, named by their SHA-256."""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import re
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from svqm.errors import InvalidUpload, UploadTooLarge
from svqm.evidence.filetypes import TextScan, detect_type

MAX_FILENAME_CHARS = 200
# Longer "extensions" are just part of the name; they need not survive the cap.
_MAX_EXTENSION_CHARS = 16
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Bidirectional controls (e.g. U+202E) can make "gpj.exe" display as "exe.jpg".
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_BLOB_MODE = 0o640
# Large reads mean fewer system calls and hand-overs between threads; see _IN_FLIGHT for memory.
_CHUNK_SIZE = 8 << 20
_FIRST_BUFFER = 64 << 10
# Chunks being read, hashed or scanned at once: bounds the buffers to 3 x 8 MiB.
_IN_FLIGHT = 3
# Measured on B3: writing back as the copy goes leaves the final fsync ~1 ms instead of ~0.6 s.
_WRITEBACK_EVERY = 64 << 20
_DIR_MODE = 0o750

_Buffer = bytes | bytearray | memoryview
_Item = tuple[_Buffer, bytearray | None]


def sanitise_filename(name: str) -> str:
    """Return a display-safe version of a client's filename, or refuse it."""
    if "/" in name or "\\" in name or name.strip() == "..":
        raise InvalidUpload("the file name must not contain a path (/, \\ or ..)")
    for char in name:
        if unicodedata.category(char) == "Cc":
            raise InvalidUpload("the file name contains control characters")
        if char in _BIDI_CONTROLS:
            raise InvalidUpload("the file name contains text-direction control characters")
    cleaned = unicodedata.normalize("NFC", name)
    cleaned = "".join(c for c in cleaned if not unicodedata.category(c).startswith("C"))
    cleaned = re.sub(r"\s+", " ", cleaned).lstrip(". ").rstrip()
    if not cleaned:
        raise InvalidUpload("the file name is empty")
    if len(cleaned) > MAX_FILENAME_CHARS:
        stem, dot, ext = cleaned.rpartition(".")
        if dot and stem and 0 < len(ext) < _MAX_EXTENSION_CHARS:
            keep = MAX_FILENAME_CHARS - len(ext) - 1
            cleaned = f"{stem[:keep].rstrip()}.{ext}"
        else:
            cleaned = cleaned[:MAX_FILENAME_CHARS].rstrip()
    return cleaned


@dataclass(frozen=True)
class StoredBlob:
    """Where an upload's bytes now live; created=False when the same bytes were already stored."""

    sha256: str
    size: int
    content_type: str
    path: Path
    created: bool


class BlobStore:
    """Files under root/blobs/<sha[:2]>/<sha>; uploads are staged in root/tmp."""

    def __init__(
        self, root: Path, *, max_bytes: int, max_unpacked_bytes: int, max_entries: int
    ) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.max_unpacked_bytes = max_unpacked_bytes
        self.max_entries = max_entries
        self._blobs = self.root / "blobs"
        self._tmp = self.root / "tmp"

    def put(
        self, stream: BinaryIO | Iterable[bytes], *, chunk_size: int = _CHUNK_SIZE
    ) -> StoredBlob:
        """Stream, size-check, type-check and store an upload; never leaves a temp file behind."""
        if isinstance(stream, bytes | bytearray | memoryview):
            raise TypeError("put() takes a file object or an iterable of byte chunks, not bytes")
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self._tmp.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        # Staged beside the blobs so publishing is a same-filesystem rename/link, never a copy.
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="upload-", suffix=".part")
        tmp = Path(tmp_name)
        try:
            try:
                text = TextScan()
                sha256, size = _copy(stream, fd, chunk_size, self.max_bytes, text)
                if size == 0:
                    raise InvalidUpload("the file is empty")
                content_type = detect_type(
                    tmp,
                    max_unpacked_bytes=self.max_unpacked_bytes,
                    max_entries=self.max_entries,
                    text=text,
                )
                final = self.path_for(sha256)
                if final.is_file():
                    # The same bytes are stored already, published only once durable: this
                    # copy is dropped unpublished, so waiting for it to reach the disk would
                    # buy nothing. Its directory is synced (at once when that is durable too),
                    # in case the upload that published it has not yet synced its entry.
                    _fsync_dir(final.parent)
                    return StoredBlob(sha256, size, content_type, final, False)
                # Durable before it is published (a refused file is not worth the wait); most
                # pages were written back during the copy.
                os.fsync(fd)
            finally:
                os.close(fd)
            final.parent.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
            os.chmod(tmp, _BLOB_MODE)
            created = _publish(tmp, final)
            return StoredBlob(sha256, size, content_type, final, created)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def open(self, sha256: str) -> BinaryIO:
        """Open a stored blob for reading; FileNotFoundError if it is not stored."""
        return open(self.path_for(sha256), "rb")

    def path_for(self, sha256: str) -> Path:
        """The path a blob with this hash has (or would have)."""
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise InvalidUpload("a file id must be 64 lowercase hexadecimal characters")
        return self._blobs / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        """Whether a blob with this hash is stored."""
        return self.path_for(sha256).is_file()

    def delete(self, sha256: str) -> None:
        """Remove a blob; only to roll back one this caller created (created=True)."""
        self.path_for(sha256).unlink(missing_ok=True)

    def blob_files(self) -> list[Path]:
        """Every stored blob (files named by a SHA-256 under root/blobs)."""
        if not self._blobs.is_dir():
            return []
        return sorted(
            p for p in self._blobs.glob("??/*") if p.is_file() and _SHA256.fullmatch(p.name)
        )

    def leftover_temp_files(self) -> list[Path]:
        """Staged files still in root/tmp: in-flight uploads or debris of a crashed process."""
        if not self._tmp.is_dir():
            return []
        return sorted(p for p in self._tmp.iterdir() if p.is_file())


def _copy(
    stream: BinaryIO | Iterable[bytes], fd: int, chunk_size: int, max_bytes: int, text: TextScan
) -> tuple[str, int]:
    """Copy to `fd` chunk by chunk, stopping the moment the count passes max_bytes.

    This thread reads and writes; meanwhile one thread hashes and another scans the text of
    earlier chunks, and a fourth pushes written pages to disk. Returns the SHA-256 and size.
    """
    pipeline = _Pipeline(text)
    writeback = _Writeback(fd)
    size = 0
    try:
        for chunk, slot in _chunks(stream, chunk_size, max_bytes, pipeline):
            size += len(chunk)
            if size > max_bytes:
                raise UploadTooLarge(f"the file is larger than the {_mib(max_bytes)} MiB limit")
            _write_all(fd, chunk)
            pipeline.send(chunk, slot)
            writeback.wrote(size)
    except BaseException:
        # The upload is abandoned: stop the threads; their own errors no longer matter.
        try:
            pipeline.stop()
        finally:
            writeback.stop()
        raise
    digest = pipeline.finish()
    writeback.finish()
    return digest, size


class _Pipeline:
    """SHA-256, then the text scan, of each written chunk, each stage on its own thread.

    (The first chunk on the caller's thread: an upload of one chunk starts no thread.)

    Hashing and the reads and writes release the GIL, so they overlap; at most _IN_FLIGHT
    chunks, and so read buffers, are in use at once.
    """

    def __init__(self, text: TextScan) -> None:
        self._digest = hashlib.sha256()
        self._text = text
        self._error: BaseException | None = None
        # A slot is None until a read buffer (a bytearray) comes back to be reused in its place.
        self._free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
        for _ in range(_IN_FLIGHT):
            self._free.put(None)
        self._hashing: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._scanning: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        # Started at the second chunk: most uploads are one chunk, and starting two threads costs
        # more than hashing and scanning it here (milliseconds on a busy machine).
        self._threads: list[threading.Thread] = []
        self._chunks = 0

    def acquire(self) -> bytearray | None:
        """Wait for a free slot: a buffer to read into again, or None to allocate one."""
        return self._free.get()

    def release(self, slot: bytearray | None) -> None:
        self._free.put(slot)

    def send(self, chunk: _Buffer, slot: bytearray | None) -> None:
        """Hand over a written chunk; its slot is released once both stages are done with it.

        The first chunk is hashed and scanned on the caller's thread; from the second on the
        stages run on their threads, in order (the first is done before they start).
        """
        self._chunks += 1
        if self._chunks == 1:
            self._guard(self._digest.update, chunk)
            self._guard(self._text.feed, chunk)
            self.release(slot)
            return
        if not self._threads:
            self._threads = [
                threading.Thread(target=self._hash, name="upload-sha256", daemon=True),
                threading.Thread(target=self._scan, name="upload-text-scan", daemon=True),
            ]
            for thread in self._threads:
                thread.start()
        self._hashing.put((chunk, slot))

    def _hash(self) -> None:
        while (item := self._hashing.get()) is not None:
            self._guard(self._digest.update, item[0])
            self._scanning.put(item)
        self._scanning.put(None)

    def _scan(self) -> None:
        while (item := self._scanning.get()) is not None:
            self._guard(self._text.feed, item[0])
            self.release(item[1])

    def _guard(self, stage: Callable[[_Buffer], object], chunk: _Buffer) -> None:
        # After a failure keep draining, so the reader never waits for a slot forever.
        if self._error is None:
            try:
                stage(chunk)
            except BaseException as exc:  # re-raised by finish()
                self._error = exc

    def stop(self) -> None:
        self._hashing.put(None)
        for thread in self._threads:
            thread.join()

    def finish(self) -> str:
        self.stop()
        if self._error is not None:
            raise self._error
        return self._digest.hexdigest()


class _Writeback:
    """fdatasync of the staged file on a thread after every _WRITEBACK_EVERY bytes written.

    Linux starts writing a new file back only when asked (or after ~30 s), so the fsync before
    publishing would otherwise wait for the whole upload to reach the disk. That fsync stays
    the durability point; an error here is raised all the same, since the kernel reports a
    write-back error to only one of the sync calls on the file.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._asked = 0
        self._wake = threading.Event()
        self._stopping = False
        self._error: OSError | None = None
        self._thread: threading.Thread | None = None

    def wrote(self, total: int) -> None:
        if total - self._asked < _WRITEBACK_EVERY:
            return
        self._asked = total
        if self._thread is None:
            # Started on demand: most uploads never reach the first step.
            self._thread = threading.Thread(target=self._run, name="upload-writeback", daemon=True)
            self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                os.fdatasync(self._fd)
            except OSError as exc:
                self._error = exc
                return

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def finish(self) -> None:
        self.stop()
        if self._error is not None:
            raise self._error


def _chunks(
    stream: BinaryIO | Iterable[bytes], chunk_size: int, max_bytes: int, pipeline: _Pipeline
) -> Iterator[_Item]:
    """Yield (chunk, slot) pairs, each chunk holding a slot until the pipeline releases it."""
    # Never ask for more than one byte past the limit, whatever the stream claims to hold.
    remaining = max_bytes + 1
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        # Into a few reused buffers: no new object per chunk and no copy for the other stages.
        # New buffers start small and double while reads fill them, so a small upload never
        # allocates (and zeroes) chunk_size bytes per buffer.
        grow = min(_FIRST_BUFFER, chunk_size)
        while remaining > 0:
            buf = pipeline.acquire()
            if buf is None or len(buf) < grow:
                buf = bytearray(grow)  # a small one from the start is dropped for a bigger one
            n = readinto(memoryview(buf)[: min(len(buf), remaining)])
            if not n:
                pipeline.release(buf)
                return
            if n == len(buf):
                grow = min(grow * 2, chunk_size)
            remaining -= n
            # The bytearray itself when full, so the text scan can use its methods without a copy.
            yield (buf if n == len(buf) else memoryview(buf)[:n]), buf
    elif hasattr(stream, "read"):
        reader = cast(BinaryIO, stream)
        while remaining > 0:
            slot = pipeline.acquire()
            chunk = reader.read(min(chunk_size, remaining))
            if not chunk:
                pipeline.release(slot)
                return
            remaining -= len(chunk)
            yield _frozen(chunk), slot
    else:
        for chunk in stream:
            yield _frozen(chunk), pipeline.acquire()


def _frozen(chunk: _Buffer) -> bytes:
    # Other threads read the chunk later: a caller's bytearray may have changed by then.
    return chunk if isinstance(chunk, bytes) else bytes(chunk)


def _write_all(fd: int, chunk: _Buffer) -> None:
    view = memoryview(chunk)
    while view:
        view = view[os.write(fd, view) :]


def _publish(tmp: Path, final: Path) -> bool:
    """Make `tmp` visible at `final` atomically; False if identical bytes were already there."""
    try:
        # A hard link fails if `final` exists, so two racing uploads cannot both claim created=True.
        os.link(tmp, final)
    except FileExistsError:
        return False
    except OSError:
        # Filesystems without hard links: check, then rename (atomic, but may race on `created`).
        if final.exists():
            return False
        os.replace(tmp, final)
    _fsync_dir(final.parent)
    return True


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.6g}"
