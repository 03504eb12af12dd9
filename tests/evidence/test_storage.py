"""BlobStore: file names, storing by hash, limits, leaving nothing behind."""

from __future__ import annotations

import hashlib
import io
import itertools
import stat
import tracemalloc
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from svqm.errors import InvalidUpload, SvqmError, UnsupportedFileType, UploadTooLarge
from svqm.evidence import storage
from svqm.evidence.storage import BlobStore, sanitise_filename

MIB = 1 << 20
PDF = b"%PDF-1.4\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"


def make_store(root: Path, *, max_bytes: int = 25 * MIB) -> BlobStore:
    return BlobStore(root, max_bytes=max_bytes, max_unpacked_bytes=200 * MIB, max_entries=2000)


def blob_files(root: Path) -> list[Path]:
    blobs = root / "blobs"
    return sorted(p for p in blobs.rglob("*") if p.is_file()) if blobs.exists() else []


def assert_nothing_stored(store: BlobStore) -> None:
    assert blob_files(store.root) == []
    assert store.leftover_temp_files() == []


class EndlessReader:
    def __init__(self) -> None:
        self.served = 0

    def read(self, n: int = -1) -> bytes:
        assert n > 0, "the store must ask for a bounded amount"
        self.served += n
        return b"a" * n


@pytest.mark.parametrize(
    "name", ["../x.pdf", "..\\x.pdf", "a\x00b.pdf", "a\x07.pdf", "a\x85b.pdf", "dir/x.pdf", ".."]
)
def test_sanitise_filename_refuses_paths_and_controls(name: str) -> None:
    with pytest.raises(InvalidUpload):
        sanitise_filename(name)


def test_sanitise_filename_refuses_rtl_override() -> None:
    with pytest.raises(InvalidUpload, match="direction"):
        sanitise_filename("invoice\u202efdp.exe")


@pytest.mark.parametrize("name", ["", "   ", "...", "\u200b"])
def test_sanitise_filename_refuses_empty_names(name: str) -> None:
    with pytest.raises(InvalidUpload, match="empty"):
        sanitise_filename(name)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  report (final).pdf", "report (final).pdf"),
        ("report   2024\u00a0final.pdf ", "report 2024 final.pdf"),
        (".hidden.pdf", "hidden.pdf"),
        ("e\u0301te\u0301.docx", "\u00e9t\u00e9.docx"),
        ("zero\u200bwidth.csv", "zerowidth.csv"),
        ("plain", "plain"),
    ],
)
def test_sanitise_filename_cleans_names(raw: str, clean: str) -> None:
    assert sanitise_filename(raw) == clean


def test_sanitise_filename_caps_length_keeping_extension() -> None:
    cleaned = sanitise_filename("r" * 296 + ".pdf")
    assert len(cleaned) == 200
    assert cleaned == "r" * 196 + ".pdf"
    assert len(sanitise_filename("x" * 300)) == 200


