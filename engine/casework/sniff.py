"""What kind of document a file really is, read from its content: the allow-list of the types a
case may have attached (PDF, PNG, JPEG, Word/Excel/PowerPoint, OpenDocument), each recognised
by its bytes, never by the client's Content-Type or file name.

A zip-based office file must hold the office structure, not only the zip signature: an OOXML
file (docx, xlsx, pptx) has `[Content_Types].xml` and its main part (`word/document.xml`,
`xl/workbook.xml`, `ppt/presentation.xml`); an OpenDocument file's first entry is `mimetype`,
stored uncompressed, naming its type. Only the zip's directory and that one small entry are
read, so a zip bomb costs nothing.

The `filetype` package was considered: it tells a docx by the first entry names only and
knows no "this zip is not an office file" answer, which is the check that matters here.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import BinaryIO

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODP = "application/vnd.oasis.opendocument.presentation"

# The accepted types, and how each is called to the person uploading (the 415's message).
ALLOWED: dict[str, str] = {PDF: "PDF", PNG: "PNG", JPEG: "JPEG", DOCX: "Word (docx)", XLSX: "Excel (xlsx)",
                           PPTX: "PowerPoint (pptx)", ODT: "OpenDocument (odt)", ODS: "OpenDocument (ods)",
                           ODP: "OpenDocument (odp)"}

_OOXML_MAIN = {"word/document.xml": DOCX, "xl/workbook.xml": XLSX, "ppt/presentation.xml": PPTX}
_ODF = (ODT, ODS, ODP)
_ZIP = b"PK\x03\x04"
_MIMETYPE_MAX = 100


def sniff(path: Path) -> str | None:
    """The allowed type the file at `path` is, or None if it is none of them."""
    with open(path, "rb") as fh:
        head = fh.read(16)
        if head.startswith(b"%PDF-"):
            return PDF
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            return PNG
        if head.startswith(b"\xff\xd8\xff"):
            return JPEG
        if head.startswith(_ZIP):
            fh.seek(0)
            return _office(fh)
    return None


def _office(fh: BinaryIO) -> str | None:
    try:
        with zipfile.ZipFile(fh) as archive:
            infos = archive.infolist()
            names = {info.filename for info in infos}
            if "[Content_Types].xml" in names:
                return next((kind for main, kind in _OOXML_MAIN.items() if main in names), None)
            first = infos[0] if infos else None
            if first is not None and first.filename == "mimetype" and first.file_size <= _MIMETYPE_MAX:
                declared = archive.read(first).decode("ascii", errors="replace").strip()
                return declared if declared in _ODF else None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError):
        return None
    return None
