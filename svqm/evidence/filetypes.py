"""Detect an upload's content type from its bytes, against a small allow-list."""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import stat
import struct
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import BinaryIO

from svqm.errors import InvalidUpload, UnsupportedFileType

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
CSV = "text/csv"
TEXT = "text/plain"

ALLOWED_TYPES: dict[str, str] = {
    PDF: "PDF",
    PNG: "PNG",
    JPEG: "JPEG",
    DOCX: "DOCX",
    XLSX: "XLSX",
    PPTX: "PPTX",
    CSV: "CSV",
    TEXT: "plain text",
}

_NOT_ALLOWED = f"the file's content is not an allowed type ({', '.join(ALLOWED_TYPES.values())})"
_NOT_UTF8 = f"{_NOT_ALLOWED}; text files must be UTF-8"
_DAMAGED = "the Office document is damaged: its zip archive cannot be read"

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", PDF),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
)
_OOXML_MAIN_PARTS: dict[str, str] = {
    "word/document.xml": DOCX,
    "xl/workbook.xml": XLSX,
    "ppt/presentation.xml": PPTX,
}
_ZIP_LOCAL = b"PK\x03\x04"
_ZIP_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"
# Heads detect_type recognises without looking at the rest, so no text scan is needed.
_BINARY_HEADS = (*(magic for magic, _ in _MAGIC), _ZIP_LOCAL)
# [Content_Types].xml is a few KiB in real packages; the cap holds even if its declared size lies.
_CONTENT_TYPES_CAP = 1 << 20
# A generous average size of one central-directory record; bounds zipfile's in-memory index.
_CD_BYTES_PER_ENTRY = 1024
_TYPES_ELEMENT = re.compile(rb"<(?:[\w.-]+:)?Types[\s>/]")
_CHUNK = 1 << 16
# Enough bytes of the file's start for every signature below.
_HEAD_BYTES = 16
_TEXT_SAMPLE_CHARS = 64 * 1024
# csv.Sniffer is quadratic on quote-heavy input, so it sees only the head of the sample.
_SNIFF_CHARS = 4 * 1024
# C0 controls other than tab, LF, form feed and CR; UTF-8 never uses these bytes inside a sequence.
_BAD_TEXT_BYTES = bytes([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20)])
# Searched for one by one (memchr) in windows that stay in the CPU cache: half the time of
# bytes.translate and ~12x faster than a regex, and each call holds the GIL only microseconds.
_SCAN_WINDOW = 256 * 1024
_TEXT_CHUNK = 1 << 20
# Text a browser might sniff and render as markup (after the WHATWG mime-sniffing rules).
_MARKUP_START = re.compile(
    r"<(?:!doctype\s+html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p"
    r"|svg|\?xml|!--)(?:[\s>/]|$)",
    re.IGNORECASE,
)
_MARKUP_ANYWHERE = re.compile(r"<(?:!doctype\s+html|html|script|body|iframe|svg)[\s>/]", re.I)


def detect_type(
    path: Path, *, max_unpacked_bytes: int, max_entries: int, text: TextScan | None = None
) -> str:
    """Return the MIME type of the file's content, or refuse it.

    `text`, if given, is a TextScan fed every byte of this file while it was written, so a large
    text upload is not read a second time; without it the file is scanned here.
    """
    with open(path, "rb") as f:
        head = f.read(_HEAD_BYTES)
        if not head:
            raise InvalidUpload("the file is empty")
        for magic, mime in _MAGIC:
            if head.startswith(magic):
                return mime
        if head.startswith(_ZIP_LOCAL):
            return _detect_ooxml(f, max_unpacked_bytes=max_unpacked_bytes, max_entries=max_entries)
        if text is None:
            text = TextScan()
            f.seek(0)
            while chunk := f.read(_TEXT_CHUNK):
                text.feed(chunk)
        elif text.size != os.fstat(f.fileno()).st_size or text.head != head:
            # A scan of other bytes would vouch for a file it never saw: a caller's bug.
            raise ValueError("the text scan did not see this file's bytes")
        return text.verdict()