def test_put_stores_a_file_object_by_hash(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    blob = store.put(io.BytesIO(PDF))
    sha = hashlib.sha256(PDF).hexdigest()
    assert blob.sha256 == sha
    assert blob.size == len(PDF)
    assert blob.created
    assert blob.content_type == "application/pdf"
    assert blob.path == tmp_path / "blobs" / sha[:2] / sha
    assert blob.path.read_bytes() == PDF
    assert stat.S_IMODE(blob.path.stat().st_mode) == 0o640
    assert store.exists(sha)
    with store.open(sha) as f:
        assert f.read() == PDF
    assert store.leftover_temp_files() == []


def test_put_accepts_an_iterable_of_chunks(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    text = b"name,score\nalpha,1\nbeta,2\n"
    blob = store.put(iter([text[:5], text[5:11], text[11:]]))
    assert blob.content_type == "text/csv"
    assert blob.path.read_bytes() == text


def test_put_deduplicates_identical_bytes(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    first = store.put(io.BytesIO(PDF), chunk_size=7)
    second = store.put([PDF])
    assert first.created
    assert not second.created
    assert second.path == first.path
    assert second.sha256 == first.sha256
    assert blob_files(tmp_path) == [first.path]
    assert store.leftover_temp_files() == []


def test_put_refuses_an_oversized_file_object_without_reading_it_all(tmp_path: Path) -> None:
    store = make_store(tmp_path, max_bytes=3 * MIB)
    reader = EndlessReader()
    with pytest.raises(UploadTooLarge, match="3 MiB"):
        store.put(reader, chunk_size=MIB)  # type: ignore[arg-type]
    assert reader.served <= 3 * MIB + 1
    assert_nothing_stored(store)


def test_put_refuses_an_oversized_chunk_stream_whatever_was_declared(tmp_path: Path) -> None:
    store = make_store(tmp_path, max_bytes=MIB)
    pulled = 0

    def chunks() -> Iterator[bytes]:
        nonlocal pulled
        # A client may declare a small Content-Length and then keep sending.
        yield PDF
        for chunk in itertools.repeat(b"x" * 65536):
            pulled += 1
            yield chunk

    with pytest.raises(UploadTooLarge):
        store.put(chunks())
    assert pulled <= MIB // 65536 + 1
    assert_nothing_stored(store)


def test_put_accepts_a_file_of_exactly_the_limit(tmp_path: Path) -> None:
    store = make_store(tmp_path, max_bytes=len(PDF))
    assert store.put(io.BytesIO(PDF)).size == len(PDF)


def test_put_refuses_an_empty_upload(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    with pytest.raises(InvalidUpload, match="empty"):
        store.put(io.BytesIO(b""))
    assert_nothing_stored(store)


def test_put_refuses_bytes_instead_of_a_stream(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        make_store(tmp_path).put(PDF)  # type: ignore[arg-type]


def test_put_leaves_nothing_behind_when_the_type_is_refused(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    elf = b"\x7fELF\x02\x01\x01\x00" + bytes(56)
    for data in [elf, b"<html><body>x</body></html>"]:
        with pytest.raises(UnsupportedFileType):
            store.put(io.BytesIO(data))
    assert_nothing_stored(store)


def test_put_leaves_nothing_behind_for_a_zip_bomb(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open("word/document.xml", "w", force_zip64=True) as entry:
            zeros = bytes(MIB)
            for _ in range(300):
                entry.write(zeros)
    store = make_store(tmp_path / "store")
    with bomb.open("rb") as f, pytest.raises(InvalidUpload):
        store.put(f)
    assert_nothing_stored(store)


def test_put_leaves_nothing_behind_when_interrupted_while_reading(tmp_path: Path) -> None:
    store = make_store(tmp_path)

    def chunks() -> Iterator[bytes]:
        yield PDF
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.put(chunks())
    assert_nothing_stored(store)


def test_put_leaves_nothing_behind_when_interrupted_while_detecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(storage, "detect_type", interrupted)
    store = make_store(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        store.put(io.BytesIO(PDF))
    assert_nothing_stored(store)


def test_put_memory_does_not_grow_with_file_size(tmp_path: Path) -> None:
    store = make_store(tmp_path, max_bytes=64 * MIB)
    line = b"alpha,beta,gamma,delta,epsilon,zeta,eta,theta,iota,kappa\n"
    count = (48 * MIB) // len(line)
    tracemalloc.start()
    try:
        blob = store.put(itertools.repeat(line * 16384, count // 16384))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert blob.size > 40 * MIB
    assert blob.content_type == "text/csv"
    assert peak < 8 * MIB


def test_blob_store_validates_hashes(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    for bad in ["", "../etc/passwd", "A" * 64, "g" * 64, "a" * 63]:
        with pytest.raises(InvalidUpload):
            store.path_for(bad)
        with pytest.raises(InvalidUpload):
            store.open(bad)
    with pytest.raises(FileNotFoundError):
        store.open("a" * 64)
    assert not store.exists("a" * 64)


def test_blob_store_delete_removes_a_blob(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    blob = store.put(io.BytesIO(PDF))
    store.delete(blob.sha256)
    assert not store.exists(blob.sha256)
    assert not blob.path.exists()
    store.delete(blob.sha256)
    assert store.put(io.BytesIO(PDF)).created


def test_leftover_temp_files_lists_staged_debris(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    assert store.leftover_temp_files() == []
    (tmp_path / "tmp").mkdir()
    debris = tmp_path / "tmp" / "upload-crashed.part"
    debris.write_bytes(b"partial")
    assert store.leftover_temp_files() == [debris]


@settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.binary(min_size=1, max_size=5000))
def test_put_property_stored_bytes_match_and_are_named_by_hash(tmp_path: Path, data: bytes) -> None:
    store = make_store(tmp_path / uuid.uuid4().hex)
    payload = b"%PDF-" + data
    first = store.put(io.BytesIO(payload), chunk_size=997)
    second = store.put(io.BytesIO(payload))
    assert first.created
    assert not second.created
    assert first.path.read_bytes() == payload
    assert first.path.name == hashlib.sha256(payload).hexdigest() == second.sha256
    assert blob_files(store.root) == [first.path]
    assert store.leftover_temp_files() == []


def test_put_errors_are_user_facing(tmp_path: Path) -> None:
    with pytest.raises(SvqmError) as info:
        make_store(tmp_path).put(io.BytesIO(b"\x00\x01binary"))
    assert "\n" not in info.value.detail
    assert "allowed type" in info.value.detail
