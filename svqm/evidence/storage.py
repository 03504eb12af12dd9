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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from svqm.errors import InvalidUpload, UploadTooLarge
from svqm.evidence.filetypes import detect_type

MAX_FILENAME_CHARS = 200
# Longer "extensions" are just part of the name; they need not survive the cap.
_MAX_EXTENSION_CHARS = 16
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Bidirectional controls (e.g. U+202E) can make "gpj.exe" display as "exe.jpg".
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_BLOB_MODE = 0o640
_DIR_MODE = 0o750


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

    def put(self, stream: BinaryIO | Iterable[bytes], *, chunk_size: int = 1 << 20) -> StoredBlob:
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
            with os.fdopen(fd, "wb") as out:
                sha256, size = self._copy(stream, out, chunk_size)
                out.flush()
                os.fsync(out.fileno())
            if size == 0:
                raise InvalidUpload("the file is empty")
            content_type = detect_type(
                tmp, max_unpacked_bytes=self.max_unpacked_bytes, max_entries=self.max_entries
            )
            final = self.path_for(sha256)
            final.parent.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
            os.chmod(tmp, _BLOB_MODE)
            created = _publish(tmp, final)
            return StoredBlob(sha256, size, content_type, final, created)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _copy(
        self, stream: BinaryIO | Iterable[bytes], out: BinaryIO, chunk_size: int
    ) -> tuple[str, int]:
        """Copy chunk by chunk, stopping the moment the count passes max_bytes."""
        hasher = _BackgroundHasher()
        size = 0
        try:
            for chunk in _chunks(stream, chunk_size, self.max_bytes):
                size += len(chunk)
                if size > self.max_bytes:
                    limit = _mib(self.max_bytes)
                    raise UploadTooLarge(f"the file is larger than the {limit} MiB limit")
                hasher.update(chunk)
                out.write(chunk)
        finally:
            digest = hasher.finish()
        return digest, size

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

    def leftover_temp_files(self) -> list[Path]:
        """Staged files still in root/tmp: in-flight uploads or debris of a crashed process."""
        if not self._tmp.is_dir():
            return []
        return sorted(p for p in self._tmp.iterdir() if p.is_file())


class _BackgroundHasher:
    """SHA-256 on a second thread, so hashing overlaps the disk writes (both release the GIL)."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._run, name="upload-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._digest.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._queue.put(bytes(chunk))

    def finish(self) -> str:
        self._queue.put(None)
        self._thread.join()
        return self._digest.hexdigest()


def _chunks(stream: BinaryIO | Iterable[bytes], chunk_size: int, max_bytes: int) -> Iterable[bytes]:
    if hasattr(stream, "read"):
        reader = cast(BinaryIO, stream)
        # Never ask for more than one byte past the limit, whatever the stream claims to hold.
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = reader.read(min(chunk_size, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk
        return
    yield from stream


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