def _detect_ooxml(f: BinaryIO, *, max_unpacked_bytes: int, max_entries: int) -> str:
    _check_zip_directory(f, max_entries)
    try:
        with zipfile.ZipFile(f) as zf:
            infos = zf.infolist()
            _check_entries(infos, max_unpacked_bytes=max_unpacked_bytes, max_entries=max_entries)
            names = {info.filename.lower(): info for info in infos}
            kinds = [mime for part, mime in _OOXML_MAIN_PARTS.items() if part in names]
            types_info = names.get("[content_types].xml")
            if types_info is None or len(kinds) != 1:
                raise UnsupportedFileType(_NOT_ALLOWED)
            content_types = _read_capped(zf, types_info, _CONTENT_TYPES_CAP)
        # What the headers declare may lie: inflate every part for real, with a ceiling.
        _inflate_all(f, infos, max_unpacked_bytes)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as exc:
        raise InvalidUpload(_DAMAGED) from exc
    if not _TYPES_ELEMENT.search(content_types):
        raise UnsupportedFileType(_NOT_ALLOWED)
    # Macro-enabled variants (.docm/.xlsm/.pptm) carry executable VBA; they are not on the list.
    if b"macroenabled" in content_types.lower() or any(
        name.endswith("vbaproject.bin") for name in names
    ):
        raise UnsupportedFileType("macro-enabled Office documents are not accepted")
    return kinds[0]


def _check_zip_directory(f: BinaryIO, max_entries: int) -> None:
    """Refuse from the end-of-directory record alone, before zipfile indexes every entry."""
    size = f.seek(0, io.SEEK_END)
    tail_len = min(size, 22 + 0xFFFF)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    pos = tail.rfind(_ZIP_EOCD)
    if pos < 0 or len(tail) - pos < 22:
        raise InvalidUpload(_DAMAGED)
    total, cd_size = struct.unpack("<HL", tail[pos + 10 : pos + 16])
    zip64 = pos >= 20 and tail[pos - 20 : pos - 16] == _ZIP64_LOCATOR
    if zip64 and (total == 0xFFFF or cd_size == 0xFFFFFFFF):
        (z64_offset,) = struct.unpack("<Q", tail[pos - 12 : pos - 4])
        f.seek(z64_offset)
        record = f.read(56)
        if len(record) == 56 and record.startswith(_ZIP64_EOCD):
            total, cd_size = struct.unpack("<QQ", record[32:48])
    if total > max_entries or cd_size > max_entries * _CD_BYTES_PER_ENTRY:
        raise InvalidUpload(f"the Office document has more than {max_entries} parts")
    f.seek(0)


def _check_entries(
    infos: list[zipfile.ZipInfo], *, max_unpacked_bytes: int, max_entries: int
) -> None:
    if len(infos) > max_entries:
        raise InvalidUpload(f"the Office document has more than {max_entries} parts")
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        parts = re.split(r"[/\\]", name)
        if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts:
            raise InvalidUpload("the Office document contains a part with an unsafe path")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise InvalidUpload("the Office document contains a symbolic link")
        if info.flag_bits & 0x1:
            raise InvalidUpload("the Office document contains encrypted parts")
        if name.lower() in seen:
            raise InvalidUpload("the Office document contains the same part twice")
        seen.add(name.lower())
    if sum(info.file_size for info in infos) > max_unpacked_bytes:
        raise InvalidUpload(
            f"the Office document would unpack to more than {_mib(max_unpacked_bytes)} MiB"
        )


_LOCAL_HEADER = struct.Struct("<4s5H3L2H")


def _inflate_all(f: BinaryIO, infos: list[zipfile.ZipInfo], cap: int) -> None:
    """Inflate each part from its own compressed bytes, ignoring the sizes the headers declare,
    and refuse as soon as the total passes `cap` or a part unpacks to other than its declared
    size (a zip that lies about sizes is a zip bomb for whoever opens it next).

    zipfile itself stops at the declared size, so a lying header would pass through it.
    """
    total = 0
    for info in infos:
        f.seek(info.header_offset)
        header = f.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size or header[:4] != _ZIP_LOCAL:
            raise InvalidUpload(_DAMAGED)
        fields = _LOCAL_HEADER.unpack(header)
        f.seek(fields[9] + fields[10], io.SEEK_CUR)  # the name and the extra field
        left = info.compress_size
        if info.compress_type == zipfile.ZIP_STORED:
            produced = left
            total += produced
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            produced = 0
            while left > 0 and not inflater.eof:
                data = f.read(min(_CHUNK, left))
                if not data:
                    raise InvalidUpload(_DAMAGED)
                left -= len(data)
                while data:
                    out = inflater.decompress(data, _CHUNK)
                    produced += len(out)
                    if total + produced > cap:
                        raise InvalidUpload(
                            f"the Office document would unpack to more than {_mib(cap)} MiB"
                        )
                    data = inflater.unconsumed_tail
                    if inflater.eof:
                        break
            total += produced
        else:
            raise InvalidUpload(_DAMAGED)
        if total > cap:
            raise InvalidUpload(f"the Office document would unpack to more than {_mib(cap)} MiB")
        if produced != info.file_size:
            raise InvalidUpload(
                "the Office document is damaged: its parts are not the size its headers declare"
            )


