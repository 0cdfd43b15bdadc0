"""The case file: support records (notes) and documents (attachments) of a case."""

from __future__ import annotations

from typing import Any

from flask import g, request, send_file

from engine.casework import attachments, notes, sniff
from engine.models import CaseAttachment, CaseNote, CaseNoteRevision
from web.api import error_response
from web.api.auth import authenticate
from web.api.blueprint import Blueprint
from web.api.schemas import (
    ApiError,
    AttachmentIn,
    AttachmentOut,
    AttachmentRemoveIn,
    NoteEditIn,
    NoteIn,
    NoteOut,
    PageQuery,
)
from web.extensions import UPLOAD_OVERHEAD, db, engine_env, now

blp = Blueprint("casefile", __name__, url_prefix="/api/cases",
                description="The case file: support records (支援経過記録) and documents (添付書類)")
blp.before_request(authenticate)
UPLOAD_ENDPOINT = "casefile.upload_attachment"


@blp.before_app_request
def _upload_limit() -> Any:
    """The upload's own size limit instead of the API's 1 MB, set before anything reads the body
    (an app-wide hook that runs ahead of the one reading every form for NUL characters: this
    blueprint is registered first). A body announced larger than the limit is answered at once."""
    if request.endpoint != UPLOAD_ENDPOINT:
        return None
    limit = engine_env().settings.attachment_max_bytes
    request.max_content_length = limit + UPLOAD_OVERHEAD
    if request.content_length is not None and request.content_length > limit + UPLOAD_OVERHEAD:
        exc = attachments.too_large(limit)
        return error_response(exc.status, exc.message, exc.fields, exc.code)
    return None


def _revision(rev: CaseNoteRevision) -> dict[str, Any]:
    return {"text": rev.text, "edited_by": rev.edited_by.name, "edited_at": rev.edited_at}


def _note(note: CaseNote, revisions: list[CaseNoteRevision]) -> dict[str, Any]:
    return {"id": note.id, "kind": note.kind, "kind_label": notes.KIND_LABELS[note.kind][0], "text": note.text,
            "author": note.author.name, "author_name": note.author.display_name, "at": note.occurred_at,
            "recorded_at": note.recorded_at, "edited_at": note.edited_at,
            "editable_until": note.recorded_at + notes.EDIT_WINDOW, "revisions": [_revision(r) for r in revisions]}


def _attachment(row: CaseAttachment) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "size": row.size, "type": row.content_type, "sha256": row.sha256,
            "uploaded_by": row.uploaded_by.name, "at": row.uploaded_at, "removed": row.removed_at is not None,
            "removed_at": row.removed_at, "removed_by": row.removed_by.name if row.removed_by else None,
            "removal_reason": row.removal_reason}


@blp.route("/<case_id>/notes", methods=["POST"])
@blp.arguments(NoteIn)
@blp.response(201, NoteOut)
@blp.alt_response(404, schema=ApiError)
def add_note(body, case_id: str):  # noqa: ANN001, ANN201
    """Record a support record (支援経過記録) on the case: a visit, a call, an office visit, a meeting."""
    note = notes.add_note(db.session, engine_env(), g.actor, case_id, body["kind"], body["text"],
                          body.get("occurred_at"), now())
    return _note(note, [])


@blp.route("/<case_id>/notes", methods=["GET"])
@blp.arguments(PageQuery, location="query")
@blp.response(200, NoteOut(many=True), headers={
    "X-Total-Count": {"description": "how many notes the case has", "schema": {"type": "integer"}}})
@blp.alt_response(404, schema=ApiError)
def list_notes(query, case_id: str):  # noqa: ANN001, ANN201
    """The case's support records, newest first by when they happened, with their earlier texts;
    the read is audited."""
    page = notes.list_notes(db.session, engine_env(), g.actor, case_id, now(), limit=query["limit"],
                            offset=query["offset"])
    return [_note(n, page.revisions[n.id]) for n in page.notes], {"X-Total-Count": str(page.total)}


