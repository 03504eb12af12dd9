"""detect_type and TextScan: which bytes are accepted as which type, and which are refused."""

from __future__ import annotations

import itertools
import struct
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from svqm.errors import InvalidUpload, UnsupportedFileType
from svqm.evidence.filetypes import ALLOWED_TYPES, TextScan, detect_type

MIB = 1 << 20
LIMITS = {"max_unpacked_bytes": 200 * MIB, "max_entries": 2000}
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
OOXML_PARTS = {
    DOCX: ("word/document.xml", "wordprocessingml.document.main+xml"),
    XLSX: ("xl/workbook.xml", "spreadsheetml.sheet.main+xml"),
    PPTX: ("ppt/presentation.xml", "presentationml.presentation.main+xml"),
}


def pdf_bytes() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n"
        b"2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\n"
        b"trailer <</Root 1 0 R>>\n%%EOF\n"
    )


def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg_bytes() -> bytes:
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return b"\xff\xd8\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0 + b"\xff\xd9"


def content_types(main_part: str, main_type: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/{main_part}" ContentType="{main_type}"/></Types>'
    )


def write_ooxml(path: Path, mime: str, *, macro_type: bool = False, vba: bool = False) -> Path:
    part, suffix = OOXML_PARTS[mime]
    main_type = "application/vnd.openxmlformats-officedocument." + suffix
    if macro_type:
        main_type = "application/vnd.ms-word.document.macroEnabled.main+xml"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", content_types(part, main_type))
        zf.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships/>')
        zf.writestr(part, '<?xml version="1.0"?><root/>')
        if vba:
            zf.writestr("word/vbaProject.bin", b"\xd0\xcf\x11\xe0")
    return path


def write_zip_bomb(path: Path, *, as_ooxml: bool) -> Path:
    zeros = bytes(MIB)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        if as_ooxml:
            zf.writestr("[Content_Types].xml", content_types("word/document.xml", "x"))
        with zf.open("word/document.xml", "w", force_zip64=True) as entry:
            for _ in range(300):
                entry.write(zeros)
    return path


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def detect(path: Path) -> str:
    return detect_type(path, **LIMITS)


def test_allowed_types_lists_the_eight_types() -> None:
    assert set(ALLOWED_TYPES.values()) == {
        "PDF",
        "PNG",
        "JPEG",
        "DOCX",
        "XLSX",
        "PPTX",
        "CSV",
        "plain text",
    }
    assert ALLOWED_TYPES["application/pdf"] == "PDF"


@pytest.mark.parametrize(
    ("data", "expected"),
    [(pdf_bytes(), "application/pdf"), (png_bytes(), "image/png"), (jpeg_bytes(), "image/jpeg")],
)
def test_detect_type_recognises_binary_signatures(
    tmp_path: Path, data: bytes, expected: str
) -> None:
    assert detect(write(tmp_path / "upload.bin", data)) == expected


@pytest.mark.parametrize("mime", [DOCX, XLSX, PPTX])
def test_detect_type_recognises_ooxml_packages(tmp_path: Path, mime: str) -> None:
    assert detect(write_ooxml(tmp_path / "upload.zip", mime)) == mime


@pytest.mark.parametrize(
    "text",
    [
        "name,score\nalpha,1\nbeta,2\n",
        "name;score\nalpha;1\nbeta;2\n",
        "name\tscore\nalpha\t1\nbeta\t2\n",
        "\ufeffnom,note\nété,1\nhiver,2\n",
    ],
)
def test_detect_type_recognises_csv(tmp_path: Path, text: str) -> None:
    assert detect(write(tmp_path / "upload.txt", text.encode("utf-8"))) == "text/csv"


@pytest.mark.parametrize(
    "text",
    ["Our social value policy.\nWe pay the living wage\n", "\ufeffCafé — résumé\f\r\n", "one\n"],
)
def test_detect_type_recognises_plain_text(tmp_path: Path, text: str) -> None:
    assert detect(write(tmp_path / "upload.csv", text.encode("utf-8"))) == "text/plain"


def test_detect_type_recognises_csv_longer_than_the_sample(tmp_path: Path) -> None:
    rows = "".join(f'row {i},{i * 7},"quoted, value"\n' for i in range(20_000))
    assert detect(write(tmp_path / "big.csv", ("a,b,c\n" + rows).encode())) == "text/csv"


def test_detect_type_sniffs_quote_heavy_text_quickly(tmp_path: Path) -> None:
    path = write(tmp_path / "quotes.txt", b',"' * 40_000)
    started = time.monotonic()
    detect(path)
    assert time.monotonic() - started < 5


def test_detect_type_refuses_an_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidUpload, match="empty"):
        detect(write(tmp_path / "empty.pdf", b""))