def _read_capped(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """Read one entry, refusing it as soon as it yields more than `cap` bytes."""
    out = bytearray()
    with zf.open(info) as entry:
        while chunk := entry.read(_CHUNK):
            out += chunk
            if len(out) > cap:
                raise InvalidUpload("the Office document's [Content_Types].xml is too large")
    return bytes(out)


class TextScan:
    """Whether a stream of bytes is acceptable text, learnt chunk by chunk as it is copied.

    The rules are those for the whole file: strict UTF-8 throughout, no C0 control bytes but tab,
    LF, FF and CR; the first _TEXT_SAMPLE_CHARS characters are kept for the markup and CSV
    checks. Once the bytes are refused, or their head is a binary format's (which detect_type
    recognises without this scan), later chunks are only counted.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._sample: list[str] = []
        self._sampled = 0
        self._truncated = False
        self._refusal: str | None = None
        self._skip = False
        self.size = 0
        self.head = b""

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Take the next chunk; it must not change until this returns."""
        if len(self.head) < _HEAD_BYTES:
            self.head += bytes(chunk[: _HEAD_BYTES - len(self.head)])
            self._skip = self._skip or self.head.startswith(_BINARY_HEADS)
        self.size += len(chunk)
        if self._skip or self._refusal is not None:
            return
        data = chunk if isinstance(chunk, bytes | bytearray) else bytes(chunk)
        if _has_bad_text_bytes(data):
            self._refusal = _NOT_ALLOWED
            return
        # Pure ASCII with no sequence left open is valid UTF-8: skip building a str of it.
        if self._sampled >= _TEXT_SAMPLE_CHARS and data.isascii() and not self._pending():
            self._truncated = True
            return
        view = memoryview(data)
        try:
            # In slices, so a chunk of 4-byte characters never becomes one huge str.
            for start in range(0, len(view), _TEXT_CHUNK):
                self._keep(self._decoder.decode(view[start : start + _TEXT_CHUNK]))
        except UnicodeDecodeError:
            self._refusal = _NOT_UTF8

    def verdict(self) -> str:
        """CSV or plain text, or UnsupportedFileType; call once every byte has been fed."""
        if self._refusal is None and not self._skip:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self._refusal = _NOT_UTF8
        if self._refusal is not None or self._skip:
            raise UnsupportedFileType(self._refusal or _NOT_ALLOWED)
        head = "".join(self._sample).removeprefix("\ufeff")
        if _MARKUP_START.match(head.lstrip()) or _MARKUP_ANYWHERE.search(head[:1024]):
            raise UnsupportedFileType(_NOT_ALLOWED)
        if self._truncated and "\n" in head:
            # A row cut off by the sample's end would look inconsistent; drop it.
            head = head[: head.rindex("\n") + 1]
        return CSV if _looks_like_csv(head) else TEXT

    def _pending(self) -> bool:
        return bool(self._decoder.getstate()[0])

    def _keep(self, text: str) -> None:
        room = _TEXT_SAMPLE_CHARS - self._sampled
        if len(text) > room:
            self._truncated = True
            text = text[:room]
        if text:
            self._sample.append(text)
            self._sampled += len(text)


def _has_bad_text_bytes(data: bytes | bytearray) -> bool:
    find = data.find
    for start in range(0, len(data), _SCAN_WINDOW):
        end = start + _SCAN_WINDOW
        for byte in _BAD_TEXT_BYTES:
            if find(byte, start, end) >= 0:
                return True
    return False


def _looks_like_csv(sample: str) -> bool:
    # Two rows with the same fields at least: text with no line break inside it is one row at
    # most (the reader ends a row only at CR or LF), so there is nothing to sniff.
    inner = sample.strip("\r\n")
    if "\n" not in inner and "\r" not in inner:
        return False
    sniff = sample[:_SNIFF_CHARS]
    if len(sample) > _SNIFF_CHARS and "\n" in sniff:
        sniff = sniff[: sniff.rindex("\n") + 1]
    try:
        dialect = csv.Sniffer().sniff(sniff, delimiters=",;\t")
        if dialect.delimiter not in ",;\t":
            return False
        counts = Counter(len(row) for row in csv.reader(io.StringIO(sample), dialect) if row)
    except csv.Error:
        return False
    return any(fields > 1 and rows >= 2 for fields, rows in counts.items())


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.6g}"
