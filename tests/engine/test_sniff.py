"""The document types a case accepts, told from their bytes (engine.casework.sniff)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from engine.casework import sniff


def _zip(entries: list[tuple[str, bytes]], stored_first: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, (name, data) in enumerate(entries):
            archive.writestr(name, data, compress_type=zipfile.ZIP_STORED if stored_first and i == 0 else None)
    return buffer.getvalue()


def _ooxml(main: str) -> bytes:
    return _zip([("[Content_Types].xml", b"<Types/>"), ("_rels/.rels", b"<Relationships/>"), (main, b"<x/>")])


@pytest.mark.parametrize(("data", "kind"), [
    (b"%PDF-1.7\n...", sniff.PDF),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", sniff.PNG),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", sniff.JPEG),
    (_ooxml("word/document.xml"), sniff.DOCX),
    (_ooxml("xl/workbook.xml"), sniff.XLSX),
    (_ooxml("ppt/presentation.xml"), sniff.PPTX),
    (_zip([("mimetype", sniff.ODT.encode()), ("content.xml", b"<x/>")], stored_first=True), sniff.ODT),
    (_zip([("mimetype", sniff.ODS.encode()), ("content.xml", b"<x/>")], stored_first=True), sniff.ODS),
])
def test_allowed_types_are_told_by_their_content(tmp_path: Path, data: bytes, kind: str) -> None:
    path = tmp_path / "upload"
    path.write_bytes(data)
    assert sniff.sniff(path) == kind and kind in sniff.ALLOWED


@pytest.mark.parametrize("data", [
    b"MZ\x90\x00\x03\x00",  # a Windows program
    b"\x7fELF\x02\x01\x01",  # a Linux program
    b"<!DOCTYPE html><script>",
    b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
    b"GIF89a\x01\x00",
    b" %PDF-1.4",  # the signature must open the file
    b"",
    _zip([("word/document.xml", b"<x/>")]),  # the office part without [Content_Types].xml
    _zip([("[Content_Types].xml", b"<Types/>"), ("payload.exe", b"MZ")]),  # no office main part
    _zip([("mimetype", b"application/x-shockwave-flash")], stored_first=True),
    _zip([("content.xml", b"<x/>"), ("mimetype", sniff.ODT.encode())]),  # mimetype not first
    b"PK\x03\x04\x14\x00garbage",  # a zip signature on something that is no zip
])
def test_other_content_is_none_of_them(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "upload"
    path.write_bytes(data)
    assert sniff.sniff(path) is None