@pytest.mark.parametrize(
    "data",
    [
        b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00",
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(46) + b"PE\x00\x00",
        b"<!DOCTYPE html>\n<html><body><script>alert(1)</script></body></html>\n",
        b"  <html>\n<p>hello</p>\n",
        b"<p>Our policy</p>\n",
        b"Notes, 2024\n<script>alert(1)</script>\n",
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
        b"caf\xe9 au lait, latin-1 text\n",
        b"text with an escape \x1b[31m sequence\n",
        b"text with a NUL\x00 in it\n",
    ],
)
def test_detect_type_refuses_disallowed_content(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(UnsupportedFileType, match="not an allowed type"):
        detect(write(tmp_path / "report.pdf", data))


def test_detect_type_checks_the_whole_file_not_just_the_sample(tmp_path: Path) -> None:
    body = b"plain line of text\n" * 10_000
    with pytest.raises(UnsupportedFileType):
        detect(write(tmp_path / "nul.txt", body + b"\x00"))
    with pytest.raises(UnsupportedFileType, match="UTF-8"):
        detect(write(tmp_path / "latin.txt", body + b"\xff"))


def test_detect_type_refuses_a_zip_that_is_not_ooxml(tmp_path: Path) -> None:
    path = tmp_path / "report.docx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(UnsupportedFileType):
        detect(path)


def test_detect_type_refuses_a_package_without_content_types(tmp_path: Path) -> None:
    path = tmp_path / "report.docx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("word/document.xml", "<root/>")
    with pytest.raises(UnsupportedFileType):
        detect(path)


@pytest.mark.parametrize(("macro_type", "vba"), [(True, False), (False, True)])
def test_detect_type_refuses_a_macro_enabled_document(
    tmp_path: Path, macro_type: bool, vba: bool
) -> None:
    path = write_ooxml(tmp_path / "report.docx", DOCX, macro_type=macro_type, vba=vba)
    with pytest.raises(UnsupportedFileType, match="macro"):
        detect(path)


@pytest.mark.parametrize("as_ooxml", [True, False])
def test_detect_type_refuses_a_zip_bomb(tmp_path: Path, as_ooxml: bool) -> None:
    path = write_zip_bomb(tmp_path / "bomb.docx", as_ooxml=as_ooxml)
    assert path.stat().st_size < 2 * MIB
    with pytest.raises(InvalidUpload, match="unpack"):
        detect(path)


def test_detect_type_refuses_too_many_entries(tmp_path: Path) -> None:
    path = write_ooxml(tmp_path / "many.docx", DOCX)
    with zipfile.ZipFile(path, "a") as zf:
        for i in range(5000):
            zf.writestr(f"word/media/{i}.txt", b"")
    with pytest.raises(InvalidUpload, match="more than 2000"):
        detect(path)


@pytest.mark.parametrize(
    "name", ["../evil", "word/../../evil", "/etc/passwd", "C:/evil", "a\\..\\b"]
)
def test_detect_type_refuses_unsafe_entry_paths(tmp_path: Path, name: str) -> None:
    path = write_ooxml(tmp_path / "evil.docx", DOCX)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(zipfile.ZipInfo(name), b"x")
    with pytest.raises(InvalidUpload, match="unsafe path"):
        detect(path)


def test_detect_type_refuses_symlink_entries(tmp_path: Path) -> None:
    path = write_ooxml(tmp_path / "link.docx", DOCX)
    link = zipfile.ZipInfo("word/link.xml")
    link.create_system = 3
    link.external_attr = 0o120777 << 16
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(InvalidUpload, match="symbolic link"):
        detect(path)


def test_detect_type_refuses_a_corrupt_zip(tmp_path: Path) -> None:
    data = write_ooxml(tmp_path / "ok.docx", DOCX).read_bytes()
    with pytest.raises(InvalidUpload, match="damaged"):
        detect(write(tmp_path / "truncated.docx", data[: len(data) // 2]))
    garbled = bytearray(data)
    garbled[40:80] = bytes(40)
    with pytest.raises(InvalidUpload, match="damaged"):
        detect(write(tmp_path / "garbled.docx", bytes(garbled)))


def test_detect_type_caps_what_it_reads_of_content_types(tmp_path: Path) -> None:
    path = tmp_path / "fat.docx"
    padding = "<!--" + "x" * (2 * MIB) + "-->"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", content_types("word/document.xml", "x") + padding)
        zf.writestr("word/document.xml", "<root/>")
    with pytest.raises(InvalidUpload, match="too large"):
        detect(path)


def test_detect_type_refuses_a_package_whose_declared_size_lies(tmp_path: Path) -> None:
    path = tmp_path / "liar.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", content_types("word/document.xml", "x") + " " * MIB)
        zf.writestr("word/document.xml", "<root/>")
    data = bytearray(path.read_bytes())
    cd_offset = struct.unpack("<L", data[-6:-2])[0]
    assert data[:4] == b"PK\x03\x04"
    assert data[cd_offset : cd_offset + 4] == b"PK\x01\x02"
    data[22:26] = struct.pack("<L", 100)
    data[cd_offset + 24 : cd_offset + 28] = struct.pack("<L", 100)
    with pytest.raises(InvalidUpload, match="damaged"):
        detect(write(path, bytes(data)))


def scan_of(data: bytes, cuts: list[int]) -> TextScan:
    scan = TextScan()
    bounds = [0, *sorted(cuts), len(data)]
    for start, end in itertools.pairwise(bounds):
        scan.feed(memoryview(data)[start:end])
    return scan


def verdict_of(scan: TextScan) -> str:
    try:
        return scan.verdict()
    except UnsupportedFileType as exc:
        return f"refused: {exc.detail}"


def verdict_of_file(path: Path) -> str:
    try:
        return detect(path)
    except UnsupportedFileType as exc:
        return f"refused: {exc.detail}"


TEXTS = [
    b"name,score\nalpha,1\nbeta,2\n",
    "\ufeffnom,note\n\u00e9t\u00e9,1\nhiver \U0001f600,2\n".encode(),
    b"Our policy.\nWe pay the living wage\n",
    b"line\x00with a NUL\n",
    b"caf\xe9 latin-1\n",
    "unfinished \u20ac".encode()[:-1],
    b"<p>markup</p>\n",
]


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.sampled_from(TEXTS),
    st.integers(min_value=1, max_value=200),
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=6),
)
def test_text_scan_fed_in_any_chunks_agrees_with_reading_the_file(
    tmp_path_factory: pytest.TempPathFactory, text: bytes, repeat: int, cuts: list[int]
) -> None:
    data = text * repeat
    cuts = [cut % (len(data) + 1) for cut in cuts]
    path = write(tmp_path_factory.mktemp("scan") / "upload.txt", data)
    expected = verdict_of_file(path)
    assert verdict_of(scan_of(data, cuts)) == expected
    # What put() does: detect_type trusts the scan instead of reading the file again.
    try:
        given_scan = detect_type(path, **LIMITS, text=scan_of(data, cuts))
    except UnsupportedFileType as exc:
        given_scan = f"refused: {exc.detail}"
    assert given_scan == expected


def test_text_scan_checks_bytes_far_past_the_sample() -> None:
    body = b"a,b\n" * (1 << 20)
    for late in [b"\x00", b"\x1b", b"\xff", b"\xc3"]:
        scan = scan_of(body + late + b"\n", [3, 1 << 20, 3 << 20])
        with pytest.raises(UnsupportedFileType):
            scan.verdict()
    assert scan_of(body, [1 << 21]).verdict() == "text/csv"


def test_text_scan_accepts_a_character_split_between_chunks() -> None:
    data = "a,\u00e9\n".encode() * 100_000
    split = data.index("\u00e9".encode(), 70_000) + 1
    assert scan_of(data, [split]).verdict() == "text/csv"


def test_text_scan_skips_binary_formats(tmp_path: Path) -> None:
    data = pdf_bytes() + bytes(100)
    scan = scan_of(data, [3, 9])
    assert scan.head == data[:16]
    assert detect_type(write(tmp_path / "a.pdf", data), **LIMITS, text=scan) == "application/pdf"


def test_detect_type_refuses_a_scan_of_other_bytes(tmp_path: Path) -> None:
    path = write(tmp_path / "upload.csv", b"name,score\nalpha,1\nbeta,2\n")
    for other in [b"name,score\nalpha,1\n", b"NAME,score\nalpha,1\nbeta,2\n"]:
        with pytest.raises(ValueError, match="did not see"):
            detect_type(path, **LIMITS, text=scan_of(other, []))


def write_lying_zip(path: Path, *, unpacked: int, declared: int = 1024) -> Path:
    """A DOCX whose main part unpacks to `unpacked` bytes while both headers declare `declared`."""
    write_ooxml(path, DOCX)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("word/media/padding.bin", "w") as entry:
            for _ in range(unpacked // MIB):
                entry.write(bytes(MIB))
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("word/media/padding.bin")
    struct.pack_into("<L", data, info.header_offset + 22, declared)
    name = info.filename.encode()
    central = data.rfind(b"PK\x01\x02", 0, len(data))
    while central >= 0:
        name_len = struct.unpack_from("<H", data, central + 28)[0]
        if bytes(data[central + 46 : central + 46 + name_len]) == name:
            struct.pack_into("<L", data, central + 24, declared)
            break
        central = data.rfind(b"PK\x01\x02", 0, central)
    path.write_bytes(data)
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("word/media/padding.bin").file_size == declared
    return path


def test_a_zip_whose_headers_lie_about_sizes_is_refused(tmp_path: Path) -> None:
    """Before: a 306 KB file declaring 1 KiB and unpacking to 300 MiB was stored as DOCX."""
    path = write_lying_zip(tmp_path / "liar.docx", unpacked=300 * MIB)
    assert path.stat().st_size < 400_000
    with pytest.raises(InvalidUpload, match="unpack to more than 200 MiB"):
        detect(path)
    # Under the ceiling, a part bigger than its header says is refused as damaged.
    small = write_lying_zip(tmp_path / "small-liar.docx", unpacked=2 * MIB)
    with pytest.raises(InvalidUpload, match="not the size its headers declare"):
        detect(small)
    assert detect(write_ooxml(tmp_path / "honest.docx", DOCX)) == DOCX
