"""Documents attached to a case (添付書類): PDFs, images and office documents a caseworker keeps
with the case file.

The bytes live outside the database, in `settings.attachments_dir`, in a file named by the
attachment's random id (never by the client's file name, which is kept, cleaned, as metadata);
the row holds the SHA-256 of the bytes, checked again at every download. The type is what the
content is (engine.casework.sniff), from an allow-list; the size is bounded by `settings.attachment_max_mb`.

A file and its row never part: the file is written first (a temporary name, then renamed into
place), then the row is committed; if the commit fails the file is removed. So a row always
has its file, and a file without a row is at worst an unreferenced leftover of a crash.

Read and written under the case's access rules (the case's own 404 for whoever may not see
it). The list and every download are audited. A removal is a recorded action — who, when,
why, on the row, in the case's history and on the audit trail — after which the bytes are
deleted and the row stays.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.casework import sniff, writes
from engine.env import Env
from engine.errors import Conflict, Forbidden, Gone, Invalid, NotFound, TooLarge, UnsupportedType
from engine.models import CaseAttachment, User
from engine.ops.db import begin_write, command
from engine.security import audit
from engine.security.access import require_case, sees_every_case
from engine.status import EventKind
from engine.workflow import limits

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
MAX_NAME = 255
MAX_REASON = 1000
PAGE = 50
PAGE_MAX = 200
# Upload temporaries in the attachments directory: never a stored file's name (those are ids).
PARTIAL_PREFIX = ".upload-"


@dataclass(frozen=True)
class AttachmentPage:
    rows: list[CaseAttachment]
    total: int


def clean_name(value: Any) -> str:
    """The client's file name as metadata: its last path part, NFC, without control or format
    characters, at most MAX_NAME characters (the extension kept); "document" if nothing is left."""
    text = value if isinstance(value, str) else ""
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(c for c in unicodedata.normalize("NFC", text) if unicodedata.category(c)[0] != "C")
    text = text.strip().strip(".").strip()
    if len(text) > MAX_NAME:
        stem, dot, ext = text.rpartition(".")
        text = (stem[:MAX_NAME - len(ext) - 1] + "." + ext) if dot and len(ext) <= 16 else text[:MAX_NAME]
    return text or "document"


def stored_path(directory: Path, attachment_id: str) -> Path:
    return Path(directory) / attachment_id


def _limit_text(max_bytes: int) -> str:
    mb = max_bytes / (1024 * 1024)
    return f"{mb:g} MB" if mb >= 1 else f"{max_bytes} bytes"


def too_large(max_bytes: int) -> TooLarge:
    limit = _limit_text(max_bytes)
    return TooLarge(f"ファイルが大きすぎます（{limit} まで）/ The file is larger than the limit of {limit}",
                    {"file": f"at most {limit}"})


def _receive(stream: BinaryIO, directory: Path, max_bytes: int) -> tuple[Path, int, str]:
    """Copy the upload to a temporary file in `directory`: (its path, size, SHA-256). Stops
    reading, and removes what it wrote, as soon as the size passes `max_bytes`."""
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / f"{PARTIAL_PREFIX}{uuid.uuid4().hex}.part"
    digest, size = hashlib.sha256(), 0
    try:
        with open(partial, "xb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise too_large(max_bytes)
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return partial, size, digest.hexdigest()


def attach(session: Session, env: Env, actor: User, case_id: Any, stream: Any, filename: Any,
           now: datetime) -> CaseAttachment:
    """Attach the document read from `stream` (a binary file object) to the case. Refused: an
    outsider with the case's 404; no file (422 naming `file`); too large (413, naming the limit);
    a type not on the allow-list by its content (415 naming `file`). Nothing is kept of a refusal."""
    case = require_case(session, actor, case_id, env.org, via=audit.Action.ATTACHMENT_UPLOAD, now=now)
    if stream is None or not hasattr(stream, "read"):
        raise Invalid("ファイルを選んでください / file is required", {"file": "required"})
    name = clean_name(filename)
    directory = Path(env.settings.attachments_dir)
    partial, size, sha = _receive(stream, directory, env.settings.attachment_max_bytes)
    try:
        if size == 0:
            raise Invalid("ファイルが空です / file is empty", {"file": "empty"})
        kind = sniff.sniff(partial)
        if kind is None:
            allowed = ", ".join(dict.fromkeys(sniff.ALLOWED.values()))
            raise UnsupportedType(f"この種類のファイルは添付できません（{allowed}）/ This kind of file cannot be "
                                  f"attached; allowed: {allowed}", {"file": f"one of {allowed} (by content)"})
        attachment_id = str(uuid.uuid4())
        final = stored_path(directory, attachment_id)
        os.replace(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    try:
        begin_write(session)
        row = CaseAttachment(id=attachment_id, case_id=case.id, name=name, size=size, content_type=kind, sha256=sha,
                             uploaded_by_id=actor.id, uploaded_at=now)
        session.add(row)
        session.flush()
        writes.history(session, case, EventKind.DOCUMENT_ATTACHED, now, actor,
                       data={"attachment": attachment_id, "name": name, "type": kind, "size": size})
        audit.record(session, actor, audit.Action.ATTACHMENT_UPLOAD, now, case,
                     {"attachment": attachment_id, "type": kind, "size": size, "sha256": sha})
        session.commit()
    except BaseException:
        session.rollback()
        final.unlink(missing_ok=True)
        raise
    return row


def list_attachments(session: Session, env: Env, actor: User, case_id: Any, now: datetime, *,
                     limit: Any = PAGE, offset: Any = 0) -> AttachmentPage:
    """A page of the case's documents, newest first, removed ones included (marked); one audit record."""
    limit = limits.check_int(limit, "limit", 1, PAGE_MAX)
    offset = limits.check_int(offset, "offset", 0)
    case = require_case(session, actor, case_id, env.org, via=audit.Action.ATTACHMENT_LIST, now=now)
    rows = list(session.scalars(select(CaseAttachment).where(CaseAttachment.case_id == case.id)
                                .order_by(CaseAttachment.uploaded_at.desc(), CaseAttachment.id)
                                .limit(limit).offset(offset)))
    total = session.scalar(select(func.count()).select_from(CaseAttachment)
                           .where(CaseAttachment.case_id == case.id)) or 0
    audit.record(session, actor, audit.Action.ATTACHMENT_LIST, now, case,
                 {"attachments": [r.id for r in rows], "offset": offset})
    session.commit()
    return AttachmentPage(rows, total)