@blp.route("/<case_id>/notes/<id:note_id>", methods=["PATCH"])
@blp.arguments(NoteEditIn)
@blp.response(200, NoteOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
@blp.alt_response(409, schema=ApiError)
def edit_note(body, case_id: str, note_id: int):  # noqa: ANN001, ANN201
    """Change a note's text: its author only, within 24 hours of recording it; the earlier text is
    kept as a revision."""
    note = notes.edit_note(db.session, engine_env(), g.actor, case_id, note_id, body["text"], now())
    return _note(note, notes.revisions_of(db.session, note))


@blp.route("/<case_id>/attachments", methods=["POST"])
# The body is read by the view, not by @blp.arguments: the case's access is checked before the
# upload is looked at, so an outsider gets the case's 404 whatever it sends.
@blp.doc(requestBody={"required": True, "content": {"multipart/form-data": {"schema": AttachmentIn}}})
@blp.response(201, AttachmentOut)
@blp.alt_response(404, schema=ApiError)
@blp.alt_response(413, schema=ApiError)
@blp.alt_response(415, schema=ApiError)
def upload_attachment(case_id: str):  # noqa: ANN201
    """Attach a document (multipart, field `file`): PDF, PNG, JPEG, docx, xlsx, pptx or
    OpenDocument, recognised by its content; at most the configured size (10 MB by default)."""
    upload = request.files.get("file")
    row = attachments.attach(db.session, engine_env(), g.actor, case_id, upload.stream if upload else None,
                             upload.filename if upload else None, now())
    return _attachment(row)


@blp.route("/<case_id>/attachments", methods=["GET"])
@blp.arguments(PageQuery, location="query")
@blp.response(200, AttachmentOut(many=True), headers={
    "X-Total-Count": {"description": "how many documents the case has", "schema": {"type": "integer"}}})
@blp.alt_response(404, schema=ApiError)
def list_attachments(query, case_id: str):  # noqa: ANN001, ANN201
    """The case's documents, newest first, removed ones included and marked; the read is audited."""
    page = attachments.list_attachments(db.session, engine_env(), g.actor, case_id, now(), limit=query["limit"],
                                        offset=query["offset"])
    return [_attachment(r) for r in page.rows], {"X-Total-Count": str(page.total)}


@blp.route("/<case_id>/attachments/<attachment_id>", methods=["GET"])
@blp.doc(responses={"200": {
    "description": "the document's bytes, as an attachment, in the type found from its content",
    "content": {kind: {"schema": {"type": "string", "format": "binary"}} for kind in sniff.ALLOWED}}})
@blp.alt_response(404, schema=ApiError)
@blp.alt_response(410, schema=ApiError)
def download_attachment(case_id: str, attachment_id: str):  # noqa: ANN201
    """Download a document; the download is audited."""
    row, path = attachments.open_attachment(db.session, engine_env(), g.actor, case_id, attachment_id, now())
    return send_attachment(row, path)


def send_attachment(row: CaseAttachment, path: Any) -> Any:
    """The bytes as a download (never shown inline), in the stored type, not to be sniffed or cached."""
    response = send_file(path, mimetype=row.content_type, as_attachment=True, download_name=row.name,
                         conditional=False, etag=False, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/<case_id>/attachments/<attachment_id>/remove", methods=["POST"])
@blp.arguments(AttachmentRemoveIn)
@blp.response(200, AttachmentOut)
@blp.alt_response(403, schema=ApiError)
@blp.alt_response(404, schema=ApiError)
@blp.alt_response(409, schema=ApiError)
def remove_attachment(body, case_id: str, attachment_id: str):  # noqa: ANN001, ANN201
    """Remove a document as a recorded action, with a reason: its uploader or the secretariat.
    The record stays (who, when, why); the bytes are deleted."""
    row = attachments.remove_attachment(db.session, engine_env(), g.actor, case_id, attachment_id, body["reason"],
                                        now())
    return _attachment(row)