def _row_of(session: Session, case_id: str, attachment_id: Any) -> CaseAttachment:
    row = session.get(CaseAttachment, attachment_id) if isinstance(attachment_id, str) and len(attachment_id) <= 36 \
        else None
    if row is None or row.case_id != case_id:
        raise NotFound("添付書類が見つかりません / attachment not found")
    return row


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def open_attachment(session: Session, env: Env, actor: User, case_id: Any, attachment_id: Any,
                    now: datetime) -> tuple[CaseAttachment, Path]:
    """The document's row and the path of its bytes, checked against the stored checksum; the
    download is audited (committed) before the caller sends it. A removed document: 410."""
    case = require_case(session, actor, case_id, env.org, via=audit.Action.ATTACHMENT_DOWNLOAD, now=now)
    row = _row_of(session, case.id, attachment_id)
    if row.removed_at is not None:
        raise Gone("この添付書類は削除されています / this attachment was removed")
    path = stored_path(env.settings.attachments_dir, row.id)
    if not path.is_file() or _sha256_of(path) != row.sha256:
        log.error("attachment %s of case %s is missing or does not match its checksum at %s", row.id, case.id, path)
        raise Gone("添付書類のファイルが見つからないか破損しています。バックアップから復元してください / the stored "
                   "file is missing or damaged; restore it from a backup")
    audit.record(session, actor, audit.Action.ATTACHMENT_DOWNLOAD, now, case,
                 {"attachment": row.id, "sha256": row.sha256})
    session.commit()
    return row, path


def may_remove(actor: User, row: CaseAttachment, env: Env) -> bool:
    """Its uploader, and the secretariat and coordination lead (who see every case)."""
    return row.uploaded_by_id == actor.id or sees_every_case(actor, env.org)


@command
def remove_attachment(session: Session, env: Env, actor: User, case_id: Any, attachment_id: Any, reason: Any,
                      now: datetime) -> CaseAttachment:
    """Remove a document as a recorded action: the row is marked (who, when, why), the case's
    history and the audit trail say so, and after the commit the bytes are deleted."""
    case = require_case(session, actor, case_id, env.org, via=audit.Action.ATTACHMENT_REMOVE, now=now)
    row = _row_of(session, case.id, attachment_id)
    if not may_remove(actor, row, env):
        raise Forbidden("添付書類を削除できるのは登録した本人と事務局だけです / only whoever attached a document, "
                        "or the secretariat, may remove it")
    if row.removed_at is not None:
        raise Conflict("この添付書類は既に削除されています / this attachment was already removed")
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid("削除の理由を入力してください / reason is required", {"reason": "required"})
    if len(reason) > MAX_REASON:
        raise Invalid(f"削除の理由は {MAX_REASON} 文字までです / reason must be at most {MAX_REASON} characters",
                      {"reason": f"at most {MAX_REASON} characters"})
    row.removed_at, row.removed_by, row.removal_reason = now, actor, reason.strip()
    session.flush()
    writes.history(session, case, EventKind.DOCUMENT_REMOVED, now, actor,
                   data={"attachment": row.id, "name": row.name, "reason": row.removal_reason})
    audit.record(session, actor, audit.Action.ATTACHMENT_REMOVE, now, case,
                 {"attachment": row.id, "reason": row.removal_reason})
    session.commit()
    with contextlib.suppress(FileNotFoundError):
        try:
            stored_path(env.settings.attachments_dir, row.id).unlink()
        except OSError as exc:
            log.warning("attachment %s was removed but its file could not be deleted: %s", row.id, exc)
    return row
